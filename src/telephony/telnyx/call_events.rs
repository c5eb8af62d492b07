//! Call Control webhooks (`{"data": {"event_type": …, "payload": {…}}}`), reduced to what the
//! engine acts on, and the mappings of Telnyx's verdicts and hang-up causes to ours.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::telephony::AnsweredBy;

#[derive(Debug, PartialEq)]
pub enum CallEvent {
    /// `call.initiated`: a call reached the connection (`incoming`) or one we placed started.
    Initiated {
        incoming: bool,
    },
    Answered,
    Hangup {
        cause: String,
        sip_code: Option<u16>,
    },
    /// A machine detection verdict (`call.machine.*`).
    Machine(AnsweredBy),
    /// Anything else (`streaming.started`, `call.dtmf.received`, …): acknowledged, not acted on.
    Other(String),
}

/// One webhook: the event and the call it is about.
#[derive(Debug, PartialEq)]
pub struct Webhook {
    pub event: CallEvent,
    pub call_control_id: String,
    pub from: String,
    pub to: String,
    /// Our call id, when the call carries the `client_state` the dialer set.
    pub call_id: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("not a Telnyx call control webhook: {0}")]
pub struct WebhookError(String);

#[derive(Deserialize)]
struct Envelope {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    event_type: String,
    #[serde(default)]
    payload: Payload,
}

#[derive(Deserialize, Default)]
struct Payload {
    #[serde(default)]
    call_control_id: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    client_state: Option<String>,
    hangup_cause: Option<String>,
    sip_hangup_cause: Option<String>,
    result: Option<String>,
}

pub fn parse(body: &[u8]) -> Result<Webhook, WebhookError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| WebhookError(e.to_string()))?;
    let Data {
        event_type,
        payload: p,
    } = envelope.data;
    let result = p.result.as_deref().unwrap_or("");
    let event = match event_type.as_str() {
        "call.initiated" => CallEvent::Initiated {
            incoming: p.direction == "incoming",
        },
        "call.answered" => CallEvent::Answered,
        "call.hangup" => CallEvent::Hangup {
            cause: p.hangup_cause.clone().unwrap_or_default(),
            sip_code: p.sip_hangup_cause.as_deref().and_then(|c| c.parse().ok()),
        },
        "call.machine.detection.ended" | "call.machine.premium.detection.ended" => {
            CallEvent::Machine(detection_verdict(result))
        }
        // Whatever the result (beep, silence, not sure), Telnyx has stopped listening to the
        // greeting: a message left now is heard, or at worst clipped.
        "call.machine.greeting.ended" | "call.machine.premium.greeting.ended" => {
            CallEvent::Machine(AnsweredBy::MachineGreetingEnded)
        }
        other => CallEvent::Other(other.to_string()),
    };
    if !matches!(event, CallEvent::Other(_)) && p.call_control_id.is_empty() {
        return Err(WebhookError(format!(
            "{event_type} without call_control_id"
        )));
    }
    Ok(Webhook {
        event,
        call_id: p.client_state.as_deref().and_then(decode_client_state),
        call_control_id: p.call_control_id,
        from: p.from,
        to: p.to,
    })
}

/// `call.machine(.premium).detection.ended`'s `result`.
pub fn detection_verdict(result: &str) -> AnsweredBy {
    match result {
        "human" | "human_residence" | "human_business" => AnsweredBy::Human,
        "machine" => AnsweredBy::Machine,
        "fax_detected" => AnsweredBy::Fax,
        // `not_sure`, `silence` and anything new.
        _ => AnsweredBy::Unknown,
    }
}

/// The status of an outbound call that ended before its stream started.
pub fn unanswered_status(cause: &str) -> &'static str {
    match cause {
        "user_busy" | "call_rejected" => "busy",
        "timeout" | "no_answer" => "no-answer",
        _ => "failed",
    }
}

/// The `client_state` the dialer sets on an outbound call: base64 of our call id.
pub fn client_state(call_id: &str) -> String {
    BASE64.encode(call_id)
}

