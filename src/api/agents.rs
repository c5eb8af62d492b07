//! `/v1/agents`: create, list, get, update and delete voice agents.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Router, routing::get};
use serde::Deserialize;
use utoipa::ToSchema;

use super::agent_extensions::{check_llm, check_tools};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{ApiJson, PathId, QueryMap};
use super::page::{List, page_request};
use super::validate::{self, phone, required, text};
use super::{ApiState, Deleted, double_option};
use crate::agent::tools::http_tool::HttpTool;
use crate::providers::llm::AgentLlm;
use crate::providers::tts::voices::VOICES;
use crate::store::{AgentPatch, AgentRecord, NewAgent, Scope};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/agents", get(list).post(create))
        .route("/v1/agents/{id}", get(fetch).patch(update).delete(remove))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateAgent {
    /// Display name (required).
    name: Option<String>,
    /// A voice of `GET /v1/voices` (required).
    voice_id: Option<String>,
    greeting: Option<String>,
    prompt: Option<String>,
    knowledge_base_id: Option<String>,
    /// E.164 number callers dial to reach this agent; unique per mode across all workspaces
    /// (`409 conflict` when another agent has it).
    phone_number: Option<String>,
    /// Extension: the only E.164 numbers or `sip:` URIs `transfer_call` may send callers to.
    transfer_targets: Option<Vec<String>>,
    /// Extension: this agent's LLM model, temperature and max_tokens.
    llm: Option<AgentLlm>,
    /// Extension: operator HTTP tools the LLM may call.
    tools: Option<Vec<HttpTool>>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateAgent {
    name: Option<String>,
    voice_id: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    greeting: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    prompt: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    knowledge_base_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    phone_number: Option<Option<String>>,
    /// Extension: replaces the agent's transfer targets.
    transfer_targets: Option<Vec<String>>,
    /// Extension: replaces the agent's LLM settings (`{}` returns to the operator's).
    llm: Option<AgentLlm>,
    /// Extension: replaces the agent's tools; a header value `"[redacted]"` keeps the stored one.
    tools: Option<Vec<HttpTool>>,
    /// `active` or `paused`.
    status: Option<String>,
}

fn check_voice(voice_id: &str) -> ApiResult<()> {
    if VOICES.iter().any(|v| v.id == voice_id) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "voice_id",
            format!("{voice_id:?} is not a voice of GET /v1/voices"),
        ))
    }
}

async fn check_knowledge_base(state: &ApiState, scope: &Scope, id: &str) -> ApiResult<()> {
    match state.store.get_knowledge_base(scope, id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::validation(
            "knowledge_base_id",
            format!("{id:?} is not a knowledge base of this workspace"),
        )),
    }
}

fn check_optional_texts(greeting: Option<&str>, prompt: Option<&str>) -> ApiResult<()> {
    if let Some(g) = greeting {
        text(g, "greeting", 1000)?;
    }
    if let Some(p) = prompt {
        text(p, "prompt", 20_000)?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    params(("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = List<AgentRecord>), (status = "default", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    q: QueryMap,
) -> ApiResult<Json<List<AgentRecord>>> {
    let page = page_request(&q)?;
    let agents = state.store.list_agents(&key.scope(), page).await?;
    Ok(Json(List::new(agents, page)))
}

#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = CreateAgent,
    responses((status = 201, body = AgentRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    ApiJson(body): ApiJson<CreateAgent>,
) -> ApiResult<(StatusCode, Json<AgentRecord>)> {
    let name = required(body.name, "name")?;
    let voice_id = required(body.voice_id, "voice_id")?;
    text(&name, "name", 200)?;
    check_voice(&voice_id)?;
    check_optional_texts(body.greeting.as_deref(), body.prompt.as_deref())?;
    let scope = key.scope();
    if let Some(kb) = &body.knowledge_base_id {
        check_knowledge_base(&state, &scope, kb).await?;
    }
    if let Some(p) = &body.phone_number {
        phone(p, "phone_number")?;
    }
    let transfer_targets = body.transfer_targets.unwrap_or_default();
    validate::transfer_targets(&transfer_targets, "transfer_targets")?;
    let llm = body.llm.unwrap_or_default();
    check_llm(&llm)?;
    let mut tools = body.tools.unwrap_or_default();
    check_tools(&mut tools, &[], state.config.webhook_allow_loopback)?;
    let agent = state
        .store
        .create_agent(
            &scope,
            NewAgent {
                name,
                voice_id,
                greeting: body.greeting,
                prompt: body.prompt,
                knowledge_base_id: body.knowledge_base_id,
                phone_number: body.phone_number,
                transfer_targets,
                llm,
                tools,
            },
        )
        .await?;
    state.agent_saved(&agent);
    Ok((StatusCode::CREATED, Json(agent)))
}

#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = AgentRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn fetch(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<AgentRecord>> {
    match state.store.get_agent(&key.scope(), &id).await? {
        Some(agent) => Ok(Json(agent)),
        None => Err(ApiError::not_found(format!("No agent {id}."))),
    }
}

#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    request_body = UpdateAgent,
    responses((status = 200, body = AgentRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateAgent>,
) -> ApiResult<Json<AgentRecord>> {
    let scope = key.scope();
    if let Some(name) = &body.name {
        text(name, "name", 200)?;
    }
    if let Some(voice) = &body.voice_id {
        check_voice(voice)?;
    }
    if let Some(status) = &body.status {
        validate::one_of(status, "status", &["active", "paused"])?;
    }
    check_optional_texts(
        body.greeting.as_ref().and_then(Option::as_deref),
        body.prompt.as_ref().and_then(Option::as_deref),
    )?;
    if let Some(Some(kb)) = &body.knowledge_base_id {
        check_knowledge_base(&state, &scope, kb).await?;
    }
    if let Some(Some(p)) = &body.phone_number {
        phone(p, "phone_number")?;
    }
    if let Some(targets) = &body.transfer_targets {
        validate::transfer_targets(targets, "transfer_targets")?;
    }
    if let Some(llm) = &body.llm {
        check_llm(llm)?;
    }
    let tools = match body.tools {
        Some(mut tools) => {
            let stored = match state.store.get_agent(&scope, &id).await? {
                Some(agent) => agent.tools.0,
                None => return Err(ApiError::not_found(format!("No agent {id}."))),
            };
            check_tools(&mut tools, &stored, state.config.webhook_allow_loopback)?;
            Some(tools)
        }
        None => None,
    };
    let patch = AgentPatch {
        name: body.name,
        voice_id: body.voice_id,
        greeting: body.greeting,
        prompt: body.prompt,
        knowledge_base_id: body.knowledge_base_id,
        phone_number: body.phone_number,
        transfer_targets: body.transfer_targets,
        llm: body.llm,
        tools,
        status: body.status,
    };
    match state.store.update_agent(&scope, &id, patch).await? {
        Some(agent) => {
            state.agent_saved(&agent);
            Ok(Json(agent))
        }
        None => Err(ApiError::not_found(format!("No agent {id}."))),
    }
}

#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = "default", body = ErrorEnvelope)))]
pub async fn remove(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<Deleted>> {
    if state.store.delete_agent(&key.scope(), &id).await? {
        Ok(Json(Deleted { deleted: true }))
    } else {
        Err(ApiError::not_found(format!("No agent {id}.")))
    }
}
