//! Wire audio ↔ the engine's 16 kHz frames for one call: G.711 and Opus through the media
//! crate's codecs and resampler. G.711 is re-framed to 20 ms whatever packet time the peer
//! uses and concealed by repeat-and-fade; Opus recovers a loss from the next packet's FEC or
//! conceals it with its own PLC.

use media::codec::opus::{OPUS_RATE, OpusDecoder, OpusEncoder, OpusError};
use media::codec::plc::RepeatFade;
use media::g711::Law;
use media::jitter;
use media::resample::{FrameResampler, ResampleError};
use media::{Frame, INTERNAL_RATE};

use crate::telephony::sip::sdp::Codec;

/// 20 ms at 8 kHz.
const G711_FRAME: usize = 160;
/// Decoded G.711 waiting to be framed: a partial frame plus the largest payload buffered.
const G711_PENDING: usize = G711_FRAME + jitter::MAX_PAYLOAD;
/// Opus at a wideband voice rate, with in-band FEC sized for this much loss (percent).
const OPUS_BITRATE: i32 = 24_000;
const OPUS_EXPECTED_LOSS: u8 = 10;

/// Largest payload `encode` writes (an Opus packet; 20 ms of G.711 is 160 bytes).
pub const MAX_PAYLOAD: usize = media::codec::opus::MAX_PACKET;

/// The codecs this transport can carry, in our preference order.
pub const SUPPORTED: [Codec; 3] = [Codec::Pcmu, Codec::Pcma, Codec::Opus];

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Opus(#[from] OpusError),
    #[error("payload of {0} bytes does not fit the decode buffer")]
    TooLong(usize),
}

enum Wire {
    G711 {
        law: Law,
        plc: RepeatFade,
        // Boxed: inline it would make every `Wire` as large as this buffer.
        pending: Box<[i16; G711_PENDING]>,
        filled: usize,
    },
    Opus {
        encoder: OpusEncoder,
        decoder: OpusDecoder,
        decoded: Option<Frame>,
    },
}

pub struct VoiceCodec {
    wire: Wire,
    /// Wire rate → 16 kHz, and back.
    to_internal: FrameResampler,
    to_wire: FrameResampler,
}

impl VoiceCodec {
    pub fn new(codec: Codec) -> Result<Self, VoiceError> {
        let law = |law| Wire::G711 {
            law,
            plc: RepeatFade::new(8_000),
            pending: Box::new([0; G711_PENDING]),
            filled: 0,
        };
        let wire = match codec {
            Codec::Pcmu => law(Law::MuLaw),
            Codec::Pcma => law(Law::ALaw),
            Codec::Opus => Wire::Opus {
                encoder: OpusEncoder::new(OPUS_BITRATE, OPUS_EXPECTED_LOSS)?,
                decoder: OpusDecoder::new()?,
                decoded: None,
            },
        };
        // Frames are decoded at the RTP clock rate (48 kHz for Opus).
        let rate = codec.clock_rate();
        Ok(VoiceCodec {
            wire,
            to_internal: FrameResampler::new(rate, INTERNAL_RATE)?,
            to_wire: FrameResampler::new(INTERNAL_RATE, rate)?,
        })
    }

    /// Decodes one received payload; its audio comes out of `frame`.
    pub fn decode(&mut self, payload: &[u8]) -> Result<(), VoiceError> {
        match &mut self.wire {
            Wire::G711 {
                law,
                plc,
                pending,
                filled,
            } => {
                let slot = pending
                    .get_mut(*filled..*filled + payload.len())
                    .ok_or(VoiceError::TooLong(payload.len()))?;
                // Lengths match by construction.
                let _ = law.decode(payload, slot);
                *filled += payload.len();
                // The latest 20 ms received is what a loss repeats.
                if let Some(last) = pending[..*filled].last_chunk::<G711_FRAME>() {
                    plc.good(&Frame::from_slice(8_000, last).unwrap_or(Frame::silence(8_000)));
                }
            }
            Wire::Opus {
                decoder, decoded, ..
            } => *decoded = Some(decoder.decode(payload)?),
        }
        Ok(())
    }

    /// Stands in for one lost 20 ms packet. `next_payload` is the packet after it, when it
    /// has arrived already (Opus recovers the loss from its FEC).
    pub fn conceal(&mut self, next_payload: Option<&[u8]>) -> Result<(), VoiceError> {
        match &mut self.wire {
            Wire::G711 {
                plc,
                pending,
                filled,
                ..
            } => {
                let slot = pending
                    .get_mut(*filled..*filled + G711_FRAME)
                    .ok_or(VoiceError::TooLong(G711_FRAME))?;
                slot.copy_from_slice(plc.conceal().samples());
                *filled += G711_FRAME;
            }
            Wire::Opus {
                decoder, decoded, ..
            } => {
                let recovered = next_payload.and_then(|next| decoder.recover(next).ok());
                *decoded = Some(match recovered {
                    Some(frame) => frame,
                    None => decoder.conceal()?,
                });
            }
        }
        Ok(())
    }

