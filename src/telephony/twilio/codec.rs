//! Audio between Twilio's wire format (8 kHz μ-law, any chunk size) and the engine's 16 kHz
//! 20 ms frames. Sans-IO; allocates nothing per frame.

use media::Frame;
use media::g711;
use media::resample::{FrameResampler, ResampleError};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Length(#[from] g711::LengthMismatch),
}

const WIRE_RATE: u32 = 8_000;
/// μ-law bytes (= samples) in 20 ms at 8 kHz.
pub const WIRE_FRAME_BYTES: usize = 160;

pub struct StreamCodec {
    upsample: FrameResampler,
    downsample: FrameResampler,
    /// Caller samples of a frame not yet complete (Twilio normally sends exactly 20 ms).
    pending: [i16; WIRE_FRAME_BYTES],
    pending_len: usize,
}

impl StreamCodec {
    pub fn new() -> Result<Self, CodecError> {
        Ok(StreamCodec {
            upsample: FrameResampler::new(WIRE_RATE, media::INTERNAL_RATE)?,
            downsample: FrameResampler::new(media::INTERNAL_RATE, WIRE_RATE)?,
            pending: [0; WIRE_FRAME_BYTES],
            pending_len: 0,
        })
    }

    /// Decodes a caller payload, calling `emit` with each completed 16 kHz frame.
    pub fn decode(
        &mut self,
        mut mulaw: &[u8],
        mut emit: impl FnMut(Frame),
    ) -> Result<(), CodecError> {
        while !mulaw.is_empty() {
            let take = (WIRE_FRAME_BYTES - self.pending_len).min(mulaw.len());
            let end = self.pending_len + take;
            g711::decode_ulaw(&mulaw[..take], &mut self.pending[self.pending_len..end])?;
            self.pending_len = end;
            mulaw = &mulaw[take..];
            if self.pending_len == WIRE_FRAME_BYTES {
                self.pending_len = 0;
                if let Some(frame) = Frame::from_slice(WIRE_RATE, &self.pending) {
                    emit(self.upsample.process(&frame)?);
                }
            }
        }
        Ok(())
    }

    /// Encodes one 16 kHz agent frame as 20 ms of 8 kHz μ-law.
    pub fn encode(
        &mut self,
        frame: &Frame,
        out: &mut [u8; WIRE_FRAME_BYTES],
    ) -> Result<(), CodecError> {
        let narrow = self.downsample.process(frame)?;
        g711::encode_ulaw(narrow.samples(), out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_chunk_sizes_still_make_whole_frames() {
        let mut codec = StreamCodec::new().unwrap();
        let mut frames = Vec::new();
        // 3 × 100 bytes = 300 bytes = one full frame and 140 bytes pending.
        for _ in 0..3 {
            codec.decode(&[0xFF; 100], |f| frames.push(f)).unwrap();
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].rate(), 16_000);
        assert_eq!(frames[0].samples().len(), 320);
        codec.decode(&[0xFF; 20], |f| frames.push(f)).unwrap();
        assert_eq!(frames.len(), 2);
    }

    #[test]
    fn a_tone_survives_the_round_trip() {
        let mut codec = StreamCodec::new().unwrap();
        let mut wire = [0u8; WIRE_FRAME_BYTES];
        let mut energy_back = 0f64;
        for n in 0..25 {
            let mut frame = Frame::silence(16_000);
            for (i, s) in frame.samples_mut().iter_mut().enumerate() {
                let t = (n * 320 + i) as f64 / 16_000.0;
                *s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            }
            codec.encode(&frame, &mut wire).unwrap();
            codec
                .decode(&wire, |back| {
                    if n > 5 {
                        energy_back += back
                            .samples()
                            .iter()
                            .map(|&s| f64::from(s).powi(2))
                            .sum::<f64>();
                    }
                })
                .unwrap();
        }
        // A 440 Hz tone of amplitude 8000 has RMS ≈ 5657; allow for the filters' edges.
        let rms = (energy_back / (19.0 * 320.0)).sqrt();
        assert!((4500.0..6500.0).contains(&rms), "rms {rms}");
    }
}
