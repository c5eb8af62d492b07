//! `boltcall serve`: binds the HTTP listener and runs until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::agent::admission::Admission;
use crate::agent::phrases;
use crate::agent::session::{CallServices, run_call};
use crate::api::ApiState;
use crate::config::Config;
use crate::store::Store;
use crate::telephony::engine_dialer::EngineDialer;
use crate::telephony::sip::routing::StoreRouting;
use crate::telephony::sip::service::{SipService, SipSettings};

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open {}", config.database_url))?
        .with_public_url(&config.public_url());
    if store.is_single_node() {
        let failed = store.fail_interrupted_calls().await?;
        if failed > 0 {
            tracing::warn!("marked {failed} calls interrupted by the last shutdown as failed");
        }
    }
    let config = Arc::new(config);
    // Webhooks: deliveries left pending by an earlier run resume once their claims lapse.
    let dispatcher = crate::events::dispatcher::Dispatcher::new(
        store.clone(),
        crate::events::dispatcher::DispatcherSettings::from_config(&config),
    )
    .context("cannot build the webhook HTTP client")?
    .spawn();
    // Providers install the offline models on first use.
    let services = Arc::new(CallServices {
        config: config.clone(),
        store: store.clone(),
        stt: crate::providers::build_stt(&config).await?,
        tts: crate::providers::build_tts(&config).await?,
        brain: crate::providers::llm::build_brain(&config),
        admission: Admission::from_config(&config),
    });
    let sip = start_sip(&config, &services).await?;
    let dialer = Arc::new(EngineDialer {
        sip: sip.dialer(),
        services: services.clone(),
    });
    prepare_fixed_lines(&services);
    let warm_services = services.clone();
    let api = ApiState::new(store.clone(), config.clone(), dialer)
        .with_admission(services.admission.clone())
        .on_agent_saved(Arc::new(move |agent| {
            let services = warm_services.clone();
            tokio::spawn(async move {
                phrases::warm(services.tts.as_ref(), &services.config, &agent).await;
            });
        }));
    let flusher = api.spawn_usage_flusher(Duration::from_secs(1));
    let app = crate::api::router(api.clone()).merge(crate::telephony::twilio::router(services));
    let listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    tracing::info!("boltcall listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    flusher.abort();
    dispatcher.abort();
    api.flush_usage().await;
    store.close().await;
    Ok(())
}

/// Synthesises, in the background, the fixed lines of the agents most likely to be called, so
/// the first calls after a start do not wait for their greeting.
fn prepare_fixed_lines(services: &Arc<CallServices>) {
    const AGENTS: i64 = 200;
    let services = services.clone();
    tokio::spawn(async move {
        match services.store.recent_active_agents(AGENTS).await {
            Ok(agents) => {
                for agent in agents {
                    phrases::warm(services.tts.as_ref(), &services.config, &agent).await;
                }
            }
            Err(e) => tracing::warn!("cannot list agents to prepare their greetings: {e}"),
        }
    });
}

/// Starts the SIP listener; its inbound calls and answered outbound calls run `run_call`.
async fn start_sip(config: &Config, services: &Arc<CallServices>) -> anyhow::Result<SipService> {
    let settings = SipSettings::from_config(config)?;
    let run_services = services.clone();
    let routing = StoreRouting {
        store: services.store.clone(),
        admission: services.admission.clone(),
        run: Arc::new(move |leg, route| {
            tokio::spawn(run_call(run_services.clone(), leg, route));
        }),
    };
    SipService::start(settings, Arc::new(routing))
        .await
        .with_context(|| format!("cannot listen for SIP on {}", config.sip_addr))
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
