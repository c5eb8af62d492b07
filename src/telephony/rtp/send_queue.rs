//! What the outbound RTP stream sends on each of the bridge's 20 ms ticks. The session sends
//! the agent's speech only, paced on the process's frame grid, ends each stretch of it with a
//! mark and rests between; an RTP peer, its NAT and a carrier's media timeout expect a packet
//! every 20 ms all call long. So the bridge, not the session, times the stream: the session's
//! frames wait here for the bridge's next tick (a few milliseconds after the session's, see
//! `frame_grid::sender_offset`), and a tick with no speech to send sends silence. One packet
//! a tick keeps the RTP timestamps with the clock and the arrival spacing even, and a mark is
//! reported once the frames before it have gone out. Sans-IO: time in milliseconds.

use std::collections::VecDeque;

use media::{INTERNAL_RATE, InternalFrame};

/// A stretch whose frames stopped this long without its mark (lost) is over.
const SPEECH_LAPSE_MS: u64 = 60;
/// A backlog this deep (the session caught up after a stall) drains two frames a tick.
const CATCH_UP_BACKLOG: usize = 2;

#[derive(Default)]
pub struct SendQueue {
    frames: VecDeque<InternalFrame>,
    /// Marks, each with the count of frames taken (sent or dropped) that it waits for.
    marks: VecDeque<(u64, String)>,
    taken: u64,
    /// Between a stretch's first frame and its mark.
    speaking: bool,
    last_frame_ms: u64,
    /// Frames this tick may still send.
    allowance: usize,
    /// Whether this tick has sent a packet (a frame or silence).
    sent: bool,
}

impl SendQueue {
    /// A frame of the session's, to go out on a coming tick.
    pub fn push_frame(&mut self, frame: InternalFrame, now_ms: u64) {
        self.frames.push_back(frame);
        self.speaking = true;
        self.last_frame_ms = now_ms;
    }

    /// A mark of the session's: due (`due_marks`) once the frames before it have gone out.
    pub fn push_mark(&mut self, name: String) {
        let after = self.taken + self.frames.len() as u64;
        self.marks.push_back((after, name));
    }

