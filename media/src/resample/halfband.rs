//! Half-band polyphase FIR for the 2:1 telephone conversions, 8 ↔ 16 kHz.
//!
//! Every phone call converts each frame both ways, and rubato's FFT resampler made that ~15 %
//! of the engine's CPU. A half-band low-pass (cutoff at a quarter of the 16 kHz rate) has
//! every other tap zero except the centre, and is symmetric, so each output costs `PAIRS`
//! multiplies of summed sample pairs; the zero-stuffed or discarded samples are never computed.

/// Sets the length: `4 * K + 3` taps, `K + 1` of them nonzero on each side of the centre.
const K: usize = 15;
/// Filter length at 16 kHz. `(TAPS - 1) / 2` is odd, so the centre falls on an 8 kHz sample
/// and both directions have a whole-sample delay at the output rate.
const TAPS: usize = 4 * K + 3;
const CENTRE: usize = (TAPS - 1) / 2;
const PAIRS: usize = K + 1;
/// Kaiser β for ~75 dB ripple/rejection: passband to 3.4 kHz, stopband from 4.6 kHz.
const BETA: f64 = 7.3;
/// One 20 ms frame at 8 kHz: the input when upsampling, the output when downsampling.
const MAX_HALF: usize = 160;
/// Span between the outermost pair's two samples, in the sequence the pairs are taken from.
const SPAN: usize = 2 * K + 1;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// 8 → 16 kHz.
    Up,
    /// 16 → 8 kHz.
    Down,
}

/// A 2:1 resampler carrying its filter history across calls; allocation-free per call.
///
/// Both directions reduce to `acc[j] = Σ pairs[i] · (a[j + i] + a[j + SPAN − i])` over one
/// polyphase sequence `a`, computed tap by tap across the whole frame so it vectorises.
pub(super) struct HalfBand {
    direction: Direction,
    /// Coefficients for the sample pairs mirrored about the centre, outermost first.
    pairs: [f32; PAIRS],
    /// Up: the 8 kHz input. Down: the odd-numbered 16 kHz inputs. The last `SPAN` samples
    /// of the previous call, then this call's, in i16 units.
    seq: [f32; SPAN + MAX_HALF],
    /// Down only: the even-numbered inputs, which meet the centre tap; the last `K`, then
    /// this call's.
    even: [f32; K + MAX_HALF],
    /// The history is all zeros, so silence in is silence out without filtering: the agent
    /// is quiet much of a call, and its silence is digital.
    quiet: bool,
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
            seq: [0.0; SPAN + MAX_HALF],
            even: [0.0; K + MAX_HALF],
            quiet: true,
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

    /// Resamples `input` into `output`, which must be twice (up) or half (down) as long;
    /// at most 20 ms at 8 kHz on the 8 kHz side.
    pub(super) fn process(&mut self, input: &[i16], output: &mut [i16]) {
        let silent = input.iter().all(|&s| s == 0);
        if silent && self.quiet {
            output.fill(0);
            return;
        }
        // Zeros reaching past the filter's span leave nothing else in the history.
        self.quiet = silent && input.len().min(output.len()) >= SPAN;
        let mut acc = [0.0f32; MAX_HALF];
        match self.direction {
            Direction::Up => {
                let n = input.len();
                assert!(n <= MAX_HALF && output.len() == 2 * n);
                for (a, &s) in self.seq[SPAN..].iter_mut().zip(input) {
                    *a = f32::from(s);
                }
                mirrored_sums(&self.pairs, &self.seq[..SPAN + n], &mut acc[..n]);
                // Even outputs are the filtered phase; on odd ones the centre tap lands on
                // an input sample and every other nonzero tap on zero stuffing.
                let delayed = &self.seq[K + 1..];
                for ((out, &a), &d) in output.chunks_exact_mut(2).zip(&acc).zip(delayed) {
                    out[0] = to_i16(a);
                    out[1] = to_i16(d);
                }
                self.seq.copy_within(n..n + SPAN, 0);
            }
            Direction::Down => {
                let n = output.len();
                assert!(n <= MAX_HALF && input.len() == 2 * n);
                // Only the outputs centred on even inputs are computed, so the result lines
                // up with the 8 kHz grid; their side taps all fall on odd inputs.
                let fresh = self.seq[SPAN..].iter_mut().zip(&mut self.even[K..]);
                for ((odd, even), pair) in fresh.zip(input.chunks_exact(2)) {
                    *even = f32::from(pair[0]);
                    *odd = f32::from(pair[1]);
                }
                for (a, &e) in acc.iter_mut().zip(&self.even[..n]) {
                    *a = 0.5 * e;
                }
                mirrored_sums(&self.pairs, &self.seq[..SPAN + n], &mut acc[..n]);
                for (out, &a) in output.iter_mut().zip(&acc) {
                    *out = to_i16(a);
                }
                self.seq.copy_within(n..n + SPAN, 0);
                self.even.copy_within(n..n + K, 0);
            }
        }
    }

    /// Forgets the history, as if newly constructed.
    pub(super) fn reset(&mut self) {
        self.seq.fill(0.0);
        self.even.fill(0.0);
        self.quiet = true;
    }
}

/// Adds Σ pairs[i] · (seq[j + i] + seq[j + SPAN − i]) to each `acc[j]`, using the symmetry.
fn mirrored_sums(pairs: &[f32; PAIRS], seq: &[f32], acc: &mut [f32]) {
    let n = acc.len();
    for (i, &h) in pairs.iter().enumerate() {
        let (near, far) = (&seq[i..i + n], &seq[SPAN - i..SPAN - i + n]);
        for ((a, &x), &y) in acc.iter_mut().zip(near).zip(far) {
            *a += h * (x + y);
        }
    }
}

/// Rounds half away from zero and clips like `to_pcm` (`as` saturates at full scale).
/// `f32::round` is a libm call on baseline x86-64; adding ±0.5 and truncating vectorises.
#[inline(always)]
fn to_i16(sample: f32) -> i16 {
    (sample + 0.5f32.copysign(sample)) as i16
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
            let most = match direction {
                Direction::Up => MAX_HALF,
                Direction::Down => 2 * MAX_HALF,
            };
            let whole = run(direction, &input, most);
            for chunk in [2, 98, most - 2] {
                assert_eq!(run(direction, &input, chunk), whole, "chunks of {chunk}");
            }
        }
    }

    #[test]
    fn silence_skips_the_filter_without_changing_the_output() {
        // Speech, a pause, speech: whole frames take the shortcut once a pause's first frame
        // has flushed the history; two samples at a time never do.
        let mut input = noise(3_200);
        input.extend([0; 3_200]);
        input.extend(noise(1_600));
        input.extend([0; 1_600]);
        for direction in [Direction::Up, Direction::Down] {
            let frame = match direction {
                Direction::Up => MAX_HALF,
                Direction::Down => 2 * MAX_HALF,
            };
            assert_eq!(run(direction, &input, frame), run(direction, &input, 2));
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
