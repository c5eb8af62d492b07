//! Audio between Vonage's wire format (16-bit little-endian linear PCM at 16 or 8 kHz, 20 ms
//! per message, though any length is re-framed) and the engine's 16 kHz 20 ms frames.
//! Sans-IO; allocates nothing per frame.

use media::Frame;
use media::resample::{FrameResampler, ResampleError};

/// Bytes of 20 ms at 16 kHz, the largest frame on the wire.
pub const MAX_WIRE_FRAME_BYTES: usize = 640;
const MAX_WIRE_FRAME_SAMPLES: usize = MAX_WIRE_FRAME_BYTES / 2;

pub struct L16Codec {
    rate: u32,
    frame_samples: usize,
    /// Wire rate → 16 kHz (frames pass through untouched at 16 kHz).
    upsample: FrameResampler,
    /// 16 kHz → wire rate.
    downsample: FrameResampler,
    /// Caller samples of a frame not yet complete.
    pending: [i16; MAX_WIRE_FRAME_SAMPLES],
    pending_len: usize,
    /// The first byte of a sample split across two messages.
    odd_byte: Option<u8>,
}

impl L16Codec {
    /// A codec for `rate` (16000 or 8000) on the wire.
    pub fn new(rate: u32) -> Result<Self, ResampleError> {
        let frame_samples = Frame::samples_per_frame(rate);
        if frame_samples > MAX_WIRE_FRAME_SAMPLES {
            return Err(ResampleError::UnsupportedRate(rate));
        }
        Ok(L16Codec {
            rate,
            frame_samples,
            upsample: FrameResampler::new(rate, media::INTERNAL_RATE)?,
            downsample: FrameResampler::new(media::INTERNAL_RATE, rate)?,
            pending: [0; MAX_WIRE_FRAME_SAMPLES],
            pending_len: 0,
            odd_byte: None,
        })
    }

    /// Bytes of one 20 ms message on the wire (640 at 16 kHz, 320 at 8 kHz).
    pub fn wire_frame_bytes(&self) -> usize {
        self.frame_samples * 2
    }

    /// Decodes a caller message, calling `emit` with each completed 16 kHz frame.
    pub fn decode(
        &mut self,
        bytes: &[u8],
        mut emit: impl FnMut(Frame),
    ) -> Result<(), ResampleError> {
        let mut bytes = bytes;
        if let Some(low) = self.odd_byte.take() {
            let Some((&high, rest)) = bytes.split_first() else {
                self.odd_byte = Some(low);
                return Ok(());
            };
            self.push(i16::from_le_bytes([low, high]), &mut emit)?;
            bytes = rest;
        }
        let mut pairs = bytes.chunks_exact(2);
        for pair in &mut pairs {
            self.push(i16::from_le_bytes([pair[0], pair[1]]), &mut emit)?;
        }
        self.odd_byte = pairs.remainder().first().copied();
        Ok(())
    }

    fn push(&mut self, sample: i16, emit: &mut impl FnMut(Frame)) -> Result<(), ResampleError> {
        self.pending[self.pending_len] = sample;
        self.pending_len += 1;
        if self.pending_len == self.frame_samples {
            self.pending_len = 0;
            if let Some(frame) = Frame::from_slice(self.rate, &self.pending[..self.frame_samples]) {
                emit(self.upsample.process(&frame)?);
            }
        }
        Ok(())
    }

    /// Encodes one 16 kHz agent frame as a 20 ms wire message; returns its bytes.
    pub fn encode<'a>(
        &mut self,
        frame: &Frame,
        out: &'a mut [u8; MAX_WIRE_FRAME_BYTES],
    ) -> Result<&'a [u8], ResampleError> {
        let wire = self.downsample.process(frame)?;
        let samples = wire.samples();
        for (bytes, sample) in out.chunks_exact_mut(2).zip(samples) {
            bytes.copy_from_slice(&sample.to_le_bytes());
        }
        Ok(&out[..samples.len() * 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn wide_audio_passes_through_sample_exact_whatever_the_message_sizes() {
        let mut codec = L16Codec::new(16_000).unwrap();
        let samples: Vec<i16> = (0..960).map(|i| (i * 7 - 3000) as i16).collect();
        let bytes = le(&samples);
        let mut frames = Vec::new();
        // 1920 bytes in messages of 1, 333 and the rest: odd splits inside a sample too.
        codec.decode(&bytes[..1], |f| frames.push(f)).unwrap();
        codec.decode(&bytes[1..334], |f| frames.push(f)).unwrap();
        assert!(frames.is_empty());
        codec.decode(&bytes[334..], |f| frames.push(f)).unwrap();
        assert_eq!(frames.len(), 3);
        let back: Vec<i16> = frames.iter().flat_map(|f| f.samples().to_vec()).collect();
        assert_eq!(back, samples);
        let mut out = [0u8; MAX_WIRE_FRAME_BYTES];
        let wire = codec.encode(&frames[1], &mut out).unwrap();
        assert_eq!(wire, &bytes[640..1280]);
    }

    #[test]
    fn narrow_audio_is_resampled_both_ways() {
        let mut codec = L16Codec::new(8_000).unwrap();
        assert_eq!(codec.wire_frame_bytes(), 320);
        let mut out = [0u8; MAX_WIRE_FRAME_BYTES];
        let mut energy = 0f64;
        let mut frames = 0;
        for n in 0..25 {
            let mut frame = Frame::silence(16_000);
            for (i, s) in frame.samples_mut().iter_mut().enumerate() {
                let t = (n * 320 + i) as f64 / 16_000.0;
                *s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            }
            let wire = codec.encode(&frame, &mut out).unwrap().to_vec();
            assert_eq!(wire.len(), 320);
            codec
                .decode(&wire, |back| {
                    assert_eq!(back.rate(), 16_000);
                    assert_eq!(back.samples().len(), 320);
                    frames += 1;
                    if n > 5 {
                        energy += back
                            .samples()
                            .iter()
                            .map(|&s| f64::from(s).powi(2))
                            .sum::<f64>();
                    }
                })
                .unwrap();
        }
        assert_eq!(frames, 25);
        let rms = (energy / (19.0 * 320.0)).sqrt();
        assert!((4500.0..6500.0).contains(&rms), "rms {rms}");
    }

    #[test]
    fn other_rates_are_refused() {
        assert!(L16Codec::new(44_100).is_err());
        assert!(L16Codec::new(48_000).is_err());
    }
}
