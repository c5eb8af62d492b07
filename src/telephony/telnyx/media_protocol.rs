//! Telnyx media streaming wire messages (JSON over WebSocket), both directions.
//!
//! Strict about what the call needs, lenient about the rest: unknown fields are ignored; an
//! unknown `event` is an error value the stream handler logs and skips.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::json;

use crate::telephony::leg::dtmf_digit;
use crate::telephony::stream_codec::WireFormat;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("not a Telnyx media streaming message: {0}")]
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

/// One message Telnyx sends us, reduced to what the call needs.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    Connected,
    Start(Start),
    /// Audio of the far end's track, in the stream's format.
    Media {
        payload: Vec<u8>,
    },
    /// Audio of our own track (a stream opened with `both_tracks`): never the caller.
    OwnTrack,
    Dtmf(char),
    Mark(String),
    Stop,
    /// Telnyx reports a streaming problem; the stream goes on unless it also stops.
    Error(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub stream_id: String,
    pub call_control_id: String,
    pub from: String,
    pub to: String,
    /// Base64 as set on the call (ours: the call id of an outbound call).
    pub client_state: Option<String>,
    pub format: WireFormat,
}

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Raw {
    Connected,
    Start {
        #[serde(default)]
        stream_id: String,
        start: RawStart,
    },
    Media {
        media: RawMedia,
    },
    Dtmf {
        dtmf: RawDtmf,
    },
    Mark {
        mark: RawMark,
    },
    Stop,
    Error {
        #[serde(default)]
        payload: serde_json::Value,
    },
}

#[derive(Deserialize)]
struct RawStart {
    call_control_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    client_state: Option<String>,
    media_format: RawFormat,
}

#[derive(Deserialize)]
struct RawFormat {
    encoding: String,
    sample_rate: u32,
    #[serde(default = "one")]
    channels: u32,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
struct RawMedia {
    /// `inbound` or `outbound`.
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
        Raw::Start { stream_id, start } => {
            let f = start.media_format;
            let Some(format) = WireFormat::from_name(&f.encoding, f.sample_rate, f.channels) else {
                return Err(ProtocolError::Format {
                    encoding: f.encoding,
                    sample_rate: f.sample_rate,
                    channels: f.channels,
                });
            };
            Inbound::Start(Start {
                stream_id,
                call_control_id: start.call_control_id,
                from: start.from,
                to: start.to,
                client_state: start.client_state.filter(|s| !s.is_empty()),
                format,
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
        Raw::Error { payload } => Inbound::Error(payload.to_string()),
    })
}

/// `media`: audio in the stream's format for the far end to hear.
pub fn media(payload: &[u8]) -> String {
    json!({"event": "media", "media": {"payload": BASE64.encode(payload)}}).to_string()
}

/// `mark`: Telnyx echoes it back once the audio sent before it has played.
pub fn mark(name: &str) -> String {
    json!({"event": "mark", "mark": {"name": name}}).to_string()
}

/// `clear`: drop the audio Telnyx still has queued (barge-in).
pub fn clear() -> String {
    json!({"event": "clear"}).to_string()
}

#[cfg(test)]
mod tests {
    use media::g711::Law;

    use super::*;
    use crate::telephony::stream_codec::WireEncoding;

    #[test]
    fn parses_a_start() {
        let text = r#"{"event":"start","sequence_number":"1","stream_id":"S1",
            "start":{"user_id":"U1","call_control_id":"v3:cc1","call_session_id":"CS1",
            "from":"+15550002000","to":"+15550001000","client_state":"Y2FsbF8x",
            "custom_parameters":{},
            "media_format":{"encoding":"PCMA","sample_rate":8000,"channels":1}}}"#;
        let Inbound::Start(start) = parse(text).unwrap() else {
            panic!("not a start")
        };
        assert_eq!(start.stream_id, "S1");
        assert_eq!(start.call_control_id, "v3:cc1");
        assert_eq!(
            (start.from.as_str(), start.to.as_str()),
            ("+15550002000", "+15550001000")
        );
        assert_eq!(start.client_state.as_deref(), Some("Y2FsbF8x"));
        assert_eq!(start.format.encoding, WireEncoding::G711(Law::ALaw));
    }

    #[test]
    fn rejects_a_format_we_cannot_decode() {
        let text = r#"{"event":"start","stream_id":"S1","start":{"call_control_id":"c",
            "media_format":{"encoding":"OPUS","sample_rate":48000,"channels":1}}}"#;
        assert!(matches!(parse(text), Err(ProtocolError::Format { .. })));
    }

    #[test]
    fn media_dtmf_mark_stop_error() {
        assert_eq!(
            parse(
                r#"{"event":"media","stream_id":"S1","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"/38A"}}"#
            ),
            Ok(Inbound::Media {
                payload: vec![0xff, 0x7f, 0x00]
            })
        );
        assert_eq!(
            parse(r#"{"event":"media","media":{"track":"outbound","payload":"/38A"}}"#),
            Ok(Inbound::OwnTrack)
        );
        assert_eq!(
            parse(r##"{"event":"dtmf","stream_id":"S1","dtmf":{"digit":"#"}}"##),
            Ok(Inbound::Dtmf('#'))
        );
        assert_eq!(
            parse(r#"{"event":"mark","stream_id":"S1","mark":{"name":"turn-2"}}"#),
            Ok(Inbound::Mark("turn-2".into()))
        );
        assert_eq!(
            parse(r#"{"event":"stop","stop":{"call_control_id":"c"}}"#),
            Ok(Inbound::Stop)
        );
        assert!(matches!(
            parse(r#"{"event":"error","payload":{"code":100002,"title":"Unknown error"}}"#),
            Ok(Inbound::Error(e)) if e.contains("100002")
        ));
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for text in [
            "",
            "{",
            "[]",
            "null",
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{"payload":"***"}}"#,
            r#"{"event":"start","start":{}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"12"}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"x"}}"#,
            r#"{"event":"teleport"}"#,
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn outbound_messages_have_telnyx_field_names() {
        let m: serde_json::Value = serde_json::from_str(&media(&[0xff, 0x7f])).unwrap();
        assert_eq!(m, json!({"event": "media", "media": {"payload": "/38="}}));
        let k: serde_json::Value = serde_json::from_str(&mark("m1")).unwrap();
        assert_eq!(k, json!({"event": "mark", "mark": {"name": "m1"}}));
        let c: serde_json::Value = serde_json::from_str(&clear()).unwrap();
        assert_eq!(c, json!({"event": "clear"}));
    }
}
