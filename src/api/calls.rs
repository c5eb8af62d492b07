//! `/v1/calls`: history, detail with transcript and latency, recordings, outbound calls.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router, routing::get, routing::post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{ApiJson, PathId, QueryMap};
use super::page::{List, page_request};
use super::validate::{DayEdge, datetime, one_of, phone, required, text};
use crate::agent::admission::Refusal;
use crate::store::{CallFilter, CallRecord, NewCall, TranscriptEntry};
use crate::telephony::{MachineDetection, OutboundCall};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/calls", get(list))
        .route("/v1/calls/outbound", post(outbound))
        .route("/v1/calls/{id}", get(fetch))
        .route("/v1/calls/{id}/recording", get(recording))
        .route("/v1/calls/{id}/transcript", get(transcript))
}

#[utoipa::path(get, path = "/v1/calls", tag = "calls",
    params(("agent_id" = Option<String>, Query), ("direction" = Option<String>, Query),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query),
           ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = List<CallRecord>), (status = "default", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    q: QueryMap,
) -> ApiResult<Json<List<CallRecord>>> {
    let page = page_request(&q)?;
    if let Some(d) = q.get("direction") {
        one_of(d, "direction", &["inbound", "outbound"])?;
    }
    let filter = CallFilter {
        agent_id: q.get("agent_id").map(str::to_string),
        direction: q.get("direction").map(str::to_string),
        from: q
            .get("from")
            .map(|v| datetime(v, "from", DayEdge::Start))
            .transpose()?,
        to: q
            .get("to")
            .map(|v| datetime(v, "to", DayEdge::End))
            .transpose()?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && to < from
    {
        return Err(ApiError::validation("to", "must not be before `from`"));
    }
    let calls = state.store.list_calls(&key.scope(), &filter, page).await?;
    Ok(Json(List::new(calls, page)))
}

#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls", params(("id" = String, Path)),
    responses((status = 200, body = CallRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn fetch(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<CallRecord>> {
    find(&state, &key.scope(), &id).await.map(Json)
}

async fn find(state: &ApiState, scope: &crate::store::Scope, id: &str) -> ApiResult<CallRecord> {
    state
        .store
        .get_call(scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No call {id}.")))
}

/// `GET /v1/calls/:id/transcript`.
#[derive(Serialize, ToSchema)]
pub struct Transcript {
    pub call_id: String,
    pub status: String,
    pub transcript: Vec<TranscriptEntry>,
}

#[utoipa::path(get, path = "/v1/calls/{id}/transcript", tag = "calls", params(("id" = String, Path)),
    responses((status = 200, body = Transcript), (status = "default", body = ErrorEnvelope)))]
pub async fn transcript(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<Transcript>> {
    let call = find(&state, &key.scope(), &id).await?;
    Ok(Json(Transcript {
        call_id: call.id,
        status: call.status,
        transcript: call.transcript.0,
    }))
}

#[utoipa::path(get, path = "/v1/calls/{id}/recording", tag = "calls", params(("id" = String, Path)),
    responses((status = 200, description = "Stereo WAV: caller left, agent right", content_type = "audio/wav"),
              (status = "default", body = ErrorEnvelope)))]
pub async fn recording(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let call = find(&state, &key.scope(), &id).await?;
    let recordings = state.config.data_dir.join("recordings");
    let path = match &call.recording_path {
        Some(p) => std::path::PathBuf::from(p),
        None => recordings.join(format!("{}.wav", call.id)),
    };
    let no_recording = || ApiError::not_found(format!("Call {id} has no recording yet."));
    // Only files inside the recordings directory are served, whatever the row says.
    let (path, root) = match (
        tokio::fs::canonicalize(&path).await,
        tokio::fs::canonicalize(&recordings).await,
    ) {
        (Ok(path), Ok(root)) => (path, root),
        _ => return Err(no_recording()),
    };
    if !path.starts_with(&root) {
        tracing::warn!(call_id = %call.id, "recording path outside the recordings directory refused");
        return Err(no_recording());
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_recording()),
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?
        .len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}.wav\"", call.id),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct OutboundRequest {
    /// Agent placing the call (required).
    agent_id: Option<String>,
    /// Callee, E.164 (required).
    to: Option<String>,
    /// Briefing context for the agent.
    context: Option<String>,
    /// Extension: answering-machine detection. Absent: off (the agent speaks as soon as the
    /// call is answered). The call record's `answered_by` says who answered.
    machine_detection: Option<MachineDetectionRequest>,
}

/// Extension: what an outbound call does when an answering machine picks up. With detection
/// on, the agent waits to greet until it knows who answered (a person, a machine, a fax);
/// a person, or a line nobody can tell within seconds, is greeted as usual.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineDetectionRequest {
    /// `leave_message`: wait for the end of the machine's greeting (its beep, or silence),
    /// say `message`, hang up (`end_reason` `voicemail_left`). `hang_up`: hang up at once
    /// (`end_reason` `machine_detected`). A fax is always hung up on (`fax_detected`).
    #[schema(example = "leave_message")]
    on_machine: Option<String>,
    /// What to say to the machine; required with `leave_message`, at most 1000 characters.
    message: Option<String>,
}

