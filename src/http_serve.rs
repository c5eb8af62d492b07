//! The HTTP listener, served with hyper directly so a client cannot hold the engine's
//! resources: headers must arrive within a timeout (slowloris), connections are capped (the
//! next one waits in the kernel's backlog until one closes), every request is answered within
//! a timeout, and shutdown lets open requests finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::api::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl HttpLimits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(config.http_header_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(config.http_request_timeout_secs.max(1)),
            max_connections: config.http_max_connections.max(1),
        }
    }
}

/// How long open connections get to finish their requests once `shutdown` resolved.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then closes idle connections, lets
/// busy ones finish (up to `CLOSE_TIMEOUT`) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let app = with_request_timeout(app, limits.request_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closing_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A slot first: at the cap, connections stay in the backlog instead of being read.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("cannot accept an HTTP connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Media streams write a small message every 20 ms: Nagle would hold each one until
        // the previous is acknowledged, bunching a carrier's audio into round-trip batches.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let app = app.clone();
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |mut request: Request<_>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let mut asked_to_close = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, "HTTP connection ended: {e}");
                        }
                        break;
                    }
                    _ = closing.wait_for(|c| *c), if !asked_to_close => {
                        asked_to_close = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every slot back means every connection has closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(CLOSE_TIMEOUT, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after {CLOSE_TIMEOUT:?}; closing them");
    }
}

/// Answers 408 in the error envelope when a request (body included) takes longer than
/// `timeout`. An upgraded WebSocket is not bound by it: its handshake answers at once.
fn with_request_timeout(app: Router, timeout: Duration) -> Router {
    app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => timed_out(),
            }
        },
    ))
}

fn timed_out() -> Response {
    ApiError::http(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        "The request took too long.",
    )
    .into_response()
}
