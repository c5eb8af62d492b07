//! The engine's `Dialer`: live calls go out through the SIP trunk; test-mode calls never leave
//! the process and run against a simulated callee that answers and speaks.

use std::sync::Arc;
use std::time::Duration;

use super::simulated::{SimulatedCallee, run_callee, simulated_leg};
use super::sip::service::SipDialer;
use super::{Dialer, OutboundCall};
use crate::agent::session::{CallRoute, CallServices, run_call};
use crate::providers::tts::{TextToSpeech, find_voice};
use crate::store::Scope;

/// What the simulated callee says when it picks up.
const CALLEE_LINE: &str = "Hello, who is calling?";
/// How long the simulated callee listens to the agent before hanging up.
const CALLEE_LISTENS_FOR: Duration = Duration::from_secs(20);

pub struct EngineDialer {
    pub sip: SipDialer,
    pub services: Arc<CallServices>,
}

impl Dialer for EngineDialer {
    fn dial(&self, call: OutboundCall) {
        if call.live {
            self.sip.dial(call);
            return;
        }
        tokio::spawn(simulate(self.services.clone(), call));
    }

    fn accepting(&self) -> bool {
        !self.services.drain.is_draining()
    }
}

/// Runs a test-mode outbound call end to end against the simulated callee.
async fn simulate(services: Arc<CallServices>, call: OutboundCall) {
    let script = callee_script(services.tts.as_ref()).await;
    let (leg, callee_end) = simulated_leg(&call);
    let mut route = CallRoute::new(
        call.agent_id.clone(),
        Scope {
            workspace_id: call.workspace_id.clone(),
            live: false,
        },
    );
    route.call_id = Some(call.call_id.clone());
    route.context = call.context.clone();
    route.permit = call.permit.clone();
    let callee = SimulatedCallee {
        script,
        listen_for: CALLEE_LISTENS_FOR,
        recording: None,
    };
    let (_, heard) = tokio::join!(
        run_call(services, leg, route),
        run_callee(callee_end, callee)
    );
    if let Err(e) = heard {
        tracing::warn!(call_id = %call.call_id, "simulated callee failed: {e}");
    }
}

/// The callee's words as 16 kHz audio; silence when the TTS cannot speak them.
async fn callee_script(tts: &dyn TextToSpeech) -> Vec<i16> {
    let Some(voice) = find_voice("voice_sarah") else {
        return Vec::new();
    };
    let mut chunks = tts.synthesize(CALLEE_LINE.to_string(), voice);
    let mut script = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        match chunk {
            Ok(pcm) => script.extend_from_slice(&pcm),
            Err(e) => {
                tracing::warn!("simulated callee stays silent: {e}");
                return Vec::new();
            }
        }
    }
    script
}