/// Our call id back from a `client_state`; `None` for someone else's state.
pub fn decode_client_state(state: &str) -> Option<String> {
    let bytes = BASE64.decode(state.trim()).ok()?;
    let id = String::from_utf8(bytes).ok()?;
    id.starts_with("call_").then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(event_type: &str, payload: serde_json::Value) -> Vec<u8> {
        serde_json::json!({"data": {"record_type": "event", "id": "e1", "event_type": event_type,
            "occurred_at": "2026-12-07T01:00:00Z", "payload": payload}, "meta": {"attempt": 1}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn an_incoming_call() {
        let hook = parse(&body(
            "call.initiated",
            serde_json::json!({"call_control_id": "v3:a", "direction": "incoming",
                "from": "+15550002000", "to": "+15550001000", "state": "parked",
                "client_state": null}),
        ))
        .unwrap();
        assert_eq!(hook.event, CallEvent::Initiated { incoming: true });
        assert_eq!(hook.call_control_id, "v3:a");
        assert_eq!(hook.to, "+15550001000");
        assert_eq!(hook.call_id, None);
    }

    #[test]
    fn our_outbound_call_is_recognised_by_its_client_state() {
        let hook = parse(&body(
            "call.hangup",
            serde_json::json!({"call_control_id": "v3:b", "direction": "outgoing",
                "client_state": client_state("call_123"), "hangup_cause": "user_busy",
                "sip_hangup_cause": "486"}),
        ))
        .unwrap();
        assert_eq!(
            hook.event,
            CallEvent::Hangup {
                cause: "user_busy".into(),
                sip_code: Some(486)
            }
        );
        assert_eq!(hook.call_id.as_deref(), Some("call_123"));
        assert_eq!(decode_client_state("aGVsbG8="), None, "not one of ours");
        assert_eq!(decode_client_state("%%%"), None);
    }

    #[test]
    fn machine_verdicts() {
        for (event, result, verdict) in [
            ("call.machine.detection.ended", "human", AnsweredBy::Human),
            (
                "call.machine.detection.ended",
                "machine",
                AnsweredBy::Machine,
            ),
            (
                "call.machine.detection.ended",
                "not_sure",
                AnsweredBy::Unknown,
            ),
            (
                "call.machine.premium.detection.ended",
                "human_business",
                AnsweredBy::Human,
            ),
            (
                "call.machine.premium.detection.ended",
                "fax_detected",
                AnsweredBy::Fax,
            ),
            (
                "call.machine.premium.detection.ended",
                "silence",
                AnsweredBy::Unknown,
            ),
            (
                "call.machine.greeting.ended",
                "beep_detected",
                AnsweredBy::MachineGreetingEnded,
            ),
            (
                "call.machine.greeting.ended",
                "ended",
                AnsweredBy::MachineGreetingEnded,
            ),
            (
                "call.machine.premium.greeting.ended",
                "no_beep_detected",
                AnsweredBy::MachineGreetingEnded,
            ),
        ] {
            let hook = parse(&body(
                event,
                serde_json::json!({"call_control_id": "v3:c", "result": result}),
            ))
            .unwrap();
            assert_eq!(hook.event, CallEvent::Machine(verdict), "{event} {result}");
        }
    }

    #[test]
    fn hangup_causes_of_calls_that_never_connected() {
        assert_eq!(unanswered_status("user_busy"), "busy");
        assert_eq!(unanswered_status("call_rejected"), "busy");
        assert_eq!(unanswered_status("timeout"), "no-answer");
        assert_eq!(unanswered_status("no_answer"), "no-answer");
        assert_eq!(unanswered_status("not_found"), "failed");
        assert_eq!(unanswered_status(""), "failed");
    }

    #[test]
    fn other_events_are_acknowledged_and_junk_is_an_error() {
        let hook = parse(&body("streaming.started", serde_json::json!({}))).unwrap();
        assert_eq!(hook.event, CallEvent::Other("streaming.started".into()));
        for junk in [&b""[..], b"{}", b"[]", b"{\"data\":{}}"] {
            assert!(parse(junk).is_err());
        }
        assert!(parse(&body("call.hangup", serde_json::json!({}))).is_err());
    }
}
