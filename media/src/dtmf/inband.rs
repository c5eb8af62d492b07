//! In-band DTMF detection with the Goertzel algorithm, for carriers that pass digits as
//! audio. A digit is reported when the same row/column tone pair dominates two consecutive
//! 20 ms frames (ITU-T Q.24 tones last at least 40 ms), and once per key press.

use crate::frame::Frame;

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Share of the frame's energy the two tones must hold (rejects speech and music).
const MIN_TONE_SHARE: f32 = 0.7;
/// Largest allowed level difference between the two tones (twist), as a power ratio (8 dB).
const MAX_TWIST: f32 = 6.3;
/// Quietest mean power per sample accepted, relative to full scale squared (-40 dBFS).
const MIN_POWER: f32 = 1e-4;

/// Detects DTMF digits in a stream of 20 ms frames at one rate.
#[derive(Debug, Clone)]
pub struct ToneDetector {
    rate: u32,
    row_coeffs: [f32; 4],
    col_coeffs: [f32; 4],
    candidate: Option<char>,
    reported: Option<char>,
}

fn coeff(freq: f32, rate: u32) -> f32 {
    // Evaluated at the exact tone frequency rather than the nearest 50 Hz bin: several DTMF
    // tones sit nearly half a bin off, which would cost them half their power.
    2.0 * (2.0 * std::f32::consts::PI * freq / rate as f32).cos()
}

/// Power of one Goertzel bin over `samples` (normalised to full scale = 1.0).
fn goertzel(samples: &[i16], coeff: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = f32::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

impl ToneDetector {
    /// A detector for frames at `rate` Hz (8000 or 16000 are typical).
    pub fn new(rate: u32) -> Self {
        ToneDetector {
            rate,
            row_coeffs: ROWS.map(|f| coeff(f, rate)),
            col_coeffs: COLS.map(|f| coeff(f, rate)),
            candidate: None,
            reported: None,
        }
    }

    /// Feeds one frame; returns a digit the first time a key press is confirmed.
    pub fn process(&mut self, frame: &Frame) -> Option<char> {
        let seen = if frame.rate() == self.rate {
            self.classify(frame.samples())
        } else {
            None
        };
        let confirmed = seen.is_some() && seen == self.candidate;
        self.candidate = seen;
        if seen.is_none() {
            self.reported = None;
        }
        if confirmed && self.reported != seen {
            self.reported = seen;
            return seen;
        }
        None
    }

    /// The key whose tone pair dominates this frame, if any.
    fn classify(&self, samples: &[i16]) -> Option<char> {
        let n = samples.len() as f32;
        let energy: f32 = samples
            .iter()
            .map(|&x| {
                let v = f32::from(x) / 32768.0;
                v * v
            })
            .sum();
        if energy / n < MIN_POWER {
            return None;
        }
        let strongest = |coeffs: &[f32; 4]| {
            let mut best = (0usize, 0.0f32);
            for (i, &c) in coeffs.iter().enumerate() {
                let p = goertzel(samples, c);
                if p > best.1 {
                    best = (i, p);
                }
            }
            best
        };
        let (row, row_power) = strongest(&self.row_coeffs);
        let (col, col_power) = strongest(&self.col_coeffs);
        // A bin's power is (A·N/2)²; 2·P/N is the energy that sinusoid carries in the frame.
        let tone_energy = 2.0 * (row_power + col_power) / n;
        let twist_ok = row_power <= col_power * MAX_TWIST && col_power <= row_power * MAX_TWIST;
        (tone_energy >= MIN_TONE_SHARE * energy && twist_ok).then_some(KEYS[row][col])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, f1: f32, f2: f32, ms: usize, amplitude: f32) -> Vec<i16> {
        let n = rate as usize / 1000 * ms;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let two_pi = 2.0 * std::f32::consts::PI;
                (amplitude * 0.5 * ((two_pi * f1 * t).sin() + (two_pi * f2 * t).sin()) * 32767.0)
                    as i16
            })
            .collect()
    }

    fn detect(rate: u32, pcm: &[i16]) -> String {
        let mut detector = ToneDetector::new(rate);
        let per = Frame::samples_per_frame(rate);
        pcm.chunks_exact(per)
            .filter_map(|c| detector.process(&Frame::from_slice(rate, c).unwrap()))
            .collect()
    }

    #[test]
    fn finds_the_digits_in_sox_generated_tones_with_noise() {
        let path = format!(
            "{}/../fixtures/media/dtmf_digits_noisy.wav",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut reader = hound::WavReader::open(path).unwrap();
        let pcm: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(detect(8_000, &pcm), "1597#0");
    }

    #[test]
    fn works_at_16_khz_and_reports_a_held_key_once() {
        let mut pcm = tone(16_000, 941.0, 1209.0, 400, 0.5);
        pcm.extend(vec![0; 1_600]);
        pcm.extend(tone(16_000, 941.0, 1209.0, 60, 0.5));
        assert_eq!(detect(16_000, &pcm), "**");
    }

    #[test]
    fn single_tones_chords_and_too_short_blips_are_not_digits() {
        // One tone alone (a dial tone component), a 3-note chord, a 20 ms blip.
        assert_eq!(detect(8_000, &tone(8_000, 697.0, 697.0, 200, 0.5)), "");
        let mut chord = tone(8_000, 262.0, 330.0, 200, 0.5);
        for (s, t) in chord.iter_mut().zip(tone(8_000, 392.0, 392.0, 200, 0.3)) {
            *s = s.saturating_add(t);
        }
        assert_eq!(detect(8_000, &chord), "");
        assert_eq!(detect(8_000, &tone(8_000, 770.0, 1336.0, 20, 0.5)), "");
    }
}
