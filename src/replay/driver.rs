//! Plays a fixture's caller into a real call session over a `CallLeg`, the way a transport
//! would, and collects what the agent did.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use media::InternalFrame;

use super::caller_audio::load_frames;
use super::scenario::Scenario;
use crate::agent::admission::Admission;
use crate::agent::session::{CallReport, CallRoute, CallServices, Pacing, run_call};
use crate::config::Config;
use crate::providers::llm::Brain;
use crate::providers::stt::SpeechToText;
use crate::providers::tts::TextToSpeech;
use crate::store::{NewAgent, Scope, Store};
use crate::telephony::{Direction, HangupReason, LegCommand, LegEvent, LegInfo, leg_pair};

/// The speech and language engines a replay runs on.
#[derive(Clone)]
pub struct Providers {
    pub stt: Arc<dyn SpeechToText>,
    pub tts: Arc<dyn TextToSpeech>,
    pub brain: Arc<dyn Brain>,
}

/// What the replayed call produced, beside the session's own report.
pub struct Replayed {
    pub report: CallReport,
    pub store: Store,
    pub scope: Scope,
    /// `LegCommand::Clear`s the carrier would have received (barge-ins).
    pub clears: usize,
    /// Seconds of caller audio played in.
    pub caller_seconds: f64,
    /// The work directory (temporary store and the call's recording).
    pub work_dir: PathBuf,
}

/// Replays `fixture` in a fresh SQLite store under `work_dir`.
pub async fn replay_call(
    config: &Config,
    providers: Providers,
    fixture: &Path,
    scenario: &Scenario,
    work_dir: &Path,
    pacing: Pacing,
) -> anyhow::Result<Replayed> {
    let frames = load_frames(&fixture.join(&scenario.caller.audio))?;
    std::fs::create_dir_all(work_dir)?;
    let db = work_dir.join("replay.db");
    let store = Store::connect(&format!("sqlite://{}", db.display())).await?;
    let scope = Scope {
        workspace_id: "replay".into(),
        live: false,
    };
    let agent = create_agent(&store, &scope, scenario).await?;
    let mut call_config = config.clone();
    call_config.data_dir = work_dir.to_path_buf();
    call_config.record_fixtures = None;
    let services = Arc::new(CallServices {
        admission: Admission::from_config(&call_config),
        config: Arc::new(call_config),
        store: store.clone(),
        stt: providers.stt,
        tts: providers.tts,
        brain: providers.brain,
        drain: Default::default(),
    });
    let info = LegInfo {
        transport: "replay",
        carrier_call_id: format!("replay-{}", fixture.display()),
        from: scenario.caller.number.clone(),
        to: agent.phone_number.clone().unwrap_or_default(),
        direction: Direction::Inbound,
        parameters: Vec::new(),
        carrier_detects_machine: false,
        dtmf_out_of_band: false,
        continuous_audio: true,
    };
    let (leg, mut leg_end) = leg_pair(info);
    let mut route = CallRoute::new(agent.id.clone(), scope.clone());
    route.pacing = pacing;
    route.started_at = scenario.now;
    let session = tokio::spawn(run_call(services, leg, route));

    // The session takes one caller frame per 20 ms tick; after the recording the caller
    // lingers in silence, then hangs up.
    let linger = (scenario.caller.linger_ms / 20) as usize;
    let caller_seconds = frames.len() as f64 * 0.02;
    let mut script = frames.into_iter().chain(std::iter::repeat_n(
        InternalFrame::silence(media::INTERNAL_RATE),
        linger,
    ));
    let mut clears = 0;
    let mut caller_done = false;
    let mut agent_done = false;
    loop {
        tokio::select! {
            // `reserve` is cancel-safe: a frame is taken from the script only once it can go.
            permit = leg_end.events.reserve(), if !caller_done && !agent_done => {
                let Ok(permit) = permit else { break };
                match script.next() {
                    Some(frame) => permit.send(LegEvent::Audio(frame)),
                    None => {
                        permit.send(LegEvent::Hangup(HangupReason::Remote));
                        caller_done = true;
                    }
                }
            }
            command = leg_end.commands.recv() => match command {
                Some(LegCommand::Clear) => clears += 1,
                Some(LegCommand::Hangup | LegCommand::Transfer(_)) => agent_done = true,
                Some(LegCommand::Audio(_) | LegCommand::Mark(_) | LegCommand::SendDtmf(_)) => {}
                // The session has ended.
                None => break,
            },
        }
    }
    drop(leg_end);
    let report = session.await?;
    Ok(Replayed {
        report,
        store,
        scope,
        clears,
        caller_seconds,
        work_dir: work_dir.to_path_buf(),
    })
}

async fn create_agent(
    store: &Store,
    scope: &Scope,
    scenario: &Scenario,
) -> anyhow::Result<crate::store::AgentRecord> {
    let spec = &scenario.agent;
    let knowledge_base_id = if spec.knowledge.is_empty() {
        None
    } else {
        let kb = store
            .create_knowledge_base(scope, format!("{} knowledge", spec.name), None)
            .await?;
        for doc in &spec.knowledge {
            store
                .add_knowledge_document(scope, &kb.id, doc.title.clone(), doc.text.clone())
                .await?;
        }
        Some(kb.id)
    };
    let voice_id = spec
        .voice
        .clone()
        .unwrap_or_else(|| crate::providers::tts::VOICES[0].id.to_string());
    Ok(store
        .create_agent(
            scope,
            NewAgent {
                name: spec.name.clone(),
                voice_id,
                greeting: spec.greeting.clone(),
                prompt: spec.prompt.clone(),
                knowledge_base_id,
                phone_number: Some(
                    spec.phone_number
                        .clone()
                        .unwrap_or_else(|| "+10000000000".into()),
                ),
                transfer_targets: Vec::new(),
                llm: Default::default(),
                tools: Vec::new(),
            },
        )
        .await?)
}
