//! Minimal RTCP (RFC 3550 §6.4): sender and receiver reports with one report block, written
//! into a caller's buffer and parsed out of compound packets. Other packet types (SDES, BYE,
//! feedback) are skipped over by length.

use thiserror::Error;

const SR: u8 = 200;
const RR: u8 = 201;
const BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RtcpError {
    #[error("RTCP packet truncated: needs {need} bytes, has {have}")]
    Truncated { need: usize, have: usize },
    #[error("RTCP version {0} (only 2 exists)")]
    Version(u8),
    #[error("output buffer of {have} bytes cannot hold a {need}-byte report")]
    BufferTooSmall { need: usize, have: usize },
}

/// Reception statistics about one source (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Packets lost since the start (24-bit signed on the wire; duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from this source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// What a sender says about its own stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wall clock as 64-bit NTP (seconds since 1900 in the high half).
    pub ntp_timestamp: u64,
    /// The RTP timestamp matching that instant.
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// One packet out of a compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        /// The first report block, if any (we receive a single stream per call).
        block: Option<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        block: Option<ReportBlock>,
    },
    /// Any other type (SDES 202, BYE 203, APP 204, feedback 205/206), skipped.
    Other { packet_type: u8 },
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn write_header(out: &mut [u8], count: u8, packet_type: u8, len: usize) {
    out[0] = 0x80 | (count & 0x1F);
    out[1] = packet_type;
    out[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
}

fn write_block(out: &mut [u8], block: &ReportBlock) {
    put32(out, 0, block.ssrc);
    let lost = block.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32 & 0xFF_FFFF;
    put32(out, 4, (u32::from(block.fraction_lost) << 24) | lost);
    put32(out, 8, block.highest_sequence);
    put32(out, 12, block.jitter);
    put32(out, 16, block.last_sr);
    put32(out, 20, block.delay_since_last_sr);
}

fn read_block(b: &[u8]) -> ReportBlock {
    let word = be32(b, 4);
    // Sign-extend the 24-bit cumulative loss.
    let cumulative_lost = ((word << 8) as i32) >> 8;
    ReportBlock {
        ssrc: be32(b, 0),
        fraction_lost: (word >> 24) as u8,
        cumulative_lost,
        highest_sequence: be32(b, 8),
        jitter: be32(b, 12),
        last_sr: be32(b, 16),
        delay_since_last_sr: be32(b, 20),
    }
}

fn check_room(out: &[u8], need: usize) -> Result<(), RtcpError> {
    if out.len() < need {
        return Err(RtcpError::BufferTooSmall {
            need,
            have: out.len(),
        });
    }
    Ok(())
}

/// Writes a sender report into `out`; returns its length.
pub fn write_sender_report(
    ssrc: u32,
    info: &SenderInfo,
    block: Option<&ReportBlock>,
    out: &mut [u8],
) -> Result<usize, RtcpError> {
    let len = 8 + SENDER_INFO_LEN + block.map_or(0, |_| BLOCK_LEN);
    check_room(out, len)?;
    write_header(out, u8::from(block.is_some()), SR, len);
    put32(out, 4, ssrc);
    put32(out, 8, (info.ntp_timestamp >> 32) as u32);
    put32(out, 12, info.ntp_timestamp as u32);
    put32(out, 16, info.rtp_timestamp);
    put32(out, 20, info.packet_count);
    put32(out, 24, info.octet_count);
    if let Some(block) = block {
        write_block(&mut out[28..], block);
    }
    Ok(len)
}

/// Writes a receiver report into `out`; returns its length.
pub fn write_receiver_report(
    ssrc: u32,
    block: Option<&ReportBlock>,
    out: &mut [u8],
) -> Result<usize, RtcpError> {
    let len = 8 + block.map_or(0, |_| BLOCK_LEN);
    check_room(out, len)?;
    write_header(out, u8::from(block.is_some()), RR, len);
    put32(out, 4, ssrc);
    if let Some(block) = block {
        write_block(&mut out[8..], block);
    }
    Ok(len)
}

/// Iterates over the packets of a compound RTCP datagram; stops after the first error.
pub fn parse_compound(datagram: &[u8]) -> RtcpPackets<'_> {
    RtcpPackets {
        rest: datagram,
        failed: false,
    }
}