/// Longest voicemail message accepted: about a minute of speech.
const MAX_MACHINE_MESSAGE_CHARS: usize = 1000;

/// The request's `machine_detection`, checked.
fn machine_detection(request: Option<MachineDetectionRequest>) -> ApiResult<MachineDetection> {
    let Some(request) = request else {
        return Ok(MachineDetection::Off);
    };
    let on_machine = required(request.on_machine, "machine_detection.on_machine")?;
    match (on_machine.as_str(), request.message) {
        ("leave_message", Some(message)) => {
            text(
                &message,
                "machine_detection.message",
                MAX_MACHINE_MESSAGE_CHARS,
            )?;
            Ok(MachineDetection::LeaveMessage(message.trim().to_string()))
        }
        ("leave_message", None) => Err(ApiError::validation(
            "machine_detection.message",
            "is required when `on_machine` is `leave_message`",
        )),
        ("hang_up", None) => Ok(MachineDetection::HangUp),
        ("hang_up", Some(_)) => Err(ApiError::validation(
            "machine_detection.message",
            "is only said with `on_machine: leave_message`",
        )),
        (other, _) => Err(ApiError::validation(
            "machine_detection.on_machine",
            format!("must be one of leave_message, hang_up, got {other:?}"),
        )),
    }
}

#[utoipa::path(post, path = "/v1/calls/outbound", tag = "calls", request_body = OutboundRequest,
    responses((status = 201, body = CallRecord),
              (status = 503, description = "The engine is shutting down", body = ErrorEnvelope),
              (status = "default", body = ErrorEnvelope)))]
pub async fn outbound(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    ApiJson(body): ApiJson<OutboundRequest>,
) -> ApiResult<(StatusCode, Json<CallRecord>)> {
    let agent_id = required(body.agent_id, "agent_id")?;
    let to = required(body.to, "to")?;
    phone(&to, "to")?;
    if let Some(c) = &body.context {
        text(c, "context", 4000)?;
    }
    let machine_detection = machine_detection(body.machine_detection)?;
    if !state.dialer.accepting() {
        return Err(ApiError::unavailable(
            "The engine is shutting down and places no new calls; try again shortly.",
        ));
    }
    let scope = key.scope();
    let agent = state
        .store
        .get_agent(&scope, &agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No agent {agent_id}.")))?;
    if agent.status != "active" {
        return Err(ApiError::conflict(format!(
            "Agent {agent_id} is {}; activate it before placing calls.",
            agent.status
        )));
    }
    let permit = state
        .admission
        .admit(&state.store, &scope, Some(key.plan))
        .await
        .map_err(refused)?;
    let from = agent.phone_number.clone().unwrap_or_default();
    let call = state
        .store
        .create_call(
            &scope,
            NewCall {
                agent_id: agent.id.clone(),
                direction: "outbound".into(),
                caller: from.clone(),
                to: to.clone(),
                carrier_call_id: None,
                status: "ringing".into(),
                context: body.context.clone(),
            },
        )
        .await?;
    state.dialer.dial(OutboundCall {
        call_id: call.id.clone(),
        workspace_id: scope.workspace_id,
        live: scope.live,
        agent_id: agent.id,
        from,
        to,
        context: body.context,
        permit: Some(Arc::new(permit)),
        machine_detection,
    });
    Ok((StatusCode::CREATED, Json(call)))
}

/// Seconds a caller refused for concurrency is told to wait (calls last minutes).
const BUSY_RETRY_AFTER_SECS: u64 = 30;

/// A call admission turned away, in the error envelope: `402 quota_exceeded` once the plan's
/// minutes are used up, `429 rate_limited` while a concurrency cap is reached.
pub(super) fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::MinutesExhausted { .. } => {
            ApiError::quota_exceeded(format!("Cannot place the call: {refusal}."))
        }
        Refusal::EngineFull(_) | Refusal::WorkspaceFull(_) => ApiError::rate_limited(
            format!("Cannot place the call now: {refusal}. Try again when a call has ended."),
            BUSY_RETRY_AFTER_SECS,
        ),
        Refusal::Store(e) => ApiError::from(e),
    }
}
