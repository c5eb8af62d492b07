//! `POST /carrier/vonage/event`: Vonage reports each change of a call. For an outbound call
//! (its `event_url` names our call id) that never reached its stream, a final status finishes
//! the call record; machine-detection results go to the call's stream as `AnsweredBy`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::calls::Verdict;
use super::{Shared, authenticate};
use crate::store::CallOutcome;
use crate::telephony::{AnsweredBy, LegEvent};

/// What an event means for an outbound call that has not streamed yet.
#[derive(Debug, PartialEq)]
pub(super) enum Progress {
    Ringing,
    /// It will never stream: finish it with this status and reason.
    Ended {
        status: &'static str,
        reason: String,
    },
    Nothing,
}

pub(super) async fn event(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = authenticate(&shared, "event", &headers, Some(&body[..])) {
        return refused;
    }
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "expected a Vonage call event").into_response();
    };
    let field = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or("");
    let call_id = serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or(""))
        .ok()
        .and_then(|q| q.into_iter().find(|(k, _)| k == "call_id").map(|(_, v)| v));
    let status = field("status");
    // Machine-detection events name the call `call_uuid`; the others `uuid`.
    let uuid = match field("uuid") {
        "" => field("call_uuid"),
        uuid => uuid,
    };
    tracing::debug!(?call_id, %uuid, %status, "vonage call event");
    if let Some(verdict) = machine_verdict(status, field("sub_state")) {
        // Only calls we placed ask for detection; their key is our call id.
        let key = call_id.as_deref().unwrap_or(uuid);
        match shared.calls.verdict(key, verdict) {
            Verdict::Deliver(events) => {
                let _ = events.send(LegEvent::AnsweredBy(verdict)).await;
            }
            Verdict::Kept => tracing::debug!(%key, ?verdict, "verdict kept for the stream"),
            Verdict::Unknown => tracing::info!(%key, ?verdict, "verdict for no live call"),
        }
        return StatusCode::OK.into_response();
    }
    let Some(call_id) = call_id else {
        // Inbound calls need nothing from their events: the stream carries the call.
        return StatusCode::OK.into_response();
    };
    match progress(status, field("to"), field("detail")) {
        Progress::Ringing if shared.calls.is_pending(&call_id) => {
            if let Err(e) = shared
                .services
                .store
                .set_call_status(&call_id, "ringing")
                .await
            {
                tracing::warn!(%call_id, "cannot record ringing: {e}");
            }
        }
        Progress::Ended { status, reason } => {
            if let Some(call) = shared.calls.take_unconnected(&call_id) {
                tracing::info!(%call_id, %status, %reason, "vonage call ended unconnected");
                let outcome = CallOutcome::unanswered(status, reason);
                if let Err(e) = shared
                    .services
                    .store
                    .finish_call(&call.call_id, outcome)
                    .await
                {
                    tracing::error!(%call_id, "cannot record the unconnected call: {e}");
                }
            }
        }
        Progress::Ringing | Progress::Nothing => {}
    }
    StatusCode::OK.into_response()
}

/// Advanced machine detection: `human`, or `machine` (with `sub_state` `beep_start` once the
/// greeting's beep sounds, `beep_timeout` when none came: either way a message can be left).
pub(super) fn machine_verdict(status: &str, sub_state: &str) -> Option<AnsweredBy> {
    match (status, sub_state) {
        ("human", _) => Some(AnsweredBy::Human),
        ("machine", "beep_start" | "beep_timeout") => Some(AnsweredBy::MachineGreetingEnded),
        ("machine", _) => Some(AnsweredBy::Machine),
        _ => None,
    }
}

/// What `status` means for an outbound call not yet streaming. `to` tells the callee's leg
/// from the WebSocket leg our NCCO opens (whose `to` is the socket's URI).
pub(super) fn progress(status: &str, to: &str, detail: &str) -> Progress {
    let websocket_leg = to.starts_with("ws://") || to.starts_with("wss://");
    let because = |what: &str| {
        if detail.is_empty() {
            format!("vonage: {what}")
        } else {
            format!("vonage: {what} ({detail})")
        }
    };
    if websocket_leg {
        return match status {
            "failed" | "unanswered" | "rejected" | "timeout" => Progress::Ended {
                status: "failed",
                reason: because("the media stream could not be opened"),
            },
            _ => Progress::Nothing,
        };
    }
    match status {
        "ringing" => Progress::Ringing,
        "busy" => Progress::Ended {
            status: "busy",
            reason: because("busy"),
        },
        "timeout" | "unanswered" => Progress::Ended {
            status: "no-answer",
            reason: because(status),
        },
        "failed" | "rejected" | "cancelled" => Progress::Ended {
            status: "failed",
            reason: because(status),
        },
        "completed" => Progress::Ended {
            status: "failed",
            reason: because("the call ended before its media stream connected"),
        },
        _ => Progress::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_detection_results() {
        assert_eq!(machine_verdict("human", ""), Some(AnsweredBy::Human));
        assert_eq!(machine_verdict("machine", ""), Some(AnsweredBy::Machine));
        assert_eq!(
            machine_verdict("machine", "beep_start"),
            Some(AnsweredBy::MachineGreetingEnded)
        );
        assert_eq!(
            machine_verdict("machine", "beep_timeout"),
            Some(AnsweredBy::MachineGreetingEnded)
        );
        assert_eq!(machine_verdict("answered", ""), None);
    }

    #[test]
    fn final_statuses_of_the_callee_leg() {
        let ended = |status: &str| match progress(status, "15550002000", "") {
            Progress::Ended { status, .. } => Some(status),
            _ => None,
        };
        assert_eq!(ended("busy"), Some("busy"));
        assert_eq!(ended("timeout"), Some("no-answer"));
        assert_eq!(ended("unanswered"), Some("no-answer"));
        assert_eq!(ended("failed"), Some("failed"));
        assert_eq!(ended("rejected"), Some("failed"));
        assert_eq!(ended("cancelled"), Some("failed"));
        assert_eq!(ended("completed"), Some("failed"));
        for status in ["started", "answered", "disconnected", "transfer", "bogus"] {
            assert_eq!(
                progress(status, "15550002000", ""),
                Progress::Nothing,
                "{status}"
            );
        }
        assert_eq!(progress("ringing", "15550002000", ""), Progress::Ringing);
        assert_eq!(
            progress("failed", "15550002000", "invalid_number"),
            Progress::Ended {
                status: "failed",
                reason: "vonage: failed (invalid_number)".into()
            }
        );
    }

    #[test]
    fn the_websocket_legs_events_matter_only_when_it_fails() {
        let uri = "wss://calls.example.com/carrier/vonage/stream";
        for status in [
            "started",
            "ringing",
            "answered",
            "completed",
            "disconnected",
        ] {
            assert_eq!(progress(status, uri, ""), Progress::Nothing, "{status}");
        }
        assert!(matches!(
            progress("failed", uri, ""),
            Progress::Ended {
                status: "failed",
                ..
            }
        ));
    }
}
