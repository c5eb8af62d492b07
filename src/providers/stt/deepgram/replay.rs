//! The caller's audio not yet covered by a final result. A new connection is fed it again, so
//! a dropped connection loses no words; it is bounded, so a connection that never settles
//! anything cannot grow it forever.

use std::collections::VecDeque;

pub struct ReplayBuffer {
    samples: VecDeque<i16>,
    /// Stream position (samples since the call's first audio) of `samples[0]`.
    start: u64,
    limit: usize,
}

impl ReplayBuffer {
    pub fn new(limit: usize) -> Self {
        ReplayBuffer {
            samples: VecDeque::new(),
            start: 0,
            limit,
        }
    }

    /// Stream position of the oldest kept sample.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Stream position just past the newest sample.
    pub fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }

    /// Appends audio, forgetting the oldest beyond the limit.
    pub fn push(&mut self, pcm: &[i16]) {
        self.samples.extend(pcm);
        let excess = self.samples.len().saturating_sub(self.limit);
        self.drop_front(excess);
    }

    /// Forgets the audio before stream position `pos`: a final result covers it.
    pub fn settle_until(&mut self, pos: u64) {
        let covered = pos
            .saturating_sub(self.start)
            .min(self.samples.len() as u64);
        self.drop_front(covered as usize);
    }

    fn drop_front(&mut self, n: usize) {
        self.samples.drain(..n);
        self.start += n as u64;
    }

    /// The kept audio as little-endian linear16 messages of at most `chunk` samples.
    pub fn chunks(&self, chunk: usize) -> Vec<Vec<u8>> {
        let (a, b) = self.samples.as_slices();
        let mut out = Vec::new();
        let mut current = Vec::with_capacity(chunk * 2);
        for s in a.iter().chain(b) {
            current.extend_from_slice(&s.to_le_bytes());
            if current.len() == chunk * 2 {
                out.push(std::mem::replace(
                    &mut current,
                    Vec::with_capacity(chunk * 2),
                ));
            }
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

/// Linear16 little-endian bytes of `pcm`.
pub fn le_bytes(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_audio_is_dropped_and_positions_keep_counting() {
        let mut b = ReplayBuffer::new(100);
        b.push(&[1, 2, 3, 4]);
        b.settle_until(2);
        assert_eq!((b.start(), b.end()), (2, 4));
        assert_eq!(b.chunks(10), vec![le_bytes(&[3, 4])]);
        // Settling past the end only empties it.
        b.settle_until(99);
        assert_eq!((b.start(), b.end()), (4, 4));
        assert!(b.chunks(10).is_empty());
    }

    #[test]
    fn the_limit_drops_the_oldest() {
        let mut b = ReplayBuffer::new(3);
        b.push(&[1, 2, 3, 4, 5]);
        assert_eq!((b.start(), b.end()), (2, 5));
        assert_eq!(b.chunks(2), vec![le_bytes(&[3, 4]), le_bytes(&[5])]);
    }
}
