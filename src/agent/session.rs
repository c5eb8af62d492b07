//! One call from answer to hang-up: the leg's audio through VAD and STT into the turn machine,
//! its actions out to the brain, TTS, the pacer and the leg; the recording, the call record and
//! the post-call analysis.

use std::sync::Arc;

use crate::config::Config;
use crate::providers::llm::Brain;
use crate::providers::stt::SpeechToText;
use crate::providers::tts::TextToSpeech;
use crate::store::{Scope, Store};

/// The engine's shared services every call uses.
pub struct CallServices {
    pub config: Arc<Config>,
    pub store: Store,
    pub stt: Arc<dyn SpeechToText>,
    pub tts: Arc<dyn TextToSpeech>,
    pub brain: Arc<dyn Brain>,
}

/// How the session's clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// A live call: one outbound frame per 20 ms of wall time; inbound audio arrives at the
    /// carrier's pace.
    RealTime,
    /// A replayed call: each 20 ms tick consumes exactly one inbound frame. Call time runs as
    /// fast as the session can go while nothing is pending, and at wall speed while a
    /// provider (STT final, brain, TTS) is working, so measured latencies stay real.
    Replay,
}

/// Which agent answers a call, in which scope, and what the call already is.
#[derive(Debug, Clone)]
pub struct CallRoute {
    pub agent_id: String,
    pub scope: Scope,
    /// Outbound calls are created (`ringing`) by the API before they are placed.
    pub call_id: Option<String>,
    /// Outbound briefing for the agent.
    pub context: Option<String>,
    pub pacing: Pacing,
}

impl CallRoute {
    /// An inbound, live-paced call to `agent_id`.
    pub fn new(agent_id: impl Into<String>, scope: Scope) -> Self {
        CallRoute {
            agent_id: agent_id.into(),
            scope,
            call_id: None,
            context: None,
            pacing: Pacing::RealTime,
        }
    }
}
