//! Server-sent events, sans IO: bytes in as they arrive, each event's `data` out once the blank
//! line that ends it has arrived. Only `data` matters to chat completions; comments (`:`, used
//! as keep-alives) and other fields are skipped. A line may arrive split over several reads.

#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    /// `data` lines of the event not yet ended, joined by newlines.
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds received bytes; returns the data of every event they completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &byte in bytes {
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                events.extend(self.data.take());
                continue;
            }
            let line = String::from_utf8_lossy(&line);
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_ref(), ""),
            };
            if field == "data" {
                match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_end_at_a_blank_line_whatever_the_reads() {
        let wire = b": keep-alive\n\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        let whole = SseDecoder::default().push(wire);
        assert_eq!(whole, ["{\"a\":1}", "one\ntwo", "[DONE]"]);
        let mut decoder = SseDecoder::default();
        let byte_by_byte: Vec<String> = wire
            .iter()
            .flat_map(|b| decoder.push(std::slice::from_ref(b)))
            .collect();
        assert_eq!(byte_by_byte, whole);
    }

    #[test]
    fn an_unfinished_event_is_held_back() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.push(b"data: {\"half\":").is_empty());
        assert!(decoder.push(b" true}\n").is_empty());
        assert_eq!(decoder.push(b"\n"), ["{\"half\": true}"]);
    }
}
