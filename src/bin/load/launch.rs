//! Starting the load calls, the same for `twilio-load` and `sip-load`: lazily, one at a time
//! at `--rate` and under an optional `--concurrency` cap — a soak of 100,000 calls must not
//! hold 100,000 sleeping tasks — with each call's result handed over as it ends, so a run
//! keeps sums, never a report per call. Also the options the two tools share for soaks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::mulaw_wav;
use crate::sampler::Sampler;
use crate::speech::Script;

/// Options for long runs, flattened into both tools' arguments.
#[derive(clap::Args)]
pub struct SoakArgs {
    /// Calls live at once at most: a start that would exceed it waits for a call to end (and
    /// is not made up for later).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// 8 kHz mono 16-bit WAV the caller says once, `--say-at` after the answer, silent before
    /// and after it; the report then times the agent's reply.
    #[arg(long, conflicts_with = "audio")]
    pub say: Option<PathBuf>,
    /// Seconds after the answer the caller starts `--say` (after the greeting).
    #[arg(long, default_value_t = 6.0)]
    pub say_at: f64,
    /// Every N seconds print the calls so far and the engine's RSS, open fds and threads
    /// (with --server-pid); 0 prints nothing until the end.
    #[arg(long, default_value_t = 0)]
    pub sample_secs: u64,
    /// Samples before this are the warm-up [default: the hold, `--seconds`: by then the number
    /// of live calls has reached its plateau].
    #[arg(long)]
    pub warmup_secs: Option<u64>,
}

impl SoakArgs {
    /// The run's starts: `calls` at `rate` under `--concurrency`.
    pub fn plan(&self, calls: usize, rate: f64) -> Plan {
        Plan {
            calls,
            rate,
            concurrency: self.concurrency,
        }
    }

    /// The `--sample-secs` sampler of the engine `pid`, warm after `--warmup-secs` or else
    /// the hold (`seconds`).
    pub fn sampler(
        &self,
        pid: Option<u32>,
        seconds: u64,
        calls: usize,
        progress: Arc<Progress>,
    ) -> Option<Sampler> {
        Sampler::start(
            pid,
            Duration::from_secs(self.sample_secs),
            Duration::from_secs(self.warmup_secs.unwrap_or(seconds)),
            calls,
            progress,
        )
    }

    /// The report's `mode:` line: what the callers sent, the hold, the rate and the cap.
    pub fn print_mode(
        &self,
        looped_audio: bool,
        seconds: u64,
        rate: f64,
        wall: Duration,
        peak: usize,
    ) {
        println!(
            "mode: {}; {seconds} s per call; rate {}{}; wall {:.1} s; peak concurrent calls {peak}",
            if self.say.is_some() {
                format!("say once at {} s", self.say_at)
            } else if looped_audio {
                "speech (looped)".into()
            } else {
                "silent".into()
            },
            if rate > 0.0 {
                format!("{rate}/s")
            } else {
                "burst over 1 s".into()
            },
            self.concurrency
                .map_or(String::new(), |c| format!(", at most {c} at once")),
            wall.as_secs_f64()
        );
    }
}

/// What the caller sends: `--say` once, `--audio` looped, or silence.
pub fn script(audio: Option<&Path>, soak: &SoakArgs) -> anyhow::Result<Script> {
    Ok(match (&soak.say, audio) {
        (Some(say), _) => Script::say(
            mulaw_wav::load_mulaw(say)?,
            Duration::from_secs_f64(soak.say_at.max(0.0)),
        ),
        (None, Some(audio)) => Script::Loop(mulaw_wav::load_mulaw(audio)?),
        (None, None) => Script::Silence,
    })
}

pub struct Plan {
    pub calls: usize,
    /// New calls per second; 0 spreads them over one second.
    pub rate: f64,
    pub concurrency: Option<usize>,
}

impl Plan {
    /// Time between two starts.
    fn period(&self) -> Duration {
        let rate = if self.rate > 0.0 {
            self.rate
        } else {
            self.calls.max(1) as f64
        };
        Duration::from_secs_f64(1.0 / rate)
    }
}

/// Calls so far, for the periodic samples and the report.
#[derive(Default)]
pub struct Progress {
    pub started: AtomicUsize,
    pub completed: AtomicUsize,
    pub failed: AtomicUsize,
    /// Most calls live at once.
    pub peak: AtomicUsize,
}

