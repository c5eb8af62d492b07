//! RTP packets on the wire: parsing into a borrowed view and writing into a caller's
//! buffer, with the `rtp` crate's header codec. Neither direction allocates.

use rtp::header::Header;
use thiserror::Error;
use webrtc_util::{Marshal, MarshalSize, Unmarshal};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RtpError {
    #[error("not an RTP packet: {0}")]
    Malformed(String),
    #[error("RTP version {0} (only 2 exists)")]
    Version(u8),
    #[error("CSRC list or header extension needs {need} bytes; the packet has {have}")]
    Truncated { need: usize, have: usize },
    #[error("padding length {padding} exceeds the {payload}-byte payload")]
    BadPadding { padding: usize, payload: usize },
    #[error("output buffer of {have} bytes cannot hold a {need}-byte packet")]
    BufferTooSmall { need: usize, have: usize },
}

/// A parsed RTP packet: the header fields audio needs and the payload, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Parses one RTP packet. Malformed input is an error, never a panic.
pub fn parse(packet: &[u8]) -> Result<RtpView<'_>, RtpError> {
    // The `rtp` crate decodes the fixed header only. Its header-extension parser reads
    // elements past the extension's declared length (a panic on a short packet, and a
    // payload that starts mid-extension after an ID-15 element, rtp 0.17), and audio needs
    // neither CSRCs nor extensions: they are skipped here by their declared lengths.
    let mut fixed = [0u8; HEADER_LEN];
    let head = packet.get(..HEADER_LEN).unwrap_or(packet);
    fixed[..head.len()].copy_from_slice(head);
    fixed[0] &= !(EXTENSION_BIT | CSRC_COUNT_MASK);
    let header = Header::unmarshal(&mut &fixed[..head.len()])
        .map_err(|e| RtpError::Malformed(e.to_string()))?;
    if header.version != 2 {
        return Err(RtpError::Version(header.version));
    }
    let payload = &packet[payload_offset(packet)?..];
    let payload = if header.padding {
        let padding = payload.last().map_or(0, |&p| usize::from(p));
        if padding == 0 || padding > payload.len() {
            return Err(RtpError::BadPadding {
                padding,
                payload: payload.len(),
            });
        }
        &payload[..payload.len() - padding]
    } else {
        payload
    };
    Ok(RtpView {
        payload_type: header.payload_type,
        marker: header.marker,
        sequence_number: header.sequence_number,
        timestamp: header.timestamp,
        ssrc: header.ssrc,
        payload,
    })
}

/// Fixed RTP header length for packets without CSRCs or extensions.
pub const HEADER_LEN: usize = 12;
const EXTENSION_BIT: u8 = 0x10;
const CSRC_COUNT_MASK: u8 = 0x0F;

/// Where the payload starts: after the fixed header, the CSRC list and the header
/// extension (RFC 3550 §5.3.1: 4 bytes, then its length in 32-bit words).
fn payload_offset(packet: &[u8]) -> Result<usize, RtpError> {
    let truncated = |need| RtpError::Truncated {
        need,
        have: packet.len(),
    };
    let mut offset = HEADER_LEN + 4 * usize::from(packet[0] & CSRC_COUNT_MASK);
    if packet[0] & EXTENSION_BIT != 0 {
        let Some(&[w0, w1]) = packet.get(offset + 2..offset + 4) else {
            return Err(truncated(offset + 4));
        };
        offset += 4 + 4 * usize::from(u16::from_be_bytes([w0, w1]));
    }
    if offset > packet.len() {
        return Err(truncated(offset));
    }
    Ok(offset)
}

/// Numbers outgoing packets of one stream: sequence numbers count up (wrapping) and
/// timestamps advance by the samples each packet carries.
#[derive(Debug, Clone)]
pub struct Packetizer {
    ssrc: u32,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
}

