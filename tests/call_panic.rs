//! A call that cannot go on ends cleanly. A panic inside it (here a brain that panics on the
//! caller's question): the leg is hung up and the record is finished `failed`, with what was
//! said before the panic and its `call.completed` event. A record that cannot be written (the
//! call is written beside its greeting, not before it): the leg is hung up and nothing is
//! kept. The session, VAD, turn machine, recorder and store are the production ones; the
//! caller is the simulated callee.

mod common;

use common::scripted_stt::ScriptedStt;

use std::sync::Arc;
use std::time::Duration;

use boltcall::agent::session::{CallRoute, CallServices, run_call};
use boltcall::agent::tools::ToolRunner;
use boltcall::config::Config;
use boltcall::providers::llm::{Brain, BrainContext, BrainEvent, BrainSession, Message, Role};
use boltcall::providers::tts::{TextToSpeech, TtsError, Voice};
use boltcall::store::{NewAgent, Scope, Store};
use boltcall::telephony::OutboundCall;
use boltcall::telephony::simulated::{SimulatedCallee, load_script, run_callee, simulated_leg};
use tokio::sync::mpsc;

const HEARD: &str = "what are your opening hours";
const GREETING: &str = "Hello, this is Ava.";

/// A quiet 440 Hz tone, 30 ms per character.
struct ToneTts;

impl TextToSpeech for ToneTts {
    fn name(&self) -> &'static str {
        "tone"
    }
    fn synthesize(
        &self,
        text: String,
        _voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(1);
        let samples = text.chars().count() * 480;
        let pcm = (0..samples)
            .map(|i| (2000.0 * (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin()) as i16)
            .collect();
        tokio::spawn(async move {
            let _ = tx.send(Ok(pcm)).await;
        });
        rx
    }
}

/// Panics when asked to answer the caller, as a buggy provider or parser would.
struct PanickingBrain;

impl Brain for PanickingBrain {
    fn name(&self) -> &'static str {
        "panicking"
    }
    fn start(&self, _context: BrainContext, _tools: Arc<dyn ToolRunner>) -> Box<dyn BrainSession> {
        Box::new(PanickingBrain)
    }
}

impl BrainSession for PanickingBrain {
    fn reply(&mut self, history: &[Message]) -> mpsc::Receiver<BrainEvent> {
        if history.iter().any(|m| m.role == Role::Caller) {
            panic!("byte index 5 is not a char boundary");
        }
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(BrainEvent::Done);
        rx
    }
}

struct Setup {
    store: Store,
    scope: Scope,
    agent_id: String,
    services: Arc<CallServices>,
    _db: common::TestDb,
}

async fn setup(dir: &std::path::Path) -> Setup {
    let db = common::TestDb::create(dir).await;
    let store = Store::connect(&db.url).await.unwrap();
    let scope = Scope {
        workspace_id: "default".into(),
        live: true,
    };
    let agent = store
        .create_agent(
            &scope,
            NewAgent {
                name: "Ava".into(),
                voice_id: "voice_sarah".into(),
                greeting: Some(GREETING.into()),
                prompt: None,
                knowledge_base_id: None,
                phone_number: Some("+15550001000".into()),
                transfer_targets: Vec::new(),
                llm: Default::default(),
                tools: Vec::new(),
            },
        )
        .await
        .unwrap();
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    let services = Arc::new(CallServices {
        admission: boltcall::agent::admission::Admission::from_config(&config),
        config: Arc::new(config),
        store: store.clone(),
        stt: Arc::new(ScriptedStt(HEARD)),
        tts: Arc::new(ToneTts),
        brain: Arc::new(PanickingBrain),
        drain: Default::default(),
    });
    Setup {
        store,
        scope,
        agent_id: agent.id,
        services,
        _db: db,
    }
}

fn leg_to(setup: &Setup) -> (boltcall::telephony::CallLeg, boltcall::telephony::LegEnd) {
    simulated_leg(&OutboundCall {
        call_id: "unused".into(),
        workspace_id: setup.scope.workspace_id.clone(),
        live: true,
        agent_id: setup.agent_id.clone(),
        from: "+15550001000".into(),
        to: "+15550002000".into(),
        context: None,
        permit: None,
        machine_detection: Default::default(),
    })
}

#[tokio::test]
async fn a_panicking_call_is_hung_up_and_finished_failed_with_its_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path()).await;
    let Setup {
        store,
        scope,
        services,
        ..
    } = &setup;
    // Two seconds of silence (the greeting plays), then the question.
    let question = load_script(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/calls/opening_hours/caller.wav"
    )))
    .unwrap();
    let mut script = vec![0i16; 32_000];
    script.extend_from_slice(&question[6_500 * 16..9_500 * 16]);
    let (leg, callee_end) = leg_to(&setup);
    let callee = SimulatedCallee {
        script,
        listen_for: Duration::from_secs(20),
        recording: None,
    };
    let (report, heard) = tokio::join!(
        run_call(
            services.clone(),
            leg,
            CallRoute::new(setup.agent_id.clone(), scope.clone())
        ),
        run_callee(callee_end, callee)
    );
    assert!(
        heard.unwrap().agent_hung_up,
        "the leg was hung up, not left open"
    );
    assert_eq!(report.status, "failed");
    assert_eq!(report.end_reason, "internal_error");
    let call_id = report.call_id.expect("the call was recorded");
    let call = store
        .get_call(scope, &call_id)
        .await
        .unwrap()
        .expect("call row");
    assert_eq!(call.status, "failed");
    assert_eq!(call.end_reason.as_deref(), Some("internal_error"));
    assert!(call.ended_at.is_some());
    let said: Vec<(&str, &str)> = call
        .transcript
        .0
        .iter()
        .map(|t| (t.role.as_str(), t.text.as_str()))
        .collect();
    assert_eq!(said, [("agent", GREETING), ("caller", HEARD)]);
    let recording = call.recording_path.expect("the recording is kept");
    assert!(hound::WavReader::open(recording).unwrap().duration() > 16_000);
    let events = store.recent_events(scope, 10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "call.completed" && e.payload.contains(&call_id)),
        "{events:?}"
    );
    assert_eq!(services.drain.active_calls(), 0);
}

#[tokio::test]
async fn a_call_whose_record_cannot_be_written_is_hung_up_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path()).await;
    // An answered outbound call whose record is not there (deleted, or never written).
    let route = CallRoute {
        call_id: Some("call_vanished".into()),
        ..CallRoute::new(setup.agent_id.clone(), setup.scope.clone())
    };
    let (leg, callee_end) = leg_to(&setup);
    let callee = SimulatedCallee {
        script: vec![0i16; 16_000],
        listen_for: Duration::from_secs(20),
        recording: None,
    };
    let (report, heard) = tokio::join!(
        run_call(setup.services.clone(), leg, route),
        run_callee(callee_end, callee)
    );
    assert!(heard.unwrap().agent_hung_up, "the leg was hung up");
    assert_eq!(report.status, "failed");
    assert!(
        report.end_reason.contains("not found"),
        "{}",
        report.end_reason
    );
    assert_eq!(report.recording_path, None);
    let recordings = dir.path().join("recordings");
    let left: Vec<_> = std::fs::read_dir(&recordings)
        .map(|files| files.flatten().map(|f| f.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "recordings left behind: {left:?}");
    let calls = setup.store.get_call_by_id("call_vanished").await.unwrap();
    assert!(calls.is_none());
    assert_eq!(setup.services.drain.active_calls(), 0);
}
