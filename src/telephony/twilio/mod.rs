//! Twilio voice: the voice webhook (TwiML), the bidirectional Media Streams WebSocket, and the
//! calls the engine places and steers through Twilio's REST API (with their status and
//! answering-machine callbacks).

mod callbacks;
mod codec;
mod outbound;
mod placed;
pub mod protocol;
pub mod rest;
pub mod signature;
mod stream;
pub mod stream_token;
pub mod twiml;
pub(crate) mod webhook;

pub use outbound::TwilioCalls;

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
    /// The REST client and the outbound calls in flight, shared with the dialer.
    calls: Arc<TwilioCalls>,
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

/// The Twilio endpoints, for an engine that places no calls through Twilio (its own REST
/// client hangs up and transfers the calls Twilio brings in).
pub fn router(services: Arc<CallServices>) -> Router {
    let calls = TwilioCalls::from_config(&services.config);
    router_with(services, calls)
}

/// `POST /carrier/twilio/voice`, `GET /carrier/twilio/stream`, and the callbacks of placed
/// calls, `POST /carrier/twilio/status` and `POST /carrier/twilio/amd`; `calls` is the one
/// the engine's dialer places calls with.
pub fn router_with(services: Arc<CallServices>, calls: Arc<TwilioCalls>) -> Router {
    let state = TwilioState {
        streams: Arc::new(Semaphore::new(services.config.twilio_max_streams)),
        services,
        used_tokens: UsedTokens::default(),
        calls,
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
        .route("/carrier/twilio/status", post(callbacks::status))
        .route("/carrier/twilio/amd", post(callbacks::amd))
        .with_state(Arc::new(state))
}
