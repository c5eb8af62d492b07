//! `/v1/webhooks`: subscriptions to events. Secrets are generated when absent and shown once.
//! Extensions: `PATCH` (url, events, re-enable), the attempt log, and a signed test ping.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Router, routing::get, routing::post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{ApiJson, PathId, QueryMap};
use super::page::{List, page_request};
use super::validate::{one_of, outbound_url, required};
use super::{ApiState, Deleted};
use crate::events::dispatcher::DispatcherSettings;
use crate::events::sender::Outgoing;
use crate::store::{EVENT_TYPES, WebhookAttempt, WebhookRecord};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/webhooks", get(list).post(create))
        .route(
            "/v1/webhooks/{id}",
            axum::routing::delete(remove).patch(update),
        )
        .route("/v1/webhooks/{id}/deliveries", get(deliveries))
        .route("/v1/webhooks/{id}/test", post(test))
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
    let events = required(body.events, "events")?;
    let url = target(&url, &state)?;
    let events = subscribed_events(events)?;
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
        .create_webhook(&key.scope(), url, events, secret)
        .await?;
    Ok((StatusCode::CREATED, Json(hook)))
}

/// A checked target URL.
fn target(url: &str, state: &ApiState) -> ApiResult<String> {
    if url.len() > 2048 {
        return Err(ApiError::validation(
            "url",
            "must be at most 2048 characters",
        ));
    }
    Ok(outbound_url(url, "url", state.config.webhook_allow_loopback)?.to_string())
}

/// Known event names, sorted and without repeats.
fn subscribed_events(mut events: Vec<String>) -> ApiResult<Vec<String>> {
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
    Ok(events)
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateWebhook {
    /// New HTTPS endpoint.
    url: Option<String>,
    /// New event subscription (replaces the old one).
    events: Option<Vec<String>>,
    /// `active` re-enables a disabled webhook (its pending deliveries resume); `disabled`
    /// pauses it.
    status: Option<String>,
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateWebhook,
    responses((status = 200, body = WebhookRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<WebhookRecord>> {
    let mut hook = find(&state, &key.scope(), &id).await?;
    if let Some(url) = body.url {
        hook.url = target(&url, &state)?;
    }
    if let Some(events) = body.events {
        hook.events = crate::store::JsonText(subscribed_events(events)?);
    }
    if let Some(status) = body.status {
        one_of(&status, "status", &["active", "disabled"])?;
        if status != hook.status {
            hook.disabled_reason = (status == "disabled").then(|| "disabled by request".into());
            hook.status = status;
        }
    }
    state.store.update_webhook(&hook).await?;
    hook.secret = None;
    Ok(Json(hook))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = List<WebhookAttempt>, description = "Delivery attempts, newest first"),
              (status = "default", body = ErrorEnvelope)))]
pub async fn deliveries(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
    q: QueryMap,
) -> ApiResult<Json<List<WebhookAttempt>>> {
    let page = page_request(&q)?;
    find(&state, &key.scope(), &id).await?;
    let attempts = state.store.list_attempts(&id, page).await?;
    Ok(Json(List::new(attempts, page)))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookAttempt,
               description = "The signed `ping` was sent once (not retried); the attempt says how the receiver answered"),
              (status = "default", body = ErrorEnvelope)))]
pub async fn test(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<WebhookAttempt>> {
    let hook = find(&state, &key.scope(), &id).await?;
    let sender = DispatcherSettings::from_config(&state.config)
        .sender()
        .map_err(ApiError::internal)?;
    let event_id = crate::store::new_id("evt_");
    let data = serde_json::json!({"webhook_id": hook.id, "url": hook.url});
    let body = crate::events::body::event_body(
        "ping",
        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        &data.to_string(),
    );
    let outcome = sender
        .send(&Outgoing {
            url: &hook.url,
            secret: hook.secret.as_deref().unwrap_or_default(),
            event_id: &event_id,
            body: &body,
        })
        .await;
    let attempt = state
        .store
        .record_test_attempt(&hook.id, &event_id, &outcome)
        .await?;
    Ok(Json(attempt))
}

async fn find(state: &ApiState, scope: &crate::store::Scope, id: &str) -> ApiResult<WebhookRecord> {
    state
        .store
        .get_webhook(scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No webhook {id}.")))
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
