//! Per-key rate limits by plan (GCRA through `governor`), with the headers every response
//! carries. Quotas are injectable so tests can use a tiny burst instead of waiting a minute.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::store::Plan;

type KeyedLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The quotas of each plan, and the free plan's daily allowance.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub free: Quota,
    pub starter: Quota,
    pub pro: Quota,
    pub elite: Quota,
    /// Requests without a valid key, per client address.
    pub anonymous: Quota,
    /// API calls a free-plan key may make per UTC day.
    pub free_daily_calls: u64,
}

fn per_minute(rate: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(rate).allow_burst(burst)
}

impl Default for RateLimits {
    /// The published limits: starter 60/min burst 10, pro 300/min burst 50, elite 1000/min
    /// burst 200; free keys get starter's rate and 100 calls a day.
    fn default() -> Self {
        RateLimits {
            free: per_minute(60, 10),
            starter: per_minute(60, 10),
            pro: per_minute(300, 50),
            elite: per_minute(1000, 200),
            anonymous: per_minute(60, 10),
            free_daily_calls: 100,
        }
    }
}

impl RateLimits {
    /// A quota allowing `burst` requests at once, refilled one every `every`.
    pub fn quota(burst: u32, every: Duration) -> Quota {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(every)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// Outcome of one check: what the headers say.
#[derive(Debug, Clone, Copy)]
pub struct LimitState {
    pub allowed: bool,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until the next request would be allowed (when refused).
    pub retry_after_secs: u64,
}

/// Who a request is counted against.
#[derive(Debug, Clone, Copy)]
pub enum Bucket {
    Plan(Plan),
    Anonymous,
}

/// Every this many checks, buckets that have refilled completely (indistinguishable from a
/// fresh one) are dropped, so the tables hold only clients seen within a refill period.
const PRUNE_EVERY: u64 = 1024;

pub struct Limiter {
    free: KeyedLimiter,
    starter: KeyedLimiter,
    pro: KeyedLimiter,
    elite: KeyedLimiter,
    anonymous: KeyedLimiter,
    anonymous_quota: Quota,
    /// Clients the anonymous bucket refused, until when: refused again without a key lookup.
    refused: Mutex<HashMap<String, Instant>>,
    checks: AtomicU64,
}

fn keyed(quota: Quota) -> KeyedLimiter {
    RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Limiter {
    pub fn new(limits: &RateLimits) -> Self {
        Limiter {
            free: keyed(limits.free),
            starter: keyed(limits.starter),
            pro: keyed(limits.pro),
            elite: keyed(limits.elite),
            anonymous: keyed(limits.anonymous),
            anonymous_quota: limits.anonymous,
            refused: Mutex::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Buckets held, over every plan and anonymous clients.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.all().iter().map(|l| l.len()).sum()
    }

    fn all(&self) -> [&KeyedLimiter; 5] {
        [
            &self.free,
            &self.starter,
            &self.pro,
            &self.elite,
            &self.anonymous,
        ]
    }

    fn prune(&self) {
        for limiter in self.all() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        self.refused_clients().retain(|_, until| *until > now);
    }

    fn refused_clients(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The refusal `who` is still serving from the anonymous bucket, if any: checked before a
    /// key is looked up, so a client spraying made-up keys stops reaching the database once
    /// its allowance is spent, while valid keys never pay from it.
    pub fn anonymous_refusal(&self, who: &str) -> Option<LimitState> {
        let until = *self.refused_clients().get(who)?;
        let wait = until.checked_duration_since(Instant::now())?;
        let quota = self.anonymous_quota;
        Some(LimitState {
            allowed: false,
            remaining: 0,
            reset_secs: ceil_secs(quota.replenish_interval() * quota.burst_size().get()),
            retry_after_secs: ceil_secs(wait).max(1),
        })
    }

    /// Takes one request from `who`'s bucket.
    pub fn check(&self, bucket: Bucket, who: &str) -> LimitState {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        let limiter = match bucket {
            Bucket::Plan(Plan::Free) => &self.free,
            Bucket::Plan(Plan::Starter) => &self.starter,
            Bucket::Plan(Plan::Pro) => &self.pro,
            Bucket::Plan(Plan::Elite) => &self.elite,
            Bucket::Anonymous => &self.anonymous,
        };
        // Keys are small strings; cloning one per request is cheaper than a second map.
        match limiter.check_key(&who.to_string()) {
            Ok(snapshot) => {
                let quota = snapshot.quota();
                let remaining = snapshot.remaining_burst_capacity();
                let missing = quota.burst_size().get().saturating_sub(remaining);
                LimitState {
                    allowed: true,
                    remaining,
                    reset_secs: ceil_secs(quota.replenish_interval() * missing),
                    retry_after_secs: 0,
                }
            }
            Err(not_until) => {
                let quota = not_until.quota();
                let wait = not_until.wait_time_from(limiter.clock().now());
                if matches!(bucket, Bucket::Anonymous) {
                    self.refused_clients()
                        .insert(who.to_string(), Instant::now() + wait);
                }
                LimitState {
                    allowed: false,
                    remaining: 0,
                    reset_secs: ceil_secs(quota.replenish_interval() * quota.burst_size().get()),
                    retry_after_secs: ceil_secs(wait).max(1),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let limits = RateLimits {
            starter: RateLimits::quota(3, Duration::from_secs(3600)),
            ..RateLimits::default()
        };
        let limiter = Limiter::new(&limits);
        let states: Vec<_> = (0..4)
            .map(|_| limiter.check(Bucket::Plan(Plan::Starter), "key_a"))
            .collect();
        assert_eq!(
            states.iter().map(|s| s.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert!(states[2].allowed && !states[3].allowed);
        assert!(states[3].retry_after_secs > 3500);
        // Another key has its own bucket.
        assert!(limiter.check(Bucket::Plan(Plan::Starter), "key_b").allowed);
    }

    #[test]
    fn addresses_seen_once_do_not_pile_up() {
        // Refilled within a nanosecond: every bucket is back to fresh by the next check.
        let limits = RateLimits {
            anonymous: RateLimits::quota(1, Duration::from_nanos(1)),
            ..RateLimits::default()
        };
        let limiter = Limiter::new(&limits);
        for i in 0..20 * PRUNE_EVERY {
            limiter.check(Bucket::Anonymous, &format!("10.0.{}.{}", i / 256, i % 256));
            assert!(limiter.tracked() <= PRUNE_EVERY as usize);
        }
        // A client still inside its refill period is kept.
        let limiter = Limiter::new(&RateLimits::default());
        limiter.check(Bucket::Anonymous, "10.9.9.9");
        for i in 0..PRUNE_EVERY {
            limiter.check(Bucket::Anonymous, &format!("10.1.0.{i}"));
        }
        assert!(limiter.tracked() > PRUNE_EVERY as usize - 10);
    }
}