impl Progress {
    pub fn get(&self) -> (usize, usize, usize) {
        (
            self.started.load(Ordering::Relaxed),
            self.completed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Runs `plan.calls` calls made by `call(n)`, handing each result to `done` as it ends
/// (`Err` when the call's task panicked), which says whether the call succeeded.
pub async fn launch<R, F>(
    plan: &Plan,
    progress: &Progress,
    mut call: impl FnMut(usize) -> F,
    mut done: impl FnMut(Result<R, String>) -> bool,
) where
    F: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let period = plan.period();
    let limit = Arc::new(Semaphore::new(
        plan.concurrency.unwrap_or(Semaphore::MAX_PERMITS).max(1),
    ));
    let mut running = JoinSet::new();
    let mut next = Instant::now();
    let mut n = 0;
    while n < plan.calls || !running.is_empty() {
        tokio::select! {
            // Ended calls first: the live count a start sees is exact.
            biased;
            Some(joined) = running.join_next() => {
                let ok = done(joined.map_err(|e| format!("the call's task failed: {e}")));
                let count = if ok { &progress.completed } else { &progress.failed };
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(permit) = turn(next, limit.clone()), if n < plan.calls => {
                let task = call(n);
                running.spawn(async move {
                    let result = task.await;
                    drop(permit);
                    result
                });
                n += 1;
                progress.started.fetch_add(1, Ordering::Relaxed);
                let (started, completed, failed) = progress.get();
                progress.peak.fetch_max(started - completed - failed, Ordering::Relaxed);
                // A start a little late keeps the schedule; one held back by the cap (or a
                // stalled runtime) moves it: the next comes a period later, not in a burst.
                next += period;
                let now = Instant::now();
                if next < now {
                    next = now + period;
                }
            }
        }
    }
}

/// Waits for the next start's time, then for room under the cap.
async fn turn(
    at: Instant,
    limit: Arc<Semaphore>,
) -> Result<OwnedSemaphorePermit, tokio::sync::AcquireError> {
    sleep_until(at).await;
    limit.acquire_owned().await
}

/// Why calls failed, counted by reason (at most `MAX_REASONS` distinct ones, then "other").
#[derive(Default)]
pub struct Failures(BTreeMap<String, u64>);

impl Failures {
    const MAX_REASONS: usize = 20;

    pub fn add(&mut self, reason: String) {
        let key = if self.0.len() < Self::MAX_REASONS || self.0.contains_key(&reason) {
            reason
        } else {
            "(other reasons)".to_string()
        };
        *self.0.entry(key).or_default() += 1;
    }

    pub fn print(&self) {
        for (reason, n) in &self.0 {
            println!("  failed: {reason} × {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(calls: usize, rate: f64, concurrency: Option<usize>) -> Plan {
        Plan {
            calls,
            rate,
            concurrency,
        }
    }

    // Real time (the tokio test clock is not built here): starts are checked against lower
    // bounds, which a loaded machine cannot break, and against each other.
    #[tokio::test]
    async fn calls_start_at_the_rate_one_task_at_a_time() {
        let progress = Progress::default();
        let start = Instant::now();
        let mut begins = Vec::new();
        // 10 calls at 100/s, each lasting 50 ms: about 5 live at once.
        launch(
            &plan(10, 100.0, None),
            &progress,
            |n| async move {
                let begun = Instant::now();
                tokio::time::sleep(Duration::from_millis(50)).await;
                (n, begun)
            },
            |r| {
                let (n, begun) = r.unwrap();
                begins.push((n, begun - start));
                n != 3
            },
        )
        .await;
        assert_eq!(progress.get(), (10, 9, 1));
        let peak = progress.peak.load(Ordering::Relaxed);
        assert!((2..=6).contains(&peak), "{peak}");
        begins.sort_unstable();
        for (n, begun) in begins {
            assert!(
                begun >= Duration::from_millis(10) * n as u32,
                "{n}: {begun:?}"
            );
        }
        assert!(start.elapsed() >= Duration::from_millis(140));
    }

    #[tokio::test]
    async fn the_cap_holds_starts_back_without_a_burst_after() {
        let progress = Progress::default();
        let start = Instant::now();
        let mut begins = Vec::new();
        // 5 calls at 100/s, 2 at once; the first two end together at 200 ms, so two starts
        // are due and two places free at once: they still come a period apart.
        launch(
            &plan(5, 100.0, Some(2)),
            &progress,
            |n| {
                // When the launcher started it, not when its task first ran: on a loaded
                // machine a task can be polled late and its successor on time.
                let begun = Instant::now();
                async move {
                    let until = match n {
                        0 | 1 => start + Duration::from_millis(200),
                        _ => begun + Duration::from_millis(10),
                    };
                    tokio::time::sleep_until(until).await;
                    begun
                }
            },
            |r| {
                begins.push(r.unwrap() - start);
                true
            },
        )
        .await;
        begins.sort_unstable();
        assert_eq!(progress.peak.load(Ordering::Relaxed), 2);
        assert!(begins[1] >= Duration::from_millis(10));
        assert!(begins[2] >= Duration::from_millis(200), "{begins:?}");
        // A burst would start them together; a start a little late keeps the schedule, so
        // the next may come up to that lateness early: half a period is the bound.
        assert!(
            begins[3] - begins[2] >= Duration::from_millis(5),
            "{begins:?}"
        );
        assert!(
            begins[4] - begins[3] >= Duration::from_millis(5),
            "{begins:?}"
        );
    }

    #[tokio::test]
    async fn a_panicking_call_is_a_failure_and_the_run_goes_on() {
        let progress = Progress::default();
        let mut errors = 0;
        launch(
            &plan(3, 0.0, None),
            &progress,
            |n| async move {
                assert_ne!(n, 1, "call 1 breaks");
            },
            |r| {
                errors += usize::from(r.is_err());
                r.is_ok()
            },
        )
        .await;
        assert_eq!((errors, progress.get()), (1, (3, 2, 1)));
    }

    #[test]
    fn failures_are_counted_by_reason_with_the_tail_folded() {
        let mut failures = Failures::default();
        for i in 0..30 {
            failures.add(format!("reason {}", i % 25));
        }
        failures.add("reason 0".into());
        assert_eq!(failures.0.len(), Failures::MAX_REASONS + 1);
        assert_eq!(failures.0["reason 0"], 3);
        assert_eq!(failures.0["(other reasons)"], 5);
    }
}
