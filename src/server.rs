//! `boltcall serve`: binds the HTTP listener and runs until SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::agent::session::CallServices;
use crate::config::Config;
use crate::store::Store;

/// The engine's HTTP side, ready to serve: the `/v1` API and the carrier endpoints.
pub struct Engine {
    pub router: Router,
    pub store: Store,
    pub services: Arc<CallServices>,
}

/// Opens the store, fails calls a previous run left open, and builds the providers (offline
/// models are installed on first use) and the routers.
pub async fn build(config: Config) -> anyhow::Result<Engine> {
    let store = Store::connect(&config.database_url)
        .await?
        .with_public_url(&config.public_url());
    // No call survives a restart: whatever was in flight when the process died has failed.
    let failed = store.fail_interrupted_calls().await?;
    if failed > 0 {
        tracing::warn!("marked {failed} call(s) interrupted by the last shutdown as failed");
    }
    let services = Arc::new(CallServices {
        stt: crate::providers::build_stt(&config).await?,
        tts: crate::providers::build_tts(&config).await?,
        brain: crate::providers::llm::build_brain(&config),
        config: Arc::new(config),
        store: store.clone(),
    });
    let router =
        crate::api::router(store.clone()).merge(crate::telephony::twilio::router(services.clone()));
    Ok(Engine {
        router,
        store,
        services,
    })
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.http_addr;
    let engine = build(config).await?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("boltcall listening on http://{}", listener.local_addr()?);
    axum::serve(listener, engine.router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    engine.store.close().await;
    Ok(())
}
/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
