//! Wrap-around arithmetic for RTP's 16-bit sequence numbers and 32-bit timestamps.

/// Signed distance from `a` to `b` in 16-bit sequence space (positive: `b` is newer).
pub fn seq_delta(a: u16, b: u16) -> i32 {
    i32::from(b.wrapping_sub(a) as i16)
}

/// Signed distance from `a` to `b` in 32-bit timestamp space (positive: `b` is later).
pub fn ts_delta(a: u32, b: u32) -> i64 {
    i64::from(b.wrapping_sub(a) as i32)
}

/// Extends 16-bit sequence numbers to 64 bits across wrap-arounds (RFC 3550 A.1 style):
/// each value is placed nearest to the highest one seen so far.
#[derive(Debug, Clone, Default)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    /// The extended sequence number of `seq`; old packets get values below the highest.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Start one cycle up so packets slightly older than the first still fit.
            let first = (1u64 << 16) + u64::from(seq);
            self.highest = Some(first);
            return first;
        };
        let delta = seq_delta(highest as u16, seq);
        let extended = (highest as i64 + i64::from(delta)).max(0) as u64;
        if extended > highest {
            self.highest = Some(extended);
        }
        extended
    }

    /// The highest extended sequence number seen.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

/// Extends 32-bit RTP timestamps to 64 bits across wrap-arounds.
#[derive(Debug, Clone, Default)]
pub struct TimestampUnwrapper {
    latest: Option<u64>,
}

impl TimestampUnwrapper {
    /// The extended timestamp of `ts`, placed nearest to the latest one seen.
    pub fn unwrap(&mut self, ts: u32) -> u64 {
        let Some(latest) = self.latest else {
            let first = (1u64 << 32) + u64::from(ts);
            self.latest = Some(first);
            return first;
        };
        let delta = ts_delta(latest as u32, ts);
        let extended = (latest as i64 + delta).max(0) as u64;
        if extended > latest {
            self.latest = Some(extended);
        }
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sequence_numbers_continue_across_the_wrap() {
        let mut u = SeqUnwrapper::default();
        let a = u.unwrap(65_534);
        assert_eq!(u.unwrap(65_535), a + 1);
        assert_eq!(u.unwrap(0), a + 2);
        assert_eq!(u.unwrap(1), a + 3);
        // A straggler from before the wrap lands where it belongs.
        assert_eq!(u.unwrap(65_535), a + 1);
        assert_eq!(u.highest(), Some(a + 3));
    }

    #[test]
    fn timestamps_continue_across_the_wrap() {
        let mut u = TimestampUnwrapper::default();
        let a = u.unwrap(u32::MAX - 79);
        assert_eq!(u.unwrap(80), a + 160);
        assert_eq!(u.unwrap(u32::MAX - 239), a - 160);
    }

    proptest! {
        #[test]
        fn seq_delta_matches_true_distance(start: u16, step in -32_767i32..=32_767) {
            let b = (i32::from(start) + step).rem_euclid(65_536) as u16;
            prop_assert_eq!(seq_delta(start, b), step);
        }

        #[test]
        fn ts_delta_matches_true_distance(start: u32, step in -(i32::MAX as i64)..=i32::MAX as i64) {
            let b = (i64::from(start) + step).rem_euclid(1 << 32) as u32;
            prop_assert_eq!(ts_delta(start, b), step);
        }

        #[test]
        fn unwrapped_sequence_tracks_a_long_stream_with_reordering(
            start: u16,
            steps in proptest::collection::vec(1u64..=3, 1..3_000),
            swaps in proptest::collection::vec(any::<prop::sample::Index>(), 0..50),
        ) {
            // True extended numbers, then locally reordered (as a network would).
            let mut truth = Vec::with_capacity(steps.len());
            let mut n = u64::from(start);
            for s in &steps {
                n += s;
                truth.push(n);
            }
            let mut arrival = truth.clone();
            for ix in swaps {
                let i = ix.index(arrival.len());
                if i + 1 < arrival.len() {
                    arrival.swap(i, i + 1);
                }
            }
            let mut u = SeqUnwrapper::default();
            let base = u.unwrap(arrival[0] as u16) as i64 - arrival[0] as i64;
            for &t in &arrival[1..] {
                prop_assert_eq!(u.unwrap(t as u16) as i64 - base, t as i64);
            }
        }

        #[test]
        fn unwrapped_timestamps_track_a_long_stream(
            start: u32,
            steps in proptest::collection::vec(0u64..=48_000, 1..2_000),
        ) {
            let mut u = TimestampUnwrapper::default();
            let first = u.unwrap(start);
            let mut expected = first;
            for s in steps {
                expected += s;
                let ts = (u64::from(start) + (expected - first)) as u32;
                prop_assert_eq!(u.unwrap(ts), expected);
            }
        }
    }
}
