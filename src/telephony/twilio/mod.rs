//! Twilio Media Streams: the voice webhook (TwiML) and the bidirectional stream WebSocket.

mod codec;
pub mod protocol;
pub mod signature;
mod stream;
pub mod stream_token;
pub mod twiml;
pub(crate) mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::agent::session::CallServices;
use stream_token::UsedTokens;

/// What the Twilio handlers share.
pub(crate) struct TwilioState {
    services: Arc<CallServices>,
    /// One permit per open stream WebSocket (`twilio_max_streams`).
    streams: Arc<Semaphore>,
    used_tokens: UsedTokens,
}

/// How Twilio's requests are authenticated, from the configuration.
enum Auth<'a> {
    /// `X-Twilio-Signature` and the engine's stream token are required.
    Token(&'a str),
    /// Development: `BOLTCALL_TWILIO_ALLOW_UNSIGNED=1` and no token.
    Unsigned,
    /// Neither: the endpoints refuse everything rather than run calls for anyone.
    Unconfigured,
}

impl TwilioState {
    fn auth(&self) -> Auth<'_> {
        let config = &self.services.config;
        match (
            config.twilio_auth_token.as_deref(),
            config.twilio_allow_unsigned,
        ) {
            (Some(token), _) => Auth::Token(token),
            (None, true) => Auth::Unsigned,
            (None, false) => Auth::Unconfigured,
        }
    }
}

/// The answer of an endpoint nobody configured: 403. Start-up warned which setting to set;
/// each refusal repeats it at debug level (anyone can cause one, so not louder).
fn unconfigured(endpoint: &str) -> Response {
    tracing::debug!(
        endpoint,
        "twilio request refused: set BOLTCALL_TWILIO_AUTH_TOKEN (or, for local development \
         only, BOLTCALL_TWILIO_ALLOW_UNSIGNED=1)"
    );
    (
        StatusCode::FORBIDDEN,
        "twilio endpoints are not configured on this engine",
    )
        .into_response()
}

/// `POST /carrier/twilio/voice` and `GET /carrier/twilio/stream`.
pub fn router(services: Arc<CallServices>) -> Router {
    let state = TwilioState {
        streams: Arc::new(Semaphore::new(services.config.twilio_max_streams)),
        services,
        used_tokens: UsedTokens::default(),
    };
    if matches!(state.auth(), Auth::Unconfigured) {
        tracing::warn!(
            "twilio endpoints answer 403 until BOLTCALL_TWILIO_AUTH_TOKEN is set \
             (BOLTCALL_TWILIO_ALLOW_UNSIGNED=1 accepts unsigned requests in development)"
        );
    }
    Router::new()
        .route("/carrier/twilio/voice", post(webhook::voice))
        .route("/carrier/twilio/stream", get(stream::upgrade))
        .with_state(Arc::new(state))
}
