//! Sample-rate conversion: a half-band FIR for 8 ↔ 16 kHz, rubato's FFT resampler otherwise.
//!
//! `FrameResampler` turns one 20 ms frame into one 20 ms frame at another rate, carrying the
//! filter state across frames so frame boundaries never click. `ChunkResampler` handles any
//! rate pair and any chunk length (TTS output at 22,050 Hz in sentence-sized pieces).
//! Both preallocate their buffers; processing allocates nothing.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};
use thiserror::Error;

use crate::frame::{Frame, MAX_FRAME_SAMPLES};

mod halfband;

use halfband::{Direction, HalfBand};

/// Rates a `FrameResampler` accepts (20 ms of each fits in a `Frame`).
pub const FRAME_RATES: [u32; 4] = [8_000, 16_000, 24_000, 48_000];

#[derive(Debug, Error)]
pub enum ResampleError {
    #[error("unsupported frame rate {0} Hz (supported: 8000, 16000, 24000, 48000)")]
    UnsupportedRate(u32),
    #[error("frame is at {actual} Hz but the resampler expects {expected} Hz")]
    WrongInputRate { expected: u32, actual: u32 },
    #[error("resampler construction failed: {0}")]
    Construction(#[from] rubato::ResamplerConstructionError),
    #[error("resampling failed: {0}")]
    Process(#[from] rubato::ResampleError),
}

fn to_float(pcm: &[i16], out: &mut [f32]) {
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = f32::from(s) / 32768.0;
    }
}

fn to_pcm(samples: &[f32], out: &mut [i16]) {
    for (o, &s) in out.iter_mut().zip(samples) {
        // `as` saturates, so overshoot past full scale clips instead of wrapping.
        *o = (s * 32768.0).round() as i16;
    }
}

enum Engine {
    /// Equal rates: frames pass through untouched.
    Pass,
    /// 8 ↔ 16 kHz, every phone call's conversion, far cheaper than the FFT.
    HalfBand(Box<HalfBand>),
    // Boxed like `HalfBand`, so the enum stays pointer-sized.
    Fft(Box<FftFrames>),
}

/// rubato's resampler with the float buffers only it needs.
struct FftFrames {
    fft: Fft<f32>,
    input: [f32; MAX_FRAME_SAMPLES],
    output: [f32; MAX_FRAME_SAMPLES],
}

/// Converts 20 ms frames from one rate to another, one frame in, one frame out.
pub struct FrameResampler {
    from_hz: u32,
    to_hz: u32,
    engine: Engine,
}

impl FrameResampler {
    /// A resampler between two of the `FRAME_RATES`.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, ResampleError> {
        for rate in [from_hz, to_hz] {
            if !FRAME_RATES.contains(&rate) {
                return Err(ResampleError::UnsupportedRate(rate));
            }
        }
        let engine = match (from_hz, to_hz) {
            _ if from_hz == to_hz => Engine::Pass,
            (8_000, 16_000) => Engine::HalfBand(Box::new(HalfBand::new(Direction::Up))),
            (16_000, 8_000) => Engine::HalfBand(Box::new(HalfBand::new(Direction::Down))),
            _ => {
                let in_len = Frame::samples_per_frame(from_hz);
                let fft = Fft::new(from_hz as usize, to_hz as usize, in_len, 1, FixedSync::Both)?;
                debug_assert_eq!(fft.input_frames_next(), in_len);
                debug_assert_eq!(fft.output_frames_next(), Frame::samples_per_frame(to_hz));
                Engine::Fft(Box::new(FftFrames {
                    fft,
                    input: [0.0; MAX_FRAME_SAMPLES],
                    output: [0.0; MAX_FRAME_SAMPLES],
                }))
            }
        };
        Ok(FrameResampler {
            from_hz,
            to_hz,
            engine,
        })
    }

    /// Input rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// How many output samples the output lags the input by (the filter's fixed delay).
    pub fn delay_samples(&self) -> usize {
        match &self.engine {
            Engine::Pass => 0,
            Engine::HalfBand(hb) => hb.delay_samples(),
            Engine::Fft(f) => f.fft.output_delay(),
        }
    }

