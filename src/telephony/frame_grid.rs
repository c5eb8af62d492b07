//! One 20 ms grid for every media tick in the process.
//!
//! Each call paces its audio with its own timer. Left at their own phases, a thousand calls'
//! timers fire at twenty different milliseconds of every frame period, and the runtime's
//! workers wake (and park again) each time. On a shared grid they all fire together: one
//! wake-up per period runs every call's tick, which costs less than the parking it saves.
//! RTP senders tick a few milliseconds after the sessions (`sender_offset`), on three
//! instants of the period rather than one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The frame period every call's media ticks at.
pub const FRAME_PERIOD: Duration = Duration::from_millis(20);

/// The first grid instant at or after `after` (strictly after when `after` is past the
/// grid's origin, so a tick is never due the moment it is asked for).
pub fn next_tick(after: Instant) -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    let period = FRAME_PERIOD.as_nanos();
    match after.checked_duration_since(origin) {
        Some(since) => origin + periods(since.as_nanos() / period + 1),
        // Under a paused test clock a runtime's time can lie before the origin another
        // runtime set: the grid extends backwards.
        None => origin - periods((origin - after).as_nanos() / period),
    }
}

/// The first instant `offset` into a grid period strictly after `after` (`offset` is less
/// than a period).
pub fn next_tick_at(after: Instant, offset: Duration) -> Instant {
    let tick = next_tick(after) + offset;
    match tick.checked_sub(FRAME_PERIOD) {
        Some(earlier) if earlier > after => earlier,
        _ => tick,
    }
}

/// Where in the period the next RTP sender ticks. After the sessions' instant, so the frame
/// a session sends on a tick is queued by the time its bridge sends; and spread over three
/// instants, because a thousand calls' packets sent on one instant leave over several
/// milliseconds, in an order that changes from period to period, which a peer hears as
/// jitter.
pub fn sender_offset() -> Duration {
    const OFFSETS_MS: [u64; 3] = [5, 10, 15];
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % OFFSETS_MS.len();
    Duration::from_millis(OFFSETS_MS[n])
}

fn periods(n: u128) -> Duration {
    FRAME_PERIOD * u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(a: Instant, b: Instant) -> u128 {
        a.max(b).duration_since(a.min(b)).as_nanos() % FRAME_PERIOD.as_nanos()
    }

    #[test]
    fn ticks_of_different_calls_share_one_phase() {
        let now = Instant::now();
        let a = next_tick(now);
        let b = next_tick(now + Duration::from_micros(7_300));
        let c = next_tick(now - Duration::from_secs(3600));
        assert_eq!(offset(a, b), 0);
        assert_eq!(offset(a, c), 0);
    }

    #[test]
    fn the_next_tick_is_within_one_period() {
        let now = Instant::now() + Duration::from_millis(5);
        let tick = next_tick(now);
        assert!(tick > now && tick <= now + FRAME_PERIOD);
        assert_eq!(next_tick(tick), tick + FRAME_PERIOD);
        let before = Instant::now() - Duration::from_secs(10);
        let early = next_tick(before);
        assert!(early >= before && early < before + FRAME_PERIOD);
    }

    #[test]
    fn offset_ticks_keep_their_place_in_the_period_and_come_within_one_period() {
        let grid = next_tick(Instant::now());
        let phase = Duration::from_millis(5);
        for after_ms in [0, 3, 5, 6, 19, 20, 24, 25, 26] {
            let after = grid + Duration::from_millis(after_ms);
            let tick = next_tick_at(after, phase);
            assert!(
                tick > after && tick <= after + FRAME_PERIOD,
                "{after_ms} ms"
            );
            assert_eq!(offset(grid, tick), 5_000_000, "{after_ms} ms");
        }
    }

    #[test]
    fn senders_spread_over_three_instants_after_the_sessions() {
        let offsets: std::collections::BTreeSet<_> = (0..6).map(|_| sender_offset()).collect();
        assert_eq!(offsets.len(), 3);
        assert!(
            offsets
                .iter()
                .all(|o| *o > Duration::ZERO && *o < FRAME_PERIOD)
        );
    }
}
