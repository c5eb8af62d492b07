//! Opus at 48 kHz mono, 20 ms frames, through libopus (`audiopus`). The encoder carries
//! in-band FEC; the decoder recovers a lost frame from the next packet's FEC when it has
//! arrived, and otherwise uses Opus's own packet loss concealment.

use audiopus::coder::{Decoder, Encoder};
use audiopus::packet::Packet;
use audiopus::{Application, Bandwidth, Bitrate, Channels, MutSignals, SampleRate};
use thiserror::Error;

use crate::frame::Frame;

/// Opus's RTP clock and the rate frames are encoded and decoded at.
pub const OPUS_RATE: u32 = 48_000;
/// Largest packet the encoder writes (RFC 6716's maximum for one frame).
pub const MAX_PACKET: usize = 1_275;
/// Encoder effort (0–10). libopus's default of 10 cost 224 µs a frame, most of a browser
/// call's CPU; 5 is a common server setting for speech.
const COMPLEXITY: u8 = 5;

#[derive(Debug, Error)]
pub enum OpusError {
    #[error("opus: {0}")]
    Codec(#[from] audiopus::Error),
    #[error("frame is at {0} Hz; Opus frames here are 48 kHz")]
    WrongRate(u32),
    #[error("opus decoded {0} samples; expected a 20 ms frame")]
    WrongDuration(usize),
}

/// Encodes 48 kHz mono 20 ms frames.
pub struct OpusEncoder {
    encoder: Encoder,
}

impl OpusEncoder {
    /// A VoIP-tuned encoder at `bitrate` bits/s with in-band FEC for `expected_loss_pct`.
    /// Its band stops at 8 kHz: what it encodes is the agent's 16 kHz voice, so a wider band
    /// would only spend bits and cycles on silence.
    pub fn new(bitrate: i32, expected_loss_pct: u8) -> Result<Self, OpusError> {
        let mut encoder = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)?;
        encoder.set_complexity(COMPLEXITY)?;
        encoder.set_max_bandwidth(Bandwidth::Wideband)?;
        encoder.set_bitrate(Bitrate::BitsPerSecond(bitrate))?;
        encoder.set_inband_fec(true)?;
        encoder.set_packet_loss_perc(expected_loss_pct.min(100))?;
        Ok(OpusEncoder { encoder })
    }

    /// Encodes one frame into `out` (at least `MAX_PACKET` bytes is always enough).
    pub fn encode(&mut self, frame: &Frame, out: &mut [u8]) -> Result<usize, OpusError> {
        if frame.rate() != OPUS_RATE {
            return Err(OpusError::WrongRate(frame.rate()));
        }
        Ok(self.encoder.encode(frame.samples(), out)?)
    }
}

/// Decodes Opus packets into 48 kHz mono 20 ms frames.
pub struct OpusDecoder {
    decoder: Decoder,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, OpusError> {
        Ok(OpusDecoder {
            decoder: Decoder::new(SampleRate::Hz48000, Channels::Mono)?,
        })
    }

    /// Decodes a received packet. Malformed packets are an error value.
    pub fn decode(&mut self, payload: &[u8]) -> Result<Frame, OpusError> {
        self.run(Some(payload), false)
    }

    /// Reconstructs a lost frame from the FEC data in the packet that followed it.
    pub fn recover(&mut self, next_payload: &[u8]) -> Result<Frame, OpusError> {
        self.run(Some(next_payload), true)
    }

    /// Synthesises a frame for a loss with nothing to recover from (PLC).
    pub fn conceal(&mut self) -> Result<Frame, OpusError> {
        self.run(None, false)
    }

    fn run(&mut self, payload: Option<&[u8]>, fec: bool) -> Result<Frame, OpusError> {
        let mut frame = Frame::silence(OPUS_RATE);
        let packet = match payload {
            Some(bytes) => Some(Packet::try_from(bytes)?),
            None => None,
        };
        let out = MutSignals::try_from(frame.samples_mut())?;
        let n = self.decoder.decode(packet, out, fec)?;
        if n != Frame::samples_per_frame(OPUS_RATE) {
            return Err(OpusError::WrongDuration(n));
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(phase: &mut f32) -> Frame {
        let mut frame = Frame::silence(OPUS_RATE);
        for s in frame.samples_mut() {
            *s = (phase.sin() * 8_000.0) as i16;
            *phase += 2.0 * std::f32::consts::PI * 440.0 / OPUS_RATE as f32;
        }
        frame
    }

    fn energy(frame: &Frame) -> f64 {
        frame
            .samples()
            .iter()
            .map(|&s| f64::from(s).powi(2))
            .sum::<f64>()
            / frame.samples().len() as f64
    }

    #[test]
    fn encodes_decodes_and_conceals_losses() {
        let mut encoder = OpusEncoder::new(24_000, 10).unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut phase = 0.0;
        let mut packets = Vec::new();
        for _ in 0..20 {
            let mut buf = [0u8; MAX_PACKET];
            let len = encoder.encode(&tone(&mut phase), &mut buf).unwrap();
            packets.push(buf[..len].to_vec());
        }
        for p in &packets[..10] {
            decoder.decode(p).unwrap();
        }
        // Packet 10 is lost: recover it from packet 11's FEC, then decode 11 itself.
        let recovered = decoder.recover(&packets[11]).unwrap();
        assert!(energy(&recovered) > 1e6, "FEC frame is near silent");
        let decoded = decoder.decode(&packets[11]).unwrap();
        assert!(energy(&decoded) > 1e6);
        // Then two losses with nothing to recover from: PLC keeps the tone going.
        let concealed = decoder.conceal().unwrap();
        assert!(energy(&concealed) > 1e5);
    }

    #[test]
    fn garbage_and_wrong_rates_are_errors() {
        let mut decoder = OpusDecoder::new().unwrap();
        assert!(decoder.decode(&[]).is_err());
        // TOC byte announcing a 60 ms frame: not one of our 20 ms frames.
        assert!(decoder.decode(&[0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        let mut encoder = OpusEncoder::new(24_000, 0).unwrap();
        assert!(matches!(
            encoder.encode(&Frame::silence(16_000), &mut [0u8; MAX_PACKET]),
            Err(OpusError::WrongRate(16_000))
        ));
    }
}
