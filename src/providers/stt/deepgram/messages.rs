//! Deepgram live-streaming messages: what the server sends (JSON text frames) and the control
//! messages the client sends. Audio goes as binary frames of raw linear16.

use serde::Deserialize;

/// Flushes the audio the server holds and answers with `from_finalize` results.
pub const FINALIZE: &str = r#"{"type":"Finalize"}"#;
/// Keeps a connection without audio open (the server closes after 10 s without data).
pub const KEEP_ALIVE: &str = r#"{"type":"KeepAlive"}"#;
/// Asks the server to flush, send its last results and close.
pub const CLOSE_STREAM: &str = r#"{"type":"CloseStream"}"#;

/// A server message; types this client does not use parse as `Other`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ServerMessage {
    Results(Results),
    UtteranceEnd(UtteranceEnd),
    #[serde(other)]
    Other,
}

/// A transcript of the span `start..start + duration` (seconds since the connection's first
/// audio).
#[derive(Debug, Deserialize, PartialEq)]
pub struct Results {
    pub start: f64,
    pub duration: f64,
    /// The span's words will not be revised again.
    #[serde(default)]
    pub is_final: bool,
    /// Deepgram's endpointing heard the speaker stop (implies `is_final`).
    #[serde(default)]
    pub speech_final: bool,
    /// The answer to a `Finalize`.
    #[serde(default)]
    pub from_finalize: bool,
    pub channel: Channel,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct Channel {
    pub alternatives: Vec<Alternative>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct Alternative {
    pub transcript: String,
}

impl Results {
    /// The best alternative's words.
    pub fn transcript(&self) -> &str {
        self.channel
            .alternatives
            .first()
            .map_or("", |a| a.transcript.trim())
    }

    /// End of the span, in seconds since the connection's first audio.
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }
}

/// No word for `utterance_end_ms` after the last finalised word.
#[derive(Debug, Deserialize, PartialEq)]
pub struct UtteranceEnd {
    pub last_word_end: Option<f64>,
}

/// Parses a text frame; `None` for anything that is not a message this client knows.
pub fn parse(text: &str) -> Option<ServerMessage> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_parse_with_their_flags() {
        let text = r#"{"type":"Results","channel_index":[0,1],"duration":1.2,"start":0.5,
            "is_final":true,"speech_final":true,"from_finalize":false,
            "channel":{"alternatives":[{"transcript":" book a table ","confidence":0.9,"words":[]}]},
            "metadata":{"request_id":"x","model_info":{"name":"n","version":"v","arch":"a"}}}"#;
        let Some(ServerMessage::Results(r)) = parse(text) else {
            panic!("not results");
        };
        assert_eq!(r.transcript(), "book a table");
        assert!(r.is_final && r.speech_final && !r.from_finalize);
        assert!((r.end() - 1.7).abs() < 1e-9);
    }

    #[test]
    fn flags_default_to_false_and_empty_alternatives_are_silence() {
        let text = r#"{"type":"Results","start":0,"duration":0.1,"channel":{"alternatives":[]}}"#;
        let Some(ServerMessage::Results(r)) = parse(text) else {
            panic!("not results");
        };
        assert!(!r.is_final && !r.speech_final && !r.from_finalize);
        assert_eq!(r.transcript(), "");
    }

    #[test]
    fn other_messages_and_garbage() {
        assert_eq!(
            parse(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.4}"#),
            Some(ServerMessage::UtteranceEnd(UtteranceEnd {
                last_word_end: Some(2.4)
            }))
        );
        assert_eq!(
            parse(r#"{"type":"SpeechStarted","channel":[0],"timestamp":1.0}"#),
            Some(ServerMessage::Other)
        );
        assert_eq!(
            parse(r#"{"type":"Metadata","request_id":"r","duration":3.0}"#),
            Some(ServerMessage::Other)
        );
        assert_eq!(parse("not json"), None);
        assert_eq!(parse(r#"{"no_type":1}"#), None);
        assert_eq!(parse(r#"{"type":"Results","start":"x"}"#), None);
    }
}
