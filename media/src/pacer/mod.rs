//! Playout pacer: the queue of agent audio (16 kHz) that yields exactly one 20 ms frame per
//! tick, padding with silence when empty, with marks that fire once the audio queued before
//! them has been played, and `clear()` for barge-in.
//!
//! The queue is a ring that starts at `INITIAL_SECONDS` and doubles when a push needs more, up
//! to its capacity (pushing past that is an error): a minute preallocated was 1.9 MB per call,
//! while a call rarely queues more than a sentence or two. Frames never allocate; only a push
//! can, a handful of times per call. Pair it with `Ticker` to know how many frames are due.

mod marks;
mod ticker;

pub use marks::{MAX_MARKS, MarkList};
pub use ticker::{MAX_CATCH_UP_FRAMES, Ticker};

use thiserror::Error;

use crate::frame::{Frame, INTERNAL_RATE};

/// Default queue capacity: a minute of audio.
pub const DEFAULT_CAPACITY_SECONDS: u32 = 60;
/// What the ring holds before its first growth.
const INITIAL_SECONDS: u32 = 2;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PacerError {
    #[error("pacer queue full: {queued} samples queued, {pushed} more would exceed {capacity}")]
    Full {
        queued: usize,
        pushed: usize,
        capacity: usize,
    },
    #[error("too many pending marks (at most {MAX_MARKS})")]
    TooManyMarks,
}

/// What `clear()` threw away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleared {
    /// Queued samples that were never played.
    pub dropped_samples: usize,
    /// Marks whose audio was never fully played, in placement order.
    pub unfired_marks: MarkList,
}

#[derive(Debug, Clone, Copy)]
struct PendingMark {
    id: u64,
    // Absolute sample position (in `pushed` units) the mark sits after.
    at: u64,
}

