//! `/v1/webhooks`: subscriptions to events. Secrets are generated when absent and shown once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Router, routing::delete, routing::get};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{ApiJson, PathId};
use super::validate::{required, webhook_url};
use super::{ApiState, Deleted};
use crate::store::{EVENT_TYPES, WebhookRecord};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/webhooks", get(list).post(create))
        .route("/v1/webhooks/{id}", delete(remove))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateWebhook {
    /// HTTPS endpoint (required).
    url: Option<String>,
    /// Event types to subscribe to (required, at least one).
    events: Option<Vec<String>>,
    /// Signing secret (generated `whsec_…` when absent).
    secret: Option<String>,
}

/// `GET /v1/webhooks`.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<WebhookRecord>,
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList), (status = "default", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
) -> ApiResult<Json<WebhookList>> {
    let hooks = state.store.list_webhooks(&key.scope()).await?;
    Ok(Json(WebhookList { data: hooks.items }))
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookRecord>)> {
    let url = required(body.url, "url")?;
    let mut events = required(body.events, "events")?;
    if url.len() > 2048 {
        return Err(ApiError::validation(
            "url",
            "must be at most 2048 characters",
        ));
    }
    let url = webhook_url(&url, "url", state.config.webhook_allow_loopback)?;
    if events.is_empty() {
        return Err(ApiError::validation(
            "events",
            "must name at least one event",
        ));
    }
    if let Some(unknown) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        return Err(ApiError::validation(
            "events",
            format!(
                "{unknown:?} is not an event; known: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    events.sort();
    events.dedup();
    let secret = match body.secret {
        Some(s) if (16..=256).contains(&s.len()) && !s.chars().any(char::is_whitespace) => s,
        Some(_) => {
            return Err(ApiError::validation(
                "secret",
                "must be 16 to 256 characters without spaces",
            ));
        }
        None => crate::store::new_id("whsec_"),
    };
    let hook = state
        .store
        .create_webhook(&key.scope(), url.to_string(), events, secret)
        .await?;
    Ok((StatusCode::CREATED, Json(hook)))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = "default", body = ErrorEnvelope)))]
pub async fn remove(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<Deleted>> {
    if state.store.delete_webhook(&key.scope(), &id).await? {
        Ok(Json(Deleted { deleted: true }))
    } else {
        Err(ApiError::not_found(format!("No webhook {id}.")))
    }
}
