//! The dispatcher: a loop that fans new outbox events out to webhooks and makes every due
//! attempt, a bounded number at a time. Woken when this process writes an event; polls for
//! the rest (retries coming due, events written by other engines on a shared PostgreSQL).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::body::event_body;
use super::schedule::{RetrySchedule, later};
use super::sender::{Outgoing, WebhookSender};
use crate::config::Config;
use crate::store::{DeliveryJob, Store, StoreError, format_ts, now_ts};

/// How often the outbox is checked when nothing wakes the dispatcher.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Pause after a wake-up: the writer's transaction commits just after the wake.
const WAKE_SETTLE: Duration = Duration::from_millis(10);
/// Events turned into deliveries per transaction.
const FAN_OUT_BATCH: u32 = 500;
/// Attempts in flight at once per engine.
const MAX_IN_FLIGHT: usize = 64;
/// A claim outlives the request's timeout by this much, for recording the outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Receivers get at most this long to answer, whatever the configuration says.
const MAX_TIMEOUT_SECS: u64 = 300;

#[derive(Debug, Clone)]
pub struct DispatcherSettings {
    pub schedule: RetrySchedule,
    pub timeout: Duration,
    pub retention: Duration,
    pub allow_local: bool,
}

impl DispatcherSettings {
    pub fn from_config(config: &Config) -> Self {
        DispatcherSettings {
            schedule: RetrySchedule::from_secs(&config.webhook_retry_schedule),
            timeout: Duration::from_secs(config.webhook_timeout_secs.clamp(1, MAX_TIMEOUT_SECS)),
            retention: Duration::from_secs(config.webhook_retention_days.saturating_mul(86_400)),
            allow_local: config.webhook_allow_loopback,
        }
    }

    /// The HTTP side of delivery under these settings.
    pub fn sender(&self) -> Result<WebhookSender, reqwest::Error> {
        WebhookSender::new(self.timeout, self.allow_local)
    }
}

pub struct Dispatcher {
    store: Store,
    sender: Arc<WebhookSender>,
    settings: DispatcherSettings,
    slots: Arc<Semaphore>,
}

impl Dispatcher {
    pub fn new(store: Store, settings: DispatcherSettings) -> Result<Self, reqwest::Error> {
        Ok(Dispatcher {
            store,
            sender: Arc::new(settings.sender()?),
            settings,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Runs the dispatcher until the task is aborted.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let mut last_prune: Option<Instant> = None;
        loop {
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                self.prune().await;
                last_prune = Some(Instant::now());
            }
            let busy = match self.pass().await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!("webhook dispatcher: {e}");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = super::outbox_signal().notified() => tokio::time::sleep(WAKE_SETTLE).await,
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
        }
    }

    /// One round: fans out new events, then starts every due attempt there is room for.
    /// Returns whether it found work (so another round should follow at once).
    pub async fn pass(&self) -> Result<bool, StoreError> {
        let fanned = self.store.fan_out_events(&now_ts(), FAN_OUT_BATCH).await?;
        // Wait for room before claiming: a claimed delivery must start within its lease.
        let Ok(first) = self.slots.clone().acquire_owned().await else {
            return Ok(false);
        };
        let room = 1 + self.slots.available_permits();
        let now = Utc::now();
        let lease_until = later(now, self.settings.timeout + LEASE_MARGIN);
        let jobs = self
            .store
            .claim_deliveries(&format_ts(now), &format_ts(lease_until), room)
            .await?;
        let claimed = jobs.len();
        let mut first = Some(first);
        for job in jobs {
            let slot = match first.take() {
                Some(slot) => slot,
                // Only this loop takes slots, so the ones counted in `room` are still free.
                None => match self.slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            let store = self.store.clone();
            let sender = self.sender.clone();
            let schedule = self.settings.schedule.clone();
            tokio::spawn(async move {
                attempt(&store, &sender, &schedule, job).await;
                drop(slot);
            });
        }
        Ok(fanned > 0 || claimed > 0)
    }

    async fn prune(&self) {
        let Some(before) = chrono::Duration::from_std(self.settings.retention)
            .ok()
            .and_then(|r| Utc::now().checked_sub_signed(r))
            .map(format_ts)
        else {
            return;
        };
        match self.store.prune_delivered_events(&before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("pruned {n} settled events older than {before}"),
            Err(e) => tracing::warn!("pruning settled events: {e}"),
        }
    }
}

/// Makes one attempt of `job` and records it. A failure to record leaves the claim to lapse,
/// and the attempt is made again (at least once, never silently dropped).
async fn attempt(
    store: &Store,
    sender: &WebhookSender,
    schedule: &RetrySchedule,
    job: DeliveryJob,
) {
    let body = event_body(&job.event_type, &job.timestamp(), &job.payload);
    let outcome = sender
        .send(&Outgoing {
            url: &job.url,
            secret: &job.secret,
            event_id: &job.event_id,
            body: &body,
        })
        .await;
    let number = usize::try_from(job.attempts).unwrap_or(0) + 1;
    let next = schedule.next_step(number, &outcome, Utc::now(), rand::random::<f64>());
    if let Err(e) = store.record_attempt(&job, &outcome, &next, &now_ts()).await {
        tracing::warn!(
            "recording attempt {number} of {} to {}: {e}; it is retried when its claim lapses",
            job.event_id,
            job.webhook_id
        );
    }
}
