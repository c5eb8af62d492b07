//! Browser calls over WebRTC: the page posts an SDP offer (WHIP style, `POST
//! /v1/agents/{id}/web-calls`), gets the answer with every candidate in it, and the call runs
//! as a `CallLeg` like any carrier's: Opus 48 kHz both ways into the 16 kHz call path,
//! DTLS-SRTP, live captions over a data channel the page opens.
//!
//! Built on the `webrtc` crate 0.17.2: the last release on the same `rtp` 0.17 types as the
//! media crate; 0.20 and later are a rewrite on the `rtc-*` 0.21 types.

mod audio;
mod leg;
mod peer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::agent::admission::Refusal;
use crate::agent::session::{CallRoute, CallServices, run_call};
use crate::store::{NewCall, Plan, Scope, StoreError};
use crate::telephony::{Direction, LegInfo, leg_pair};

pub use peer::CAPTIONS_LABEL;

/// The caller of every browser call, as the call record shows it.
pub const CALLER: &str = "web";
/// Captions waiting for the data channel; past this the session drops them rather than wait.
const CAPTION_QUEUE: usize = 64;

/// Why a browser call was not started.
#[derive(Debug, thiserror::Error)]
pub enum WebCallError {
    #[error("the engine is shutting down and takes no new calls")]
    Draining,
    #[error("no agent {0}")]
    NoAgent(String),
    #[error("agent {agent} is {status}; activate it before calling it")]
    AgentInactive { agent: String, status: String },
    #[error("{0}")]
    BadOffer(String),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("webrtc: {0}")]
    Internal(String),
}

/// A browser call just answered.
pub struct WebCall {
    pub call_id: String,
    /// The SDP answer for the page.
    pub answer: String,
}

/// A running browser call, for hanging it up from the API.
struct Running {
    workspace_id: String,
    live: bool,
    hang_up: oneshot::Sender<()>,
}

/// The engine's browser calls: one WebRTC stack and the calls running on it.
pub struct WebCalls {
    services: Arc<CallServices>,
    api: webrtc::api::API,
    running: Mutex<HashMap<String, Running>>,
}

impl WebCalls {
    pub fn new(services: Arc<CallServices>) -> Result<Arc<Self>, webrtc::Error> {
        // DTLS needs the process's TLS provider chosen (see `install_crypto_provider`).
        crate::install_crypto_provider();
        Ok(Arc::new(WebCalls {
            services,
            api: peer::build_api()?,
            running: Mutex::default(),
        }))
    }

    /// Answers `offer` for a call to `agent_id` in `scope` (billed under `plan`) and starts it.
    pub async fn start(
        self: &Arc<Self>,
        scope: &Scope,
        plan: Plan,
        agent_id: &str,
        offer: &str,
    ) -> Result<WebCall, WebCallError> {
        let services = &self.services;
        if services.drain.is_draining() {
            return Err(WebCallError::Draining);
        }
        let agent = services
            .store
            .get_agent(scope, agent_id)
            .await?
            .ok_or_else(|| WebCallError::NoAgent(agent_id.to_string()))?;
        if agent.status != "active" {
            return Err(WebCallError::AgentInactive {
                agent: agent.id,
                status: agent.status,
            });
        }
        // Refused before admission so a bad request holds no call slot.
        peer::check_offer(offer).map_err(|e| WebCallError::BadOffer(e.to_string()))?;
        let permit = services
            .admission
            .admit(&services.store, scope, Some(plan))
            .await?;
        let peer = peer::answer(&self.api, offer).await.map_err(|e| match e {
            peer::PeerError::BadOffer(message) => WebCallError::BadOffer(message),
            peer::PeerError::Internal(e) => WebCallError::Internal(e.to_string()),
        })?;
        let to = agent.phone_number.clone().unwrap_or_default();
        let new = NewCall {
            agent_id: agent.id.clone(),
            direction: Direction::Inbound.as_str().into(),
            caller: CALLER.into(),
            to: to.clone(),
            carrier_call_id: None,
            status: "ringing".into(),
            context: None,
        };
        let call = match services.store.create_call(scope, new).await {
            Ok(call) => call,
            Err(e) => {
                let _ = peer.connection.close().await;
                return Err(e.into());
            }
        };
        let info = LegInfo {
            transport: "webrtc",
            carrier_call_id: call.id.clone(),
            from: CALLER.into(),
            to,
            direction: Direction::Inbound,
            parameters: Vec::new(),
            carrier_detects_machine: false,
            dtmf_out_of_band: false,
            continuous_audio: true,
        };
        let (mut leg, leg_end) = leg_pair(info);
        let (captions, caption_queue) = mpsc::channel(CAPTION_QUEUE);
        leg.captions = Some(captions);
        let mut route = CallRoute::new(agent.id, scope.clone());
        route.call_id = Some(call.id.clone());
        route.permit = Some(Arc::new(permit));
        let (hang_up, hung_up) = oneshot::channel();
        self.lock().insert(
            call.id.clone(),
            Running {
                workspace_id: scope.workspace_id.clone(),
                live: scope.live,
                hang_up,
            },
        );
        let answer = peer.answer.clone();
        let (connected, on_connected) = oneshot::channel();
        let media = tokio::spawn(leg::run(peer, leg_end, caption_queue, connected, hung_up));
        let calls = Arc::clone(self);
        let call_id = call.id.clone();
        tokio::spawn(async move {
            // Starts on the browser's first audio, or at once with the hang-up queued when
            // the connection never came up (the record then says why).
            let _ = on_connected.await;
            let report = run_call(calls.services.clone(), leg, route).await;
            let reason = media.await;
            calls.lock().remove(&call_id);
            tracing::info!(%call_id, status = %report.status, ?reason, "webrtc call ended");
        });
        Ok(WebCall {
            call_id: call.id,
            answer,
        })
    }

    /// Hangs up a running call of `scope`; `false` when there is none of that id.
    pub fn hang_up(&self, scope: &Scope, call_id: &str) -> bool {
        let mut running = self.lock();
        let ours = running
            .get(call_id)
            .is_some_and(|r| r.workspace_id == scope.workspace_id && r.live == scope.live);
        if !ours {
            return false;
        }
        if let Some(call) = running.remove(call_id) {
            let _ = call.hang_up.send(());
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        // A panic elsewhere while holding the map leaves it usable: it is only inserts/removes.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}
