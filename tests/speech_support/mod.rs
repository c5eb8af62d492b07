//! Helpers shared by the speech tests: the installed models, a telephone line (16 kHz →
//! 8 kHz μ-law → 16 kHz, through the media crate) and word overlap.

#![allow(dead_code)]

use std::path::PathBuf;

use boltcall::config::Config;
use media::g711;
use media::resample::ChunkResampler;

/// A config whose data directory is shared by the speech tests (models install once; the
/// downloads are cached in `$BOLTCALL_MODEL_CACHE`).
pub fn config() -> Config {
    Config {
        data_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("speech-data"),
        ..Config::default()
    }
}

fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    let mut r = ChunkResampler::new(from, to).unwrap();
    let mut out = Vec::new();
    r.push(samples, &mut out).unwrap();
    r.finish(&mut out).unwrap();
    out
}

/// 16 kHz audio as it comes back from a phone line: 8 kHz, G.711 μ-law, upsampled again.
pub fn through_phone_line(samples: &[i16]) -> Vec<i16> {
    let narrow = resample(samples, 16_000, 8_000);
    let mut line = vec![0u8; narrow.len()];
    g711::encode_ulaw(&narrow, &mut line).unwrap();
    let mut decoded = vec![0i16; line.len()];
    g711::decode_ulaw(&line, &mut decoded).unwrap();
    resample(&decoded, 8_000, 16_000)
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
