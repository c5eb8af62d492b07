//! Audio between a media-stream WebSocket's wire format (G.711 μ-law or A-law at 8 kHz, or
//! linear 16-bit big-endian PCM at 8 or 16 kHz, in chunks of any size) and the engine's 16 kHz
//! 20 ms frames. Sans-IO; allocates nothing per frame.

use media::Frame;
use media::g711::{self, Law};
use media::resample::{FrameResampler, ResampleError};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Length(#[from] g711::LengthMismatch),
}

/// How samples are written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireEncoding {
    G711(Law),
    /// RTP L16: signed 16-bit samples in network (big-endian) byte order.
    L16,
}

/// A stream's negotiated audio: mono, one encoding at one rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireFormat {
    pub encoding: WireEncoding,
    pub rate: u32,
}

/// Samples in 20 ms at the highest wire rate (16 kHz).
const MAX_FRAME_SAMPLES: usize = 320;
/// Bytes of 20 ms at the widest format (16 kHz L16): what `encode` may write.
pub const MAX_WIRE_FRAME_BYTES: usize = 2 * MAX_FRAME_SAMPLES;

impl WireFormat {
    /// The format a carrier names (`PCMU`, `PCMA`, `L16`); `None` for what we cannot carry
    /// (other codecs, rates, or more than one channel).
    pub fn from_name(encoding: &str, rate: u32, channels: u32) -> Option<Self> {
        let encoding = match encoding.to_ascii_uppercase().as_str() {
            "PCMU" => WireEncoding::G711(Law::MuLaw),
            "PCMA" => WireEncoding::G711(Law::ALaw),
            "L16" => WireEncoding::L16,
            _ => return None,
        };
        let rate_ok = match encoding {
            WireEncoding::G711(_) => rate == 8_000,
            WireEncoding::L16 => rate == 8_000 || rate == 16_000,
        };
        (rate_ok && channels == 1).then_some(WireFormat { encoding, rate })
    }

    fn samples_per_frame(self) -> usize {
        (self.rate / 50) as usize
    }

    /// Bytes of one 20 ms frame on the wire.
    pub fn frame_bytes(self) -> usize {
        match self.encoding {
            WireEncoding::G711(_) => self.samples_per_frame(),
            WireEncoding::L16 => 2 * self.samples_per_frame(),
        }
    }
}

pub struct WireCodec {
    format: WireFormat,
    upsample: FrameResampler,
    downsample: FrameResampler,
    /// Caller samples of a frame not yet complete.
    pending: [i16; MAX_FRAME_SAMPLES],
    pending_len: usize,
    /// L16: the first byte of a sample split across two chunks.
    half_sample: Option<u8>,
}

impl WireCodec {
    pub fn new(format: WireFormat) -> Result<Self, CodecError> {
        Ok(WireCodec {
            format,
            upsample: FrameResampler::new(format.rate, media::INTERNAL_RATE)?,
            downsample: FrameResampler::new(media::INTERNAL_RATE, format.rate)?,
            pending: [0; MAX_FRAME_SAMPLES],
            pending_len: 0,
            half_sample: None,
        })
    }

    pub fn format(&self) -> WireFormat {
        self.format
    }

    /// Decodes a caller payload, calling `emit` with each completed 16 kHz frame.
    pub fn decode(
        &mut self,
        mut bytes: &[u8],
        mut emit: impl FnMut(Frame),
    ) -> Result<(), CodecError> {
        let frame_samples = self.format.samples_per_frame();
        while !bytes.is_empty() {
            match self.format.encoding {
                WireEncoding::G711(law) => {
                    let take = (frame_samples - self.pending_len).min(bytes.len());
                    let end = self.pending_len + take;
                    law.decode(&bytes[..take], &mut self.pending[self.pending_len..end])?;
                    self.pending_len = end;
                    bytes = &bytes[take..];
                }
                WireEncoding::L16 => {
                    let (high, rest) = match self.half_sample.take() {
                        Some(high) => (high, bytes),
                        None => (bytes[0], &bytes[1..]),
                    };
                    let Some((&low, rest)) = rest.split_first() else {
                        self.half_sample = Some(high);
                        return Ok(());
                    };
                    self.pending[self.pending_len] = i16::from_be_bytes([high, low]);
                    self.pending_len += 1;
                    bytes = rest;
                }
            }
            if self.pending_len == frame_samples {
                self.pending_len = 0;
                if let Some(frame) =
                    Frame::from_slice(self.format.rate, &self.pending[..frame_samples])
                {
                    emit(self.upsample.process(&frame)?);
                }
            }
        }
        Ok(())
    }

