//! The seam between `POST /v1/calls/outbound` and whatever places the call.

use std::sync::Arc;

use crate::agent::admission::CallPermit;

/// An outbound call the API has accepted and recorded (status `ringing`).
#[derive(Debug, Clone)]
pub struct OutboundCall {
    pub call_id: String,
    pub workspace_id: String,
    /// Test-mode calls never leave the process: they run against a simulated callee.
    pub live: bool,
    pub agent_id: String,
    /// The agent's own number, used as From.
    pub from: String,
    /// The callee, E.164.
    pub to: String,
    /// Briefing for the agent's prompt.
    pub context: Option<String>,
    /// The admission slot the API took for this call; freed when the call (or its failed
    /// attempt) is dropped.
    pub permit: Option<Arc<CallPermit>>,
    /// Answering-machine detection asked for on the request.
    pub machine_detection: MachineDetection,
}

/// What an outbound call does about answering machines (the request's `machine_detection`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MachineDetection {
    /// No detection: the agent speaks as soon as the call is answered.
    #[default]
    Off,
    /// Detect; on a machine, wait for the end of its greeting and leave this message.
    LeaveMessage(String),
    /// Detect; hang up on a machine.
    HangUp,
}

impl MachineDetection {
    pub fn is_on(&self) -> bool {
        *self != MachineDetection::Off
    }
}

/// Places outbound calls. Must return at once: the call proceeds in the background and reports
/// its progress through the store (status changes and events).
pub trait Dialer: Send + Sync {
    fn dial(&self, call: OutboundCall);

    /// Whether new calls can be placed (not while the engine shuts down).
    fn accepting(&self) -> bool {
        true
    }
}
