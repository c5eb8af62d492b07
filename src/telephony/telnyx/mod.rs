//! Telnyx Call Control with media streaming: signed call webhooks answer and follow calls,
//! a bidirectional media stream WebSocket carries each call's audio, and REST commands place,
//! hang up, transfer and send DTMF on calls.

pub mod call_events;
mod dialer;
pub mod media_protocol;
mod registry;
pub mod rest;
pub mod signature;
mod stream;
pub mod stream_token;
mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::agent::session::CallServices;
use crate::telephony::twilio::stream_token::UsedTokens;
pub use dialer::TelnyxDialer;
use registry::Registry;
use rest::TelnyxRest;
use signature::PublicKey;

pub const WEBHOOK_PATH: &str = "/carrier/telnyx/webhook";
pub const STREAM_PATH: &str = "/carrier/telnyx/stream";

/// What the Telnyx handlers and the dialer share.
pub(crate) struct TelnyxState {
    services: Arc<CallServices>,
    /// `None` until both the public key and the API key are set: every endpoint answers 403.
    auth: Option<Auth>,
    registry: Registry,
    used_tokens: UsedTokens,
}

struct Auth {
    /// Verifies the webhooks.
    public_key: PublicKey,
    /// Keys the stream tokens; `rest` sends it as the bearer.
    api_key: String,
    rest: TelnyxRest,
}

/// The engine's Telnyx side: its routes and its outbound dialer share one state.
#[derive(Clone)]
pub struct Telnyx {
    state: Arc<TelnyxState>,
}

impl Telnyx {
    pub fn new(services: Arc<CallServices>) -> Self {
        let auth = auth_from(&services.config);
        Telnyx {
            state: Arc::new(TelnyxState {
                services,
                auth,
                registry: Registry::default(),
                used_tokens: UsedTokens::default(),
            }),
        }
    }

    /// `POST /carrier/telnyx/webhook` and `GET /carrier/telnyx/stream`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(WEBHOOK_PATH, post(webhook::webhook))
            .route(STREAM_PATH, get(stream::upgrade))
            .with_state(self.state.clone())
    }

    /// Places live outbound calls through Telnyx.
    pub fn dialer(&self) -> TelnyxDialer {
        TelnyxDialer::new(self.state.clone())
    }
}

/// The keys from the configuration; warns, naming the settings, when they are missing.
fn auth_from(config: &crate::config::Config) -> Option<Auth> {
    let (Some(public_key), Some(api_key)) = (&config.telnyx_public_key, &config.telnyx_api_key)
    else {
        tracing::warn!(
            "telnyx endpoints answer 403 until BOLTCALL_TELNYX_PUBLIC_KEY (verifies webhooks) \
             and BOLTCALL_TELNYX_API_KEY (answers and commands calls) are set"
        );
        return None;
    };
    let public_key = match PublicKey::from_base64(public_key) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!("telnyx endpoints answer 403: {e}");
            return None;
        }
    };
    let rest = match TelnyxRest::new(&config.telnyx_api_base, api_key) {
        Ok(rest) => rest,
        Err(e) => {
            tracing::error!("telnyx endpoints answer 403: cannot build the HTTP client: {e}");
            return None;
        }
    };
    Some(Auth {
        public_key,
        api_key: api_key.clone(),
        rest,
    })
}

/// The answer of an endpoint nobody configured: 403. Each refusal logs at debug level (anyone
/// can cause one, so not louder).
fn unconfigured(endpoint: &str) -> Response {
    tracing::debug!(
        endpoint,
        "telnyx request refused: set BOLTCALL_TELNYX_PUBLIC_KEY and BOLTCALL_TELNYX_API_KEY"
    );
    (
        StatusCode::FORBIDDEN,
        "telnyx endpoints are not configured on this engine",
    )
        .into_response()
}

/// `wss://…/carrier/telnyx/stream?leg=…&call=…&token=…` for this leg.
fn stream_url(public_url: &str, query: &str) -> String {
    let ws = if let Some(rest) = public_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = public_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        public_url.to_string()
    };
    format!("{ws}{STREAM_PATH}?{query}")
}

/// Seconds since the Unix epoch: webhook timestamps' and stream tokens' clock.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
