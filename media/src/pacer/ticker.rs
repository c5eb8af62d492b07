//! Decides how many 20 ms frames are due at a given time, so playout neither drifts (the
//! count follows elapsed time exactly however late or early each timer wake-up is) nor
//! bursts (after a long stall the ticker re-anchors instead of sending the backlog at once).

use crate::frame::FRAME_MS;

/// Frame slots a late wake-up may catch up on before the ticker gives up and re-anchors.
pub const MAX_CATCH_UP_FRAMES: u64 = 5;

/// Real-time frame clock; time is passed in as milliseconds on any monotonic scale.
#[derive(Debug, Clone)]
pub struct Ticker {
    start_ms: u64,
    emitted: u64,
    skipped: u64,
}

impl Ticker {
    /// A clock whose first frame is due `FRAME_MS` after `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Ticker {
            start_ms,
            emitted: 0,
            skipped: 0,
        }
    }

    /// Frames to send now: those whose slot has come since the last call. A wake-up more
    /// than `MAX_CATCH_UP_FRAMES` slots late sends that many and skips the rest.
    pub fn due(&mut self, now_ms: u64) -> u64 {
        let slots = now_ms.saturating_sub(self.start_ms) / u64::from(FRAME_MS);
        let owed = slots.saturating_sub(self.emitted + self.skipped);
        let send = owed.min(MAX_CATCH_UP_FRAMES);
        self.skipped += owed - send;
        self.emitted += send;
        send
    }

    /// Frames handed out so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Frame slots dropped after stalls (each is 20 ms the far end heard nothing new for).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// When the next frame falls due, for sleeping until then.
    pub fn next_due_ms(&self) -> u64 {
        self.start_ms + (self.emitted + self.skipped + 1) * u64::from(FRAME_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_minutes_of_jittery_wakeups_yield_exactly_elapsed_over_20ms_frames() {
        let start = 1_000_000;
        let mut ticker = Ticker::new(start);
        let mut sent = 0;
        let mut max_in_one_wakeup = 0;
        // Deterministic jitter: wake-ups land 0–37 ms after each nominal 20 ms tick.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for tick in 1..=30_000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let now = start + tick * 20 + seed % 38;
            let n = ticker.due(now);
            max_in_one_wakeup = max_in_one_wakeup.max(n);
            sent += n;
        }
        let end = start + 600_000;
        sent += ticker.due(end);
        assert_eq!(sent, 600_000 / 20);
        assert_eq!(ticker.skipped(), 0);
        assert!(max_in_one_wakeup <= 3, "burst of {max_in_one_wakeup}");
    }

    #[test]
    fn early_or_repeated_wakeups_send_nothing_and_time_going_back_is_harmless() {
        let mut ticker = Ticker::new(0);
        assert_eq!(ticker.due(19), 0);
        assert_eq!(ticker.due(20), 1);
        assert_eq!(ticker.due(20), 0);
        assert_eq!(ticker.due(5), 0);
        assert_eq!(ticker.next_due_ms(), 40);
    }

    #[test]
    fn a_long_stall_is_skipped_rather_than_burst() {
        let mut ticker = Ticker::new(0);
        assert_eq!(ticker.due(2_000), MAX_CATCH_UP_FRAMES);
        assert_eq!(ticker.skipped(), 100 - MAX_CATCH_UP_FRAMES);
        assert_eq!(ticker.due(2_020), 1);
        assert_eq!(ticker.emitted() + ticker.skipped(), 101);
    }
}
