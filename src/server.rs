//! `boltcall serve`: binds the HTTP listener and runs until SIGINT/SIGTERM, then drains: no
//! new calls, live calls finish (up to the grace, then the agent says goodbye and hangs up),
//! records are written, and the process exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::agent::admission::Admission;
use crate::agent::phrases;
use crate::agent::session::{
    CallServices, Drain, HEARTBEAT_EVERY, recover_orphaned_calls, run_call,
};
use crate::api::ApiState;
use crate::config::Config;
use crate::http_serve::HttpLimits;
use crate::store::{Store, redact_url};
use crate::telephony::engine_dialer::EngineDialer;
use crate::telephony::sip::draining::Draining;
use crate::telephony::sip::routing::StoreRouting;
use crate::telephony::sip::service::{SipService, SipSettings};

/// After the grace, how long calls get to say goodbye and hang up.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(15);
/// After the last call, time for its BYE to leave before the SIP service stops.
const BYE_LINGER: Duration = Duration::from_millis(500);

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open {}", redact_url(&config.database_url)))?
        .with_public_url(&config.public_url())
        .with_instance_id(&config.instance_id);
    let recovered = recover_orphaned_calls(&store, &config).await?;
    if recovered > 0 {
        tracing::warn!("finished {recovered} calls interrupted by a crash or a lost engine");
    }
    let heartbeat = tokio::spawn(heartbeat(store.clone()));
    let config = Arc::new(config);
    // Webhooks: deliveries left pending by an earlier run resume once their claims lapse.
    let dispatcher = crate::events::dispatcher::Dispatcher::new(
        store.clone(),
        crate::events::dispatcher::DispatcherSettings::from_config(&config),
    )
    .context("cannot build the webhook HTTP client")?
    .spawn();
    let drain = Drain::default();
    // Providers install the offline models on first use.
    let services = Arc::new(CallServices {
        config: config.clone(),
        store: store.clone(),
        stt: crate::providers::build_stt(&config).await?,
        tts: crate::providers::build_tts(&config).await?,
        brain: crate::providers::llm::build_brain(&config),
        admission: Admission::from_config(&config),
        drain: drain.clone(),
    });
    let sip = start_sip(&config, &services).await?;
    let twilio = crate::telephony::twilio::TwilioCalls::from_config(&config);
    let telnyx = crate::telephony::telnyx::Telnyx::new(services.clone());
    let vonage = crate::telephony::vonage::Vonage::new(services.clone());
    let dialer = Arc::new(EngineDialer {
        sip: sip.dialer(),
        telnyx: telnyx.dialer(),
        services: services.clone(),
        twilio: twilio.clone(),
        vonage: vonage.clone(),
    });
    prepare_fixed_lines(&services);
    let warm_services = services.clone();
    let web_calls = crate::telephony::webrtc::WebCalls::new(services.clone())
        .context("cannot set up WebRTC for browser calls")?;
    let api = ApiState::new(store.clone(), config.clone(), dialer)
        .with_admission(services.admission.clone())
        .with_web_calls(web_calls)
        .on_agent_saved(Arc::new(move |agent| {
            let services = warm_services.clone();
            tokio::spawn(async move {
                phrases::warm(services.tts.as_ref(), &services.config, &agent).await;
            });
        }));
    let flusher = api.spawn_usage_flusher(Duration::from_secs(1));
    let app = crate::api::router(api.clone())
        .merge(crate::telephony::twilio::router_with(services, twilio))
        .merge(telnyx.router())
        .merge(vonage.router())
        .merge(crate::console::router());
    let listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    tracing::info!("boltcall listening on http://{}", listener.local_addr()?);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    // HTTP keeps serving while calls drain: Twilio calls and the API ride on it.
    let drained = async {
        shutdown_signal().await;
        drain_calls(&drain, grace).await;
    };
    crate::http_serve::serve(listener, app, HttpLimits::from_config(&config), drained).await;
    tokio::time::sleep(BYE_LINGER).await;
    drop(sip);
    flusher.abort();
    dispatcher.abort();
    heartbeat.abort();
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

/// Refuses new calls, waits for live ones up to `grace`, then has them say goodbye and hang
/// up, and waits (briefly) for that too.
async fn drain_calls(drain: &Drain, grace: Duration) {
    drain.start_draining();
    let live = drain.active_calls();
    tracing::info!(
        live,
        "shutting down: no new calls; waiting up to {grace:?} for live ones"
    );
    if tokio::time::timeout(grace, drain.idle()).await.is_ok() {
        return;
    }
    tracing::info!(
        live = drain.active_calls(),
        "grace over: ending the calls still live"
    );
    drain.close_calls();
    if tokio::time::timeout(GOODBYE_TIMEOUT, drain.idle())
        .await
        .is_err()
    {
        // Their records are finished from the journal at the next start.
        tracing::warn!(
            live = drain.active_calls(),
            "calls did not end in time; exiting"
        );
    }
}

/// Says every call of this instance is alive, so no other instance takes them for orphans.
async fn heartbeat(store: Store) {
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        every.tick().await;
        if let Err(e) = store.heartbeat_calls().await {
            tracing::warn!("cannot write the calls' heartbeat: {e}");
        }
    }
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
    let handler = Draining {
        inner: routing,
        drain: services.drain.clone(),
    };
    SipService::start(settings, Arc::new(handler))
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
