//! Reception statistics for RTCP report blocks (RFC 3550 §6.4.1, A.3, A.8), time passed in.

use std::time::{SystemTime, UNIX_EPOCH};

use media::rtp::SeqUnwrapper;
use media::rtp::rtcp::ReportBlock;

/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The wall clock as 64-bit NTP.
pub fn ntp_now() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() + NTP_UNIX_OFFSET;
    let frac = ((now.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[derive(Debug, Default)]
pub struct ReceiveStats {
    ssrc: Option<u32>,
    seq: SeqUnwrapper,
    first: Option<u64>,
    received: u64,
    /// At the previous report, for the interval's fraction lost.
    expected_prior: u64,
    received_prior: u64,
    /// Interarrival jitter in 8 kHz timestamp units, scaled by 16 (RFC 3550 A.8).
    jitter_x16: u64,
    last_transit: Option<i64>,
}

impl ReceiveStats {
    /// One packet arrived `arrival_ms` after the call started.
    pub fn on_packet(&mut self, ssrc: u32, sequence: u16, timestamp: u32, arrival_ms: u64) {
        if self.ssrc != Some(ssrc) {
            // A new source restarts the statistics.
            *self = ReceiveStats {
                ssrc: Some(ssrc),
                ..ReceiveStats::default()
            };
        }
        let extended = self.seq.unwrap(sequence);
        self.first.get_or_insert(extended);
        self.received += 1;
        let transit = (arrival_ms * 8) as i64 - timestamp as i64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16 to stay in integers.
            self.jitter_x16 = self.jitter_x16 + d - (self.jitter_x16 + 8) / 16;
        }
        self.last_transit = Some(transit);
    }

    /// The block for our next report; `None` before any packet arrived.
    pub fn report_block(&mut self) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let first = self.first?;
        let highest = self.seq.highest()?;
        let expected = highest - first + 1;
        let lost = expected as i64 - self.received as i64;
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-(1 << 23), (1 << 23) - 1) as i32,
            highest_sequence: highest as u32,
            jitter: (self.jitter_x16 / 16) as u32,
            last_sr: 0,
            delay_since_last_sr: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_and_jitter() {
        let mut stats = ReceiveStats::default();
        assert_eq!(stats.report_block(), None);
        // 10 packets, every 20 ms, seq 3 and 7 lost; one arrives 10 ms late.
        for i in 0u16..10 {
            if i == 3 || i == 7 {
                continue;
            }
            let late = if i == 5 { 10 } else { 0 };
            stats.on_packet(
                9,
                65530u16.wrapping_add(i),
                i as u32 * 160,
                i as u64 * 20 + late,
            );
        }
        let block = stats.report_block().unwrap();
        assert_eq!(block.cumulative_lost, 2);
        assert_eq!(block.fraction_lost, (2 * 256 / 10) as u8);
        assert_eq!(
            block.highest_sequence,
            65536 + 65530 + 9,
            "extended across the wrap"
        );
        assert!(block.jitter > 0);
        // No new packets: nothing lost in this interval.
        assert_eq!(stats.report_block().unwrap().fraction_lost, 0);
    }
}
