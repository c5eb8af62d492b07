//! Twilio's callbacks about the calls the engine placed, both signed like the voice webhook:
//! `POST /carrier/twilio/status` (call progress) and `POST /carrier/twilio/amd` (the async
//! answering-machine verdict). Each URL carries our call id in its query, which the signature
//! covers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::placed::{Ending, Verdict};
use super::{Auth, TwilioState, signature, unconfigured};
use crate::agent::session::CallServices;
use crate::store::CallOutcome;
use crate::telephony::{AnsweredBy, LegEvent};

/// A checked callback: our call id and Twilio's form.
struct Callback {
    call_id: String,
    params: Vec<(String, String)>,
}

impl Callback {
    fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// Why a callback is turned away.
enum Refusal {
    /// No auth token and no development flag: the endpoints serve nobody.
    Unconfigured,
    Status(StatusCode, &'static str),
}

impl Refusal {
    fn into_response(self, endpoint: &str) -> Response {
        match self {
            Refusal::Unconfigured => unconfigured(endpoint),
            Refusal::Status(status, message) => (status, message).into_response(),
        }
    }
}

/// Parses and authenticates a callback.
fn accept(
    state: &TwilioState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Callback, Refusal> {
    let token = match state.auth() {
        Auth::Token(token) => Some(token),
        Auth::Unsigned => None,
        Auth::Unconfigured => return Err(Refusal::Unconfigured),
    };
    let bad = |message: &'static str| Refusal::Status(StatusCode::BAD_REQUEST, message);
    let params = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|_| bad("expected a form-encoded Twilio callback"))?;
    if let Some(token) = token
        && !signature::is_valid_request(
            token,
            &state.services.config.public_url(),
            uri,
            headers,
            &params,
        )
    {
        return Err(Refusal::Status(
            StatusCode::FORBIDDEN,
            "invalid X-Twilio-Signature",
        ));
    }
    let call_id = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|q| q.into_iter().find(|(k, _)| k == "call_id").map(|(_, v)| v))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad("the callback URL names no call_id"))?;
    Ok(Callback { call_id, params })
}

