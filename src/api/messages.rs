//! `/v1/messages`: SMS and WhatsApp, sent through `crate::messaging`.

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
use crate::messaging::{MAX_SMS_CHARS, SendError};
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
    /// Sender number, E.164 (defaults to the operator's configured sender).
    from_number: Option<String>,
    /// Lead this message belongs to (default: the lead with the recipient's number).
    lead_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SendWhatsapp {
    /// Recipient, E.164 (required; a `whatsapp:` prefix is accepted).
    to: Option<String>,
    /// Approved template: the provider's id of it (Twilio: a Content SID `HX…`). Required
    /// unless `body` is given.
    template: Option<String>,
    /// Template variable values.
    #[schema(value_type = Option<Object>)]
    variables: Option<serde_json::Map<String, serde_json::Value>>,
    /// Extension: a free-form body, allowed within 24 hours of the recipient's last message.
    body: Option<String>,
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

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        let message = e.to_string();
        match e {
            SendError::NotConfigured(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                message,
            ),
            SendError::TooLong(_) | SendError::OutsideWhatsappWindow => {
                ApiError::validation("body", message)
            }
            SendError::OverSmsLimit { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            SendError::Provider(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", message)
            }
            SendError::Store(e) => e.into(),
        }
    }
}

/// Live keys send through the operator's provider, test keys through the sandbox. A live
/// message starts `queued` and moves on as the provider reports; a sandbox one is `delivered`
/// at once, as the simulation has it.
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
    text(&body, "body", MAX_SMS_CHARS)?;
    if let Some(from) = &req.from_number {
        phone(from, "from_number")?;
    }
    let scope = key.scope();
    check_lead(&state, &scope, req.lead_id.as_deref()).await?;
    let request = NewMessage {
        channel: "sms".into(),
        to,
        from_number: req.from_number,
        body: Some(body),
        template: None,
        variables: None,
        lead_id: req.lead_id,
        segments: None,
    };
    let msg = state.messaging.send(&scope, key.plan, request).await?;
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
    let to = to
        .strip_prefix("whatsapp:")
        .map(str::to_string)
        .unwrap_or(to);
    phone(&to, "to")?;
    match (&req.template, &req.body) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "body",
                "cannot be sent with a template; give one of them",
            ));
        }
        (None, None) => return Err(ApiError::missing("template")),
        (Some(template), None) => text(template, "template", 512)?,
        (None, Some(body)) => text(body, "body", MAX_SMS_CHARS)?,
    }
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
    let request = NewMessage {
        channel: "whatsapp".into(),
        to,
        from_number: None,
        body: req.body,
        template: req.template,
        variables: req.variables.map(serde_json::Value::Object),
        lead_id: req.lead_id,
        segments: None,
    };
    let msg = state.messaging.send(&scope, key.plan, request).await?;
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
