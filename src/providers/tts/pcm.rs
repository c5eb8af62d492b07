//! Engines synthesise at their own rate (Piper and espeak-ng: 22,050 Hz); the engine's
//! internal rate is 16 kHz PCM16.

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

#[cfg(test)]
mod tests {
    use super::*;

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
