//! DTMF key sequences and their in-band tones (ITU-T Q.23), for sending keys on carriers that
//! only carry audio. Each key sounds its row and column tones for `TONE_MS`, then stays
//! silent for `GAP_MS` so a repeated key is heard twice; `w` is a `PAUSE_MS` pause. Samples
//! are generated straight into the caller's buffer: no allocation.

use thiserror::Error;

/// How long each key's tones sound.
pub const TONE_MS: u32 = 100;
/// Silence after each key.
pub const GAP_MS: u32 = 100;
/// What `w` waits.
pub const PAUSE_MS: u32 = 500;
/// The pause character.
pub const PAUSE: char = 'w';
/// Longest sequence, pauses included.
pub const MAX_SEQUENCE: usize = 32;

const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[u8; 4]; 4] = [*b"123A", *b"456B", *b"789C", *b"*0#D"];

/// Peak of each of the two tones: -10 dBFS, so the pair peaks at -4 dBFS without clipping.
const TONE_PEAK: f64 = 0.316_227_77 * 32_767.0;
/// Raised-cosine fade at both ends of a tone: a hard edge splatters energy across the band,
/// into other keys' frequencies.
const RAMP_MS: u32 = 4;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SequenceError {
    #[error("no keys to send")]
    Empty,
    #[error("{0:?} is not a DTMF key (0-9, *, #, A-D) or a pause (w)")]
    NotAKey(char),
    #[error("{0} keys and pauses; at most {MAX_SEQUENCE} fit one sequence")]
    TooLong(usize),
}

/// The row and column frequencies (Hz) of a key.
pub fn frequencies(key: char) -> Option<(f64, f64)> {
    let byte = u8::try_from(key).ok()?.to_ascii_uppercase();
    KEYS.iter().enumerate().find_map(|(row, keys)| {
        keys.iter()
            .position(|&k| k == byte)
            .map(|col| (ROWS[row], COLS[col]))
    })
}

/// A checked sequence of keys (`0-9 * # A-D`, upper case) and pauses (`w`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeySequence {
    keys: [u8; MAX_SEQUENCE],
    len: usize,
}

impl std::fmt::Debug for KeySequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySequence({:?})", self.as_str())
    }
}

impl KeySequence {
    /// Reads `text`: keys in either case, `w`/`W` for a pause, nothing else.
    pub fn parse(text: &str) -> Result<Self, SequenceError> {
        let count = text.chars().count();
        if count == 0 {
            return Err(SequenceError::Empty);
        }
        if count > MAX_SEQUENCE {
            return Err(SequenceError::TooLong(count));
        }
        let mut keys = [0u8; MAX_SEQUENCE];
        for (slot, c) in keys.iter_mut().zip(text.chars()) {
            *slot = match c {
                'w' | 'W' => b'w',
                c if frequencies(c).is_some() => c.to_ascii_uppercase() as u8,
                other => return Err(SequenceError::NotAKey(other)),
            };
        }
        Ok(KeySequence { keys, len: count })
    }

    /// The sequence as text (`1w23#`).
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.keys[..self.len]).unwrap_or("")
    }

    /// Keys and pauses in order.
    pub fn chars(&self) -> impl Iterator<Item = char> + '_ {
        self.keys[..self.len].iter().map(|&b| char::from(b))
    }

    /// How long the sequence takes to play, gaps and pauses included.
    pub fn duration_ms(&self) -> u32 {
        self.chars().map(step_ms).sum()
    }

    /// Its length in samples at `rate`.
    pub fn samples(&self, rate: u32) -> usize {
        self.chars().map(|c| step_samples(c, rate)).sum()
    }
}

/// The time one key (tone and gap) or pause takes.
pub fn step_ms(key: char) -> u32 {
    if key == PAUSE {
        PAUSE_MS
    } else {
        TONE_MS + GAP_MS
    }
}

fn step_samples(key: char, rate: u32) -> usize {
    (u64::from(step_ms(key)) * u64::from(rate) / 1000) as usize
}

/// Generates the tones of a sequence at one rate, in pieces of any size.
#[derive(Debug, Clone)]
pub struct DtmfTones {
    keys: KeySequence,
    rate: u32,
    /// The key being played and the sample reached within its step.
    index: usize,
    position: usize,
}

impl DtmfTones {
    pub fn new(keys: KeySequence, rate: u32) -> Self {
        DtmfTones {
            keys,
            rate: rate.max(1),
            index: 0,
            position: 0,
        }
    }

    /// Whether every key has been played.
    pub fn is_done(&self) -> bool {
        self.index >= self.keys.len
    }