    /// Resamples one 20 ms frame; the result is 20 ms at the output rate.
    pub fn process(&mut self, frame: &Frame) -> Result<Frame, ResampleError> {
        if frame.rate() != self.from_hz {
            return Err(ResampleError::WrongInputRate {
                expected: self.from_hz,
                actual: frame.rate(),
            });
        }
        let FftFrames { fft, input, output } = match &mut self.engine {
            Engine::Pass => return Ok(*frame),
            Engine::HalfBand(hb) => {
                let mut out = Frame::silence(self.to_hz);
                hb.process(frame.samples(), out.samples_mut());
                return Ok(out);
            }
            Engine::Fft(f) => &mut **f,
        };
        let in_len = frame.samples().len();
        let out_len = Frame::samples_per_frame(self.to_hz);
        to_float(frame.samples(), &mut input[..in_len]);
        let input = InterleavedSlice::new(&input[..in_len], 1, in_len).map_err(|_| {
            ResampleError::WrongInputRate {
                expected: self.from_hz,
                actual: frame.rate(),
            }
        })?;
        let mut out_buf = InterleavedSlice::new_mut(&mut output[..out_len], 1, out_len)
            .map_err(|_| ResampleError::UnsupportedRate(self.to_hz))?;
        fft.process_into_buffer(&input, &mut out_buf, None)?;
        let mut out = Frame::silence(self.to_hz);
        to_pcm(&output[..out_len], out.samples_mut());
        Ok(out)
    }

    /// Forgets carried state (e.g. after a long gap), as if newly constructed.
    pub fn reset(&mut self) {
        match &mut self.engine {
            Engine::Pass => {}
            Engine::HalfBand(hb) => hb.reset(),
            Engine::Fft(f) => f.fft.reset(),
        }
    }
}

/// Roughly how many input samples a `ChunkResampler` transforms at a time (rounded up to
/// a whole number of the rate pair's smallest block).
const CHUNK_BLOCK: usize = 1024;

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// How many of the rate pair's smallest blocks make up one transform of about `CHUNK_BLOCK`
/// input samples, rounded up to an even count: rubato's FFT resampler is inaccurate with
/// odd transform sizes (22,050 → 16,000 Hz would otherwise use 441 → 320).
fn even_block_count(from_hz: u32, to_hz: u32) -> usize {
    let min_in = (from_hz / gcd(from_hz, to_hz)) as usize;
    CHUNK_BLOCK.div_ceil(min_in).next_multiple_of(2)
}

/// Resamples a stream delivered in chunks of any length between any two rates.
///
/// Output is trimmed of the filter delay, so `push` + `finish` over a whole clip yields
/// `len * to / from` samples (rounded) aligned with the input.
pub struct ChunkResampler {
    from_hz: u32,
    to_hz: u32,
    fft: Fft<f32>,
    pending: Vec<f32>,
    block_out: Vec<f32>,
    // Output samples still to discard: the filter delay at the start of the stream.
    skip: usize,
    consumed_in: u64,
    produced_out: u64,
}

impl ChunkResampler {
    /// A resampler from `from_hz` to `to_hz` (any positive rates).
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, ResampleError> {
        for rate in [from_hz, to_hz] {
            if rate == 0 {
                return Err(ResampleError::UnsupportedRate(rate));
            }
        }
        let fft = Fft::new(
            from_hz as usize,
            to_hz as usize,
            even_block_count(from_hz, to_hz) * (from_hz / gcd(from_hz, to_hz)) as usize,
            1,
            // Both sides fixed: rubato's delay is then exactly `output_delay`, which lets
            // `finish` trim the output to the input's length.
            FixedSync::Both,
        )?;
        let skip = fft.output_delay();
        Ok(ChunkResampler {
            from_hz,
            to_hz,
            pending: Vec::with_capacity(fft.input_frames_max()),
            block_out: vec![0.0; fft.output_frames_max()],
            fft,
            skip,
            consumed_in: 0,
            produced_out: 0,
        })
    }

    /// Input rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Feeds `pcm` and appends every output sample that is ready to `out`.
    pub fn push(&mut self, pcm: &[i16], out: &mut Vec<i16>) -> Result<(), ResampleError> {
        let mut rest = pcm;
        while !rest.is_empty() {
            let need = self.fft.input_frames_next() - self.pending.len();
            let take = need.min(rest.len());
            self.pending
                .extend(rest[..take].iter().map(|&s| f32::from(s) / 32768.0));
            self.consumed_in += take as u64;
            rest = &rest[take..];
            if self.pending.len() == self.fft.input_frames_next() {
                self.run_block(None, out)?;
            }
        }
        Ok(())
    }

