//! `/v1/messages`: SMS and WhatsApp. No messaging provider is wired in yet, so every message is
//! stored and its delivery simulated (status `sent`, then `delivered` with a
//! `message.delivered` event); test keys never send, whatever provider arrives later.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Router, routing::get, routing::post};
use serde::Deserialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{ApiJson, QueryMap};
use super::page::{List, page_request};
use super::validate::{one_of, phone, required, text};
use crate::store::{MessageFilter, MessageRecord, NewMessage, Scope};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/messages", get(list))
        .route("/v1/messages/sms", post(send_sms))
        .route("/v1/messages/whatsapp", post(send_whatsapp))
}

#[derive(Deserialize, ToSchema)]
pub struct SendSms {
    /// Recipient, E.164 (required).
    to: Option<String>,
    /// Message content, at most 1600 characters (required).
    body: Option<String>,
    /// Sender number, E.164 (defaults to the workspace number).
    from_number: Option<String>,
    /// Lead this message belongs to (default: the lead with the recipient's number).
    lead_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SendWhatsapp {
    /// Recipient, E.164 (required).
    to: Option<String>,
    /// Approved template name (required).
    template: Option<String>,
    /// Template variable values.
    #[schema(value_type = Option<Object>)]
    variables: Option<serde_json::Map<String, serde_json::Value>>,
    lead_id: Option<String>,
}

async fn check_lead(state: &ApiState, scope: &Scope, lead_id: Option<&str>) -> ApiResult<()> {
    if let Some(id) = lead_id
        && state.store.get_lead(scope, id).await?.is_none()
    {
        return Err(ApiError::validation(
            "lead_id",
            format!("{id:?} is not a lead of this workspace"),
        ));
    }
    Ok(())
}

/// Stores the message and simulates its delivery; answers with the `sent` record.
async fn send(state: &ApiState, scope: &Scope, new: NewMessage) -> ApiResult<MessageRecord> {
    let msg = state.store.create_message(scope, new).await?;
    state.store.mark_message_delivered(scope, &msg.id).await?;
    Ok(msg)
}

#[utoipa::path(post, path = "/v1/messages/sms", tag = "messages", request_body = SendSms,
    responses((status = 201, body = MessageRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn send_sms(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    ApiJson(req): ApiJson<SendSms>,
) -> ApiResult<(StatusCode, Json<MessageRecord>)> {
    let to = required(req.to, "to")?;
    let body = required(req.body, "body")?;
    phone(&to, "to")?;
    text(&body, "body", 1600)?;
    if let Some(from) = &req.from_number {
        phone(from, "from_number")?;
    }
    let scope = key.scope();
    check_lead(&state, &scope, req.lead_id.as_deref()).await?;
    let msg = send(
        &state,
        &scope,
        NewMessage {
            channel: "sms".into(),
            to,
            from_number: req.from_number,
            body: Some(body),
            template: None,
            variables: None,
            lead_id: req.lead_id,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(msg)))
}

#[utoipa::path(post, path = "/v1/messages/whatsapp", tag = "messages", request_body = SendWhatsapp,
    responses((status = 201, body = MessageRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn send_whatsapp(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    ApiJson(req): ApiJson<SendWhatsapp>,
) -> ApiResult<(StatusCode, Json<MessageRecord>)> {
    let to = required(req.to, "to")?;
    let template = required(req.template, "template")?;
    phone(&to, "to")?;
    text(&template, "template", 512)?;
    if let Some(vars) = &req.variables {
        if vars.len() > 50 {
            return Err(ApiError::validation(
                "variables",
                "must hold at most 50 values",
            ));
        }
        if let Some((name, _)) = vars.iter().find(|(_, v)| v.is_object() || v.is_array()) {
            return Err(ApiError::validation(
                "variables",
                format!("value of {name:?} must be a string, number or boolean"),
            ));
        }
    }
    let scope = key.scope();
    check_lead(&state, &scope, req.lead_id.as_deref()).await?;
    let msg = send(
        &state,
        &scope,
        NewMessage {
            channel: "whatsapp".into(),
            to,
            from_number: None,
            body: None,
            template: Some(template),
            variables: req.variables.map(serde_json::Value::Object),
            lead_id: req.lead_id,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(msg)))
}

#[utoipa::path(get, path = "/v1/messages", tag = "messages",
    params(("channel" = Option<String>, Query), ("lead_id" = Option<String>, Query),
           ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = List<MessageRecord>), (status = "default", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    q: QueryMap,
) -> ApiResult<Json<List<MessageRecord>>> {
    let page = page_request(&q)?;
    if let Some(c) = q.get("channel") {
        one_of(c, "channel", &["sms", "whatsapp", "email"])?;
    }
    let filter = MessageFilter {
        channel: q.get("channel").map(str::to_string),
        lead_id: q.get("lead_id").map(str::to_string),
    };
    let messages = state
        .store
        .list_messages(&key.scope(), &filter, page)
        .await?;
    Ok(Json(List::new(messages, page)))
}
