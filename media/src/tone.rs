//! Steady single-tone detection: an answering machine's beep, a fax machine's answer tone.
//!
//! A frame is tonal when one frequency holds most of its energy. The frequency is estimated
//! from the frame's zero crossings, then refined with a few Goertzel bins around the estimate,
//! so a frame costs a handful of passes over its samples whatever the band (a bank covering
//! 400–2200 Hz at the needed resolution would cost dozens) and nothing is allocated. A tone is
//! a run of tonal frames whose frequency stays within `max_drift_hz` of the run's first.
//!
//! Speech is rejected three ways. A voiced sound has harmonics: energy at twice the strongest
//! frequency (or at half of it, when the strongest is a harmonic) that a beep, sine or square,
//! does not have. A sung vowel glides in pitch and level from frame to frame, while a beep is
//! generated steady. And few vowels hold one frequency for the `min_ms` a beep lasts.

use crate::frame::{FRAME_MS, Frame};

/// Tuning for `SteadyToneDetector`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneConfig {
    /// Band in which a tone is looked for.
    pub min_hz: f32,
    pub max_hz: f32,
    /// Share of the frame's energy the strongest bin must hold (1.0 for a pure sine, 0.8–0.9
    /// for a band-limited square wave).
    pub min_share: f32,
    /// Most power allowed at twice or half the tone's frequency, relative to the tone's: a
    /// voiced vowel's neighbouring harmonics are well above it.
    pub max_harmonic: f32,
    /// Frames quieter than this (dBFS, full-scale square wave = 0) are never tonal.
    pub min_dbfs: f32,
    /// How far a tone's frequency and level may wander from where it started.
    pub max_drift_hz: f32,
    pub max_level_drift_db: f32,
    /// How long a tone must last before it is reported.
    pub min_ms: u32,
}

impl Default for ToneConfig {
    fn default() -> Self {
        ToneConfig {
            min_hz: 350.0,
            max_hz: 2200.0,
            min_share: 0.8,
            max_harmonic: 0.01,
            min_dbfs: -45.0,
            max_drift_hz: 15.0,
            max_level_drift_db: 3.0,
            // Five whole 20 ms frames: a 120 ms beep never straddles fewer.
            min_ms: 100,
        }
    }
}

/// What the detector saw in a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToneEvent {
    /// A tone has lasted `min_ms`; reported once per tone.
    Started { hz: f32 },
    /// A reported tone stopped, having lasted `ms`.
    Ended { hz: f32, ms: u32 },
}

/// Finds steady tones in a stream of 20 ms frames at one rate.
#[derive(Debug, Clone)]
pub struct SteadyToneDetector {
    config: ToneConfig,
    /// Frequency and level at which the current run started, and its length in frames.
    run_hz: f32,
    run_dbfs: f32,
    run_frames: u32,
    reported: bool,
}

/// Refinement grid around the zero-crossing estimate: ±`REFINE_STEPS` × `REFINE_STEP_HZ`.
const REFINE_STEPS: i32 = 5;
const REFINE_STEP_HZ: f32 = 10.0;

impl SteadyToneDetector {
    pub fn new(config: ToneConfig) -> Self {
        SteadyToneDetector {
            config,
            run_hz: 0.0,
            run_dbfs: 0.0,
            run_frames: 0,
            reported: false,
        }
    }

    /// Feeds one frame; returns an event when a tone is confirmed or a confirmed one stops.
    pub fn process(&mut self, frame: &Frame) -> Option<ToneEvent> {
        let tone = analyse(frame.samples(), frame.rate(), &self.config);
        let continues = match tone {
            Some((hz, dbfs)) => {
                self.run_frames > 0
                    && (hz - self.run_hz).abs() <= self.config.max_drift_hz
                    && (dbfs - self.run_dbfs).abs() <= self.config.max_level_drift_db
            }
            None => false,
        };
        if continues {
            self.run_frames += 1;
            if !self.reported && self.run_frames * FRAME_MS >= self.config.min_ms {
                self.reported = true;
                return Some(ToneEvent::Started { hz: self.run_hz });
            }
            return None;
        }
        let ended = self.reported.then_some(ToneEvent::Ended {
            hz: self.run_hz,
            ms: self.run_frames * FRAME_MS,
        });
        self.reported = false;
        match tone {
            Some((hz, dbfs)) => {
                self.run_hz = hz;
                self.run_dbfs = dbfs;
                self.run_frames = 1;
            }
            None => self.run_frames = 0,
        }
        ended
    }

