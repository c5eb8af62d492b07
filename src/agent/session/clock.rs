//! The session's 20 ms tick and its notion of call time.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use super::Pacing;

const TICK: Duration = crate::telephony::frame_grid::FRAME_PERIOD;
/// A stepped replay lets call time on after this long without any provider progress, so a
/// hung provider meets the session's own stall deadlines instead of freezing the call.
const STEPPED_STALL: Duration = Duration::from_secs(30);

/// What woke the call (`Clock::next`).
pub(super) enum Wake {
    /// A media tick; `after_rest` when ticks were skipped before it.
    Tick { after_rest: bool },
    /// A resting call's deadline.
    Deadline,
}

pub(super) enum Clock {
    /// Call time is wall time since the answer; ticks follow an interval that catches up
    /// after a stall (Burst) so the total frames sent never exceed the time elapsed.
    Live {
        started: Instant,
        interval: Interval,
        /// Ticks were skipped (`rest`): the next one comes at once, then the grid again.
        rested: bool,
        /// The wake-up of a resting call, reset only when its deadline moves.
        wake: Pin<Box<Sleep>>,
        /// Call time `wake` is set for, and of the last deadline it woke the call for.
        wake_at: u64,
        woke_at: Option<u64>,
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
                Clock::Live {
                    started,
                    interval,
                    rested: false,
                    wake: Box::pin(tokio::time::sleep_until(started)),
                    wake_at: 0,
                    woke_at: None,
                }
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

    /// What the call's time brings next: a tick, or, while the call rests (`resting`: a live
    /// call with nothing to play on a transport that needs no steady stream), the turn
    /// machine's next `deadline`. Caller audio wakes a resting call on its own.
    pub(super) async fn next(&mut self, busy: bool, resting: bool, deadline: Option<u64>) -> Wake {
        if !resting {
            let after_rest = self.tick(busy).await;
            return Wake::Tick { after_rest };
        }
        self.rest();
        match deadline {
            Some(deadline) => self.wake_at(deadline).await,
            None => std::future::pending().await,
        }
        Wake::Deadline
    }

    /// Waits for the next tick; `true` when it is the first after a rest. `busy` says a
    /// provider is working on something the call waits for; a replay then spends the tick in
    /// wall time so the provider's real cost shows in call time, and a stepped replay waits
    /// for the provider instead (the session drops this future as soon as the provider makes
    /// progress).
    async fn tick(&mut self, busy: bool) -> bool {
        match self {
            Clock::Live {
                interval, rested, ..
            } => {
                if std::mem::take(rested) {
                    // Speech to play after a rest starts now, not up to a frame later.
                    let now = Instant::now();
                    interval.reset_at(crate::telephony::frame_grid::next_tick(now));
                    return true;
                }
                interval.tick().await;
                false
            }
            Clock::Replay { now_ms, busy_tick } => {
                if busy {
                    tokio::time::sleep(*busy_tick).await;
                } else {
                    tokio::task::yield_now().await;
                }
                *now_ms += TICK.as_millis() as u64;
                false
            }
        }
    }

    /// Skips ticks until the next `tick`.
    fn rest(&mut self) {
        if let Clock::Live { rested, .. } = self {
            *rested = true;
        }
    }

    /// Waits, while resting, until call time `deadline`; never for a replay, which does not
    /// rest. A deadline already woken for that did not move wakes the call again a frame
    /// later, not at once.
    async fn wake_at(&mut self, deadline: u64) {
        let Clock::Live {
            started,
            wake,
            wake_at,
            woke_at,
            ..
        } = self
        else {
            return std::future::pending().await;
        };
        let at = match *woke_at {
            Some(woke) if deadline <= woke => woke + TICK.as_millis() as u64,
            _ => deadline,
        };
        if at != *wake_at {
            *wake_at = at;
            wake.as_mut().reset(*started + Duration::from_millis(at));
        }
        wake.as_mut().await;
        *woke_at = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_MS: u64 = TICK.as_millis() as u64;

    fn live() -> Clock {
        Clock::new(Pacing::RealTime)
    }

    /// Call time the clock's `next` returned at, with what woke it.
    async fn next(clock: &mut Clock, resting: bool, deadline: Option<u64>) -> (u64, bool) {
        let wake = clock.next(false, resting, deadline).await;
        let at = clock.now();
        match wake {
            Wake::Tick { after_rest } => (at, after_rest),
            Wake::Deadline => (at, false),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_call_ticks_every_frame_on_the_grid() {
        let mut clock = live();
        let (first, _) = next(&mut clock, false, None).await;
        assert!(first <= FRAME_MS);
        for n in 1..50 {
            let (at, after_rest) = next(&mut clock, false, None).await;
            assert_eq!(at, first + n * FRAME_MS);
            assert!(!after_rest);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_resting_call_sleeps_until_its_deadline_and_speech_after_it_starts_at_once() {
        let mut clock = live();
        let (first, _) = next(&mut clock, false, None).await;
        // No ticks while resting: the first wake is the deadline itself.
        let (woke, _) = next(&mut clock, true, Some(5_000)).await;
        assert_eq!(woke, 5_000);
        // Speech to play: the first frame goes now, the next on the grid again.
        let (resumed, after_rest) = next(&mut clock, false, None).await;
        assert_eq!((resumed, after_rest), (5_000, true));
        let (tick, after_rest) = next(&mut clock, false, None).await;
        assert!(!after_rest);
        assert!(tick > resumed && tick <= resumed + FRAME_MS);
        assert_eq!((tick - first) % FRAME_MS, 0, "back on the grid");
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_that_does_not_move_wakes_the_call_a_frame_later_not_at_once() {
        let mut clock = live();
        let (woke, _) = next(&mut clock, true, Some(300)).await;
        assert_eq!(woke, 300);
        // The turn machine has not acted on it yet: the same deadline again.
        let (again, _) = next(&mut clock, true, Some(300)).await;
        assert_eq!(again, 300 + FRAME_MS);
        // A later deadline is slept to exactly.
        let (later, _) = next(&mut clock, true, Some(1_000)).await;
        assert_eq!(later, 1_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_resting_call_without_a_deadline_waits_for_the_caller() {
        let mut clock = live();
        let woke =
            tokio::time::timeout(Duration::from_secs(3_600), clock.next(false, true, None)).await;
        assert!(woke.is_err(), "only caller audio wakes it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_call_catches_up_its_ticks_without_running_ahead() {
        let mut clock = live();
        let (first, _) = next(&mut clock, false, None).await;
        // The task was held up for five frames.
        tokio::time::advance(Duration::from_millis(5 * FRAME_MS)).await;
        let mut ticks = 0;
        while clock.now() <= first + 5 * FRAME_MS {
            let _ = next(&mut clock, false, None).await;
            ticks += 1;
        }
        // The five missed ticks come at once, the sixth on time: one a frame of call time.
        assert_eq!(ticks, 6);
        assert_eq!(clock.now(), first + 6 * FRAME_MS);
    }
}
