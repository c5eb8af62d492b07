//! The engine's `Dialer`: live calls go out through the configured carrier (the SIP trunk,
//! Twilio, Telnyx or Vonage); test-mode calls never leave the process and run against a
//! simulated callee that answers and speaks.

use std::sync::Arc;
use std::time::Duration;

use super::simulated::{
    CalleeKind, SimulatedCallee, callee_kind, run_callee, simulated_leg, voicemail_beep,
};
use super::sip::service::SipDialer;
use super::telnyx::TelnyxDialer;
use super::twilio::TwilioCalls;
use super::vonage::Vonage;
use super::{Dialer, OutboundCall};
use crate::agent::session::{CallRoute, CallServices, run_call};
use crate::config::OutboundCarrier;
use crate::providers::tts::{TextToSpeech, find_voice};
use crate::store::{CallOutcome, Scope};

/// What the simulated callee says when it picks up.
const CALLEE_LINE: &str = "Hello, who is calling?";
/// What the simulated answering machine says before its beep.
const VOICEMAIL_GREETING: &str = "Hi, you have reached Sam Carter. I cannot take your call \
    right now. Please leave a message after the tone.";
/// How long the simulated callee listens to the agent before hanging up.
const CALLEE_LISTENS_FOR: Duration = Duration::from_secs(20);

pub struct EngineDialer {
    pub sip: SipDialer,
    pub telnyx: TelnyxDialer,
    pub services: Arc<CallServices>,
    /// Twilio's REST client and the calls placed with it, shared with the Twilio router.
    pub twilio: Arc<TwilioCalls>,
    /// Places live calls when Vonage is the outbound carrier.
    pub vonage: Vonage,
}

impl Dialer for EngineDialer {
    fn dial(&self, call: OutboundCall) {
        if !call.live {
            tokio::spawn(simulate(self.services.clone(), call));
            return;
        }
        match self.services.config.outbound_carrier() {
            Some(OutboundCarrier::Sip) => self.sip.dial(call),
            Some(OutboundCarrier::Twilio) => self.twilio.dial(self.services.clone(), call),
            Some(OutboundCarrier::Telnyx) => self.telnyx.dial(call),
            Some(OutboundCarrier::Vonage) => self.vonage.dial(call),
            None => {
                let reason = "no carrier places live outbound calls: set BOLTCALL_SIP_TRUNK, \
                    BOLTCALL_TWILIO_ACCOUNT_SID and BOLTCALL_TWILIO_AUTH_TOKEN, \
                    BOLTCALL_TELNYX_API_KEY and BOLTCALL_TELNYX_CONNECTION_ID, or \
                    BOLTCALL_VONAGE_APPLICATION_ID and BOLTCALL_VONAGE_PRIVATE_KEY_PATH";
                tokio::spawn(unplaced(self.services.clone(), call, reason.into()));
            }
        }
    }

    fn accepting(&self) -> bool {
        !self.services.drain.is_draining()
    }
}

/// An outbound call that could not be placed: `failed`, with the reason as `end_reason`.
pub(crate) async fn unplaced(services: Arc<CallServices>, call: OutboundCall, reason: String) {
    tracing::error!(call_id = %call.call_id, "outbound call not placed: {reason}");
    let outcome = CallOutcome::unanswered("failed", reason);
    if let Err(e) = services.store.finish_call(&call.call_id, outcome).await {
        tracing::error!(call_id = %call.call_id, "cannot record the unplaced call: {e}");
    }
}

/// Runs a test-mode outbound call end to end against the simulated callee: a person, or an
/// answering machine on the voicemail numbers (`simulated::callee_kind`).
pub async fn simulate(services: Arc<CallServices>, call: OutboundCall) {
    let script = match callee_kind(&call.to) {
        CalleeKind::Person => callee_script(services.tts.as_ref(), CALLEE_LINE).await,
        CalleeKind::Voicemail { beep } => {
            let mut script = callee_script(services.tts.as_ref(), VOICEMAIL_GREETING).await;
            if beep {
                script.extend(voicemail_beep());
            }
            script
        }
    };
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
    route.machine_detection = call.machine_detection.clone();
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
async fn callee_script(tts: &dyn TextToSpeech, line: &str) -> Vec<i16> {
    let Some(voice) = find_voice("voice_sarah") else {
        return Vec::new();
    };
    let mut chunks = tts.synthesize(line.to_string(), voice);
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