impl Packetizer {
    /// A stream with the given SSRC and payload type, starting at the given (random) values.
    pub fn new(ssrc: u32, payload_type: u8, first_sequence: u16, first_timestamp: u32) -> Self {
        Packetizer {
            ssrc,
            payload_type,
            sequence_number: first_sequence,
            timestamp: first_timestamp,
        }
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The timestamp the next media packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The sequence number the next packet will carry.
    pub fn sequence_number(&self) -> u16 {
        self.sequence_number
    }

    /// Writes a media packet carrying `payload` (covering `samples` clock ticks) into
    /// `out`; returns the packet length.
    pub fn packetize(
        &mut self,
        payload: &[u8],
        samples: u32,
        marker: bool,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let len = self.packetize_at(self.payload_type, self.timestamp, payload, marker, out)?;
        self.timestamp = self.timestamp.wrapping_add(samples);
        Ok(len)
    }

    /// Moves the media clock on by `samples` without a media packet (RFC 4733 events sent in
    /// the packets' place keep their own start timestamp).
    pub fn advance(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    /// Writes a packet with an explicit payload type and timestamp (RFC 4733 events keep
    /// the timestamp of the event's start); the sequence number still counts up.
    pub fn packetize_at(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        payload: &[u8],
        marker: bool,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let header = Header {
            version: 2,
            marker,
            payload_type,
            sequence_number: self.sequence_number,
            timestamp,
            ssrc: self.ssrc,
            ..Header::default()
        };
        let header_len = header.marshal_size();
        let need = header_len + payload.len();
        if out.len() < need {
            return Err(RtpError::BufferTooSmall {
                need,
                have: out.len(),
            });
        }
        header
            .marshal_to(&mut out[..header_len])
            .map_err(|e| RtpError::Malformed(e.to_string()))?;
        out[header_len..need].copy_from_slice(payload);
        self.sequence_number = self.sequence_number.wrapping_add(1);
        Ok(need)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_numbers_wrap() {
        let mut p = Packetizer::new(0xDEAD_BEEF, 0, 65_535, u32::MAX - 100);
        let mut buf = [0u8; 200];
        let len = p.packetize(&[0xFF; 160], 160, true, &mut buf).unwrap();
        assert_eq!(len, HEADER_LEN + 160);
        let view = parse(&buf[..len]).unwrap();
        assert_eq!(
            (
                view.payload_type,
                view.marker,
                view.sequence_number,
                view.timestamp,
                view.ssrc
            ),
            (0, true, 65_535, u32::MAX - 100, 0xDEAD_BEEF)
        );
        assert_eq!(view.payload, &[0xFF; 160]);
        let len = p.packetize(&[1; 160], 160, false, &mut buf).unwrap();
        let view = parse(&buf[..len]).unwrap();
        assert_eq!((view.sequence_number, view.timestamp), (0, 59));
    }

    #[test]
    fn padding_is_stripped_and_bad_padding_is_an_error() {
        let mut p = Packetizer::new(1, 8, 0, 0);
        let mut buf = [0u8; 64];
        let len = p
            .packetize(&[5, 6, 7, 0, 0, 3], 3, false, &mut buf)
            .unwrap();
        buf[0] |= 0x20;
        assert_eq!(parse(&buf[..len]).unwrap().payload, &[5, 6, 7]);
        buf[len - 1] = 200;
        assert!(matches!(
            parse(&buf[..len]),
            Err(RtpError::BadPadding { .. })
        ));
    }

    #[test]
    fn csrcs_and_header_extensions_are_skipped_by_their_declared_lengths() {
        // One CSRC, then a one-byte-header extension of one word whose element claims 12
        // bytes (found by the rtp_rtcp_parse fuzz target: the rtp crate read past the end).
        let mut packet = vec![0x91, 0x80 | 101, 0, 7];
        packet.extend_from_slice(&[0, 0, 0, 0xA0, 0xDE, 0xAD, 0xBE, 0xEF]);
        packet.extend_from_slice(&[0, 0, 0xCA, 0xFE]);
        packet.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0xBB, 0, 0xD1, 0xCA]);
        packet.extend_from_slice(&[0xFE, 0x05, 0x78]);
        let view = parse(&packet).unwrap();
        assert_eq!(
            (
                view.payload_type,
                view.marker,
                view.sequence_number,
                view.ssrc
            ),
            (101, true, 7, 0xDEAD_BEEF)
        );
        assert_eq!(view.payload, &[0xFE, 0x05, 0x78]);
        // An ID-15 element ends extension processing, not the extension block.
        packet[20] = 0xF0;
        assert_eq!(parse(&packet).unwrap().payload, &[0xFE, 0x05, 0x78]);
        // The extension's length word runs past the packet.
        packet[19] = 2;
        assert_eq!(
            parse(&packet),
            Err(RtpError::Truncated { need: 28, have: 27 })
        );
        assert_eq!(
            parse(&packet[..18]),
            Err(RtpError::Truncated { need: 20, have: 18 })
        );
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x80, 0, 0]).is_err());
        let mut buf = [0u8; 12];
        buf[0] = 0x40;
        assert_eq!(parse(&buf), Err(RtpError::Version(1)));
        // Claims 15 CSRCs but carries none.
        buf[0] = 0x8F;
        assert_eq!(parse(&buf), Err(RtpError::Truncated { need: 72, have: 12 }));
        let mut p = Packetizer::new(1, 0, 0, 0);
        assert!(matches!(
            p.packetize(&[0; 160], 160, false, &mut [0u8; 100]),
            Err(RtpError::BufferTooSmall {
                need: 172,
                have: 100
            })
        ));
    }
}