    /// The next 16 kHz frame, once 20 ms of decoded audio is waiting.
    pub fn frame(&mut self) -> Result<Option<Frame>, VoiceError> {
        let wire_frame = match &mut self.wire {
            Wire::G711 {
                pending, filled, ..
            } => {
                if *filled < G711_FRAME {
                    return Ok(None);
                }
                let frame = Frame::from_slice(8_000, &pending[..G711_FRAME]);
                pending.copy_within(G711_FRAME..*filled, 0);
                *filled -= G711_FRAME;
                let Some(frame) = frame else { return Ok(None) };
                frame
            }
            Wire::Opus { decoded, .. } => match decoded.take() {
                Some(frame) => frame,
                None => return Ok(None),
            },
        };
        Ok(Some(self.to_internal.process(&wire_frame)?))
    }

    /// Encodes one 16 kHz frame into a 20 ms payload; returns its length.
    pub fn encode(
        &mut self,
        frame: &Frame,
        out: &mut [u8; MAX_PAYLOAD],
    ) -> Result<usize, VoiceError> {
        let wire_frame = self.to_wire.process(frame)?;
        match &mut self.wire {
            Wire::G711 { law, .. } => {
                let payload = &mut out[..G711_FRAME];
                // The bridge's silence between the agent's stretches: one code, no encoding.
                if wire_frame.samples().iter().all(|&s| s == 0) {
                    payload.fill(law.silence());
                } else {
                    let _ = law.encode(wire_frame.samples(), payload);
                }
                Ok(G711_FRAME)
            }
            Wire::Opus { encoder, .. } => Ok(encoder.encode(&wire_frame, out)?),
        }
    }

    /// RTP clock ticks per 20 ms (the timestamp step of one packet).
    pub fn timestamp_step(&self) -> u32 {
        match self.wire {
            Wire::G711 { .. } => G711_FRAME as u32,
            Wire::Opus { .. } => OPUS_RATE / 50,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone() -> Frame {
        let mut tone = Frame::silence(INTERNAL_RATE);
        for (i, s) in tone.samples_mut().iter_mut().enumerate() {
            *s = ((i as f32 * 2.0 * std::f32::consts::PI * 400.0 / 16000.0).sin() * 8000.0) as i16;
        }
        tone
    }

    fn rms(frame: &Frame) -> f64 {
        let energy: f64 = frame.samples().iter().map(|s| f64::from(*s).powi(2)).sum();
        (energy / frame.samples().len() as f64).sqrt()
    }

    #[test]
    fn g711_reframes_any_packet_time_and_conceals_by_fading() {
        let mut codec = VoiceCodec::new(Codec::Pcmu).unwrap();
        let mut wire = Vec::new();
        for _ in 0..6 {
            let mut payload = [0u8; MAX_PAYLOAD];
            let len = codec.encode(&tone(), &mut payload).unwrap();
            assert_eq!(len, G711_FRAME);
            wire.extend_from_slice(&payload[..len]);
        }
        // Fed back in 30 ms packets: 6 × 20 ms in = 6 frames out.
        let mut frames = Vec::new();
        for chunk in wire.chunks(240) {
            codec.decode(chunk).unwrap();
            while let Some(frame) = codec.frame().unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[5].rate(), INTERNAL_RATE);
        assert!(
            rms(&frames[5]) > 3000.0,
            "tone survives: {}",
            rms(&frames[5])
        );
        // A loss repeats the tone, fading; a long one fades to silence.
        codec.conceal(None).unwrap();
        let first = codec.frame().unwrap().unwrap();
        assert!(rms(&first) > 1000.0, "concealed: {}", rms(&first));
        for _ in 0..4 {
            codec.conceal(None).unwrap();
            codec.frame().unwrap();
        }
        codec.conceal(None).unwrap();
        assert!(rms(&codec.frame().unwrap().unwrap()) < 100.0);
        assert_eq!(codec.timestamp_step(), 160);
        assert!(matches!(
            codec.decode(&[0xFF; G711_PENDING + 1]),
            Err(VoiceError::TooLong(_))
        ));
    }

    #[test]
    fn opus_round_trips_and_recovers_a_loss_from_fec() {
        let mut codec = VoiceCodec::new(Codec::Opus).unwrap();
        assert_eq!(codec.timestamp_step(), 960);
        let mut packets = Vec::new();
        for _ in 0..20 {
            let mut payload = [0u8; MAX_PAYLOAD];
            let len = codec.encode(&tone(), &mut payload).unwrap();
            assert!(len > 0 && len < 400, "{len} bytes");
            packets.push(payload[..len].to_vec());
        }
        for packet in &packets[..10] {
            codec.decode(packet).unwrap();
            let frame = codec.frame().unwrap().unwrap();
            assert_eq!(frame.rate(), INTERNAL_RATE);
        }
        assert!(codec.frame().unwrap().is_none(), "one frame per packet");
        // Packet 10 lost: packet 11's FEC brings it back.
        codec.conceal(Some(&packets[11])).unwrap();
        let recovered = codec.frame().unwrap().unwrap();
        assert!(rms(&recovered) > 1000.0, "FEC: {}", rms(&recovered));
        codec.decode(&packets[11]).unwrap();
        assert!(rms(&codec.frame().unwrap().unwrap()) > 1000.0);
        // Nothing to recover from: Opus's PLC carries on.
        codec.conceal(None).unwrap();
        assert!(codec.frame().unwrap().is_some());
        assert!(codec.decode(&[]).is_err(), "garbage is an error value");
    }
}
