//! `POST /carrier/twilio/voice`: Twilio asks what to do with a call; we answer with TwiML that
//! connects it to our Media Streams WebSocket, or says why we cannot take it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::twiml::{Answer, stream_url};
use super::{Auth, TwilioState, signature, stream_token, unconfigured};
use crate::agent::admission::Refusal;
use crate::agent::session::CallServices;
use crate::store::{CallOutcome, NewCall, Scope};

const NOT_IN_SERVICE: &str = "The number you have called is not in service. Goodbye.";
const AGENT_PAUSED: &str =
    "Sorry, nobody can take your call right now. Please try again later. Goodbye.";
const ENGINE_ERROR: &str = "Sorry, we cannot take your call right now. Goodbye.";
const NO_MINUTES: &str = "Sorry, this line cannot take calls at the moment. Goodbye.";

pub(crate) async fn voice(
    State(state): State<Arc<TwilioState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let services = &state.services;
    if services.drain.is_draining() {
        // Twilio then tries the number's fallback URL (another engine, or a message).
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let token = match state.auth() {
        Auth::Token(token) => Some(token),
        Auth::Unsigned => None,
        Auth::Unconfigured => return unconfigured("voice"),
    };
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected a form-encoded Twilio webhook",
        )
            .into_response();
    };
    if let Some(token) = token
        && !signature::is_valid_request(
            token,
            &services.config.public_url(),
            &uri,
            &headers,
            &params,
        )
    {
        tracing::warn!("twilio voice webhook with a bad or missing signature");
        return (StatusCode::FORBIDDEN, "invalid X-Twilio-Signature").into_response();
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (to, from, call_sid) = (param("To"), param("From"), param("CallSid"));
    twiml(answer(services, token, &to, &from, &call_sid).await)
}

async fn answer(
    services: &CallServices,
    token: Option<&str>,
    to: &str,
    from: &str,
    call_sid: &str,
) -> Answer {
    let agent = match services.store.find_agent_by_phone(to, true).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            tracing::info!(%to, %call_sid, "twilio call to a number no agent answers");
            return Answer::Reject {
                message: NOT_IN_SERVICE.into(),
            };
        }
        Err(e) => {
            tracing::error!(%to, %call_sid, "agent lookup failed: {e}");
            return Answer::Reject {
                message: ENGINE_ERROR.into(),
            };
        }
    };
    let scope = Scope {
        workspace_id: agent.workspace_id.clone(),
        live: agent.live,
    };
    if agent.status != "active" {
        if let Err(e) = record_missed(services, &scope, &agent.id, to, from, call_sid).await {
            tracing::error!(%call_sid, "cannot record the missed call: {e}");
        }
        return Answer::Reject {
            message: AGENT_PAUSED.into(),
        };
    }
    // A refusal now is a spoken one; the stream takes the call's own permit when it starts.
    if let Err(refusal) = services
        .admission
        .admit(&services.store, &scope, None)
        .await
    {
        tracing::warn!(%to, %call_sid, "twilio call refused: {refusal}");
        return Answer::Reject {
            message: match refusal {
                Refusal::MinutesExhausted { .. } => NO_MINUTES.into(),
                _ => ENGINE_ERROR.into(),
            },
        };
    }
    let mut parameters = vec![
        ("agent_id".into(), agent.id),
        ("call_sid".into(), call_sid.into()),
        ("from".into(), from.into()),
        ("to".into(), to.into()),
    ];
    if let Some(token) = token {
        let expires_at = unix_now() + stream_token::TTL_SECS;
        let subject = stream_token::Subject::Inbound { call_sid };
        let minted = stream_token::mint(token, subject, to, from, expires_at);
        parameters.push((stream_token::PARAMETER.into(), minted));
    }
    Answer::Stream {
        url: stream_url(&services.config.public_url()),
        parameters,
    }
}

/// Seconds since the Unix epoch: stream tokens' clock.
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A call to a paused agent: recorded, so the operator sees it (and gets `call.missed`).
pub(crate) async fn record_missed(
    services: &CallServices,
    scope: &Scope,
    agent_id: &str,
    to: &str,
    from: &str,
    call_sid: &str,
) -> Result<(), crate::store::StoreError> {
    let call = services
        .store
        .create_call(
            scope,
            NewCall {
                agent_id: agent_id.into(),
                direction: "inbound".into(),
                caller: from.into(),
                to: to.into(),
                carrier_call_id: Some(call_sid.into()),
                status: "ringing".into(),
                context: None,
            },
        )
        .await?;
    services
        .store
        .finish_call(&call.id, CallOutcome::unanswered("missed", "agent_paused"))
        .await?;
    Ok(())
}

fn twiml(answer: Answer) -> Response {
    ([(header::CONTENT_TYPE, "application/xml")], answer.to_xml()).into_response()
}
