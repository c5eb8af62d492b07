//! Server-sent events decoding, just what a streamed transcription needs: each event's
//! `data` (multi-line data joined by newlines); other fields and comments are skipped.

#[derive(Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds bytes as they arrive; returns the data of the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                self.line_done(line, &mut done);
            } else {
                self.line.push(b);
            }
        }
        done
    }

    /// The last event when the stream ends without a blank line.
    pub fn finish(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        let mut done = Vec::new();
        self.line_done(&line, &mut done);
        done.pop().or_else(|| self.data.take())
    }

    fn line_done(&mut self, line: &[u8], done: &mut Vec<String>) {
        if line.is_empty() {
            done.extend(self.data.take());
            return;
        }
        let line = String::from_utf8_lossy(line);
        let Some(value) = line.strip_prefix("data:") else {
            return;
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => self.data = Some(value.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let mut d = SseDecoder::default();
        assert!(
            d.push(b"event: transcript.text.delta\r\ndata: {\"a\":")
                .is_empty()
        );
        assert_eq!(
            d.push(b"1}\r\n\r\n: comment\n\ndata: x\n"),
            vec!["{\"a\":1}"]
        );
        assert_eq!(d.push(b"data: y\n\n"), vec!["x\ny"]);
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn a_stream_cut_before_the_blank_line_still_yields_its_last_event() {
        let mut d = SseDecoder::default();
        assert!(d.push(b"data: last").is_empty());
        assert_eq!(d.finish().as_deref(), Some("last"));
    }
}
