//! Retry policy, free of I/O: what follows an attempt, given the time and a random draw.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{AttemptOutcome, NextStep, format_ts};

/// Delays before each retry; `BOLTCALL_WEBHOOK_RETRY_SCHEDULE` replaces the default.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    pub fn from_secs(delays: &[u64]) -> Self {
        RetrySchedule {
            delays: delays.iter().map(|s| Duration::from_secs(*s)).collect(),
        }
    }

    /// Attempts a delivery gets in all.
    pub fn attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The wait after `attempts_made` failed attempts, jittered up to +25% by `unit` (a draw
    /// in `[0, 1)`) so endpoints that failed together are not retried in lockstep; `None`
    /// once the schedule is spent.
    pub fn delay_after(&self, attempts_made: usize, unit: f64) -> Option<Duration> {
        let base = *self.delays.get(attempts_made.checked_sub(1)?)?;
        Some(base.mul_f64(1.0 + 0.25 * unit.clamp(0.0, 1.0)))
    }

    /// What follows attempt number `attempt` (from 1) that ended with `outcome` at `now`.
    pub fn next_step(
        &self,
        attempt: usize,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
        unit: f64,
    ) -> NextStep {
        let Some(error) = &outcome.error else {
            return NextStep::Delivered;
        };
        match self.delay_after(attempt, unit) {
            Some(delay) => NextStep::RetryAt(format_ts(later(now, delay))),
            None => NextStep::GiveUp(format!(
                "{attempt} consecutive attempts to deliver one event failed; the last: {error}"
            )),
        }
    }
}

/// `now + delay`, saturating (an operator may configure absurd delays).
pub fn later(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> AttemptOutcome {
        AttemptOutcome {
            status_code: Some(500),
            error: Some("HTTP 500".into()),
            latency_ms: 3,
        }
    }

    #[test]
    fn default_schedule_spans_about_a_day_in_eight_attempts() {
        let schedule =
            RetrySchedule::from_secs(&crate::config::Config::default().webhook_retry_schedule);
        assert_eq!(schedule.attempts(), 8);
        let first = schedule.delay_after(1, 0.0).unwrap();
        assert!(first <= Duration::from_secs(10), "{first:?}");
        let total: Duration = (1..8).map(|n| schedule.delay_after(n, 0.5).unwrap()).sum();
        assert!(total > Duration::from_secs(20 * 3600) && total < Duration::from_secs(30 * 3600));
        assert_eq!(schedule.delay_after(8, 0.5), None);
    }

    #[test]
    fn jitter_stretches_by_at_most_a_quarter() {
        let schedule = RetrySchedule::from_secs(&[100]);
        assert_eq!(schedule.delay_after(1, 0.0), Some(Duration::from_secs(100)));
        assert_eq!(
            schedule.delay_after(1, 0.999_999).map(|d| d.as_secs()),
            Some(124)
        );
    }

    #[test]
    fn failures_retry_until_the_schedule_is_spent() {
        let schedule = RetrySchedule::from_secs(&[1, 2]);
        let now = crate::store::parse_ts("2025-03-20T14:00:00Z").unwrap();
        assert_eq!(
            schedule.next_step(1, &failed(), now, 0.0),
            NextStep::RetryAt("2025-03-20T14:00:01.000000Z".into())
        );
        assert_eq!(
            schedule.next_step(2, &failed(), now, 0.0),
            NextStep::RetryAt("2025-03-20T14:00:02.000000Z".into())
        );
        let NextStep::GiveUp(reason) = schedule.next_step(3, &failed(), now, 0.0) else {
            panic!("third failure of a two-retry schedule gives up");
        };
        assert!(
            reason.contains("3 consecutive") && reason.contains("HTTP 500"),
            "{reason}"
        );
        let ok = AttemptOutcome {
            status_code: Some(204),
            error: None,
            latency_ms: 1,
        };
        assert_eq!(schedule.next_step(3, &ok, now, 0.0), NextStep::Delivered);
    }
}
