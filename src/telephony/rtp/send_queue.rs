//! What the outbound RTP stream sends on each of the bridge's 20 ms ticks. The session sends
//! the agent's speech only, paced on the process's frame grid, ends each stretch of it with a
//! mark and rests between; an RTP peer, its NAT and a carrier's media timeout expect a packet
//! every 20 ms all call long. So the bridge, not the session, times the stream: the session's
//! frames wait here for the bridge's next tick (a few milliseconds after the session's, see
//! `frame_grid::sender_offset`), and a tick with no speech to send sends silence. One packet
//! a tick keeps the RTP timestamps with the clock and the arrival spacing even, and a mark is
//! reported once the frames before it have gone out. Sans-IO: time in milliseconds.

use std::collections::VecDeque;

use media::InternalFrame;

/// A stretch whose frames stopped this long without its mark (lost) is over.
const SPEECH_LAPSE_MS: u64 = 60;
/// A backlog this deep (the session caught up after a stall) drains two frames a tick.
const CATCH_UP_BACKLOG: usize = 2;

enum Queued {
    Frame(InternalFrame),
    Mark(String),
}

/// One thing for the bridge to do on a tick, in order.
pub enum Outgoing {
    /// The session's next frame.
    Frame(InternalFrame),
    /// A silence frame: the agent is quiet.
    Silence,
    /// The frames before this mark have gone out: report it to the session.
    Mark(String),
}

#[derive(Default)]
pub struct SendQueue {
    queue: VecDeque<Queued>,
    frames: usize,
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
        self.queue.push_back(Queued::Frame(frame));
        self.frames += 1;
        self.speaking = true;
        self.last_frame_ms = now_ms;
    }

    /// A mark of the session's. Returned when nothing waits before it: report it now.
    pub fn push_mark(&mut self, name: String) -> Option<String> {
        if self.queue.is_empty() {
            self.speaking = false;
            return Some(name);
        }
        self.queue.push_back(Queued::Mark(name));
        None
    }

    /// Barge-in (or the call went on hold): the frames not yet sent are dropped and the
    /// marks queued among them are handed back, to report at once.
    pub fn clear(&mut self) -> impl Iterator<Item = String> + '_ {
        self.frames = 0;
        self.speaking = false;
        self.queue.drain(..).filter_map(|item| match item {
            Queued::Mark(name) => Some(name),
            Queued::Frame(_) => None,
        })
    }

    /// A tick at `now_ms` begins: take what it sends with `next` until that returns `None`.
    pub fn start_tick(&mut self, now_ms: u64) {
        if self.speaking
            && self.frames == 0
            && now_ms.saturating_sub(self.last_frame_ms) >= SPEECH_LAPSE_MS
        {
            self.speaking = false;
        }
        self.allowance = if self.frames >= CATCH_UP_BACKLOG {
            2
        } else {
            1
        };
        self.sent = false;
    }

    /// The tick's next packet or mark. Marks go as soon as the frames before them have;
    /// a tick of a quiet agent sends one silence frame; a stretch whose next frame is late
    /// sends nothing (the frame follows on the next tick; silence would delay the rest).
    pub fn next(&mut self) -> Option<Outgoing> {
        match self.queue.front() {
            Some(Queued::Mark(_)) => {
                let Some(Queued::Mark(name)) = self.queue.pop_front() else {
                    unreachable!("the front is a mark")
                };
                if self.frames == 0 {
                    self.speaking = false;
                }
                Some(Outgoing::Mark(name))
            }
            Some(Queued::Frame(_)) if self.allowance > 0 => {
                let Some(Queued::Frame(frame)) = self.queue.pop_front() else {
                    unreachable!("the front is a frame")
                };
                self.frames -= 1;
                self.allowance -= 1;
                self.sent = true;
                Some(Outgoing::Frame(frame))
            }
            Some(Queued::Frame(_)) => None,
            None if !self.sent && !self.speaking => {
                self.sent = true;
                Some(Outgoing::Silence)
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(marker: i16) -> InternalFrame {
        let mut frame = InternalFrame::silence(media::INTERNAL_RATE);
        frame.samples_mut()[0] = marker;
        frame
    }

    /// What a tick at `now` sends: frames by their marker sample, silence as 0, marks by name.
    fn tick(queue: &mut SendQueue, now: u64) -> Vec<String> {
        queue.start_tick(now);
        std::iter::from_fn(|| queue.next())
            .map(|out| match out {
                Outgoing::Frame(f) => f.samples()[0].to_string(),
                Outgoing::Silence => "0".into(),
                Outgoing::Mark(name) => name,
            })
            .collect()
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
                assert_eq!(queue.push_mark("end".into()), None);
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
        assert_eq!(queue.push_mark("m".into()).as_deref(), Some("m"));
        queue.push_frame(frame(1), 0);
        assert_eq!(tick(&mut queue, 10), ["1"]);
        assert_eq!(queue.push_mark("n".into()).as_deref(), Some("n"));
    }

    #[test]
    fn clear_drops_the_frames_and_hands_back_their_marks() {
        let mut queue = SendQueue::default();
        queue.push_frame(frame(1), 0);
        assert_eq!(queue.push_mark("a".into()), None);
        queue.push_frame(frame(2), 0);
        assert_eq!(queue.push_mark("b".into()), None);
        assert_eq!(queue.clear().collect::<Vec<_>>(), ["a", "b"]);
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
                    let _ = queue.push_mark("end".into());
                }
            }
            let sent = tick(&mut queue, n * 20);
            packets += sent.iter().filter(|s| *s != "end").count();
            assert!(!sent.is_empty(), "tick {n}");
        }
        assert_eq!(packets, 500);
    }
}
