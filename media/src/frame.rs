//! The unit of audio that moves through the engine: 20 ms of mono PCM16 at a known rate.

/// Every frame covers this much time.
pub const FRAME_MS: u32 = 20;
/// The engine's internal rate: VAD, STT, TTS output and the pacer all run at 16 kHz.
pub const INTERNAL_RATE: u32 = 16_000;
/// Samples in one frame at the highest rate we carry (48 kHz Opus).
pub const MAX_FRAME_SAMPLES: usize = 960;

/// 20 ms of mono PCM16. Stored inline so frames move through channels without allocating.
#[derive(Clone, Copy)]
pub struct Frame {
    rate: u32,
    len: usize,
    samples: [i16; MAX_FRAME_SAMPLES],
}

impl Frame {
    /// Samples in a 20 ms frame at `rate`.
    pub const fn samples_per_frame(rate: u32) -> usize {
        (rate / 1000 * FRAME_MS) as usize
    }

    /// A silent frame at `rate` (8, 16, 24 or 48 kHz).
    pub fn silence(rate: u32) -> Self {
        let len = Self::samples_per_frame(rate);
        assert!(len <= MAX_FRAME_SAMPLES, "unsupported rate {rate}");
        Frame {
            rate,
            len,
            samples: [0; MAX_FRAME_SAMPLES],
        }
    }

    /// A frame holding `pcm`, which must be exactly 20 ms at `rate`.
    pub fn from_slice(rate: u32, pcm: &[i16]) -> Option<Self> {
        if pcm.len() != Self::samples_per_frame(rate) || pcm.len() > MAX_FRAME_SAMPLES {
            return None;
        }
        let mut frame = Self::silence(rate);
        frame.samples[..pcm.len()].copy_from_slice(pcm);
        Some(frame)
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

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("rate", &self.rate)
            .field("len", &self.len)
            .finish()
    }
}
