//! Helpers shared by the speech tests: the installed models, a telephone line (16 kHz →
//! 8 kHz μ-law → 16 kHz) and word overlap.

#![allow(dead_code)]

use std::path::PathBuf;

use boltcall::config::Config;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// A config whose data directory is shared by the speech tests (models install once; the
/// downloads are cached in `$BOLTCALL_MODEL_CACHE`).
pub fn config() -> Config {
    Config {
        data_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("speech-data"),
        ..Config::default()
    }
}

fn resample(samples: &[i16], from: usize, to: usize) -> Vec<i16> {
    let input: Vec<f32> = samples.iter().map(|s| f32::from(*s) / 32768.0).collect();
    let mut r = Fft::<f32>::new(from, to, 1024, 1, FixedSync::Input).unwrap();
    let adapter = InterleavedSlice::new(&input, 1, input.len()).unwrap();
    let mut out = vec![0f32; r.process_all_needed_output_len(input.len())];
    let len = out.len();
    let mut out_adapter = InterleavedSlice::new_mut(&mut out, 1, len).unwrap();
    let (_, produced) = r
        .process_all_into_buffer(&adapter, &mut out_adapter, input.len(), None)
        .unwrap();
    out.truncate(produced);
    out.iter()
        .map(|s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// G.711 μ-law, as a carrier encodes it.
fn mulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = (s.min(32635) + BIAS) as u32;
    let exponent = 7 - (s.leading_zeros() as i32 - 17).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | ((exponent as u32) << 4) as u8 | mantissa as u8)
}

fn mulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if b & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// 16 kHz audio as it comes back from a phone line: 8 kHz, μ-law, upsampled again.
pub fn through_phone_line(samples: &[i16]) -> Vec<i16> {
    let narrow = resample(samples, 16_000, 8_000);
    let line: Vec<i16> = narrow
        .iter()
        .map(|s| mulaw_decode(mulaw_encode(*s)))
        .collect();
    resample(&line, 8_000, 16_000)
}

pub fn rms(samples: &[i16]) -> f64 {
    let energy: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    (energy / samples.len().max(1) as f64).sqrt()
}

pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Share of `expected`'s words found in `heard` (each heard word counts once).
pub fn word_overlap(expected: &str, heard: &str) -> f64 {
    let mut heard = words(heard);
    let expected = words(expected);
    let found = expected
        .iter()
        .filter(|w| {
            heard
                .iter()
                .position(|h| h == *w)
                .map(|i| heard.swap_remove(i))
                .is_some()
        })
        .count();
    found as f64 / expected.len().max(1) as f64
}

#[test]
fn mulaw_round_trip_keeps_the_signal() {
    for s in [
        0i16,
        1,
        -1,
        100,
        -100,
        1000,
        8000,
        -8000,
        32000,
        i16::MIN,
        i16::MAX,
    ] {
        let back = mulaw_decode(mulaw_encode(s));
        let err = (i32::from(back) - i32::from(s)).abs();
        assert!(err <= (i32::from(s).abs() / 16).max(8), "{s} → {back}");
    }
}