    /// Encodes one 16 kHz agent frame as 20 ms on the wire; returns the bytes written to `out`.
    pub fn encode(
        &mut self,
        frame: &Frame,
        out: &mut [u8; MAX_WIRE_FRAME_BYTES],
    ) -> Result<usize, CodecError> {
        let narrow = self.downsample.process(frame)?;
        let samples = narrow.samples();
        match self.format.encoding {
            WireEncoding::G711(law) => law.encode(samples, &mut out[..samples.len()])?,
            WireEncoding::L16 => {
                for (pair, sample) in out.chunks_exact_mut(2).zip(samples) {
                    pair.copy_from_slice(&sample.to_be_bytes());
                }
            }
        }
        Ok(self.format.frame_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats() -> [WireFormat; 4] {
        [
            WireFormat::from_name("PCMU", 8_000, 1).unwrap(),
            WireFormat::from_name("pcma", 8_000, 1).unwrap(),
            WireFormat::from_name("L16", 8_000, 1).unwrap(),
            WireFormat::from_name("L16", 16_000, 1).unwrap(),
        ]
    }

    #[test]
    fn names_we_cannot_carry_are_refused() {
        for (name, rate, channels) in [
            ("OPUS", 48_000, 1),
            ("G722", 16_000, 1),
            ("PCMU", 16_000, 1),
            ("L16", 24_000, 1),
            ("PCMU", 8_000, 2),
            ("", 8_000, 1),
        ] {
            assert_eq!(WireFormat::from_name(name, rate, channels), None, "{name}");
        }
    }

    #[test]
    fn odd_chunk_sizes_still_make_whole_frames() {
        for format in formats() {
            let mut codec = WireCodec::new(format).unwrap();
            let mut frames = Vec::new();
            let wire = vec![0u8; format.frame_bytes() * 2];
            // Uneven (and, for L16, odd-length) chunks: two frames' worth in all.
            for chunk in wire.chunks(37) {
                codec.decode(chunk, |f| frames.push(f)).unwrap();
            }
            assert_eq!(frames.len(), 2, "{format:?}");
            assert!(
                frames
                    .iter()
                    .all(|f| f.rate() == 16_000 && f.samples().len() == 320)
            );
        }
    }

    #[test]
    fn l16_is_big_endian() {
        let format = WireFormat::from_name("L16", 16_000, 1).unwrap();
        let mut codec = WireCodec::new(format).unwrap();
        let mut wire = Vec::new();
        for _ in 0..320 {
            wire.extend_from_slice(&1000i16.to_be_bytes());
        }
        let mut got = Vec::new();
        codec.decode(&wire, |f| got.push(f)).unwrap();
        assert_eq!(got.len(), 1);
        assert!(
            got[0].samples().iter().all(|&s| s == 1000),
            "16 kHz passes through"
        );
    }

    #[test]
    fn a_tone_survives_the_round_trip_in_every_format() {
        for format in formats() {
            let mut codec = WireCodec::new(format).unwrap();
            let mut wire = [0u8; MAX_WIRE_FRAME_BYTES];
            let mut energy_back = 0f64;
            for n in 0..25 {
                let mut frame = Frame::silence(16_000);
                for (i, s) in frame.samples_mut().iter_mut().enumerate() {
                    let t = (n * 320 + i) as f64 / 16_000.0;
                    *s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
                }
                let len = codec.encode(&frame, &mut wire).unwrap();
                assert_eq!(len, format.frame_bytes());
                codec
                    .decode(&wire[..len], |back| {
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
            assert!((4500.0..6500.0).contains(&rms), "{format:?}: rms {rms}");
        }
    }
}
