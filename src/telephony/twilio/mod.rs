//! Twilio Media Streams: the voice webhook (TwiML) and the bidirectional stream WebSocket.

mod codec;
pub mod protocol;
pub mod signature;
mod stream;
pub mod twiml;
mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::agent::session::CallServices;

/// `POST /carrier/twilio/voice` and `GET /carrier/twilio/stream`.
pub fn router(services: Arc<CallServices>) -> Router {
    Router::new()
        .route("/carrier/twilio/voice", post(webhook::voice))
        .route("/carrier/twilio/stream", get(stream::upgrade))
        .with_state(services)
}
