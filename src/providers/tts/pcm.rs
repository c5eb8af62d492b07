//! Engines synthesise at their own rate (Piper and espeak-ng: 22,050 Hz); the engine's
//! internal rate is 16 kHz PCM16.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::TtsError;

pub const OUTPUT_RATE: u32 = media::INTERNAL_RATE;

fn to_i16(sample: f32) -> i16 {
    (sample * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Resamples a whole piece of mono audio at `rate` to 16 kHz PCM16.
pub fn to_internal_rate(samples: &[f32], rate: u32) -> Result<Vec<i16>, TtsError> {
    if rate == OUTPUT_RATE || samples.is_empty() {
        return Ok(samples.iter().copied().map(to_i16).collect());
    }
    let err = |e: &dyn std::fmt::Display| TtsError(format!("resampling {rate} Hz audio: {e}"));
    let mut resampler = Fft::<f32>::new(
        rate as usize,
        OUTPUT_RATE as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|e| err(&e))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| err(&e))?;
    let mut out = vec![0f32; resampler.process_all_needed_output_len(samples.len())];
    let out_len = out.len();
    let mut output = InterleavedSlice::new_mut(&mut out, 1, out_len).map_err(|e| err(&e))?;
    let (_, produced) = resampler
        .process_all_into_buffer(&input, &mut output, samples.len(), None)
        .map_err(|e| err(&e))?;
    out.truncate(produced);
    Ok(out.into_iter().map(to_i16).collect())
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
        assert!((out.len() as i64 - 16_000).abs() <= 16, "{}", out.len());
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
