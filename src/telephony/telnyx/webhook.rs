//! `POST /carrier/telnyx/webhook`: Call Control events, Ed25519-signed. An incoming call is
//! answered onto our media stream (or turned away); an outbound call that ends before its
//! stream started is finished with Telnyx's reason; machine-detection verdicts go to the call.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::call_events::{self, CallEvent, Webhook};
use super::registry::Delivery;
use super::rest::Action;
use super::stream_token::{INBOUND_TTL_SECS, StreamLeg};
use super::{TelnyxState, signature, stream_url, unconfigured, unix_now};
use crate::agent::admission::Refusal;
use crate::store::{CallOutcome, Scope};
use crate::telephony::twilio::webhook::record_missed;
use crate::telephony::{AnsweredBy, Direction, LegEvent};

/// What the media stream carries both ways: G.711 μ-law, which every Telnyx call can transcode
/// to, so the caller's codec never decides ours.
pub(super) const STREAM_CODEC: &str = "PCMU";

pub(crate) async fn webhook(
    State(state): State<Arc<TelnyxState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(auth) = &state.auth else {
        return unconfigured("webhook");
    };
    if let Err(e) = signature::verify_headers(&auth.public_key, &headers, &body, unix_now()) {
        tracing::warn!("telnyx webhook refused: {e}");
        return (StatusCode::FORBIDDEN, "invalid telnyx-signature-ed25519").into_response();
    }
    let hook = match call_events::parse(&body) {
        Ok(hook) => hook,
        Err(e) => {
            tracing::warn!("telnyx webhook skipped: {e}");
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    match hook.event {
        CallEvent::Initiated { incoming: true } => {
            if state.services.drain.is_draining() {
                // Telnyx then tries the connection's failover webhook URL.
                return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
            }
            // Answered right after our 200, so Telnyx does not wait on the lookups.
            tokio::spawn(take_incoming(state.clone(), hook));
        }
        CallEvent::Hangup {
            ref cause,
            sip_code,
        } => ended_unanswered(&state, &hook, cause, sip_code).await,
        CallEvent::Machine(verdict) => machine_verdict(&state, &hook, verdict).await,
        CallEvent::Initiated { incoming: false } | CallEvent::Answered => {
            tracing::debug!(call_control_id = %hook.call_control_id, event = ?hook.event, "telnyx call progress");
        }
        CallEvent::Other(ref name) => tracing::debug!(event = %name, "telnyx webhook ignored"),
    }
    StatusCode::OK.into_response()
}

/// Answers an incoming call onto the stream, or rejects it with a reason.
async fn take_incoming(state: Arc<TelnyxState>, hook: Webhook) {
    let Some(auth) = &state.auth else { return };
    let action = match admit(&state, &hook).await {
        Ok(()) => {
            let leg = StreamLeg {
                direction: Direction::Inbound,
                call: hook.call_control_id.clone(),
            };
            let query = leg.query(&auth.api_key, unix_now() + INBOUND_TTL_SECS);
            let url = stream_url(&state.services.config.public_url(), &query);
            Action::Answer(stream_settings(url))
        }
        Err(cause) => Action::Reject { cause },
    };
    if let Err(e) = auth.rest.command(&hook.call_control_id, &action).await {
        tracing::error!(call_control_id = %hook.call_control_id, ?action, "telnyx command failed: {e}");
    }
}

/// The media stream settings of `answer` and `POST /v2/calls`.
pub(super) fn stream_settings(url: String) -> serde_json::Value {
    serde_json::json!({
        "stream_url": url,
        "stream_track": "inbound_track",
        "stream_codec": STREAM_CODEC,
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": STREAM_CODEC,
    })
}

/// Whether an active agent answers this number and may take a call now; otherwise the
/// `reject` cause the caller hears.
async fn admit(state: &TelnyxState, hook: &Webhook) -> Result<(), &'static str> {
    let services = &state.services;
    let (to, from, id) = (&hook.to, &hook.from, &hook.call_control_id);
    let agent = match services.store.find_agent_by_phone(to, true).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            tracing::info!(%to, call_control_id = %id, "telnyx call to a number no agent answers");
            return Err("CALL_REJECTED");
        }
        Err(e) => {
            tracing::error!(%to, call_control_id = %id, "agent lookup failed: {e}");
            return Err("USER_BUSY");
        }
    };
    let scope = Scope {
        workspace_id: agent.workspace_id.clone(),
        live: agent.live,
    };
    if agent.status != "active" {
        if let Err(e) = record_missed(services, &scope, &agent.id, to, from, id).await {
            tracing::error!(call_control_id = %id, "cannot record the missed call: {e}");
        }
        return Err("USER_BUSY");
    }
    // A refusal now is a rejected call; the stream takes the call's own permit when it starts.
    match services
        .admission
        .admit(&services.store, &scope, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(refusal) => {
            tracing::warn!(%to, call_control_id = %id, "telnyx call refused: {refusal}");
            Err(match refusal {
                Refusal::MinutesExhausted { .. } => "CALL_REJECTED",
                _ => "USER_BUSY",
            })
        }
    }
}

/// An outbound call of ours that ended before its stream started: busy, no answer, failed.
/// Once streaming, the session finishes the call instead, so this finds nothing pending.
async fn ended_unanswered(state: &TelnyxState, hook: &Webhook, cause: &str, sip_code: Option<u16>) {
    let Some(call_id) = &hook.call_id else { return };
    let Some(pending) = state.registry.take_pending(call_id) else {
        return;
    };
    let status = call_events::unanswered_status(cause);
    let reason = match sip_code {
        Some(code) => format!("telnyx hangup: {cause} (SIP {code})"),
        None => format!("telnyx hangup: {cause}"),
    };
    tracing::info!(%call_id, %status, %reason, "telnyx outbound call not connected");
    let outcome = CallOutcome::unanswered(status, reason);
    if let Err(e) = state.services.store.finish_call(call_id, outcome).await {
        tracing::error!(%call_id, "cannot record the outbound call's end: {e}");
    }
    // The admission permit goes with it.
    drop(pending);
}

async fn machine_verdict(state: &TelnyxState, hook: &Webhook, verdict: AnsweredBy) {
    let id = &hook.call_control_id;
    let (delivery, events) = state.registry.verdict(hook.call_id.as_deref(), id, verdict);
    if let Some(events) = events {
        let _ = events.send(LegEvent::AnsweredBy(verdict)).await;
    }
    match delivery {
        Delivery::Unknown => {
            tracing::debug!(call_control_id = %id, ?verdict, "machine verdict for a call not running here")
        }
        _ => tracing::info!(call_control_id = %id, ?verdict, "telnyx machine detection"),
    }
}
