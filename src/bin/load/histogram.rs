//! Distributions for the load reports as fixed-bin histograms: a soak places 100,000 calls and
//! its engine sends millions of packets, so neither keeps a sample per call or per packet.
//! Quantiles are the upper edge of their bin, clamped to the exact minimum and maximum.

use std::time::Duration;

pub struct Histogram {
    /// Width of a bin; bin `i` holds values in `[i·bin, (i+1)·bin)`, the last one everything
    /// above.
    bin: f64,
    bins: Vec<u64>,
    count: u64,
    min: f64,
    max: f64,
}

impl Histogram {
    /// Bins of `bin` up to `top`.
    pub fn new(bin: f64, top: f64) -> Self {
        Histogram {
            bin,
            bins: vec![0; (top / bin).ceil() as usize + 1],
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Latencies in ms: 1 ms bins up to 30 s (the maximum is exact beyond).
    pub fn latency() -> Self {
        Self::new(1.0, 30_000.0)
    }

    /// Gaps between packets in ms: 0.1 ms bins up to a second.
    pub fn gaps() -> Self {
        Self::new(0.1, 1000.0)
    }

    /// Ratios around 1: bins of 0.001 up to 3.
    pub fn ratio() -> Self {
        Self::new(0.001, 3.0)
    }

    pub fn add(&mut self, value: f64) {
        let at = ((value / self.bin).max(0.0) as usize).min(self.bins.len() - 1);
        self.bins[at] += 1;
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub fn add_ms(&mut self, d: Duration) {
        self.add(d.as_secs_f64() * 1000.0);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.max }
    }

    /// The value below which the fraction `q` of the sample falls; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        if q <= 0.0 {
            return self.min;
        }
        let target = ((self.count as f64 * q).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.bins.iter().enumerate() {
            seen += n;
            if seen >= target {
                // The last bin holds everything above the top: its edge says nothing.
                if i + 1 == self.bins.len() {
                    return self.max;
                }
                return ((i + 1) as f64 * self.bin).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// The `p`th percentile (0–100).
    pub fn pick(&self, p: u32) -> f64 {
        self.quantile(f64::from(p) / 100.0)
    }

    /// How many values lie at or above `value` (rounded down to its bin's lower edge).
    pub fn count_from(&self, value: f64) -> u64 {
        let from = ((value / self.bin).max(0.0) as usize).min(self.bins.len() - 1);
        self.bins[from..].iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_sample() {
        let mut h = Histogram::latency();
        assert_eq!((h.count(), h.pick(50), h.max()), (0, 0.0, 0.0));
        for ms in 1..=1000 {
            h.add_ms(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.pick(0), 1.0);
        // 500 ms sits in the bin [500, 501): its upper edge.
        assert_eq!(h.pick(50), 501.0);
        assert_eq!(h.pick(99), 991.0);
        assert_eq!(h.pick(100), 1000.0);
        assert_eq!(
            (h.count_from(0.0), h.count_from(991.0), h.count_from(5e6)),
            (1000, 10, 0)
        );
    }

    #[test]
    fn values_past_the_top_keep_their_exact_maximum_and_a_lone_value_is_itself() {
        let mut h = Histogram::new(1.0, 10.0);
        h.add(3.25);
        assert_eq!((h.pick(0), h.pick(50), h.pick(100)), (3.25, 3.25, 3.25));
        h.add(500.0);
        h.add(-2.0);
        assert_eq!(h.pick(100), 500.0);
        assert_eq!(h.pick(0), -2.0);
        assert_eq!(h.pick(50), 4.0);
    }

    #[test]
    fn ratios_resolve_a_thousandth() {
        let mut h = Histogram::ratio();
        for r in [0.998, 1.0, 1.0004, 1.002] {
            h.add(r);
        }
        assert_eq!(h.pick(0), 0.998);
        assert!((h.pick(50) - 1.001).abs() < 1e-9, "{}", h.pick(50));
        assert_eq!(h.pick(100), 1.002);
    }
}