    /// Marks whose frames have gone out (or were dropped), in order: report them now.
    pub fn due_marks(&mut self) -> impl Iterator<Item = String> + '_ {
        std::iter::from_fn(|| {
            let (after, _) = self.marks.front()?;
            if *after > self.taken {
                return None;
            }
            if self.frames.is_empty() {
                // The stretch is over: silence from the next tick on.
                self.speaking = false;
            }
            self.marks.pop_front().map(|(_, name)| name)
        })
    }

    /// Barge-in (or the call went on hold): the frames not yet sent are dropped, and the
    /// marks among them fall due.
    pub fn clear(&mut self) {
        self.taken += self.frames.len() as u64;
        self.frames.clear();
        self.speaking = false;
    }

    /// A tick at `now_ms` begins: send what `pop_frame` gives (with the marks that fall
    /// due after each) until it gives nothing.
    pub fn start_tick(&mut self, now_ms: u64) {
        if self.speaking
            && self.frames.is_empty()
            && now_ms.saturating_sub(self.last_frame_ms) >= SPEECH_LAPSE_MS
        {
            self.speaking = false;
        }
        self.allowance = if self.frames.len() >= CATCH_UP_BACKLOG {
            2
        } else {
            1
        };
        self.sent = false;
    }

    /// The tick's next frame: the session's, or one of silence when the agent is quiet. A
    /// stretch whose next frame is late sends nothing (the frame follows on the next tick;
    /// silence in its place would delay the rest of the stretch).
    pub fn pop_frame(&mut self) -> Option<InternalFrame> {
        if self.allowance > 0
            && let Some(frame) = self.frames.pop_front()
        {
            self.taken += 1;
            self.allowance -= 1;
            self.sent = true;
            return Some(frame);
        }
        if self.sent || self.speaking || !self.frames.is_empty() {
            return None;
        }
        self.sent = true;
        Some(InternalFrame::silence(INTERNAL_RATE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(marker: i16) -> InternalFrame {
        let mut frame = InternalFrame::silence(INTERNAL_RATE);
        frame.samples_mut()[0] = marker;
        frame
    }

    /// What a tick at `now` sends, as the bridge takes it: frames by their marker sample
    /// (silence is 0), and marks by name as they fall due.
    fn tick(queue: &mut SendQueue, now: u64) -> Vec<String> {
        queue.start_tick(now);
        let mut sent: Vec<String> = queue.due_marks().collect();
        while let Some(frame) = queue.pop_frame() {
            sent.push(frame.samples()[0].to_string());
            sent.extend(queue.due_marks());
        }
        sent
    }

    fn mark(queue: &mut SendQueue, name: &str) -> Vec<String> {
        queue.push_mark(name.into());
        queue.due_marks().collect()
    }

    #[test]
    fn a_quiet_agent_gets_one_silence_frame_a_tick() {
        let mut queue = SendQueue::default();
        for n in 0..50 {
            assert_eq!(tick(&mut queue, n * 20), ["0"]);
        }
    }

    #[test]
    fn speech_takes_the_place_of_silence_a_frame_a_tick_and_its_mark_follows_its_last_frame() {
        let mut queue = SendQueue::default();
        assert_eq!(tick(&mut queue, 0), ["0"]);
        // The session's frames come 10 ms before each of the bridge's ticks.
        for n in 1..=3 {
            queue.push_frame(frame(n as i16), n * 20 - 10);
            if n == 3 {
                assert!(mark(&mut queue, "end").is_empty());
            }
            let sent = tick(&mut queue, n * 20);
            assert_eq!(sent[0], n.to_string());
            assert_eq!(sent.len(), if n == 3 { 2 } else { 1 });
        }
        assert_eq!(tick(&mut queue, 60), ["0"]);
    }

    #[test]
    fn a_late_frame_leaves_its_tick_empty_instead_of_putting_silence_in_the_speech() {
        let mut queue = SendQueue::default();
        queue.push_frame(frame(1), 0);
        assert_eq!(tick(&mut queue, 10), ["1"]);
        assert!(tick(&mut queue, 30).is_empty());
        queue.push_frame(frame(2), 35);
        queue.push_frame(frame(3), 40);
        // Two behind: the next tick catches up.
        assert_eq!(tick(&mut queue, 50), ["2", "3"]);
    }

    #[test]
    fn a_stretch_whose_mark_is_lost_gives_way_to_silence() {
        let mut queue = SendQueue::default();
        queue.push_frame(frame(1), 0);
        assert_eq!(tick(&mut queue, 10), ["1"]);
        assert!(tick(&mut queue, 30).is_empty());
        assert!(tick(&mut queue, 50).is_empty());
        assert_eq!(tick(&mut queue, 70), ["0"]);
    }

    #[test]
    fn a_burst_drains_at_two_frames_a_tick_and_never_sends_silence_between() {
        let mut queue = SendQueue::default();
        for n in 1..=5 {
            queue.push_frame(frame(n), 0);
        }
        assert_eq!(tick(&mut queue, 10), ["1", "2"]);
        assert_eq!(tick(&mut queue, 30), ["3", "4"]);
        assert_eq!(tick(&mut queue, 50), ["5"]);
    }

    #[test]
    fn a_mark_with_nothing_before_it_is_reported_at_once() {
        let mut queue = SendQueue::default();
        assert_eq!(mark(&mut queue, "m"), ["m"]);
        queue.push_frame(frame(1), 0);
        assert_eq!(tick(&mut queue, 10), ["1"]);
        assert_eq!(mark(&mut queue, "n"), ["n"]);
    }

    #[test]
    fn clear_drops_the_frames_and_hands_back_their_marks() {
        let mut queue = SendQueue::default();
        queue.push_frame(frame(1), 0);
        assert!(mark(&mut queue, "a").is_empty());
        queue.push_frame(frame(2), 0);
        assert!(mark(&mut queue, "b").is_empty());
        queue.clear();
        assert_eq!(queue.due_marks().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(tick(&mut queue, 10), ["0"]);
    }

    #[test]
    fn a_steady_stretch_sends_exactly_one_packet_a_tick_from_first_frame_to_mark() {
        let mut queue = SendQueue::default();
        let mut packets = 0;
        for n in 0..500u64 {
            // Speech from tick 100 to 399, each frame 1..19 ms before the bridge's tick.
            if (100..400).contains(&n) {
                queue.push_frame(frame(1), n * 20 - 1 - n % 19);
                if n == 399 {
                    assert!(mark(&mut queue, "end").is_empty());
                }
            }
            let sent = tick(&mut queue, n * 20);
            packets += sent.iter().filter(|s| *s != "end").count();
            assert!(!sent.is_empty(), "tick {n}");
        }
        assert_eq!(packets, 500);
    }
}
