//! The Twilio Media Streams wire messages (JSON over WebSocket), both directions.
//!
//! Parsing is strict about what the session needs and lenient about the rest: unknown fields
//! are ignored, an unknown `event` is an error value the stream handler logs and skips.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::telephony::leg::dtmf_digit;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("not a Media Streams message: {0}")]
    Json(String),
    #[error("media payload is not base64: {0}")]
    Payload(String),
    #[error("dtmf digit {0:?} is not one of 0-9 * # A-D")]
    Digit(String),
    #[error("unsupported media format {encoding} {sample_rate} Hz x{channels}")]
    Format {
        encoding: String,
        sample_rate: u32,
        channels: u32,
    },
}

/// One message Twilio sends us, reduced to what the call needs.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    Connected,
    Start(Start),
    /// μ-law bytes of the caller's track (normally 160 = 20 ms at 8 kHz).
    Media {
        payload: Vec<u8>,
    },
    Dtmf(char),
    Mark(String),
    Stop,
    /// Media of our own (outbound) track, sent only when the stream was misconfigured with
    /// `track="both_tracks"`: treating it as the caller would make the agent hear itself.
    OwnTrack,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub stream_sid: String,
    pub call_sid: String,
    pub custom_parameters: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Raw {
    Connected,
    Start { start: RawStart },
    Media { media: RawMedia },
    Dtmf { dtmf: RawDtmf },
    Mark { mark: RawMark },
    Stop,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStart {
    stream_sid: String,
    call_sid: String,
    #[serde(default)]
    custom_parameters: serde_json::Map<String, serde_json::Value>,
    media_format: Option<RawFormat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFormat {
    encoding: String,
    sample_rate: u32,
    channels: u32,
}

#[derive(Deserialize)]
struct RawMedia {
    /// `inbound` or `outbound`; absent on single-track streams.
    track: Option<String>,
    payload: String,
}

#[derive(Deserialize)]
struct RawDtmf {
    digit: String,
}

#[derive(Deserialize)]
struct RawMark {
    name: String,
}

/// Parses one text frame of the stream.
pub fn parse(text: &str) -> Result<Inbound, ProtocolError> {
    let raw: Raw = serde_json::from_str(text).map_err(|e| ProtocolError::Json(e.to_string()))?;
    Ok(match raw {
        Raw::Connected => Inbound::Connected,
        Raw::Start { start } => {
            if let Some(f) = start.media_format
                && !(f.encoding == "audio/x-mulaw" && f.sample_rate == 8000 && f.channels == 1)
            {
                return Err(ProtocolError::Format {
                    encoding: f.encoding,
                    sample_rate: f.sample_rate,
                    channels: f.channels,
                });
            }
            let custom_parameters = start
                .custom_parameters
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect();
            Inbound::Start(Start {
                stream_sid: start.stream_sid,
                call_sid: start.call_sid,
                custom_parameters,
            })
        }
        Raw::Media { media } => {
            if media
                .track
                .as_deref()
                .is_some_and(|t| t.starts_with("outbound"))
            {
                return Ok(Inbound::OwnTrack);
            }
            let payload = BASE64
                .decode(media.payload.as_bytes())
                .map_err(|e| ProtocolError::Payload(e.to_string()))?;
            Inbound::Media { payload }
        }
        Raw::Dtmf { dtmf } => match dtmf_digit(&dtmf.digit) {
            Some(c) => Inbound::Dtmf(c),
            None => return Err(ProtocolError::Digit(dtmf.digit)),
        },
        Raw::Mark { mark } => Inbound::Mark(mark.name),
        Raw::Stop => Inbound::Stop,
    })
}

/// One message we send Twilio.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum RawOut<'a> {
    #[serde(rename_all = "camelCase")]
    Media {
        stream_sid: &'a str,
        media: OutMedia,
    },
    #[serde(rename_all = "camelCase")]
    Mark {
        stream_sid: &'a str,
        mark: OutMark<'a>,
    },
    #[serde(rename_all = "camelCase")]
    Clear { stream_sid: &'a str },
}

#[derive(Serialize)]
struct OutMedia {
    payload: String,
}

#[derive(Serialize)]
struct OutMark<'a> {
    name: &'a str,
}

/// `media`: μ-law bytes for the caller to hear.
pub fn media(stream_sid: &str, mulaw: &[u8]) -> String {
    to_json(&RawOut::Media {
        stream_sid,
        media: OutMedia {
            payload: BASE64.encode(mulaw),
        },
    })
}

/// `mark`: Twilio echoes it back once everything sent before it has played.
pub fn mark(stream_sid: &str, name: &str) -> String {
    to_json(&RawOut::Mark {
        stream_sid,
        mark: OutMark { name },
    })
}

/// `clear`: drop the audio Twilio still buffers (barge-in).
pub fn clear(stream_sid: &str) -> String {
    to_json(&RawOut::Clear { stream_sid })
}

fn to_json(message: &RawOut<'_>) -> String {
    // Serialising plain structs of strings into a String cannot fail.
    serde_json::to_string(message).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_start_with_parameters() {
        let text = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1",
            "start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],
            "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},
            "customParameters":{"agent_id":"agent_x","from":"+15550001"}}}"#;
        let Inbound::Start(start) = parse(text).unwrap() else {
            panic!("not a start")
        };
        assert_eq!(start.stream_sid, "MZ1");
        assert_eq!(start.call_sid, "CA1");
        assert!(
            start
                .custom_parameters
                .contains(&("agent_id".into(), "agent_x".into()))
        );
    }

    #[test]
    fn rejects_a_format_we_cannot_decode() {
        let text = r#"{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1",
            "mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000,"channels":1}}}"#;
        assert!(matches!(parse(text), Err(ProtocolError::Format { .. })));
    }

    #[test]
    fn decodes_media_payload() {
        let text = r#"{"event":"media","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"/38A"}}"#;
        assert_eq!(
            parse(text).unwrap(),
            Inbound::Media {
                payload: vec![0xff, 0x7f, 0x00]
            }
        );
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for text in [
            "",
            "{",
            "[]",
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{"payload":"***"}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"12"}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"x"}}"#,
            r#"{"event":"teleport"}"#,
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn dtmf_mark_stop() {
        assert_eq!(
            parse(r##"{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"#"}}"##),
            Ok(Inbound::Dtmf('#'))
        );
        assert_eq!(
            parse(r#"{"event":"mark","mark":{"name":"turn-3"}}"#),
            Ok(Inbound::Mark("turn-3".into()))
        );
        assert_eq!(
            parse(r#"{"event":"stop","stop":{"callSid":"CA1"}}"#),
            Ok(Inbound::Stop)
        );
    }

    #[test]
    fn outbound_messages_have_twilio_field_names() {
        let m: serde_json::Value = serde_json::from_str(&media("MZ1", &[0xff, 0x7f])).unwrap();
        assert_eq!(m["event"], "media");
        assert_eq!(m["streamSid"], "MZ1");
        assert_eq!(m["media"]["payload"], "/38=");
        let k: serde_json::Value = serde_json::from_str(&mark("MZ1", "m1")).unwrap();
        assert_eq!(k["mark"]["name"], "m1");
        let c: serde_json::Value = serde_json::from_str(&clear("MZ1")).unwrap();
        assert_eq!(c, serde_json::json!({"event":"clear","streamSid":"MZ1"}));
    }
}
