//! Wire audio ↔ the engine's 16 kHz frames for one call: G.711 through the media crate's
//! codec and resampler, re-framed to 20 ms whatever packet time the peer uses.

use media::g711::Law;
use media::resample::{FrameResampler, ResampleError};
use media::{Frame, INTERNAL_RATE};

use crate::telephony::sip::sdp::Codec;

/// 20 ms at 8 kHz.
const WIRE_FRAME: usize = 160;

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("codec {0:?} is not carried over SIP yet")]
    Unsupported(Codec),
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// The codecs this transport can carry, in our preference order.
pub const SUPPORTED: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

pub struct VoiceCodec {
    law: Law,
    up: FrameResampler,
    down: FrameResampler,
    pending: [i16; WIRE_FRAME],
    filled: usize,
}

impl VoiceCodec {
    pub fn new(codec: Codec) -> Result<Self, VoiceError> {
        let law = match codec {
            Codec::Pcmu => Law::MuLaw,
            Codec::Pcma => Law::ALaw,
            other => return Err(VoiceError::Unsupported(other)),
        };
        Ok(VoiceCodec {
            law,
            up: FrameResampler::new(8000, INTERNAL_RATE)?,
            down: FrameResampler::new(INTERNAL_RATE, 8000)?,
            pending: [0; WIRE_FRAME],
            filled: 0,
        })
    }

    /// Decodes one RTP payload and calls `emit` with each completed 16 kHz frame.
    pub fn decode(
        &mut self,
        mut payload: &[u8],
        mut emit: impl FnMut(Frame),
    ) -> Result<(), VoiceError> {
        while !payload.is_empty() {
            let take = payload.len().min(WIRE_FRAME - self.filled);
            let slot = &mut self.pending[self.filled..self.filled + take];
            // Lengths match by construction.
            let _ = self.law.decode(&payload[..take], slot);
            self.filled += take;
            payload = &payload[take..];
            if self.filled == WIRE_FRAME {
                self.filled = 0;
                if let Some(frame) = Frame::from_slice(8000, &self.pending) {
                    emit(self.up.process(&frame)?);
                }
            }
        }
        Ok(())
    }

    /// Encodes one 16 kHz frame into a 20 ms G.711 payload.
    pub fn encode(&mut self, frame: &Frame, out: &mut [u8; WIRE_FRAME]) -> Result<(), VoiceError> {
        let narrow = self.down.process(frame)?;
        let _ = self.law.encode(narrow.samples(), out);
        Ok(())
    }

    /// Samples per 20 ms on the wire (the RTP timestamp step).
    pub fn timestamp_step(&self) -> u32 {
        WIRE_FRAME as u32
    }

    pub fn silence_byte(&self) -> u8 {
        self.law.silence()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reframes_any_packet_time_and_round_trips_a_tone() {
        let mut codec = VoiceCodec::new(Codec::Pcmu).unwrap();
        let mut tone = Frame::silence(INTERNAL_RATE);
        for (i, s) in tone.samples_mut().iter_mut().enumerate() {
            *s = ((i as f32 * 2.0 * std::f32::consts::PI * 400.0 / 16000.0).sin() * 8000.0) as i16;
        }
        let mut wire = Vec::new();
        for _ in 0..6 {
            let mut payload = [0u8; WIRE_FRAME];
            codec.encode(&tone, &mut payload).unwrap();
            wire.extend_from_slice(&payload);
        }
        // Feed it back in 30 ms packets: 6 × 20 ms in = 6 frames out.
        let mut frames = Vec::new();
        for chunk in wire.chunks(240) {
            codec.decode(chunk, |f| frames.push(f)).unwrap();
        }
        assert_eq!(frames.len(), 6);
        let last = frames.last().unwrap();
        assert_eq!(last.rate(), INTERNAL_RATE);
        let energy: f64 = last
            .samples()
            .iter()
            .map(|s| (*s as f64).powi(2))
            .sum::<f64>()
            / last.samples().len() as f64;
        assert!(
            energy.sqrt() > 3000.0,
            "tone survives: rms {}",
            energy.sqrt()
        );
        assert!(VoiceCodec::new(Codec::Opus).is_err());
    }
}