    /// The confirmed tone in progress, as (frequency, milliseconds so far).
    pub fn current(&self) -> Option<(f32, u32)> {
        self.reported
            .then_some((self.run_hz, self.run_frames * FRAME_MS))
    }

    /// Forgets any tone in progress.
    pub fn reset(&mut self) {
        self.run_frames = 0;
        self.reported = false;
    }
}

/// The frequency and level (dBFS) of the frame's tone, if one holds `min_share` of its energy
/// without the harmonics of a voice.
fn analyse(samples: &[i16], rate: u32, config: &ToneConfig) -> Option<(f32, f32)> {
    let n = samples.len();
    if n < 2 || rate == 0 {
        return None;
    }
    let mean = samples.iter().map(|&s| f32::from(s)).sum::<f32>() / n as f32;
    let centred = |s: i16| (f32::from(s) - mean) / 32768.0;
    let mut energy = 0.0f32;
    let mut crossings = 0u32;
    let mut previous = centred(samples[0]);
    for &s in samples {
        let x = centred(s);
        energy += x * x;
        if (x >= 0.0) != (previous >= 0.0) {
            crossings += 1;
        }
        previous = x;
    }
    let dbfs = 10.0 * (energy / n as f32).max(1e-10).log10();
    if dbfs < config.min_dbfs {
        return None;
    }
    let estimate = crossings as f32 * rate as f32 / (2.0 * n as f32);
    let margin = REFINE_STEPS as f32 * REFINE_STEP_HZ;
    if estimate < config.min_hz - margin || estimate > config.max_hz + margin {
        return None;
    }
    let (mut best_hz, mut best_power) = (0.0f32, 0.0f32);
    for step in -REFINE_STEPS..=REFINE_STEPS {
        let hz = estimate + step as f32 * REFINE_STEP_HZ;
        let power = goertzel(samples, mean, hz, rate);
        if power > best_power {
            (best_hz, best_power) = (hz, power);
        }
    }
    // A pure sine of amplitude A puts |X|² = (A·n/2)² in its bin and A²·n/2 in the frame.
    let share = 2.0 * best_power / (n as f32 * energy);
    if share < config.min_share || !(config.min_hz..=config.max_hz).contains(&best_hz) {
        return None;
    }
    let harmonic = goertzel(samples, mean, 2.0 * best_hz, rate).max(goertzel(
        samples,
        mean,
        best_hz / 2.0,
        rate,
    ));
    (harmonic <= config.max_harmonic * best_power).then_some((best_hz, dbfs))
}

