//! `GET|POST /carrier/vonage/answer`: Vonage asks what to do with an inbound call; we answer
//! with an NCCO that connects it to our audio WebSocket, or says why we cannot take it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ncco::{self, e164};
use super::{Shared, authenticate, stream_token, unix_now};
use crate::agent::admission::Refusal;
use crate::store::{CallOutcome, NewCall, Scope};
use crate::telephony::Direction;

const NOT_IN_SERVICE: &str = "The number you have called is not in service. Goodbye.";
const AGENT_PAUSED: &str =
    "Sorry, nobody can take your call right now. Please try again later. Goodbye.";
const ENGINE_ERROR: &str = "Sorry, we cannot take your call right now. Goodbye.";
const NO_MINUTES: &str = "Sorry, this line cannot take calls at the moment. Goodbye.";

pub(super) async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if shared.services.drain.is_draining() {
        // Vonage then tries the application's fallback answer URL.
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    // A POST's token hashes its JSON body; a GET's parameters ride in the (TLS) URL.
    let is_post = method == Method::POST;
    if let Some(refused) = authenticate(&shared, "answer", &headers, is_post.then_some(&body[..])) {
        return refused;
    }
    let params = if is_post {
        json_params(&body)
    } else {
        serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or("")).ok()
    };
    let Some(params) = params else {
        return (StatusCode::BAD_REQUEST, "expected Vonage's answer webhook").into_response();
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (to, from, uuid) = (e164(&param("to")), e164(&param("from")), param("uuid"));
    if uuid.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "answer webhook without a call uuid",
        )
            .into_response();
    }
    Json(decide(&shared, &to, &from, &uuid).await).into_response()
}

/// A JSON object's top-level fields as strings.
fn json_params(body: &[u8]) -> Option<Vec<(String, String)>> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    Some(
        fields
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
    )
}

/// The NCCO for a call from `from` to `to`.
async fn decide(shared: &Shared, to: &str, from: &str, uuid: &str) -> Value {
    let services = &shared.services;
    let agent = match services.store.find_agent_by_phone(to, true).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            tracing::info!(%to, %uuid, "vonage call to a number no agent answers");
            return ncco::talk(NOT_IN_SERVICE);
        }
        Err(e) => {
            tracing::error!(%to, %uuid, "agent lookup failed: {e}");
            return ncco::talk(ENGINE_ERROR);
        }
    };
    let scope = Scope {
        workspace_id: agent.workspace_id.clone(),
        live: agent.live,
    };
    if agent.status != "active" {
        if let Err(e) = record_missed(shared, &scope, &agent.id, to, from, uuid).await {
            tracing::error!(%uuid, "cannot record the missed call: {e}");
        }
        return ncco::talk(AGENT_PAUSED);
    }
    // A refusal now is a spoken one; the stream takes the call's own permit when it starts.
    if let Err(refusal) = services
        .admission
        .admit(&services.store, &scope, None)
        .await
    {
        tracing::warn!(%to, %uuid, "vonage call refused: {refusal}");
        return ncco::talk(match refusal {
            Refusal::MinutesExhausted { .. } => NO_MINUTES,
            _ => ENGINE_ERROR,
        });
    }
    // `authenticate` let us in, so the secret is there.
    let secret = shared.secret().unwrap_or_default();
    let expires_at = unix_now() + stream_token::INBOUND_TTL_SECS;
    let token = stream_token::mint(secret, Direction::Inbound, uuid, to, from, expires_at);
    let headers = [
        ("direction", "inbound"),
        ("uuid", uuid),
        ("to", to),
        ("from", from),
        ("agent_id", agent.id.as_str()),
        (stream_token::HEADER, token.as_str()),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    ncco::connect_stream(&ncco::stream_url(&services.config.public_url()), &headers)
}

/// A call to a paused agent: recorded, so the operator sees it (and gets `call.missed`).
async fn record_missed(
    shared: &Shared,
    scope: &Scope,
    agent_id: &str,
    to: &str,
    from: &str,
    uuid: &str,
) -> Result<(), crate::store::StoreError> {
    let store = &shared.services.store;
    let call = store
        .create_call(
            scope,
            NewCall {
                agent_id: agent_id.into(),
                direction: "inbound".into(),
                caller: from.into(),
                to: to.into(),
                carrier_call_id: Some(uuid.into()),
                status: "ringing".into(),
                context: None,
            },
        )
        .await?;
    store
        .finish_call(&call.id, CallOutcome::unanswered("missed", "agent_paused"))
        .await?;
    Ok(())
}
