//! The text (JSON) messages of Vonage's audio WebSocket, both directions. Audio itself
//! travels as binary messages (see `codec`).
//!
//! Vonage → us: `websocket:connected` first (the audio format and the NCCO's headers at the
//! top level), then `websocket:dtmf`, `websocket:notify` (a `notify` of ours has played) and
//! `websocket:cleared` (a `clear` of ours emptied its buffer). Us → Vonage: `clear` drops the
//! agent audio Vonage still buffers; `notify` asks to be told when what came before it played.

use serde_json::{Value, json};

use crate::telephony::leg::dtmf_digit;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("not a Vonage WebSocket message: {0}")]
    Json(String),
    #[error("message without an event")]
    NoEvent,
    #[error("unsupported audio format {0:?} (expected audio/l16;rate=16000 or 8000)")]
    Format(String),
    #[error("dtmf digit {0:?} is not one of 0-9 * # A-D")]
    Digit(String),
}

/// One text message Vonage sends, reduced to what the call needs.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    Connected(Connected),
    Dtmf(char),
    /// A `notify` of ours played; carries the mark name we put in its payload.
    Notify(Option<String>),
    Cleared,
    /// An event the call has no use for (logged).
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Connected {
    /// Samples per second of the binary audio: 16000 or 8000.
    pub rate: u32,
    /// The NCCO endpoint's headers, as strings.
    pub headers: Vec<(String, String)>,
}

impl Connected {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Field of a `notify` payload that names our mark.
const MARK_FIELD: &str = "boltcall_mark";

/// Parses one text message.
pub fn parse(text: &str) -> Result<Inbound, ProtocolError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ProtocolError::Json(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(ProtocolError::Json("not an object".into()));
    };
    let event = match fields.remove("event") {
        Some(Value::String(event)) => event,
        _ => return Err(ProtocolError::NoEvent),
    };
    Ok(match event.as_str() {
        "websocket:connected" => {
            let content_type = match fields.remove("content-type") {
                Some(Value::String(s)) => s,
                _ => String::new(),
            };
            let rate = audio_rate(&content_type).ok_or(ProtocolError::Format(content_type))?;
            let headers = fields
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect();
            Inbound::Connected(Connected { rate, headers })
        }
        "websocket:dtmf" => {
            // `digit` at the top level; some deployments nest it as `dtmf.digit`.
            let digit = match (fields.get("digit"), fields.get("dtmf")) {
                (Some(Value::String(d)), _) => d.clone(),
                (_, Some(Value::Object(dtmf))) => match dtmf.get("digit") {
                    Some(Value::String(d)) => d.clone(),
                    _ => String::new(),
                },
                (_, Some(Value::String(d))) => d.clone(),
                _ => String::new(),
            };
            match dtmf_digit(&digit) {
                Some(c) => Inbound::Dtmf(c),
                None => return Err(ProtocolError::Digit(digit)),
            }
        }
        "websocket:notify" => Inbound::Notify(
            fields
                .get("payload")
                .and_then(|p| p.get(MARK_FIELD))
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        "websocket:cleared" => Inbound::Cleared,
        _ => Inbound::Other(event),
    })
}

/// `rate` of `audio/l16;rate=N`, for the rates we resample from.
fn audio_rate(content_type: &str) -> Option<u32> {
    let mut parts = content_type.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("audio/l16") {
        return None;
    }
    let rate = parts
        .find_map(|p| p.strip_prefix("rate="))
        .and_then(|r| r.trim().parse().ok())?;
    matches!(rate, 8_000 | 16_000).then_some(rate)
}

/// `clear`: drop the agent audio Vonage still buffers (barge-in).
pub fn clear() -> String {
    json!({"action": "clear"}).to_string()
}

/// `notify`: Vonage answers `websocket:notify` with this payload once the audio sent before
/// it has played.
pub fn notify(mark: &str) -> String {
    json!({"action": "notify", "payload": {(MARK_FIELD): mark}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connected_carries_rate_and_headers() {
        let text = r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000",
            "boltcall_token":"1.abc","uuid":"u1","attempt":2}"#;
        let Inbound::Connected(connected) = parse(text).unwrap() else {
            panic!("not connected")
        };
        assert_eq!(connected.rate, 16_000);
        assert_eq!(connected.header("boltcall_token"), "1.abc");
        assert_eq!(connected.header("uuid"), "u1");
        assert_eq!(connected.header("attempt"), "2");
        assert_eq!(connected.header("missing"), "");
        let narrow = r#"{"event":"websocket:connected","content-type":"audio/l16;rate=8000"}"#;
        assert!(matches!(
            parse(narrow),
            Ok(Inbound::Connected(Connected { rate: 8_000, .. }))
        ));
    }

    #[test]
    fn dtmf_notify_cleared_and_others() {
        assert_eq!(
            parse(r#"{"event":"websocket:dtmf","digit":"5","duration":260}"#),
            Ok(Inbound::Dtmf('5'))
        );
        assert_eq!(
            parse(r##"{"event":"websocket:dtmf","dtmf":{"digit":"#","duration":100}}"##),
            Ok(Inbound::Dtmf('#'))
        );
        assert_eq!(
            parse(&format!(
                r#"{{"event":"websocket:notify","payload":{}}}"#,
                serde_json::from_str::<Value>(&notify("turn-3")).unwrap()["payload"]
            )),
            Ok(Inbound::Notify(Some("turn-3".into())))
        );
        assert_eq!(
            parse(r#"{"event":"websocket:notify","payload":{"other":1}}"#),
            Ok(Inbound::Notify(None))
        );
        assert_eq!(
            parse(r#"{"event":"websocket:cleared"}"#),
            Ok(Inbound::Cleared)
        );
        assert_eq!(
            parse(r#"{"event":"websocket:media:update"}"#),
            Ok(Inbound::Other("websocket:media:update".into()))
        );
        assert_eq!(clear(), r#"{"action":"clear"}"#);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for text in [
            "",
            "{",
            "[]",
            "42",
            r#"{"content-type":"audio/l16;rate=16000"}"#,
            r#"{"event":7}"#,
            r#"{"event":"websocket:connected"}"#,
            r#"{"event":"websocket:connected","content-type":"audio/l16;rate=44100"}"#,
            r#"{"event":"websocket:connected","content-type":"audio/pcmu;rate=8000"}"#,
            r#"{"event":"websocket:dtmf"}"#,
            r#"{"event":"websocket:dtmf","digit":"12"}"#,
            r#"{"event":"websocket:dtmf","digit":"x"}"#,
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
    }
}
