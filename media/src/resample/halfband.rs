//! Half-band polyphase FIR for the 2:1 telephone conversions, 8 ↔ 16 kHz.
//!
//! Every phone call converts each frame both ways, and rubato's FFT resampler made that ~15 %
//! of the engine's CPU. A half-band low-pass (cutoff at a quarter of the 16 kHz rate) has
//! every other tap zero except the centre, and is symmetric, so each output costs `PAIRS`
//! multiplies of summed sample pairs; the zero-stuffed or discarded samples are never computed.

/// Nonzero taps on each side of the centre; the filter is `4 * K + 3` taps long.
const K: usize = 15;
/// Filter length at 16 kHz. `(TAPS - 1) / 2` is odd, so the centre falls on an 8 kHz sample
/// and both directions have a whole-sample delay at the output rate.
const TAPS: usize = 4 * K + 3;
const CENTRE: usize = (TAPS - 1) / 2;
const PAIRS: usize = K + 1;
/// Kaiser β for ~75 dB ripple/rejection: passband to 3.4 kHz, stopband from 4.6 kHz.
const BETA: f64 = 7.3;
/// One 20 ms frame at 16 kHz, the larger side of either direction.
const MAX_IN: usize = 320;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// 8 → 16 kHz.
    Up,
    /// 16 → 8 kHz.
    Down,
}

/// A 2:1 resampler carrying its filter history across calls; allocation-free per call.
pub(super) struct HalfBand {
    direction: Direction,
    /// Coefficients for the sample pairs mirrored about the window centre, outermost first.
    pairs: [f32; PAIRS],
    /// The last `history()` inputs, then the current input, in i16 units.
    buf: [f32; TAPS - 2 + MAX_IN],
}

impl HalfBand {
    pub(super) fn new(direction: Direction) -> Self {
        // Upsampling zero-stuffs, so its taps carry a gain of 2 to keep DC at unity.
        let gain = match direction {
            Direction::Up => 2.0,
            Direction::Down => 1.0,
        };
        let side = side_taps();
        HalfBand {
            direction,
            pairs: side.map(|h| (h * gain) as f32),
            buf: [0.0; TAPS - 2 + MAX_IN],
        }
    }

    /// Output samples by which the output lags the input: the filter's group delay,
    /// `CENTRE` samples at 16 kHz.
    pub(super) fn delay_samples(&self) -> usize {
        match self.direction {
            Direction::Up => CENTRE,
            Direction::Down => CENTRE / 2,
        }
    }

    /// Inputs kept from the previous call: the window length minus one new sample
    /// (minus two when downsampling, which consumes inputs two at a time).
    fn history(&self) -> usize {
        match self.direction {
            Direction::Up => PAIRS * 2 - 1,
            Direction::Down => TAPS - 2,
        }
    }

    /// Resamples `input` into `output`, which must be twice (up) or half (down) as long.
    pub(super) fn process(&mut self, input: &[i16], output: &mut [i16]) {
        let hist = self.history();
        assert!(input.len() <= MAX_IN, "input longer than 20 ms at 16 kHz");
        for (b, &s) in self.buf[hist..].iter_mut().zip(input) {
            *b = f32::from(s);
        }
        let buf = &self.buf[..hist + input.len()];
        match self.direction {
            Direction::Up => {
                debug_assert_eq!(output.len(), input.len() * 2);
                let windows = buf.windows(PAIRS * 2);
                for (out, w) in output.chunks_exact_mut(2).zip(windows) {
                    out[0] = to_i16(mirrored_sum(&self.pairs, w, 1));
                    // The centre tap lands here and every other nonzero tap on zero stuffing.
                    out[1] = to_i16(w[K + 1]);
                }
            }
            Direction::Down => {
                debug_assert_eq!(output.len() * 2, input.len());
                // Only every second filter output is kept: the one centred on an even input,
                // so the result lines up with the 8 kHz grid.
                for (out, w) in output.iter_mut().zip(buf.windows(TAPS).step_by(2)) {
                    *out = to_i16(0.5 * w[CENTRE] + mirrored_sum(&self.pairs, w, 2));
                }
            }
        }
        self.buf.copy_within(input.len()..input.len() + hist, 0);
    }

    /// Forgets the history, as if newly constructed.
    pub(super) fn reset(&mut self) {
        self.buf.fill(0.0);
    }
}

/// Σ pairs[i] · (w[i·stride] + w[last − i·stride]), using the filter's symmetry.
#[inline(always)]
fn mirrored_sum(pairs: &[f32; PAIRS], w: &[f32], stride: usize) -> f32 {
    let last = w.len() - 1;
    pairs
        .iter()
        .enumerate()
        .map(|(i, &h)| h * (w[i * stride] + w[last - i * stride]))
        .sum()
}

/// Rounds and clips like `to_pcm`: `as` saturates at full scale.
#[inline(always)]
fn to_i16(sample: f32) -> i16 {
    sample.round() as i16
}

/// The nonzero taps on one side of the centre, outermost first, at offsets
/// 2K+1, 2K−1, …, 1: a windowed sinc with cutoff at a quarter of the rate, normalised so the
/// whole filter (centre 0.5 plus both sides) has unity gain at DC.
fn side_taps() -> [f64; PAIRS] {
    let mut taps = [0.0; PAIRS];
    for (i, tap) in taps.iter_mut().enumerate() {
        let offset = (CENTRE - 2 * i) as f64;
        let sinc = (std::f64::consts::FRAC_PI_2 * offset).sin() / (std::f64::consts::PI * offset);
        let x = offset / CENTRE as f64;
        *tap = sinc * bessel_i0(BETA * (1.0 - x * x).sqrt()) / bessel_i0(BETA);
    }
    let sum: f64 = taps.iter().sum();
    taps.map(|t| t * 0.25 / sum)
}

/// Modified Bessel function of the first kind, order 0 (power series), for the Kaiser window.
fn bessel_i0(x: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic broadband test signal (an LCG), in i16 range.
    fn noise(len: usize) -> Vec<i16> {
        let mut state = 12_345u32;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 16) as i16
            })
            .collect()
    }

    fn run(direction: Direction, input: &[i16], chunk: usize) -> Vec<i16> {
        let mut hb = HalfBand::new(direction);
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            let mut o = match direction {
                Direction::Up => vec![0; piece.len() * 2],
                Direction::Down => vec![0; piece.len() / 2],
            };
            hb.process(piece, &mut o);
            out.extend_from_slice(&o);
        }
        out
    }

    #[test]
    fn output_does_not_depend_on_how_the_input_is_split() {
        let input = noise(3_200);
        for direction in [Direction::Up, Direction::Down] {
            let whole = run(direction, &input, MAX_IN);
            for chunk in [2, 160, 318] {
                assert_eq!(run(direction, &input, chunk), whole, "chunks of {chunk}");
            }
        }
    }

    #[test]
    fn dc_passes_at_unity_gain_and_reset_forgets_it() {
        for direction in [Direction::Up, Direction::Down] {
            let out = run(direction, &[10_000; 640], 160);
            assert!(
                out[TAPS..].iter().all(|&s| s == 10_000),
                "settled DC output {:?}",
                &out[TAPS..TAPS + 4]
            );
            let mut hb = HalfBand::new(direction);
            let mut scratch = [0; 640];
            let out_len = match direction {
                Direction::Up => 320,
                Direction::Down => 80,
            };
            hb.process(&[10_000; 160], &mut scratch[..out_len]);
            hb.reset();
            hb.process(&[0; 160], &mut scratch[..out_len]);
            assert!(scratch[..out_len].iter().all(|&s| s == 0));
        }
    }
}
