//! The `/v1` REST API: axum routers, one file per resource.

mod agent_extensions;
mod agents;
mod analytics;
mod appointments;
mod auth;
mod calls;
mod error;
mod extract;
mod knowledge;
mod leads;
mod messages;
mod openapi;
mod page;
mod rate_limit;
mod usage;
mod validate;
mod voices;
mod web_calls;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::agent::admission::Admission;
use crate::config::Config;
use crate::messaging::Messaging;
use crate::store::{AgentRecord, Store};
use crate::telephony::Dialer;
use crate::telephony::webrtc::WebCalls;

pub use error::{ApiError, ErrorEnvelope};
pub use openapi::ApiDoc;
pub use rate_limit::RateLimits;
pub use validate::is_local_ip;

/// Largest accepted request body (knowledge documents are the big ones).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub config: Arc<Config>,
    pub dialer: Arc<dyn Dialer>,
    pub messaging: Messaging,
    limits: Arc<RateLimits>,
    limiter: Arc<rate_limit::Limiter>,
    usage: Arc<usage::UsageCounter>,
    agent_saved: Option<AgentHook>,
    /// Outbound calls pass the same admission as every other call.
    pub admission: Arc<Admission>,
    /// Browser calls (`POST /v1/agents/{id}/web-calls`); `None` answers them 503.
    pub web_calls: Option<Arc<WebCalls>>,
}

/// Told of every agent created or updated (the server prepares its fixed lines).
pub type AgentHook = Arc<dyn Fn(AgentRecord) + Send + Sync>;

impl ApiState {
    pub fn new(store: Store, config: Arc<Config>, dialer: Arc<dyn Dialer>) -> Self {
        Self::with_limits(store, config, dialer, RateLimits::default())
    }

    /// Like `new` with other quotas (tests use a tiny burst and a long refill).
    pub fn with_limits(
        store: Store,
        config: Arc<Config>,
        dialer: Arc<dyn Dialer>,
        limits: RateLimits,
    ) -> Self {
        ApiState {
            messaging: Messaging::new(store.clone(), config.clone()),
            store,
            dialer,
            limiter: Arc::new(rate_limit::Limiter::new(&limits)),
            limits: Arc::new(limits),
            usage: Arc::default(),
            admission: Admission::from_config(&config),
            config,
            agent_saved: None,
            web_calls: None,
        }
    }

    /// Calls `hook` with each agent the API creates or updates.
    pub fn on_agent_saved(mut self, hook: AgentHook) -> Self {
        self.agent_saved = Some(hook);
        self
    }

    fn agent_saved(&self, agent: &AgentRecord) {
        if let Some(hook) = &self.agent_saved {
            hook(agent.clone());
        }
    }

    /// Shares `admission` with the engine's other call paths (by default the API has its own).
    pub fn with_admission(mut self, admission: Arc<Admission>) -> Self {
        self.admission = admission;
        self
    }

    /// Takes browser calls on `web_calls` (by default they are answered 503).
    pub fn with_web_calls(mut self, web_calls: Arc<WebCalls>) -> Self {
        self.web_calls = Some(web_calls);
        self
    }

    /// Writes the pending API-call counts to the store.
    pub async fn flush_usage(&self) {
        if let Err(e) = self.usage.flush(&self.store).await {
            tracing::warn!("cannot record API usage yet: {e}");
        }
    }

    /// Flushes API-call counts every `every` until the returned task is aborted.
    pub fn spawn_usage_flusher(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                state.flush_usage().await;
            }
        })
    }
}

/// `{"deleted": true}`.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: bool,
}

/// For PATCH fields: absent is `None`, `null` is `Some(None)`.
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The API router (`/v1/...`); every failure, unknown routes included, is the error envelope.
/// Twilio's messaging webhooks ride along, outside the key check (Twilio signs them instead).
pub fn router(state: ApiState) -> Router {
    let carrier = crate::messaging::router(state.messaging.clone());
    Router::new()
        .merge(agents::routes())
        .merge(calls::routes())
        .merge(leads::routes())
        .merge(messages::routes())
        .merge(appointments::routes())
        .merge(webhooks::routes())
        .merge(analytics::routes())
        .merge(voices::routes())
        .merge(knowledge::routes())
        .merge(web_calls::routes())
        .merge(openapi::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .merge(carrier)
}

async fn not_found() -> ApiError {
    ApiError::not_found("No such route.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::http(
        StatusCode::METHOD_NOT_ALLOWED,
        "This method is not allowed on this route.",
    )
}