    /// Flushes the remaining input and the filter tail; the resampler is then reset.
    pub fn finish(&mut self, out: &mut Vec<i16>) -> Result<(), ResampleError> {
        let expected = (self.consumed_in * u64::from(self.to_hz)).div_ceil(u64::from(self.from_hz));
        while self.produced_out < expected {
            let valid = self.pending.len();
            self.pending.resize(self.fft.input_frames_next(), 0.0);
            self.run_block(Some(valid), out)?;
        }
        // The last block overshoots the expected length with filtered silence.
        let extra = (self.produced_out - expected) as usize;
        out.truncate(out.len() - extra.min(out.len()));
        self.fft.reset();
        self.pending.clear();
        self.skip = self.fft.output_delay();
        self.consumed_in = 0;
        self.produced_out = 0;
        Ok(())
    }

    fn run_block(
        &mut self,
        partial: Option<usize>,
        out: &mut Vec<i16>,
    ) -> Result<(), ResampleError> {
        let in_len = self.pending.len();
        let out_len = self.fft.output_frames_next();
        let input = InterleavedSlice::new(&self.pending[..], 1, in_len)
            .map_err(|_| ResampleError::UnsupportedRate(self.from_hz))?;
        let mut output = InterleavedSlice::new_mut(&mut self.block_out[..out_len], 1, out_len)
            .map_err(|_| ResampleError::UnsupportedRate(self.to_hz))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, written) = self
            .fft
            .process_into_buffer(&input, &mut output, indexing.as_ref())?;
        self.pending.clear();
        let skip = self.skip.min(written);
        self.skip -= skip;
        let fresh = &self.block_out[skip..written];
        let start = out.len();
        out.resize(start + fresh.len(), 0);
        to_pcm(fresh, &mut out[start..]);
        self.produced_out += fresh.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// A linear chirp from `f0` to `f1` Hz over `seconds`, evaluated at time `t`.
    fn chirp(t: f64, f0: f64, f1: f64, seconds: f64) -> f64 {
        let k = (f1 - f0) / seconds;
        0.5 * (2.0 * PI * (f0 * t + 0.5 * k * t * t)).sin()
    }

