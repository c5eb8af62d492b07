//! One call from answer to hang-up: the leg's audio through VAD and STT into the turn machine,
//! its actions out to the brain, TTS, the pacer and the leg; the recording, the call record and
//! the post-call analysis.

mod answering_machine;
mod call;
mod clock;
mod drain;
mod failures;
mod journal;
mod outcome;
mod recording;
mod recovery;
mod stt_gate;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use call::Call;
use futures::FutureExt;
use journal::{Registration, TurnJournal};
use tracing::Instrument;

pub use drain::{ActiveCall, Drain, Phase};
pub use recovery::{HEARTBEAT_EVERY, STALE_AFTER, recover_orphaned_calls};

use crate::agent::admission::{Admission, CallPermit};
use crate::agent::turn::{ToolCallRecord, TranscriptTurn, TurnLatency};
use crate::config::Config;
use crate::providers::llm::Brain;
use crate::providers::stt::SpeechToText;
use crate::providers::tts::TextToSpeech;
use crate::store::{Scope, Store, StoreError};
use crate::telephony::{CallLeg, LegCommand, MachineDetection};

/// The engine's shared services every call uses.
pub struct CallServices {
    pub config: Arc<Config>,
    pub store: Store,
    pub stt: Arc<dyn SpeechToText>,
    pub tts: Arc<dyn TextToSpeech>,
    pub brain: Arc<dyn Brain>,
    /// The gate every call passes (minutes, concurrency); shared with the API's outbound calls.
    pub admission: Arc<Admission>,
    /// Shutdown: refuses new calls, then asks live ones to close.
    pub drain: Drain,
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
    /// A replayed call whose clock stands still while a provider works: every provider
    /// looks instant, so the call goes the same on a slow or busy machine as on a fast one
    /// (its latencies read as zero). A provider silent for a long while still lets time on.
    Stepped,
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
    /// The call's wall-clock start as the brain sees it ("tomorrow"); now when unset.
    /// Replays pin it so a fixture's relative dates resolve the same on every run.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The call's admission slot, held until the session ends (`None` for replays, which
    /// admission does not govern).
    pub permit: Option<Arc<CallPermit>>,
    /// Outbound: answering-machine detection asked for on the request.
    pub machine_detection: MachineDetection,
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
            started_at: None,
            permit: None,
            machine_detection: MachineDetection::Off,
        }
    }
}

/// What became of a call, for the transport, the replay report and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallReport {
    /// `None` when the call could not even be recorded.
    pub call_id: Option<String>,
    /// `completed`, `missed` or `failed`.
    pub status: String,
    pub end_reason: String,
    pub duration_ms: u64,
    pub transcript: Vec<TranscriptTurn>,
    pub tool_calls: Vec<ToolCallRecord>,
    pub latencies: Vec<TurnLatency>,
    pub sentiment: Option<String>,
    pub summary: Option<String>,
    pub tags: Vec<String>,
    pub recording_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("agent {0} not found")]
    AgentNotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the call's record was not written: its writer stopped")]
    WriterStopped,
}

/// Runs one call from answer to hang-up and writes its record. Never panics on what the
/// caller, the carrier or a provider does; a call that cannot start is hung up and reported
/// as failed, and one whose task panics is hung up and finished from its journal as failed.
pub async fn run_call(services: Arc<CallServices>, leg: CallLeg, route: CallRoute) -> CallReport {
    let _active = services.drain.call_started();
    let commands = leg.commands.clone();
    let ran = match Call::start(&services, &leg, &route).await {
        Ok((call, registration)) => run_started(&services, call, registration, leg).await,
        Err(e) => Err(e),
    };
    match ran {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(agent = %route.agent_id, "call cannot go on: {e}");
            let _ = commands.send(LegCommand::Hangup).await;
            if let Some(call_id) = &route.call_id {
                let outcome = outcome::failed(&e.to_string());
                if let Err(e) = services.store.finish_call(call_id, outcome).await {
                    tracing::error!(%call_id, "cannot mark the call failed: {e}");
                }
            }
            CallReport {
                call_id: route.call_id.clone(),
                status: "failed".into(),
                end_reason: e.to_string(),
                duration_ms: 0,
                transcript: Vec::new(),
                tool_calls: Vec::new(),
                latencies: Vec::new(),
                sentiment: None,
                summary: None,
                tags: Vec::new(),
                recording_path: None,
            }
        }
    }
}

/// Runs a started call, finishing it from its journal when its task panics.
async fn run_started(
    services: &Arc<CallServices>,
    call: Call,
    registration: Registration,
    leg: CallLeg,
) -> Result<CallReport, SessionError> {
    let (call_id, started_at) = (call.id().to_string(), call.started_at());
    let commands = leg.commands.clone();
    let store = services.store.clone();
    let (journal, writer) = TurnJournal::open(store, call_id.clone(), registration);
    let span = call.span();
    let run = AssertUnwindSafe(call.run(leg, journal).instrument(span))
        .catch_unwind()
        .await;
    let panic = match run {
        Ok(ran) => return ran,
        Err(panic) => panic,
    };
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(%call_id, "the call's task panicked: {message}");
    let _ = commands.send(LegCommand::Hangup).await;
    writer.flushed().await;
    let config = &services.config;
    Ok(recovery::finish_after_panic(&services.store, config, &call_id, started_at).await)
}
