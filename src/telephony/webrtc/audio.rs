//! Audio between a browser's Opus (48 kHz mono, 20 ms packets) and the engine's 16 kHz 20 ms
//! frames, with the media crate's codec and resamplers. Sans-IO; nothing allocates per frame
//! except the outgoing packet's `Bytes`, which the WebRTC track takes ownership of.

use bytes::Bytes;
use media::codec::opus::{MAX_PACKET, OPUS_RATE, OpusDecoder, OpusEncoder, OpusError};
use media::resample::{FrameResampler, ResampleError};
use media::{Frame, INTERNAL_RATE, InternalFrame};

/// Outgoing Opus bitrate: wideband speech, well above what 16 kHz source audio needs.
const BITRATE: i32 = 32_000;
/// Loss the encoder's in-band FEC is sized for (browsers on Wi-Fi lose a few percent).
const EXPECTED_LOSS_PCT: u8 = 5;
/// Longest run of lost packets concealed; past it the gap is not filled (the caller's audio
/// simply resumes) so a stalled sender cannot make us invent seconds of sound.
const MAX_CONCEALED: u16 = 5;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(transparent)]
    Opus(#[from] OpusError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// Caller side: RTP Opus payloads in sequence order → 16 kHz frames.
pub struct OpusIn {
    decoder: OpusDecoder,
    down: FrameResampler,
    /// The sequence number expected next; `None` before the first packet.
    next_seq: Option<u16>,
}

impl OpusIn {
    pub fn new() -> Result<Self, AudioError> {
        Ok(OpusIn {
            decoder: OpusDecoder::new()?,
            down: FrameResampler::new(OPUS_RATE, INTERNAL_RATE)?,
            next_seq: None,
        })
    }

    /// Decodes one packet, first concealing a short run of lost ones before it, and hands
    /// each 16 kHz frame to `out`. A late or repeated packet (behind the expected sequence
    /// number) is dropped: its moment has been filled already.
    pub fn packet(
        &mut self,
        seq: u16,
        payload: &[u8],
        mut out: impl FnMut(InternalFrame),
    ) -> Result<(), AudioError> {
        if let Some(expected) = self.next_seq {
            let ahead = seq.wrapping_sub(expected);
            if ahead >= u16::MAX / 2 {
                return Ok(());
            }
            if (1..=MAX_CONCEALED).contains(&ahead) {
                // The last lost frame comes back from this packet's FEC; earlier ones are
                // concealed.
                for _ in 1..ahead {
                    let frame = self.decoder.conceal()?;
                    self.emit(&frame, &mut out)?;
                }
                let frame = self.decoder.recover(payload)?;
                self.emit(&frame, &mut out)?;
            }
        }
        self.next_seq = Some(seq.wrapping_add(1));
        let frame = self.decoder.decode(payload)?;
        self.emit(&frame, &mut out)
    }

    fn emit(
        &mut self,
        frame: &Frame,
        out: &mut impl FnMut(InternalFrame),
    ) -> Result<(), AudioError> {
        // A 16 kHz frame always fits an `InternalFrame`.
        if let Some(frame) = self.down.process(frame)?.convert() {
            out(frame);
        }
        Ok(())
    }
}

/// Agent side: 16 kHz frames → Opus packets for the browser.
pub struct OpusOut {
    encoder: OpusEncoder,
    up: FrameResampler,
    packet: [u8; MAX_PACKET],
}

impl OpusOut {
    pub fn new() -> Result<Self, AudioError> {
        Ok(OpusOut {
            encoder: OpusEncoder::new(BITRATE, EXPECTED_LOSS_PCT)?,
            up: FrameResampler::new(INTERNAL_RATE, OPUS_RATE)?,
            packet: [0; MAX_PACKET],
        })
    }

    /// One 20 ms Opus packet of `frame`.
    pub fn encode(&mut self, frame: &InternalFrame) -> Result<Bytes, AudioError> {
        let wide = self.up.process(&Frame::from(*frame))?;
        let len = self.encoder.encode(&wide, &mut self.packet)?;
        Ok(Bytes::copy_from_slice(&self.packet[..len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(phase: &mut f32) -> InternalFrame {
        let mut frame = InternalFrame::silence(INTERNAL_RATE);
        for s in frame.samples_mut() {
            *s = (phase.sin() * 8_000.0) as i16;
            *phase += 2.0 * std::f32::consts::PI * 440.0 / INTERNAL_RATE as f32;
        }
        frame
    }

    fn energy(frame: &InternalFrame) -> f64 {
        let samples = frame.samples();
        samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64
    }

    fn packets(n: usize) -> Vec<Bytes> {
        let mut out = OpusOut::new().unwrap();
        let mut phase = 0.0;
        (0..n)
            .map(|_| out.encode(&tone(&mut phase)).unwrap())
            .collect()
    }

    #[test]
    fn a_tone_survives_the_round_trip_at_16_khz() {
        let mut inbound = OpusIn::new().unwrap();
        let mut frames = Vec::new();
        for (seq, packet) in packets(25).iter().enumerate() {
            inbound
                .packet(seq as u16, packet, |f| frames.push(f))
                .unwrap();
        }
        assert_eq!(frames.len(), 25);
        assert!(frames.iter().all(|f| f.rate() == INTERNAL_RATE));
        // Past the codec's and resamplers' start-up delay the tone is back at full level.
        assert!(energy(&frames[24]) > 1e7, "{}", energy(&frames[24]));
    }

    #[test]
    fn short_losses_are_filled_and_late_packets_dropped() {
        let packets = packets(20);
        let mut inbound = OpusIn::new().unwrap();
        let mut count = 0;
        for seq in 0..10u16 {
            inbound
                .packet(seq, &packets[usize::from(seq)], |_| count += 1)
                .unwrap();
        }
        // 10, 11 and 12 are lost: 13 brings two concealed frames, one recovered, its own.
        inbound.packet(13, &packets[13], |_| count += 1).unwrap();
        assert_eq!(count, 14);
        // 11 turns up late: its time has been filled.
        inbound.packet(11, &packets[11], |_| count += 1).unwrap();
        assert_eq!(count, 14);
        // A jump far ahead (a restarted sender) is not filled with invented audio.
        inbound.packet(1_000, &packets[14], |_| count += 1).unwrap();
        assert_eq!(count, 15);
    }
}
