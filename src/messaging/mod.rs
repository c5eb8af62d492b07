//! Messaging: SMS and WhatsApp through a provider (Twilio for live keys, the sandbox for test
//! keys), honest statuses from the provider's reports, and inbound messages.

mod carrier;
mod provider;
mod sandbox;
pub mod segments;
mod status;
mod twilio;

use std::sync::Arc;

use chrono::{Datelike, Duration, Utc};

pub use carrier::router;
pub use provider::{Accepted, MessageSender, Outgoing, ProviderError};
pub use twilio::{Sender, TwilioMessaging};

use crate::config::Config;
use crate::store::{MessageRecord, NewMessage, Plan, Scope, Store, StoreError, parse_ts};

/// Longest SMS body accepted (Twilio's own limit; 10 segments of GSM-7).
pub const MAX_SMS_CHARS: usize = 1600;
/// WhatsApp accepts a free-form message only this long after the recipient last wrote.
const WHATSAPP_WINDOW_HOURS: i64 = 24;
/// Where Twilio reports outbound status changes.
pub const STATUS_CALLBACK_PATH: &str = "/carrier/twilio/sms/status";

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("live messages need a provider: set {0}")]
    NotConfigured(&'static str),
    #[error("body must be at most {MAX_SMS_CHARS} characters (got {0})")]
    TooLong(usize),
    #[error(
        "the {plan} plan's sms_limit of {limit} SMS per billing period is reached; \
         nothing was sent"
    )]
    OverSmsLimit { plan: &'static str, limit: i64 },
    #[error(
        "a free-form WhatsApp body can only be sent within {WHATSAPP_WINDOW_HOURS} hours of the \
         recipient's last message; send an approved template instead"
    )]
    OutsideWhatsappWindow,
    #[error("the provider refused the message: {0}")]
    Provider(ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sends messages for every scope: live ones through the configured provider, test ones
/// through the sandbox. Cheap to clone.
#[derive(Clone)]
pub struct Messaging {
    store: Store,
    config: Arc<Config>,
    live: Result<Arc<dyn MessageSender>, &'static str>,
    sandbox: Arc<dyn MessageSender>,
}

impl Messaging {
    pub fn new(store: Store, config: Arc<Config>) -> Self {
        Messaging {
            live: twilio_from_config(&config),
            store,
            config,
            sandbox: Arc::new(sandbox::Sandbox),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stores the message as `queued`, hands it to the provider and records its answer. The
    /// stored message comes back; a refusal is recorded on it (`failed`, with the error) and
    /// returned as `SendError::Provider`.
    pub async fn send(
        &self,
        scope: &Scope,
        plan: Plan,
        mut req: NewMessage,
    ) -> Result<MessageRecord, SendError> {
        let sender = if scope.live {
            self.live.clone().map_err(SendError::NotConfigured)?
        } else {
            self.sandbox.clone()
        };
        let mut sms_limit = None;
        let period_start = Utc::now().date_naive().with_day(1).map(|d| d.to_string());
        let period_start = period_start.unwrap_or_default();
        req.segments = match req.channel.as_str() {
            "sms" => {
                let body = req.body.as_deref().unwrap_or_default();
                let chars = body.chars().count();
                if chars > MAX_SMS_CHARS {
                    return Err(SendError::TooLong(chars));
                }
                sms_limit = Some((plan.sms_limit(), period_start.as_str()));
                Some(i64::from(segments::count(body).1))
            }
            _ => {
                if req.body.is_some() && !self.in_whatsapp_window(scope, &req.to).await? {
                    return Err(SendError::OutsideWhatsappWindow);
                }
                None
            }
        };
        let Some(msg) = self
            .store
            .create_message(scope, req.clone(), sms_limit)
            .await?
        else {
            return Err(SendError::OverSmsLimit {
                plan: plan.name(),
                limit: plan.sms_limit(),
            });
        };
        // The callback names our id: a report that overtakes the provider's answer still finds
        // its message.
        let outgoing = Outgoing {
            channel: req.channel,
            to: req.to,
            from_number: req.from_number,
            body: req.body,
            template: req.template,
            variables: req.variables,
            status_callback: format!(
                "{}{STATUS_CALLBACK_PATH}?message_id={}",
                self.config.public_url(),
                msg.id
            ),
        };
        match sender.send(&outgoing).await {
            Ok(accepted) => {
                self.store
                    .record_acceptance(
                        &msg.id,
                        accepted.provider_sid.as_deref(),
                        accepted.from_number.as_deref(),
                    )
                    .await?;
                if accepted.simulated {
                    // Answered as handed off (`sent`), as a provider would; delivery follows.
                    let [sent, delivered] = status::simulated();
                    let handed_off = self.store.change_message_status(&msg.id, &sent).await?;
                    self.store
                        .change_message_status(&msg.id, &delivered)
                        .await?;
                    return handed_off.ok_or(SendError::Store(StoreError::NotFound));
                }
            }
            Err(e) => {
                let (code, text) = match &e {
                    ProviderError::Rejected { code, message } => (code.clone(), message.clone()),
                    ProviderError::Unreachable(text) => (None, text.clone()),
                };
                tracing::warn!(message_id = %msg.id, "provider refused the message: {e}");
                self.store
                    .change_message_status(&msg.id, &status::refused(code, text))
                    .await?;
                return Err(SendError::Provider(e));
            }
        }
        self.store
            .get_message(scope, &msg.id)
            .await?
            .ok_or(SendError::Store(StoreError::NotFound))
    }

    async fn in_whatsapp_window(&self, scope: &Scope, to: &str) -> Result<bool, StoreError> {
        let Some(last) = self.store.last_inbound_at(scope, "whatsapp", to).await? else {
            return Ok(false);
        };
        Ok(
            parse_ts(&last)
                .is_some_and(|t| Utc::now() - t < Duration::hours(WHATSAPP_WINDOW_HOURS)),
        )
    }
}

/// Twilio from the operator's settings, or the first missing setting.
fn twilio_from_config(config: &Config) -> Result<Arc<dyn MessageSender>, &'static str> {
    let sid = config
        .twilio_account_sid
        .as_deref()
        .ok_or("BOLTCALL_TWILIO_ACCOUNT_SID")?;
    let token = config
        .twilio_auth_token
        .as_deref()
        .ok_or("BOLTCALL_TWILIO_AUTH_TOKEN")?;
    let sender = match (
        &config.twilio_messaging_from,
        &config.twilio_messaging_service_sid,
    ) {
        (Some(from), _) => Sender::Number(from.clone()),
        (None, Some(service)) => Sender::Service(service.clone()),
        (None, None) => {
            return Err("BOLTCALL_TWILIO_MESSAGING_FROM or BOLTCALL_TWILIO_MESSAGING_SERVICE_SID");
        }
    };
    Ok(Arc::new(TwilioMessaging::new(
        &config.twilio_api_base,
        sid,
        token,
        sender,
    )))
}
