//! Vonage Voice API: the answer and event webhooks (signed HS256 JWTs), the audio WebSocket
//! (16-bit linear PCM) and calls placed and controlled through the REST API (RS256 JWTs of
//! the application's private key).

mod answer;
pub mod api_token;
mod calls;
pub mod codec;
mod dialer;
mod events;
pub mod ncco;
pub mod protocol;
pub mod rest;
pub mod signature;
mod stream;
pub mod stream_token;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::agent::session::CallServices;
use crate::telephony::{Dialer, OutboundCall};
use api_token::ApiSigner;
use calls::CallRegistry;
use rest::VonageRest;
use stream_token::UsedTokens;

/// Sockets that may wait for their first message on top of the calls the engine runs: a
/// socket is only known to be Vonage's once its token checks out.
const UNVERIFIED_SOCKETS: usize = 64;

/// What the Vonage handlers and the dialer share.
pub(crate) struct Shared {
    services: Arc<CallServices>,
    /// The REST client; `None` without an application id and a readable private key.
    rest: Option<VonageRest>,
    calls: CallRegistry,
    used_tokens: UsedTokens,
    /// One permit per open audio socket.
    sockets: Arc<Semaphore>,
}

impl Shared {
    /// The signature secret: without it every endpoint refuses (403).
    fn secret(&self) -> Option<&str> {
        self.services.config.vonage_signature_secret.as_deref()
    }

    fn application_id(&self) -> Option<&str> {
        self.services.config.vonage_application_id.as_deref()
    }
}

/// The Vonage carrier of one engine: its routes and its outbound dialer.
#[derive(Clone)]
pub struct Vonage(Arc<Shared>);

impl Vonage {
    /// Loads the application's key (when configured) and warns about what is missing.
    pub fn new(services: Arc<CallServices>) -> Vonage {
        let config = &services.config;
        if config.vonage_signature_secret.is_none() {
            tracing::warn!(
                "vonage endpoints answer 403 until BOLTCALL_VONAGE_SIGNATURE_SECRET is set \
                 (and BOLTCALL_VONAGE_APPLICATION_ID, BOLTCALL_VONAGE_PRIVATE_KEY_PATH to place calls)"
            );
        }
        let rest = match (
            &config.vonage_application_id,
            &config.vonage_private_key_path,
        ) {
            (Some(application_id), Some(path)) => match ApiSigner::load(application_id, path) {
                Ok(signer) => Some(VonageRest::new(&config.vonage_api_base, signer)),
                Err(e) => {
                    tracing::error!(
                        "vonage calls cannot be placed or controlled: BOLTCALL_VONAGE_PRIVATE_KEY_PATH: {e}"
                    );
                    None
                }
            },
            (Some(_), None) | (None, Some(_)) => {
                tracing::warn!(
                    "vonage REST calls need both BOLTCALL_VONAGE_APPLICATION_ID and \
                     BOLTCALL_VONAGE_PRIVATE_KEY_PATH"
                );
                None
            }
            (None, None) => None,
        };
        let sockets = config
            .max_concurrent_calls
            .saturating_add(UNVERIFIED_SOCKETS);
        Vonage(Arc::new(Shared {
            rest,
            calls: CallRegistry::default(),
            used_tokens: UsedTokens::default(),
            sockets: Arc::new(Semaphore::new(sockets)),
            services,
        }))
    }

    /// `GET|POST /carrier/vonage/answer`, `POST /carrier/vonage/event`,
    /// `GET /carrier/vonage/stream`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/carrier/vonage/answer",
                get(answer::answer).post(answer::answer),
            )
            .route("/carrier/vonage/event", post(events::event))
            .route("/carrier/vonage/stream", get(stream::upgrade))
            .with_state(self.0.clone())
    }
}

impl Dialer for Vonage {
    fn dial(&self, call: OutboundCall) {
        dialer::dial(&self.0, call);
    }

    fn accepting(&self) -> bool {
        !self.0.services.drain.is_draining()
    }
}

/// The answer of an endpoint nobody configured: 403. Start-up warned which setting to set;
/// each refusal repeats it at debug level (anyone can cause one, so not louder).
fn unconfigured(endpoint: &str) -> Response {
    tracing::debug!(
        endpoint,
        "vonage request refused: set BOLTCALL_VONAGE_SIGNATURE_SECRET"
    );
    (
        StatusCode::FORBIDDEN,
        "vonage endpoints are not configured on this engine",
    )
        .into_response()
}

/// Seconds since the Unix epoch: the clock of webhook tokens and stream tokens.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks a webhook's `Authorization` against the signature secret; `Some(refusal)` to send
/// when it fails.
fn authenticate(
    shared: &Shared,
    endpoint: &str,
    headers: &axum::http::HeaderMap,
    body: Option<&[u8]>,
) -> Option<Response> {
    let Some(secret) = shared.secret() else {
        return Some(unconfigured(endpoint));
    };
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let expected = signature::Expected {
        secret,
        application_id: shared.application_id(),
        body,
        now: unix_now(),
    };
    let e = signature::verify(authorization, &expected).err()?;
    tracing::warn!(endpoint, "vonage webhook refused: {e}");
    Some((StatusCode::FORBIDDEN, "invalid or missing Vonage signature").into_response())
}
