//! Engines synthesise at their own rate (Piper and espeak-ng: 22,050 Hz, OpenAI: 24 kHz); the
//! engine's internal rate is 16 kHz PCM16.

use media::resample::ChunkResampler;

use super::TtsError;

pub const OUTPUT_RATE: u32 = media::INTERNAL_RATE;

fn to_i16(sample: f32) -> i16 {
    (sample * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Converts a whole piece of mono audio at `rate` to 16 kHz PCM16.
pub fn to_internal_rate(samples: &[f32], rate: u32) -> Result<Vec<i16>, TtsError> {
    let pcm: Vec<i16> = samples.iter().copied().map(to_i16).collect();
    if rate == OUTPUT_RATE {
        return Ok(pcm);
    }
    let err =
        |e: media::resample::ResampleError| TtsError(format!("resampling {rate} Hz audio: {e}"));
    let mut resampler = ChunkResampler::new(rate, OUTPUT_RATE).map_err(err)?;
    let mut out = Vec::with_capacity(pcm.len() * OUTPUT_RATE as usize / rate.max(1) as usize + 1);
    resampler.push(&pcm, &mut out).map_err(err)?;
    resampler.finish(&mut out).map_err(err)?;
    Ok(out)
}

/// Decodes little-endian PCM16 that arrives in chunks of any length: a network chunk may end
/// in the middle of a sample, whose first byte waits for the next chunk.
#[derive(Debug, Default)]
pub struct Pcm16Le {
    carry: Option<u8>,
}

impl Pcm16Le {
    /// Appends every whole sample `bytes` completes to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<i16>) {
        if let (Some(low), Some((&high, rest))) = (self.carry, bytes.split_first()) {
            out.push(i16::from_le_bytes([low, high]));
            self.carry = None;
            bytes = rest;
        }
        let pairs = bytes.chunks_exact(2);
        self.carry = pairs.remainder().first().copied();
        out.extend(pairs.map(|b| i16::from_le_bytes([b[0], b[1]])));
    }

    /// Whether half a sample is still waiting: at the end of a stream, a truncated body.
    pub fn has_partial_sample(&self) -> bool {
        self.carry.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_samples_split_across_chunks() {
        let samples: Vec<i16> = vec![1, -2, 300, -32768, 32767, 0x1234];
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        for split in [1, 3, 5, 7] {
            let mut pcm = Pcm16Le::default();
            let mut out = Vec::new();
            for chunk in bytes.chunks(split) {
                pcm.push(chunk, &mut out);
            }
            assert_eq!(out, samples, "chunks of {split}");
            assert!(!pcm.has_partial_sample());
        }
        let mut pcm = Pcm16Le::default();
        let mut out = Vec::new();
        pcm.push(&bytes[..3], &mut out);
        assert_eq!(out, vec![1]);
        assert!(pcm.has_partial_sample());
    }

    #[test]
    fn resamples_a_tone_keeping_length_and_level() {
        let rate = 22_050;
        let tone: Vec<f32> = (0..rate)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect();
        let out = to_internal_rate(&tone, rate as u32).unwrap();
        assert_eq!(out.len(), 16_000);
        let peak = out[2000..14000]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((15_500..=17_000).contains(&peak), "peak {peak}");
        // 440 Hz: about 880 zero crossings per second.
        let crossings = out.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((860..=900).contains(&crossings), "{crossings}");
    }

    #[test]
    fn clamps_and_passes_16k_through() {
        assert_eq!(
            to_internal_rate(&[2.0, -2.0, 0.0], 16_000).unwrap(),
            vec![32767, -32768, 0]
        );
        assert!(to_internal_rate(&[], 22_050).unwrap().is_empty());
    }
}
