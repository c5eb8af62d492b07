//! RFC 4733 telephone-event payloads: parsing, a receiver that reports each digit once
//! despite the retransmitted packets, and a sender that produces the packet sequence.
//!
//! Payload (4 bytes): event code, E(nd) bit + reserved bit + 6-bit volume, 16-bit duration
//! in timestamp units. All packets of one event share the RTP timestamp of its start.

use thiserror::Error;

use super::{digit_for_event, event_for_digit};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DtmfError {
    #[error("telephone-event payload is {0} bytes; it must be at least 4")]
    Short(usize),
    #[error("event code {0} is not a DTMF digit")]
    NotADigit(u8),
    #[error("{0:?} is not a DTMF digit")]
    UnknownDigit(char),
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    /// Set in the (three) final packets of an event.
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// How long the event has lasted so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses a payload; extra bytes (redundant events) are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::Short(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(&self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        let end = if self.end { 0x80 } else { 0 };
        [self.event, end | (self.volume & 0x3F), d0, d1]
    }
}

/// Turns received telephone-event packets into digits, each reported exactly once.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    // RTP timestamp of the last event reported: its retransmits and end packets are repeats.
    last_event: Option<u32>,
}

impl DtmfReceiver {
    /// Feeds one packet (its RTP timestamp and payload); returns a digit when a new event
    /// begins. Digits are reported on the first packet seen, so a lost start still counts.
    pub fn receive(&mut self, timestamp: u32, payload: &[u8]) -> Result<Option<char>, DtmfError> {
        let event = TelephoneEvent::parse(payload)?;
        let digit = digit_for_event(event.event).ok_or(DtmfError::NotADigit(event.event))?;
        if self.last_event == Some(timestamp) {
            return Ok(None);
        }
        self.last_event = Some(timestamp);
        Ok(Some(digit))
    }
}

/// One packet a `DtmfSender` wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub payload: [u8; 4],
    /// Set on the first packet of the event.
    pub marker: bool,
}

/// Times the end packet is sent (RFC 4733 §2.5.1.4 recommends three).
pub const END_REPEATS: u8 = 3;

/// Produces the packets of one digit: one per packet interval with a growing duration,
/// then `END_REPEATS` end packets carrying the final duration. Send them with the RTP
/// timestamp the digit started at (`Packetizer::packetize_at`).
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    step: u32,
    total: u32,
    elapsed: u32,
    ends_sent: u8,
}

impl DtmfSender {
    /// A digit lasting `duration_ms`, sent every `interval_ms`, at `clock_rate` Hz.
    pub fn new(
        digit: char,
        duration_ms: u32,
        interval_ms: u32,
        clock_rate: u32,
    ) -> Result<Self, DtmfError> {
        let event = event_for_digit(digit).ok_or(DtmfError::UnknownDigit(digit))?;
        let per_ms = clock_rate / 1000;
        Ok(DtmfSender {
            event,
            volume: 10,
            step: (interval_ms.max(1) * per_ms).max(1),
            // The duration field is 16 bits; longer events would need segments. Cap instead.
            total: (duration_ms * per_ms).clamp(1, u32::from(u16::MAX)),
            elapsed: 0,
            ends_sent: 0,
        })
    }

    /// The next packet, or `None` when the digit is finished; call once per interval.
    pub fn next_packet(&mut self) -> Option<EventPacket> {
        let first = self.elapsed == 0;
        if self.elapsed < self.total {
            self.elapsed = (self.elapsed + self.step).min(self.total);
            if self.elapsed < self.total {
                return Some(self.packet(false, first));
            }
        }
        if self.ends_sent == END_REPEATS {
            return None;
        }
        self.ends_sent += 1;
        Some(self.packet(true, first))
    }

    fn packet(&self, end: bool, marker: bool) -> EventPacket {
        EventPacket {
            payload: TelephoneEvent {
                event: self.event,
                end,
                volume: self.volume,
                duration: self.elapsed as u16,
            }
            .to_bytes(),
            marker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_is_sent_as_growing_updates_then_three_end_packets() {
        let mut sender = DtmfSender::new('#', 100, 20, 8_000).unwrap();
        let packets: Vec<_> = std::iter::from_fn(|| sender.next_packet()).collect();
        let events: Vec<_> = packets
            .iter()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        let durations: Vec<u16> = events.iter().map(|e| e.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = events.iter().map(|e| e.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
        assert!(events.iter().all(|e| e.event == 11));
    }

    #[test]
    fn the_receiver_reports_each_event_once_despite_retransmits() {
        let mut receiver = DtmfReceiver::default();
        let mut digits = Vec::new();
        for (ts, digit) in [(1_000u32, '1'), (5_000, '1'), (9_000, '9')] {
            let mut sender = DtmfSender::new(digit, 60, 20, 8_000).unwrap();
            while let Some(p) = sender.next_packet() {
                // Every packet arrives twice (retransmission in the network).
                for _ in 0..2 {
                    if let Some(d) = receiver.receive(ts, &p.payload).unwrap() {
                        digits.push(d);
                    }
                }
            }
        }
        assert_eq!(digits, ['1', '1', '9']);
    }

    #[test]
    fn a_lost_start_still_yields_the_digit_and_bad_payloads_are_errors() {
        let mut receiver = DtmfReceiver::default();
        let end = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(receiver.receive(77, &end.to_bytes()), Ok(Some('5')));
        assert_eq!(receiver.receive(77, &end.to_bytes()), Ok(None));
        assert_eq!(receiver.receive(78, &[1, 2]), Err(DtmfError::Short(2)));
        assert_eq!(
            receiver.receive(78, &[200, 0, 0, 0]),
            Err(DtmfError::NotADigit(200))
        );
        assert!(DtmfSender::new('x', 100, 20, 8_000).is_err());
    }

    #[test]
    fn payloads_round_trip() {
        let e = TelephoneEvent {
            event: 15,
            end: true,
            volume: 63,
            duration: 65_535,
        };
        assert_eq!(TelephoneEvent::parse(&e.to_bytes()), Ok(e));
    }
}
