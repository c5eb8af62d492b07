//! Whisper's mel filterbank: 80 triangular Slaney-scale filters over the 201 bins of a 400-point
//! FFT at 16 kHz, area-normalised (what librosa computes with `htk=False, norm="slaney"`).
//! The packaged CTranslate2 model does not carry it, and whisper.cpp reads it from the file.

pub const SAMPLE_RATE: f64 = 16_000.0;
pub const N_FFT: usize = 400;
pub const N_MELS: usize = 80;
/// Bins of a real FFT of `N_FFT` points.
pub const N_BINS: usize = N_FFT / 2 + 1;

// The Slaney scale is linear below 1 kHz (200/3 Hz per mel) and logarithmic above it.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// The filterbank, row-major `N_MELS × N_BINS`.
pub fn filterbank() -> Vec<f32> {
    let nyquist = SAMPLE_RATE / 2.0;
    let bin_hz: Vec<f64> = (0..N_BINS)
        .map(|k| k as f64 * nyquist / (N_BINS - 1) as f64)
        .collect();
    // N_MELS + 2 edges, equally spaced in mel between 0 Hz and Nyquist.
    let top = hz_to_mel(nyquist);
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(top * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let mut bank = vec![0f32; N_MELS * N_BINS];
    for m in 0..N_MELS {
        let (lo, centre, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        // Slaney normalisation: every filter has the same area.
        let norm = 2.0 / (hi - lo);
        for (k, &f) in bin_hz.iter().enumerate() {
            let rising = (f - lo) / (centre - lo);
            let falling = (hi - f) / (hi - centre);
            let w = rising.min(falling).max(0.0);
            bank[m * N_BINS + k] = (w * norm) as f32;
        }
    }
    bank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_round_trips_and_is_linear_below_1khz() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6, "{hz}");
        }
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn filters_are_ordered_triangles_of_equal_area() {
        let bank = filterbank();
        assert_eq!(bank.len(), N_MELS * N_BINS);
        assert!(bank.iter().all(|w| *w >= 0.0 && w.is_finite()));
        let bin_hz = SAMPLE_RATE / N_FFT as f64;
        let mut last_peak = 0;
        for m in 0..N_MELS {
            let row = &bank[m * N_BINS..(m + 1) * N_BINS];
            let peak = (0..N_BINS)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap();
            assert!(row[peak] > 0.0, "filter {m} is empty");
            assert!(
                peak >= last_peak,
                "filter {m} peaks before filter {}",
                m.max(1) - 1
            );
            last_peak = peak;
            // Each triangle integrates to about 1 (area normalisation) once multiplied by the
            // bin spacing; coarse low filters deviate most.
            let area: f64 = row.iter().map(|w| *w as f64 * bin_hz).sum();
            assert!((area - 1.0).abs() < 0.35, "filter {m} area {area}");
        }
        // Worked by hand from the definition: the first filter spans 0–74.5 Hz and peaks at
        // 37.2 Hz, so bin 1 (40 Hz) sits on its falling edge: 0.926 × 2 / 74.5 Hz.
        assert!((bank[1] - 0.024_86).abs() < 1e-4, "{}", bank[1]);
        assert!(bank[(N_MELS - 1) * N_BINS + N_BINS - 2] > 0.0);
    }
}