    /// Writes the next samples of the sequence into `out`; returns how many it wrote (fewer
    /// than `out.len()` only at the end, 0 once done). Unwritten samples are left as they were.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        while written < out.len() && !self.is_done() {
            let key = char::from(self.keys.keys[self.index]);
            let step = step_samples(key, self.rate);
            let take = (step - self.position).min(out.len() - written);
            let slot = &mut out[written..written + take];
            match frequencies(key) {
                Some((low, high)) => self.tone(low, high, slot),
                None => slot.fill(0),
            }
            written += take;
            self.position += take;
            if self.position >= step {
                self.index += 1;
                self.position = 0;
            }
        }
        written
    }

    /// The key's samples from `self.position` on: both tones, then the gap's silence.
    fn tone(&self, low: f64, high: f64, out: &mut [i16]) {
        let rate = f64::from(self.rate);
        let tone_len = (u64::from(TONE_MS) * u64::from(self.rate) / 1000) as usize;
        let ramp = ((u64::from(RAMP_MS) * u64::from(self.rate) / 1000) as usize).max(1);
        let tau = std::f64::consts::TAU;
        for (i, sample) in out.iter_mut().enumerate() {
            let n = self.position + i;
            if n >= tone_len {
                *sample = 0;
                continue;
            }
            let edge = n.min(tone_len - 1 - n);
            let envelope = if edge < ramp {
                0.5 - 0.5 * (std::f64::consts::PI * edge as f64 / ramp as f64).cos()
            } else {
                1.0
            };
            // Phase from the sample index (not accumulated) keeps both tones exact.
            let t = n as f64 / rate;
            let value = ((tau * low * t).sin() + (tau * high * t).sin()) * TONE_PEAK * envelope;
            *sample = value.round() as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::ToneDetector;
    use crate::frame::Frame;

    fn render(keys: &str, rate: u32) -> Vec<i16> {
        let keys = KeySequence::parse(keys).unwrap();
        let mut pcm = vec![0i16; keys.samples(rate)];
        let mut tones = DtmfTones::new(keys, rate);
        assert_eq!(tones.fill(&mut pcm), pcm.len());
        assert!(tones.is_done());
        pcm
    }

    /// Amplitude (full scale = 1.0) of the `freq` component of `samples`, through a Hann
    /// window so that neighbouring tones do not leak into the measurement.
    fn amplitude(samples: &[i16], freq: f64, rate: u32) -> f64 {
        let n = samples.len();
        let coeff = 2.0 * (std::f64::consts::TAU * freq / f64::from(rate)).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        let mut window_sum = 0.0;
        for (i, &x) in samples.iter().enumerate() {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
            window_sum += w;
            let s0 = f64::from(x) / 32_768.0 * w + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.sqrt() / window_sum
    }

    #[test]
    fn each_key_holds_its_two_tones_at_minus_10_dbfs_and_no_other() {
        let all: Vec<f64> = ROWS.iter().chain(COLS.iter()).copied().collect();
        for rate in [8_000, 16_000] {
            for key in "0123456789*#ABCD".chars() {
                let pcm = render(&key.to_string(), rate);
                let tone_len = (TONE_MS * rate / 1000) as usize;
                assert!(pcm[tone_len..].iter().all(|&s| s == 0), "{key}: gap");
                let (low, high) = frequencies(key).unwrap();
                for &freq in &all {
                    let level = 20.0 * amplitude(&pcm[..tone_len], freq, rate).log10();
                    if freq == low || freq == high {
                        // The fades take a little off the top.
                        assert!(
                            (-11.5..=-9.5).contains(&level),
                            "{key} {freq} Hz: {level:.1} dBFS"
                        );
                    } else {
                        assert!(
                            level < -45.0,
                            "{key} at {rate} Hz leaks {level:.1} dBFS at {freq} Hz"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_detector_hears_the_sequence_repeats_and_pauses_included() {
        for rate in [8_000, 16_000] {
            let pcm = render("123A456B789C*0#D11w5", rate);
            let mut detector = ToneDetector::new(rate);
            let per = Frame::samples_per_frame(rate);
            let heard: String = pcm
                .chunks_exact(per)
                .filter_map(|c| detector.process(&Frame::from_slice(rate, c).unwrap()))
                .collect();
            assert_eq!(heard, "123A456B789C*0#D115", "at {rate} Hz");
        }
    }

    #[test]
    fn pieces_of_any_size_make_the_same_audio() {
        let whole = render("9w#", 16_000);
        let keys = KeySequence::parse("9w#").unwrap();
        assert_eq!(keys.duration_ms(), 200 + 500 + 200);
        assert_eq!(whole.len(), keys.samples(16_000));
        let mut tones = DtmfTones::new(keys, 16_000);
        let mut pieces = Vec::new();
        let mut buf = [7i16; 333];
        loop {
            let n = tones.fill(&mut buf);
            if n == 0 {
                break;
            }
            pieces.extend_from_slice(&buf[..n]);
        }
        assert_eq!(pieces, whole);
        let mut after = [7i16; 4];
        assert_eq!(tones.fill(&mut after), 0);
        assert_eq!(after, [7; 4], "past the end nothing is written");
    }

    #[test]
    fn sequences_are_checked_and_normalised() {
        assert_eq!(KeySequence::parse("1a*W#d").unwrap().as_str(), "1A*w#D");
        assert_eq!(KeySequence::parse(""), Err(SequenceError::Empty));
        assert_eq!(KeySequence::parse("12x"), Err(SequenceError::NotAKey('x')));
        assert_eq!(KeySequence::parse("1 2"), Err(SequenceError::NotAKey(' ')));
        assert_eq!(KeySequence::parse("1é"), Err(SequenceError::NotAKey('é')));
        let long = "1".repeat(MAX_SEQUENCE + 1);
        assert_eq!(
            KeySequence::parse(&long),
            Err(SequenceError::TooLong(MAX_SEQUENCE + 1))
        );
        assert!(KeySequence::parse(&long[1..]).is_ok());
        assert_eq!(frequencies('5'), Some((770.0, 1336.0)));
        assert_eq!(frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(frequencies('w'), None);
    }
}
