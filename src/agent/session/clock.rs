//! The session's 20 ms tick and its notion of call time.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::Pacing;

const TICK: Duration = crate::telephony::frame_grid::FRAME_PERIOD;
/// A stepped replay lets call time on after this long without any provider progress, so a
/// hung provider meets the session's own stall deadlines instead of freezing the call.
const STEPPED_STALL: Duration = Duration::from_secs(30);

pub(super) enum Clock {
    /// Call time is wall time since the answer; ticks follow an interval that catches up
    /// after a stall (Burst) so the total frames sent never exceed the time elapsed.
    Live {
        started: Instant,
        interval: Interval,
    },
    /// Call time is 20 ms per tick; see `Pacing::Replay` and `Pacing::Stepped`.
    Replay { now_ms: u64, busy_tick: Duration },
}

impl Clock {
    pub(super) fn new(pacing: Pacing) -> Self {
        match pacing {
            Pacing::RealTime => {
                let started = Instant::now();
                let first = crate::telephony::frame_grid::next_tick(started);
                let mut interval = tokio::time::interval_at(first, TICK);
                interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
                Clock::Live { started, interval }
            }
            Pacing::Replay => Clock::Replay {
                now_ms: 0,
                busy_tick: TICK,
            },
            Pacing::Stepped => Clock::Replay {
                now_ms: 0,
                busy_tick: STEPPED_STALL,
            },
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
            Clock::Replay { now_ms, .. } => *now_ms,
        }
    }

    /// Waits for the next tick. `busy` says a provider is working on something the call
    /// waits for; a replay then spends the tick in wall time so the provider's real cost
    /// shows in call time, and a stepped replay waits for the provider instead (the session
    /// drops this future as soon as the provider makes progress).
    pub(super) async fn tick(&mut self, busy: bool) {
        match self {
            Clock::Live { interval, .. } => {
                interval.tick().await;
            }
            Clock::Replay { now_ms, busy_tick } => {
                if busy {
                    tokio::time::sleep(*busy_tick).await;
                } else {
                    tokio::task::yield_now().await;
                }
                *now_ms += TICK.as_millis() as u64;
            }
        }
    }
}