/// Power |X(hz)|² of the mean-removed frame, normalised to full scale = 1.0.
fn goertzel(samples: &[i16], mean: f32, hz: f32, rate: u32) -> f32 {
    let coeff = 2.0 * (2.0 * std::f32::consts::PI * hz / rate as f32).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &s in samples {
        let s0 = (f32::from(s) - mean) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::INTERNAL_RATE;

    const N: usize = 320;

    fn frames(pcm: &[i16]) -> impl Iterator<Item = Frame> + '_ {
        pcm.chunks_exact(N)
            .map(|c| Frame::from_slice(INTERNAL_RATE, c).unwrap())
    }

    fn sine(hz: f32, ms: usize, amplitude: f32) -> Vec<i16> {
        (0..ms * 16)
            .map(|i| {
                let t = i as f32 / INTERNAL_RATE as f32;
                (amplitude * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    fn noise(ms: usize, amplitude: f32, seed: u32) -> Vec<i16> {
        let mut state = seed;
        (0..ms * 16)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 16) as f32 / 65536.0 * 2.0 - 1.0) * amplitude
            })
            .map(|x| x as i16)
            .collect()
    }

    fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| x.saturating_add(y))
            .collect()
    }

    fn events(detector: &mut SteadyToneDetector, pcm: &[i16]) -> Vec<(usize, ToneEvent)> {
        frames(pcm)
            .enumerate()
            .filter_map(|(i, f)| detector.process(&f).map(|e| (i, e)))
            .collect()
    }

    #[test]
    fn a_beep_in_line_noise_is_found_with_its_frequency_and_length() {
        for hz in [440.0, 1000.0, 1400.0, 1975.0] {
            let mut pcm = noise(300, 300.0, 1);
            pcm.extend(mix(&sine(hz, 500, 8000.0), &noise(500, 300.0, 2)));
            pcm.extend(noise(300, 300.0, 3));
            let mut detector = SteadyToneDetector::new(ToneConfig::default());
            let seen = events(&mut detector, &pcm);
            assert_eq!(seen.len(), 2, "{hz} Hz: {seen:?}");
            let (start_frame, ToneEvent::Started { hz: found }) = seen[0] else {
                panic!("{seen:?}")
            };
            assert!((found - hz).abs() <= 15.0, "{hz} Hz found at {found}");
            // Confirmed 100 ms into the tone (which starts at frame 15).
            assert_eq!(start_frame, 15 + 4);
            let (end_frame, ToneEvent::Ended { ms, .. }) = seen[1] else {
                panic!("{seen:?}")
            };
            assert_eq!(end_frame, 15 + 25, "reported when the tone stops");
            assert_eq!(ms, 500);
        }
    }

    #[test]
    fn short_blips_quiet_tones_and_out_of_band_tones_are_not_beeps() {
        let config = ToneConfig::default();
        for pcm in [
            sine(1000.0, 80, 8000.0),
            sine(1000.0, 500, 100.0),
            sine(200.0, 500, 8000.0),
            sine(3000.0, 500, 8000.0),
            noise(500, 8000.0, 7),
        ] {
            let mut detector = SteadyToneDetector::new(config);
            let mut padded = pcm.clone();
            padded.extend(vec![0; 3200]);
            assert_eq!(events(&mut detector, &padded), vec![]);
            assert_eq!(detector.current(), None);
        }
    }

    #[test]
    fn a_gliding_tone_is_not_steady() {
        // A siren-like sweep from 600 to 1600 Hz over a second: 20 Hz per frame.
        let mut phase = 0.0f32;
        let pcm: Vec<i16> = (0..16_000)
            .map(|i| {
                let hz = 600.0 + 1000.0 * i as f32 / 16_000.0;
                phase += 2.0 * std::f32::consts::PI * hz / INTERNAL_RATE as f32;
                (8000.0 * phase.sin()) as i16
            })
            .collect();
        let mut detector = SteadyToneDetector::new(ToneConfig::default());
        assert_eq!(events(&mut detector, &pcm), vec![]);
    }

    #[test]
    fn a_square_beep_is_a_beep_and_a_voice_like_tone_with_harmonics_is_not() {
        // An 800 Hz square wave as a telephone line passes it: the fundamental and the third
        // harmonic (the fifth is above 3.4 kHz).
        let square = mix(&sine(800.0, 400, 7600.0), &sine(2400.0, 400, 2533.0));
        let mut detector = SteadyToneDetector::new(ToneConfig::default());
        let seen = events(&mut detector, &square);
        assert!(
            matches!(seen[..], [(_, ToneEvent::Started { hz })] if (hz - 800.0).abs() < 15.0),
            "{seen:?}"
        );
        // 500 Hz with a second harmonic 12 dB down, as a sustained vowel has.
        let voiced = mix(&sine(500.0, 400, 8000.0), &sine(1000.0, 400, 2000.0));
        let mut detector = SteadyToneDetector::new(ToneConfig::default());
        assert_eq!(events(&mut detector, &voiced), vec![]);
    }

    #[test]
    fn two_beeps_in_a_row_are_two_tones() {
        let mut pcm = sine(800.0, 200, 8000.0);
        pcm.extend(sine(1600.0, 200, 8000.0));
        pcm.extend(vec![0; 640]);
        let mut detector = SteadyToneDetector::new(ToneConfig::default());
        let seen: Vec<ToneEvent> = events(&mut detector, &pcm)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(matches!(seen[1], ToneEvent::Ended { ms: 200, .. }));
        assert!(matches!(seen[2], ToneEvent::Started { hz } if (hz - 1600.0).abs() < 15.0));
    }
}