    fn sweep(rate: u32, f0: f64, f1: f64, seconds: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| (chirp(i as f64 / f64::from(rate), f0, f1, seconds) * 32767.0).round() as i16)
            .collect()
    }

    /// SNR in dB of `ours` against `reference` over `range`.
    fn snr_db(ours: &[i16], reference: &[f64], range: std::ops::Range<usize>) -> f64 {
        let mut signal = 0.0;
        let mut noise = 0.0;
        for i in range {
            let r = reference[i] * 32767.0;
            signal += r * r;
            let e = f64::from(ours[i]) - r;
            noise += e * e;
        }
        10.0 * (signal / noise).log10()
    }

    /// Runs a sweep through a FrameResampler frame by frame; compares with the exact sweep
    /// evaluated at the output rate (the ideal resample), after removing the fixed delay.
    fn frame_sweep_snr(from: u32, to: u32, f0: f64, f1: f64) -> f64 {
        let seconds = 3.0;
        let input = sweep(from, f0, f1, seconds);
        let mut resampler = FrameResampler::new(from, to).unwrap();
        let delay = resampler.delay_samples();
        let mut out = Vec::new();
        for pcm in input.chunks_exact(Frame::samples_per_frame(from)) {
            let frame = Frame::from_slice(from, pcm).unwrap();
            out.extend_from_slice(resampler.process(&frame).unwrap().samples());
        }
        let aligned = &out[delay..];
        let reference: Vec<f64> = (0..aligned.len())
            .map(|i| chirp(i as f64 / f64::from(to), f0, f1, seconds))
            .collect();
        // Skip the start-up transient (filter filling from silence) at both ends.
        let margin = to as usize / 20;
        let snr = snr_db(aligned, &reference, margin..aligned.len() - margin);
        // Shown with --nocapture; recorded in BENCHMARKS.md.
        println!("{from}→{to} Hz frame-by-frame sweep {f0}–{f1} Hz: SNR {snr:.1} dB");
        snr
    }

    #[test]
    fn upsampling_8k_to_16k_keeps_telephone_band_speech_clean() {
        let snr = frame_sweep_snr(8_000, 16_000, 100.0, 3_400.0);
        assert!(snr >= 60.0, "8→16 kHz sweep SNR {snr:.1} dB");
    }

    #[test]
    fn downsampling_16k_to_8k_keeps_the_band_clean() {
        let snr = frame_sweep_snr(16_000, 8_000, 100.0, 3_400.0);
        assert!(snr >= 60.0, "16→8 kHz sweep SNR {snr:.1} dB");
    }

    #[test]
    fn wideband_conversions_are_clean() {
        for (from, to) in [(16_000, 48_000), (48_000, 16_000), (24_000, 16_000)] {
            let snr = frame_sweep_snr(from, to, 100.0, 7_000.0);
            assert!(snr >= 60.0, "{from}→{to} Hz sweep SNR {snr:.1} dB");
        }
    }

    #[test]
    fn downsampling_removes_content_above_the_new_nyquist() {
        // A 6 kHz tone at 16 kHz cannot exist at 8 kHz; it must not alias back in.
        let tone: Vec<i16> = (0..16_000)
            .map(|i| ((2.0 * PI * 6_000.0 * i as f64 / 16_000.0).sin() * 16_000.0) as i16)
            .collect();
        let mut resampler = FrameResampler::new(16_000, 8_000).unwrap();
        let mut energy = 0.0;
        for (n, pcm) in tone.chunks_exact(320).enumerate() {
            let out = resampler
                .process(&Frame::from_slice(16_000, pcm).unwrap())
                .unwrap();
            if n > 5 {
                energy += out
                    .samples()
                    .iter()
                    .map(|&s| f64::from(s).powi(2))
                    .sum::<f64>();
            }
        }
        let rms = (energy / (44.0 * 160.0)).sqrt();
        assert!(rms < 16.0, "aliased 6 kHz tone has RMS {rms:.1}");
    }

    #[test]
    fn equal_rates_pass_through_and_wrong_rates_are_errors() {
        let frame = Frame::from_slice(16_000, &[7; 320]).unwrap();
        let mut same = FrameResampler::new(16_000, 16_000).unwrap();
        assert_eq!(same.process(&frame).unwrap().samples(), frame.samples());
        let mut up = FrameResampler::new(8_000, 16_000).unwrap();
        assert!(matches!(
            up.process(&frame),
            Err(ResampleError::WrongInputRate { .. })
        ));
        assert!(matches!(
            FrameResampler::new(11_025, 16_000),
            Err(ResampleError::UnsupportedRate(11_025))
        ));
    }

    #[test]
    fn chunk_resampler_handles_odd_rates_and_chunk_sizes() {
        let (from, to) = (22_050, 16_000);
        let seconds = 2.0;
        let input = sweep(from, 100.0, 7_000.0, seconds);
        let mut resampler = ChunkResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        // Sentence-sized pieces of uneven length, including an empty one.
        let mut rest = &input[..];
        for len in [0usize, 1, 777, 5_000, 13, 10_000].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let take = (*len).min(rest.len());
            resampler.push(&rest[..take], &mut out).unwrap();
            rest = &rest[take..];
        }
        resampler.finish(&mut out).unwrap();
        let expected = (input.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
        assert_eq!(out.len(), expected);
        let reference: Vec<f64> = (0..out.len())
            .map(|i| chirp(i as f64 / f64::from(to), 100.0, 7_000.0, seconds))
            .collect();
        let margin = to as usize / 20;
        let snr = snr_db(&out, &reference, margin..out.len() - margin);
        println!("22050→16000 Hz chunked sweep 100–7000 Hz: SNR {snr:.1} dB");
        assert!(snr >= 60.0, "22.05→16 kHz chunked SNR {snr:.1} dB");
    }

    #[test]
    fn chunk_resampler_is_reusable_after_finish() {
        let mut resampler = ChunkResampler::new(24_000, 16_000).unwrap();
        let mut first = Vec::new();
        resampler.push(&[1000; 2400], &mut first).unwrap();
        resampler.finish(&mut first).unwrap();
        let mut second = Vec::new();
        resampler.push(&[1000; 2400], &mut second).unwrap();
        resampler.finish(&mut second).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 1600);
    }
}
