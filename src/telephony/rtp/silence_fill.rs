//! Keeps the outbound RTP stream steady while the session sends nothing. The session sends
//! the agent's speech only, ends each stretch of it with a mark, and rests between; an RTP
//! peer, its NAT and a carrier's media timeout expect a packet every 20 ms all call long, so
//! between stretches the bridge sends silence on its own playout tick. Sans-IO: the bridge
//! reports its ticks and what it sent, with the time in milliseconds.

/// Closer than this after the session's last frame, a tick sends nothing: that period has
/// its packet. (Silence after silence keeps to the ticks, late ones included.)
const MIN_SPACING_MS: u64 = 10;
/// A stretch whose frames stopped this long without its mark (lost) is over.
const SPEECH_LAPSE_MS: u64 = 60;
/// How far the packet count may run ahead of or behind the ticks before it is forgiven.
const MAX_DRIFT: i32 = 2;

#[derive(Debug, Default)]
pub struct SilenceFill {
    /// Between the session's first frame of a stretch and its mark.
    speaking: bool,
    /// Ticks minus packets sent: a stretch that started between two ticks put a packet ahead,
    /// and the silence after it waits a period so the RTP timestamps keep to the clock.
    owed: i32,
    last_frame_ms: Option<u64>,
}

impl SilenceFill {
    /// A 20 ms tick at `now_ms`; `true` when a silence frame is to go out now.
    pub fn on_tick(&mut self, now_ms: u64) -> bool {
        self.owed = (self.owed + 1).min(MAX_DRIFT);
        let since = self.last_frame_ms.map(|at| now_ms.saturating_sub(at));
        if self.speaking && since.is_some_and(|s| s >= SPEECH_LAPSE_MS) {
            self.speaking = false;
        }
        !self.speaking && self.owed > 0 && since.is_none_or(|s| s >= MIN_SPACING_MS)
    }

    /// A frame of the session's went out.
    pub fn on_frame(&mut self, now_ms: u64) {
        self.speaking = true;
        self.last_frame_ms = Some(now_ms);
        self.sent();
    }

    /// The silence `on_tick` asked for went out.
    pub fn on_silence(&mut self) {
        self.sent();
    }

    /// The session's stretch of speech ended (its mark): silence from the next tick on.
    pub fn on_stretch_end(&mut self) {
        self.speaking = false;
    }

    fn sent(&mut self) {
        self.owed = (self.owed - 1).max(-MAX_DRIFT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives ticks at 0, 20, 40 … ms; `session(tick)` says whether the session's frame goes
    /// out then, `Some(offset)` ms after the tick (negative: just before it), and `stretch_end`
    /// whether its mark follows. Returns the send times of every packet.
    fn run(ticks: u64, session: impl Fn(u64) -> Option<(i64, bool)>) -> Vec<u64> {
        let mut fill = SilenceFill::default();
        let mut sent = Vec::new();
        for n in 0..ticks {
            let tick = n * 20 + 100;
            let frame = session(n);
            let session_sends = |fill: &mut SilenceFill, sent: &mut Vec<u64>| {
                if let Some((offset, end)) = frame {
                    let at = tick.saturating_add_signed(offset);
                    fill.on_frame(at);
                    sent.push(at);
                    if end {
                        fill.on_stretch_end();
                    }
                }
            };
            if frame.is_some_and(|(offset, _)| offset < 0) {
                session_sends(&mut fill, &mut sent);
            }
            if fill.on_tick(tick) {
                fill.on_silence();
                sent.push(tick);
            }
            if frame.is_some_and(|(offset, _)| offset >= 0) {
                session_sends(&mut fill, &mut sent);
            }
        }
        sent
    }

    fn largest_gap(sent: &[u64]) -> u64 {
        sent.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
    }

    #[test]
    fn a_quiet_session_gets_a_silence_frame_every_tick() {
        let sent = run(100, |_| None);
        assert_eq!(sent.len(), 100);
        assert_eq!(largest_gap(&sent), 20);
    }

    #[test]
    fn stretches_of_speech_and_silence_make_one_steady_stream_whichever_comes_first() {
        for offset in [-2, 0, 3] {
            // Speech on ticks 10..40 and 60..61, resuming 7 ms after a tick, then on the grid.
            let sent = run(200, |n| match n {
                10 => Some((7, false)),
                11..40 => Some((offset, n == 39)),
                60 => Some((7, true)),
                _ => None,
            });
            // A stretch that starts between two ticks puts its first packet beside the
            // period's silence, and the silence after the stretch skips a period for it.
            assert!(largest_gap(&sent) <= 47, "offset {offset}: {sent:?}");
            // One packet a period: the RTP timestamps stay with the clock.
            assert!(
                (199..=201).contains(&sent.len()),
                "offset {offset}: {}",
                sent.len()
            );
        }
    }

    #[test]
    fn silence_keeps_one_packet_a_tick_when_ticks_come_late_and_catch_up() {
        let mut fill = SilenceFill::default();
        let mut sent = 0;
        for n in 0..100u64 {
            // Every fifth tick 15 ms late, the next one on time right behind it.
            let late = if n % 5 == 2 { 15 } else { 0 };
            if fill.on_tick(n * 20 + late) {
                fill.on_silence();
                sent += 1;
            }
        }
        assert_eq!(sent, 100);
    }

    #[test]
    fn speech_whose_mark_is_lost_gives_way_to_silence() {
        let sent = run(60, |n| (10..20).contains(&n).then_some((0, false)));
        assert!(largest_gap(&sent) <= 80, "{sent:?}");
        assert!(sent.len() >= 56);
    }

    #[test]
    fn a_session_that_stalls_and_catches_up_is_not_filled_and_keeps_the_count() {
        let mut fill = SilenceFill::default();
        let mut sent = 0;
        for n in 0..300u64 {
            let tick = n * 20;
            // Speaking throughout, but every tenth frame comes two periods late, with the
            // next one right behind it.
            if n % 10 != 5 {
                fill.on_frame(tick);
                sent += 1;
                if n % 10 == 7 {
                    fill.on_frame(tick + 1);
                    sent += 1;
                }
            }
            if fill.on_tick(tick) {
                fill.on_silence();
                sent += 1;
            }
        }
        assert_eq!(sent, 300);
    }
}
