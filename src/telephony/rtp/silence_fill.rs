//! Keeps the outbound RTP stream steady while the session sends nothing. The session sends
//! the agent's speech only (a frame per 20 ms while it talks) and rests otherwise; an RTP peer,
//! its NAT and a carrier's media timeout expect a packet every 20 ms all call long, so the
//! bridge fills the quiet periods with silence on its own playout tick. Sans-IO: the bridge
//! reports its ticks and the frames it sent.

/// Frames the stream owes the clock: the bridge's ticks minus the frames it sent.
#[derive(Debug, Default)]
pub struct SilenceFill {
    owed: i32,
}

impl SilenceFill {
    /// A 20 ms tick; `true` when a silence frame is to go out now: no frame came in the whole
    /// period before this one. A session frame due at the same instant as the tick may come
    /// just before or just after it, so one period of slack keeps silence out of speech.
    pub fn on_tick(&mut self) -> bool {
        self.owed += 1;
        if self.owed < 2 {
            return false;
        }
        self.owed -= 1;
        true
    }

    /// The session's frame went out. A burst (a session catching up after a stall, or the
    /// frame that starts speech at once) counts for one period ahead at most.
    pub fn on_frame(&mut self) {
        self.owed = (self.owed - 1).max(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_session_gets_one_silence_frame_per_tick_after_a_period_of_slack() {
        let mut fill = SilenceFill::default();
        assert!(!fill.on_tick(), "the first period may still bring a frame");
        assert!((0..50).all(|_| fill.on_tick()));
    }

    #[test]
    fn speech_on_the_tick_in_either_order_gets_no_silence_between_its_frames() {
        let mut fill = SilenceFill::default();
        for n in 0..200 {
            // The session's frame and the tick share an instant; either may come first.
            if n % 3 == 0 {
                fill.on_frame();
                assert!(!fill.on_tick(), "tick {n}");
            } else {
                assert!(!fill.on_tick(), "tick {n}");
                fill.on_frame();
            }
        }
    }

    #[test]
    fn speech_after_silence_takes_over_without_a_doubled_frame() {
        let mut fill = SilenceFill::default();
        fill.on_tick();
        assert!(fill.on_tick() && fill.on_tick(), "quiet: silence");
        // Speech starts at once between ticks, then follows the grid.
        fill.on_frame();
        for _ in 0..50 {
            fill.on_frame();
            assert!(!fill.on_tick());
        }
        // The session rests again: silence once a whole period passed without a frame.
        assert!(!fill.on_tick());
        assert!(fill.on_tick());
    }

    #[test]
    fn a_late_frame_is_covered_once_and_a_catch_up_burst_is_not_remembered() {
        let mut fill = SilenceFill::default();
        for _ in 0..10 {
            fill.on_frame();
            fill.on_tick();
        }
        // The session stalls two periods, then bursts the three frames it owes.
        assert!(!fill.on_tick());
        assert!(fill.on_tick(), "a whole period without a frame is filled");
        (0..3).for_each(|_| fill.on_frame());
        // Steady again: neither silence nor a backlog that would hold silence back later.
        for _ in 0..10 {
            assert!(!fill.on_tick());
            fill.on_frame();
        }
        assert!(!fill.on_tick() && !fill.on_tick());
        assert!(
            fill.on_tick(),
            "silence by the third tick after the last frame"
        );
    }
}