/// Iterator returned by `parse_compound`.
pub struct RtcpPackets<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl Iterator for RtcpPackets<'_> {
    type Item = Result<RtcpPacket, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let result = parse_one(self.rest);
        match &result {
            Ok((_, len)) => self.rest = &self.rest[*len..],
            Err(_) => self.failed = true,
        }
        Some(result.map(|(packet, _)| packet))
    }
}

fn truncated(need: usize, have: usize) -> RtcpError {
    RtcpError::Truncated { need, have }
}

fn parse_one(b: &[u8]) -> Result<(RtcpPacket, usize), RtcpError> {
    if b.len() < 4 {
        return Err(truncated(4, b.len()));
    }
    let version = b[0] >> 6;
    if version != 2 {
        return Err(RtcpError::Version(version));
    }
    let count = usize::from(b[0] & 0x1F);
    let packet_type = b[1];
    let len = (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1) * 4;
    if b.len() < len {
        return Err(truncated(len, b.len()));
    }
    let body = &b[..len];
    let packet = match packet_type {
        SR => {
            let need = 8 + SENDER_INFO_LEN + count * BLOCK_LEN;
            if len < need {
                return Err(truncated(need, len));
            }
            RtcpPacket::SenderReport {
                ssrc: be32(body, 4),
                info: SenderInfo {
                    ntp_timestamp: (u64::from(be32(body, 8)) << 32) | u64::from(be32(body, 12)),
                    rtp_timestamp: be32(body, 16),
                    packet_count: be32(body, 20),
                    octet_count: be32(body, 24),
                },
                block: (count > 0).then(|| read_block(&body[28..])),
            }
        }
        RR => {
            let need = 8 + count * BLOCK_LEN;
            if len < need {
                return Err(truncated(need, len));
            }
            RtcpPacket::ReceiverReport {
                ssrc: be32(body, 4),
                block: (count > 0).then(|| read_block(&body[8..])),
            }
        }
        other => RtcpPacket::Other { packet_type: other },
    };
    Ok((packet, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: 0x1234_5678,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_sequence: 70_000,
            jitter: 42,
            last_sr: 0xAABB_CCDD,
            delay_since_last_sr: 65_536,
        }
    }

    #[test]
    fn sender_and_receiver_reports_round_trip_in_a_compound_datagram() {
        let info = SenderInfo {
            ntp_timestamp: 0x0102_0304_0506_0708,
            rtp_timestamp: 160,
            packet_count: 10,
            octet_count: 1_600,
        };
        let mut buf = [0u8; 256];
        let a = write_sender_report(7, &info, Some(&block()), &mut buf).unwrap();
        let b = write_receiver_report(9, None, &mut buf[a..]).unwrap();
        // An SDES-sized chunk of another type is skipped.
        buf[a + b..a + b + 8].copy_from_slice(&[0x81, 202, 0, 1, 0, 0, 0, 0]);
        let packets: Vec<_> = parse_compound(&buf[..a + b + 8]).collect();
        assert_eq!(
            packets,
            vec![
                Ok(RtcpPacket::SenderReport {
                    ssrc: 7,
                    info,
                    block: Some(block())
                }),
                Ok(RtcpPacket::ReceiverReport {
                    ssrc: 9,
                    block: None
                }),
                Ok(RtcpPacket::Other { packet_type: 202 }),
            ]
        );
    }

    #[test]
    fn malformed_reports_are_errors() {
        let mut buf = [0u8; 64];
        let len = write_receiver_report(1, Some(&block()), &mut buf).unwrap();
        assert!(matches!(
            parse_compound(&buf[..len - 1]).next(),
            Some(Err(RtcpError::Truncated { .. }))
        ));
        // Count says two blocks, length holds one.
        buf[0] = 0x82;
        assert!(matches!(
            parse_compound(&buf[..len]).next(),
            Some(Err(RtcpError::Truncated { .. }))
        ));
        buf[0] = 0x41;
        assert_eq!(
            parse_compound(&buf[..len]).next(),
            Some(Err(RtcpError::Version(1)))
        );
        assert!(write_sender_report(1, &SenderInfo::default(), None, &mut [0u8; 10]).is_err());
    }
}