/// `POST /carrier/twilio/status?call_id=…`
pub(crate) async fn status(
    State(state): State<Arc<TwilioState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let callback = match accept(&state, &uri, &headers, &body) {
        Ok(callback) => callback,
        Err(refusal) => return refusal.into_response("status"),
    };
    let call_id = callback.call_id.as_str();
    let call_status = callback.param("CallStatus");
    tracing::debug!(%call_id, call_sid = callback.param("CallSid"), %call_status, "twilio call status");
    let store = &state.services.store;
    match call_status {
        // The stream's `start` marks the call in progress when the session takes it.
        "queued" | "initiated" | "in-progress" => {}
        "ringing" => {
            if state.calls.placed.is_waiting(call_id)
                && let Err(e) = store.set_call_status(call_id, "ringing").await
            {
                tracing::error!(%call_id, "cannot record the ringing call: {e}");
            }
        }
        "completed" | "busy" | "no-answer" | "failed" | "canceled" => {
            let outcome = unstarted_outcome(&callback);
            finish_unstarted(&state, call_id, outcome).await;
        }
        other => {
            tracing::warn!(%call_id, status = other, "unknown twilio call status ignored");
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The record of a call that ended before its stream started.
fn unstarted_outcome(callback: &Callback) -> CallOutcome {
    let (status, reason) = match callback.param("CallStatus") {
        "busy" => ("busy", "busy"),
        "no-answer" => ("no-answer", "no_answer"),
        "canceled" => ("failed", "canceled"),
        // Answered, but the stream never connected (or the callee hung up first).
        "completed" => ("completed", "stream_not_connected"),
        _ => ("failed", "carrier_failed"),
    };
    let reason = match callback.param("SipResponseCode") {
        "" => reason.to_string(),
        code => format!("{reason} (SIP {code})"),
    };
    let mut outcome = CallOutcome::unanswered(status, reason);
    if status == "completed" {
        outcome.duration_seconds = callback.param("CallDuration").parse().unwrap_or(0);
    }
    outcome
}

/// Finishes `call_id` for a final status, unless its session runs (or ran): that one writes
/// the record itself, so `call.completed` goes out once.
async fn finish_unstarted(state: &TwilioState, call_id: &str, outcome: CallOutcome) {
    let services: &CallServices = &state.services;
    match state.calls.placed.end(call_id) {
        Ending::Streaming => return,
        // Finished below; dropping the call frees its admission permit.
        Ending::Unstarted(_call) => {}
        // Placed before a restart, or by another engine: the record decides.
        Ending::Unknown => match services.store.get_call_by_id(call_id).await {
            Ok(Some(call)) if call.ended_at.is_none() && call.status != "in-progress" => {}
            Ok(_) => return,
            Err(e) => {
                tracing::error!(%call_id, "cannot look up the call: {e}");
                return;
            }
        },
    }
    let status = outcome.status.clone();
    match services.store.finish_call(call_id, outcome).await {
        Ok(_) => tracing::info!(%call_id, %status, "outbound call ended before it was connected"),
        Err(e) => tracing::warn!(%call_id, "cannot finish the call: {e}"),
    }
}

/// Twilio's `AnsweredBy` (with `MachineDetection=DetectMessageEnd`).
fn answered_by(value: &str) -> Option<AnsweredBy> {
    Some(match value {
        "human" => AnsweredBy::Human,
        "machine_start" => AnsweredBy::Machine,
        "machine_end_beep" | "machine_end_silence" | "machine_end_other" => {
            AnsweredBy::MachineGreetingEnded
        }
        "fax" => AnsweredBy::Fax,
        "unknown" => AnsweredBy::Unknown,
        _ => return None,
    })
}

/// `POST /carrier/twilio/amd?call_id=…`
pub(crate) async fn amd(
    State(state): State<Arc<TwilioState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let callback = match accept(&state, &uri, &headers, &body) {
        Ok(callback) => callback,
        Err(refusal) => return refusal.into_response("amd"),
    };
    let call_id = callback.call_id.as_str();
    let Some(verdict) = answered_by(callback.param("AnsweredBy")) else {
        return (StatusCode::BAD_REQUEST, "unknown AnsweredBy").into_response();
    };
    tracing::info!(%call_id, ?verdict, "twilio answering-machine detection");
    match state.calls.placed.verdict(call_id, verdict) {
        Verdict::Deliver(events) => {
            if events.send(LegEvent::AnsweredBy(verdict)).await.is_err() {
                tracing::info!(%call_id, "the call ended before its AMD verdict arrived");
            }
        }
        Verdict::Kept => {}
        Verdict::Unknown => {
            tracing::info!(%call_id, "AMD verdict for a call this engine is not running")
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(params: &[(&str, &str)]) -> Callback {
        Callback {
            call_id: "call_1".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn every_answered_by_value_twilio_sends_is_understood() {
        assert_eq!(answered_by("human"), Some(AnsweredBy::Human));
        assert_eq!(answered_by("machine_start"), Some(AnsweredBy::Machine));
        for end in [
            "machine_end_beep",
            "machine_end_silence",
            "machine_end_other",
        ] {
            assert_eq!(answered_by(end), Some(AnsweredBy::MachineGreetingEnded));
        }
        assert_eq!(answered_by("fax"), Some(AnsweredBy::Fax));
        assert_eq!(answered_by("unknown"), Some(AnsweredBy::Unknown));
        assert_eq!(answered_by("robot"), None);
        assert_eq!(answered_by(""), None);
    }

    #[test]
    fn final_statuses_map_to_call_records() {
        let outcome = |params: &[(&str, &str)]| {
            let o = unstarted_outcome(&callback(params));
            (o.status, o.end_reason.unwrap(), o.duration_seconds)
        };
        assert_eq!(
            outcome(&[("CallStatus", "busy")]),
            ("busy".into(), "busy".into(), 0)
        );
        assert_eq!(
            outcome(&[("CallStatus", "no-answer")]),
            ("no-answer".into(), "no_answer".into(), 0)
        );
        assert_eq!(
            outcome(&[("CallStatus", "canceled")]),
            ("failed".into(), "canceled".into(), 0)
        );
        assert_eq!(
            outcome(&[("CallStatus", "failed"), ("SipResponseCode", "404")]),
            ("failed".into(), "carrier_failed (SIP 404)".into(), 0)
        );
        assert_eq!(
            outcome(&[("CallStatus", "completed"), ("CallDuration", "7")]),
            ("completed".into(), "stream_not_connected".into(), 7)
        );
    }
}
