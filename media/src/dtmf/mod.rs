//! DTMF: RFC 4733 telephone-events (the usual way SIP and RTP carry digits), in-band tone
//! detection for carriers that send digits as audio, and tone generation to send them so.

pub mod inband;
pub mod telephone_event;
pub mod tones;

pub use inband::ToneDetector;
pub use telephone_event::{DtmfError, DtmfReceiver, DtmfSender, EventPacket, TelephoneEvent};

/// The digit an RFC 4733 event code stands for (`0-9`, `*`, `#`, `A-D`).
pub fn digit_for_event(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The RFC 4733 event code for a digit (case-insensitive for `A-D`).
pub fn event_for_digit(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_event_codes_map_both_ways() {
        for event in 0..16 {
            let digit = digit_for_event(event).unwrap();
            assert_eq!(event_for_digit(digit), Some(event));
        }
        assert_eq!(digit_for_event(16), None);
        assert_eq!(event_for_digit('x'), None);
        assert_eq!(event_for_digit('b'), Some(13));
    }
}