/// Agent audio queue paced out one 20 ms, 16 kHz frame at a time.
pub struct Pacer {
    ring: Vec<i16>,
    /// Samples the ring may grow to.
    capacity: usize,
    // Absolute counts of samples ever pushed and ever played; their difference is queued.
    pushed: u64,
    played: u64,
    marks: [PendingMark; MAX_MARKS],
    mark_head: usize,
    mark_len: usize,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pacer {
    /// A pacer holding up to `DEFAULT_CAPACITY_SECONDS` of audio.
    pub fn new() -> Self {
        Self::with_capacity_seconds(DEFAULT_CAPACITY_SECONDS)
    }

    /// A pacer holding up to `seconds` of 16 kHz audio.
    pub fn with_capacity_seconds(seconds: u32) -> Self {
        let seconds = seconds.max(1);
        Pacer {
            ring: vec![0; (INTERNAL_RATE * seconds.min(INITIAL_SECONDS)) as usize],
            capacity: (INTERNAL_RATE * seconds) as usize,
            pushed: 0,
            played: 0,
            marks: [PendingMark { id: 0, at: 0 }; MAX_MARKS],
            mark_head: 0,
            mark_len: 0,
        }
    }

    /// Samples the queue can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Samples waiting to be played.
    pub fn queued(&self) -> usize {
        (self.pushed - self.played) as usize
    }

    /// Whether no audio is waiting (marks may still be pending on an empty queue).
    pub fn is_empty(&self) -> bool {
        self.pushed == self.played
    }

    /// Whether nothing is waiting: no audio and no mark.
    pub fn is_idle(&self) -> bool {
        self.is_empty() && self.mark_len == 0
    }

    /// Audio samples (not padding silence) played since the pacer was made.
    pub fn played_samples(&self) -> u64 {
        self.played
    }

    /// Queues 16 kHz agent audio. All or nothing: a push that does not fit is refused whole.
    pub fn push(&mut self, pcm: &[i16]) -> Result<(), PacerError> {
        let needed = self.queued() + pcm.len();
        if needed > self.capacity {
            return Err(PacerError::Full {
                queued: self.queued(),
                pushed: pcm.len(),
                capacity: self.capacity,
            });
        }
        if needed > self.ring.len() {
            self.grow(needed);
        }
        let capacity = self.ring.len();
        let start = (self.pushed % capacity as u64) as usize;
        let first = pcm.len().min(capacity - start);
        self.ring[start..start + first].copy_from_slice(&pcm[..first]);
        self.ring[..pcm.len() - first].copy_from_slice(&pcm[first..]);
        self.pushed += pcm.len() as u64;
        Ok(())
    }

    /// Reallocates the ring to hold at least `needed` samples, moving the queued audio to the
    /// slots its absolute positions map to in the larger ring.
    fn grow(&mut self, needed: usize) {
        let size = (self.ring.len() * 2).max(needed).min(self.capacity);
        let mut ring = vec![0; size];
        let (old, new) = (self.ring.len() as u64, size as u64);
        for at in self.played..self.pushed {
            ring[(at % new) as usize] = self.ring[(at % old) as usize];
        }
        self.ring = ring;
    }

    /// Places a mark after everything queued so far; it fires from `next_frame` once that
    /// audio has been played (at the next frame if the queue is empty).
    pub fn mark(&mut self, id: u64) -> Result<(), PacerError> {
        if self.mark_len == MAX_MARKS {
            return Err(PacerError::TooManyMarks);
        }
        let slot = (self.mark_head + self.mark_len) % MAX_MARKS;
        self.marks[slot] = PendingMark {
            id,
            at: self.pushed,
        };
        self.mark_len += 1;
        Ok(())
    }

    /// The next 20 ms frame (queued audio, then silence) and the marks it completes.
    pub fn next_frame(&mut self) -> (Frame, MarkList) {
        let mut frame = Frame::silence(INTERNAL_RATE);
        let out = frame.samples_mut();
        let take = out.len().min(self.queued());
        let capacity = self.ring.len();
        let start = (self.played % capacity as u64) as usize;
        let first = take.min(capacity - start);
        out[..first].copy_from_slice(&self.ring[start..start + first]);
        out[first..take].copy_from_slice(&self.ring[..take - first]);
        self.played += take as u64;

        let mut fired = MarkList::default();
        while self.mark_len > 0 && self.marks[self.mark_head].at <= self.played {
            fired.push(self.marks[self.mark_head].id);
            self.mark_head = (self.mark_head + 1) % MAX_MARKS;
            self.mark_len -= 1;
        }
        (frame, fired)
    }

    /// Drops all queued audio and pending marks (barge-in) and says what was lost.
    pub fn clear(&mut self) -> Cleared {
        let dropped_samples = self.queued();
        let mut unfired_marks = MarkList::default();
        for i in 0..self.mark_len {
            unfired_marks.push(self.marks[(self.mark_head + i) % MAX_MARKS].id);
        }
        // Forget the dropped audio by counting it as pushed-but-skipped: move `pushed` back.
        self.pushed = self.played;
        self.mark_head = 0;
        self.mark_len = 0;
        Cleared {
            dropped_samples,
            unfired_marks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 320;

    fn ramp(len: usize, from: i16) -> Vec<i16> {
        (0..len).map(|i| from.wrapping_add(i as i16)).collect()
    }

    #[test]
    fn audio_comes_out_in_order_then_silence() {
        let mut pacer = Pacer::with_capacity_seconds(1);
        let audio = ramp(500, 1);
        pacer.push(&audio).unwrap();
        let (a, _) = pacer.next_frame();
        assert_eq!(a.samples(), &audio[..FRAME]);
        let (b, _) = pacer.next_frame();
        assert_eq!(&b.samples()[..180], &audio[FRAME..]);
        assert!(b.samples()[180..].iter().all(|&s| s == 0));
        assert!(pacer.is_empty());
        let (c, marks) = pacer.next_frame();
        assert!(c.samples().iter().all(|&s| s == 0));
        assert!(marks.is_empty());
        assert_eq!(pacer.played_samples(), 500);
    }

    #[test]
    fn marks_fire_when_the_audio_before_them_has_played() {
        let mut pacer = Pacer::new();
        pacer.push(&ramp(FRAME + 10, 1)).unwrap();
        pacer.mark(7).unwrap();
        pacer.push(&ramp(FRAME, 1)).unwrap();
        pacer.mark(8).unwrap();
        assert!(pacer.next_frame().1.is_empty());
        assert_eq!(pacer.next_frame().1.as_slice(), &[7]);
        assert_eq!(pacer.next_frame().1.as_slice(), &[8]);
        // A mark on an empty queue fires with the next frame.
        pacer.mark(9).unwrap();
        assert_eq!(pacer.next_frame().1.as_slice(), &[9]);
    }

    #[test]
    fn clear_reports_what_the_caller_never_heard() {
        let mut pacer = Pacer::new();
        pacer.push(&ramp(1_000, 1)).unwrap();
        pacer.mark(1).unwrap();
        pacer.push(&ramp(1_000, 1)).unwrap();
        pacer.mark(2).unwrap();
        pacer.next_frame();
        let cleared = pacer.clear();
        assert_eq!(cleared.dropped_samples, 2_000 - FRAME);
        assert_eq!(cleared.unfired_marks.as_slice(), &[1, 2]);
        assert!(pacer.is_empty());
        assert_eq!(pacer.played_samples(), FRAME as u64);
        // New audio after a clear plays at once.
        pacer.push(&[42; FRAME]).unwrap();
        assert_eq!(pacer.next_frame().0.samples(), &[42; FRAME]);
    }

    #[test]
    fn pushing_past_capacity_is_refused_whole() {
        let mut pacer = Pacer::with_capacity_seconds(1);
        pacer.push(&vec![1; 15_000]).unwrap();
        assert_eq!(
            pacer.push(&[2; 1_001]),
            Err(PacerError::Full {
                queued: 15_000,
                pushed: 1_001,
                capacity: 16_000
            })
        );
        assert_eq!(pacer.queued(), 15_000);
        pacer.push(&[2; 1_000]).unwrap();
        assert_eq!(pacer.queued(), 16_000);
    }

    #[test]
    fn the_ring_grows_while_audio_is_queued_and_wrapped() {
        let mut pacer = Pacer::with_capacity_seconds(10);
        assert_eq!(pacer.ring.len(), 2 * 16_000);
        // Wrap the small ring first, so the growth has to unwrap queued audio.
        pacer.push(&ramp(30_000, 0)).unwrap();
        for _ in 0..90 {
            pacer.next_frame();
        }
        let mut expected: Vec<i16> = ramp(30_000, 0)[90 * FRAME..].to_vec();
        let wrapping = ramp(20_000, 3);
        pacer.push(&wrapping).unwrap();
        assert_eq!(
            pacer.ring.len(),
            2 * 16_000,
            "fits without growing, wrapped"
        );
        expected.extend_from_slice(&wrapping);
        let more = ramp(100_000, 7);
        pacer.push(&more).unwrap();
        assert!(pacer.ring.len() >= pacer.queued());
        expected.extend_from_slice(&more);
        let mut out = Vec::new();
        while !pacer.is_empty() {
            out.extend_from_slice(pacer.next_frame().0.samples());
        }
        assert_eq!(&out[..expected.len()], &expected[..]);
        assert_eq!(
            pacer.push(&vec![0; 160_001]),
            Err(PacerError::Full {
                queued: 0,
                pushed: 160_001,
                capacity: 160_000
            })
        );
    }

    #[test]
    fn the_ring_wraps_without_losing_samples() {
        let mut pacer = Pacer::with_capacity_seconds(1);
        let mut expected = Vec::new();
        let mut got = Vec::new();
        // Push in odd-sized chunks that straddle the ring's end many times.
        for round in 0..200 {
            let chunk = ramp(777, (round * 13) as i16);
            pacer.push(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
            while pacer.queued() >= FRAME {
                got.extend_from_slice(pacer.next_frame().0.samples());
            }
        }
        assert_eq!(got, expected[..got.len()]);
    }

    #[test]
    fn too_many_pending_marks_is_an_error() {
        let mut pacer = Pacer::new();
        for id in 0..MAX_MARKS as u64 {
            pacer.mark(id).unwrap();
        }
        assert_eq!(pacer.mark(99), Err(PacerError::TooManyMarks));
        assert_eq!(pacer.next_frame().1.len(), MAX_MARKS);
    }

    #[test]
    fn a_ten_minute_call_plays_every_sample_exactly_once_at_20_ms_pace() {
        let mut pacer = Pacer::new();
        let mut ticker = Ticker::new(0);
        let mut frames = 0u64;
        let mut seed: u64 = 12345;
        let mut next_mark = 0u64;
        let mut fired = 0u64;
        // Agent audio arrives in 1 s bursts every 3 s; wake-ups are jittery.
        for tick in 1..=30_000u64 {
            if tick % 150 == 1 {
                pacer.push(&[1; 16_000]).unwrap();
                pacer.mark(next_mark).unwrap();
                next_mark += 1;
            }
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let now = tick * 20 + (seed >> 33) % 15;
            for _ in 0..ticker.due(now) {
                let (_, marks) = pacer.next_frame();
                fired += marks.len() as u64;
                frames += 1;
            }
        }
        frames += ticker.due(600_000);
        assert_eq!(frames, 30_000);
        assert_eq!(pacer.played_samples(), 200 * 16_000);
        assert_eq!(fired, next_mark);
    }
}
