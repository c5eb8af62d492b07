//! The unit of audio that moves through the engine: 20 ms of mono PCM16 at a known rate.

/// Every frame covers this much time.
pub const FRAME_MS: u32 = 20;
/// The engine's internal rate: VAD, STT, TTS output and the pacer all run at 16 kHz.
pub const INTERNAL_RATE: u32 = 16_000;
/// Samples in one frame at the highest rate we carry (48 kHz Opus).
pub const MAX_FRAME_SAMPLES: usize = 960;
/// Samples in one frame at the internal rate.
pub const INTERNAL_FRAME_SAMPLES: usize = FrameBuf::<0>::samples_per_frame(INTERNAL_RATE);

/// A frame at any rate the engine carries, up to 48 kHz.
pub type Frame = FrameBuf<MAX_FRAME_SAMPLES>;
/// A frame at the internal rate only: a third of a `Frame`'s size, for what a call keeps
/// queued (its leg channels hold dozens of frames each).
pub type InternalFrame = FrameBuf<INTERNAL_FRAME_SAMPLES>;

/// 20 ms of mono PCM16 with room for `CAP` samples. Stored inline so frames move through
/// channels without allocating.
#[derive(Clone, Copy)]
pub struct FrameBuf<const CAP: usize> {
    rate: u32,
    len: usize,
    samples: [i16; CAP],
}

impl<const CAP: usize> FrameBuf<CAP> {
    /// Samples in a 20 ms frame at `rate`.
    pub const fn samples_per_frame(rate: u32) -> usize {
        (rate / 1000 * FRAME_MS) as usize
    }

    /// A silent frame at `rate` (8, 16, 24 or 48 kHz, as far as `CAP` holds).
    pub fn silence(rate: u32) -> Self {
        let len = Self::samples_per_frame(rate);
        assert!(len <= CAP, "unsupported rate {rate}");
        FrameBuf {
            rate,
            len,
            samples: [0; CAP],
        }
    }

    /// A frame holding `pcm`, which must be exactly 20 ms at `rate`.
    pub fn from_slice(rate: u32, pcm: &[i16]) -> Option<Self> {
        if pcm.len() != Self::samples_per_frame(rate) || pcm.len() > CAP {
            return None;
        }
        let mut frame = Self::silence(rate);
        frame.samples[..pcm.len()].copy_from_slice(pcm);
        Some(frame)
    }

    /// The same audio in a frame of another capacity; `None` if it does not fit.
    pub fn convert<const TO: usize>(&self) -> Option<FrameBuf<TO>> {
        FrameBuf::from_slice(self.rate, self.samples())
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples[..self.len]
    }

    pub fn samples_mut(&mut self) -> &mut [i16] {
        &mut self.samples[..self.len]
    }
}

impl From<InternalFrame> for Frame {
    fn from(frame: InternalFrame) -> Frame {
        let mut wide = Frame::silence(frame.rate);
        wide.samples_mut().copy_from_slice(frame.samples());
        wide
    }
}

impl<const CAP: usize> std::fmt::Debug for FrameBuf<CAP> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("rate", &self.rate)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_frame_round_trips_through_a_wide_one() {
        let pcm: Vec<i16> = (0..INTERNAL_FRAME_SAMPLES as i16).collect();
        let narrow = InternalFrame::from_slice(INTERNAL_RATE, &pcm).unwrap();
        let wide = Frame::from(narrow);
        assert_eq!(wide.samples(), &pcm[..]);
        let back: InternalFrame = wide.convert().unwrap();
        assert_eq!(back.samples(), &pcm[..]);
        assert!(size_of::<InternalFrame>() * 3 <= size_of::<Frame>() + 64);
    }

    #[test]
    fn a_48k_frame_does_not_fit_an_internal_one() {
        assert!(
            Frame::silence(48_000)
                .convert::<INTERNAL_FRAME_SAMPLES>()
                .is_none()
        );
        assert!(InternalFrame::from_slice(48_000, &[0; 960]).is_none());
    }
}
