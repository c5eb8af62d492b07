//! Distributions for the SIP load report: a fixed-bin histogram of the gaps between the
//! engine's packets (millions of samples in a long run, so no per-packet storage) and
//! percentiles of small per-call samples.

use std::time::Duration;

/// Gaps between consecutive packets of one stream, in 0.1 ms bins up to one second.
pub struct Gaps {
    bins: Vec<u64>,
    max_us: u64,
}

impl Gaps {
    const BIN_US: u64 = 100;

    pub fn new() -> Self {
        Gaps {
            bins: vec![0; 10_001],
            max_us: 0,
        }
    }

    pub fn add(&mut self, gap: Duration) {
        let us = gap.as_micros() as u64;
        self.max_us = self.max_us.max(us);
        let bin = ((us / Self::BIN_US) as usize).min(self.bins.len() - 1);
        self.bins[bin] += 1;
    }

    pub fn count(&self) -> u64 {
        self.bins.iter().sum()
    }

    pub fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }

    /// The gap below which `q` of all gaps fall, in ms (the upper edge of its bin).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let target = ((self.count() as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, n) in self.bins.iter().enumerate() {
            seen += n;
            if seen >= target {
                return (bin as u64 + 1) as f64 * Self::BIN_US as f64 / 1000.0;
            }
        }
        0.0
    }
}

/// The `p`th percentile (0–100) of a sorted sample; 0 when empty.
pub fn pick(sorted: &[f64], p: usize) -> f64 {
    sorted
        .get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// Durations as sorted milliseconds, for `pick`.
pub fn sorted_ms(durations: impl Iterator<Item = Duration>) -> Vec<f64> {
    let mut ms: Vec<f64> = durations.map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    ms
}
