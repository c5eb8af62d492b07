//! RFC 4733 telephone-events: one digit per event, however many packets carry it.

/// Turns telephone-event payloads into digits, reporting each event once (senders repeat
/// every packet of an event, and its end packet three times).
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    last_event_timestamp: Option<u32>,
}

fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

impl DtmfReceiver {
    /// The digit this packet starts, if it starts one. `timestamp` is the RTP timestamp,
    /// which all packets of one event share.
    pub fn receive(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = *payload.first()?;
        if payload.len() < 4 || self.last_event_timestamp == Some(timestamp) {
            return None;
        }
        self.last_event_timestamp = Some(timestamp);
        digit(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_reported_once() {
        let mut rx = DtmfReceiver::default();
        let packet = |event: u8, end: bool| [event, if end { 0x80 } else { 0 } | 10, 0, 160];
        assert_eq!(rx.receive(1000, &packet(5, false)), Some('5'));
        assert_eq!(rx.receive(1000, &packet(5, false)), None);
        for _ in 0..3 {
            assert_eq!(rx.receive(1000, &packet(5, true)), None);
        }
        assert_eq!(rx.receive(2000, &packet(11, false)), Some('#'));
        assert_eq!(
            rx.receive(3000, &packet(200, false)),
            None,
            "not a DTMF event"
        );
        assert_eq!(rx.receive(4000, &[1]), None, "truncated");
    }
}
