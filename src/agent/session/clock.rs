//! The session's 20 ms tick and its notion of call time.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::Pacing;

const TICK: Duration = Duration::from_millis(20);

pub(super) enum Clock {
    /// Call time is wall time since the answer; ticks follow an interval that catches up
    /// after a stall (Burst) so the total frames sent never exceed the time elapsed.
    Live {
        started: Instant,
        interval: Interval,
    },
    /// Call time is 20 ms per tick; see `Pacing::Replay`.
    Replay { now_ms: u64 },
}

impl Clock {
    pub(super) fn new(pacing: Pacing) -> Self {
        match pacing {
            Pacing::RealTime => {
                let started = Instant::now();
                let mut interval = tokio::time::interval_at(started + TICK, TICK);
                interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
                Clock::Live { started, interval }
            }
            Pacing::Replay => Clock::Replay { now_ms: 0 },
        }
    }

    pub(super) fn is_live(&self) -> bool {
        matches!(self, Clock::Live { .. })
    }

    /// Milliseconds of call time.
    pub(super) fn now(&self) -> u64 {
        match self {
            Clock::Live { started, .. } => {
                u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
            }
            Clock::Replay { now_ms } => *now_ms,
        }
    }

    /// Waits for the next tick. `busy` says a provider is working on something the call
    /// waits for; a replay then spends the tick in wall time so the provider's real cost
    /// shows in call time.
    pub(super) async fn tick(&mut self, busy: bool) {
        match self {
            Clock::Live { interval, .. } => {
                interval.tick().await;
            }
            Clock::Replay { now_ms } => {
                if busy {
                    tokio::time::sleep(TICK).await;
                } else {
                    tokio::task::yield_now().await;
                }
                *now_ms += TICK.as_millis() as u64;
            }
        }
    }
}
