//! RTP fixed header (RFC 3550 §5.1): just what a G.711 voice stream needs.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

pub const HEADER_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("not RTP version 2")]
    Version,
    #[error("packet shorter than its header")]
    Truncated,
    #[error("bad padding")]
    Padding,
}

/// Splits a packet into header and payload, skipping CSRCs and a header extension.
pub fn parse(packet: &[u8]) -> Result<(RtpHeader, &[u8]), PacketError> {
    if packet.len() < HEADER_LEN {
        return Err(PacketError::Truncated);
    }
    if packet[0] >> 6 != 2 {
        return Err(PacketError::Version);
    }
    let padding = packet[0] & 0x20 != 0;
    let extension = packet[0] & 0x10 != 0;
    let csrc_count = (packet[0] & 0x0f) as usize;
    let header = RtpHeader {
        marker: packet[1] & 0x80 != 0,
        payload_type: packet[1] & 0x7f,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    };
    let mut start = HEADER_LEN + 4 * csrc_count;
    if extension {
        let ext = packet.get(start..start + 4).ok_or(PacketError::Truncated)?;
        start += 4 + 4 * u16::from_be_bytes([ext[2], ext[3]]) as usize;
    }
    let mut end = packet.len();
    if padding {
        let pad = *packet.last().ok_or(PacketError::Truncated)? as usize;
        if pad == 0 || pad > end {
            return Err(PacketError::Padding);
        }
        end -= pad;
    }
    let payload = packet.get(start..end).ok_or(PacketError::Truncated)?;
    Ok((header, payload))
}

/// Writes header + payload into `out` (cleared first); returns the packet length.
pub fn write(header: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    out.push(0x80);
    out.push(((header.marker as u8) << 7) | (header.payload_type & 0x7f));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_csrcs_extensions_and_padding() {
        let header = RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 65535,
            timestamp: 0xdead_beef,
            ssrc: 42,
        };
        let mut buf = Vec::new();
        write(&header, &[1, 2, 3], &mut buf);
        assert_eq!(parse(&buf), Ok((header, &[1u8, 2, 3][..])));

        // One CSRC, a one-word extension, two bytes of padding.
        let mut fancy = vec![0x80 | 0x20 | 0x10 | 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        fancy.extend_from_slice(&[9, 9, 9, 9]);
        fancy.extend_from_slice(&[0xbe, 0xde, 0, 1, 7, 7, 7, 7]);
        fancy.extend_from_slice(&[5, 6, 0, 2]);
        assert_eq!(parse(&fancy).unwrap().1, &[5, 6]);
        assert_eq!(parse(&fancy[..5]), Err(PacketError::Truncated));
        assert_eq!(parse(&[0u8; 12]), Err(PacketError::Version));
    }
}
