//! Extension: browser calls over WebRTC, WHIP style. The page posts its SDP offer, gets the
//! answer (every candidate gathered) with the call's location, and `DELETE`s that location to
//! hang up.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Extension, Router};

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::PathId;
use super::{ApiState, calls};
use crate::telephony::webrtc::WebCallError;

/// The response header naming the new call (also the last segment of `Location`).
const CALL_ID_HEADER: &str = "x-call-id";
const SDP: &str = "application/sdp";

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/agents/{id}/web-calls", post(start))
        .route("/v1/web-calls/{id}", delete(hang_up))
}

/// Extension: starts a browser call to the agent. The body is the browser's SDP offer
/// (audio with Opus; a data channel labelled `captions` receives live captions as JSON
/// `{"speaker","text","final","at_ms"}`); the response is the SDP answer with all ICE
/// candidates (no trickle). The call record is `inbound` from `web`.
#[utoipa::path(post, path = "/v1/agents/{id}/web-calls", tag = "calls",
    params(("id" = String, Path, description = "The agent to talk to")),
    request_body(content = String, content_type = "application/sdp", description = "SDP offer"),
    responses(
        (status = 201, description = "SDP answer; `Location: /v1/web-calls/{call_id}`, `X-Call-Id: {call_id}`",
            content_type = "application/sdp", body = String),
        (status = 400, description = "Not an SDP offer with Opus audio", body = ErrorEnvelope),
        (status = 404, description = "No such agent", body = ErrorEnvelope),
        (status = 409, description = "The agent is paused", body = ErrorEnvelope),
        (status = 429, description = "Concurrent call limit reached", body = ErrorEnvelope),
        (status = 503, description = "Shutting down, or browser calls are not enabled", body = ErrorEnvelope),
        (status = "default", body = ErrorEnvelope)))]
pub async fn start(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(agent_id): PathId,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(SDP));
    if !is_sdp {
        return Err(ApiError::http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/sdp (the browser's SDP offer)",
        ));
    }
    let offer = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the SDP offer is not UTF-8 text"))?;
    let Some(web_calls) = &state.web_calls else {
        return Err(ApiError::unavailable(
            "Browser calls are not enabled on this engine.",
        ));
    };
    let call = web_calls
        .start(&key.scope(), key.plan, &agent_id, offer)
        .await
        .map_err(web_call_error)?;
    let location = format!("/v1/web-calls/{}", call.call_id);
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, SDP.to_string()),
            (header::LOCATION, location),
            (
                header::HeaderName::from_static(CALL_ID_HEADER),
                call.call_id,
            ),
        ],
        call.answer,
    )
        .into_response())
}

/// Extension: hangs up a running browser call (the `Location` of its start).
#[utoipa::path(delete, path = "/v1/web-calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "The call id")),
    responses((status = 204, description = "Hung up; the call record is finished as usual"),
              (status = 404, description = "No running browser call of this id", body = ErrorEnvelope),
              (status = "default", body = ErrorEnvelope)))]
pub async fn hang_up(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(call_id): PathId,
) -> ApiResult<StatusCode> {
    let hung_up = state
        .web_calls
        .as_ref()
        .is_some_and(|w| w.hang_up(&key.scope(), &call_id));
    if hung_up {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "No running browser call {call_id}."
        )))
    }
}

fn web_call_error(e: WebCallError) -> ApiError {
    match e {
        WebCallError::Draining => ApiError::unavailable(
            "The engine is shutting down and takes no new calls; try again shortly.",
        ),
        WebCallError::NoAgent(id) => ApiError::not_found(format!("No agent {id}.")),
        WebCallError::AgentInactive { .. } => ApiError::conflict(format!("{e}.")),
        WebCallError::BadOffer(message) => ApiError::bad_request(message),
        WebCallError::Refused(refusal) => calls::refused(refusal),
        WebCallError::Store(e) => ApiError::from(e),
        WebCallError::Internal(message) => ApiError::internal(message),
    }
}
