//! Vonage end to end: the engine's Vonage routes on a real socket, against a stand-in for
//! Vonage that speaks its wire protocols (signed webhooks, the audio WebSocket with binary
//! 16-bit PCM, the Voice REST API checking the engine's RS256 tokens). The session, VAD, turn
//! machine, pacer, recorder and store are the production ones; speech and brain are scripted
//! stand-ins so the conversation is known in advance.

#[allow(dead_code)]
#[path = "carrier_fakes/vonage.rs"]
mod fake_vonage;
#[path = "common/scripted_stt.rs"]
mod scripted_stt;

#[path = "common/tone_tts.rs"]
mod tone_tts;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tone_tts::ToneTts;

use boltcall::agent::admission::Admission;
use boltcall::agent::session::CallServices;
use boltcall::agent::tools::ToolRunner;
use boltcall::config::Config;
use boltcall::providers::llm::{Brain, BrainContext, BrainEvent, BrainSession, Message, Role};
use boltcall::providers::stt::SpeechToText;
use boltcall::providers::tts::TextToSpeech;
use boltcall::store::{AgentPatch, CallRecord, NewAgent, NewCall, Scope, Store};
use boltcall::telephony::vonage::Vonage;
use boltcall::telephony::vonage::api_token::ApiSigner;
use boltcall::telephony::vonage::rest::{RestError, VonageRest};
use boltcall::telephony::{Dialer, MachineDetection, OutboundCall};
use fake_vonage::{
    APPLICATION_ID, AppKey, CreateReply, FakeVonage, SIGNATURE_SECRET, VonageSocket, get_answer,
    post_event, webhook_authorization,
};
use scripted_stt::ScriptedStt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const AGENT_PHONE: &str = "+15550001000";
const CALLER_PHONE: &str = "+15550002000";
const GREETING: &str = "Hello, thanks for calling.";
const HEARD: &str = "what are your opening hours";
const ANSWER: &str = "We are open nine to five.";
const DESK: &str = "+14155550100";

/// What the agent does after answering the caller.
#[derive(Clone)]
enum Then {
    Listen,
    HangUp,
    Transfer(&'static str),
}

/// Answers every caller turn the same way, then does `Then`.
#[derive(Clone)]
struct ScriptBrain(Then);

impl Brain for ScriptBrain {
    fn name(&self) -> &'static str {
        "script"
    }
    fn start(&self, _context: BrainContext, _tools: Arc<dyn ToolRunner>) -> Box<dyn BrainSession> {
        Box::new(self.clone())
    }
}

impl BrainSession for ScriptBrain {
    fn reply(&mut self, history: &[Message]) -> mpsc::Receiver<BrainEvent> {
        let (tx, rx) = mpsc::channel(4);
        let answer = history.last().is_some_and(|m| m.role == Role::Caller);
        let then = self.0.clone();
        tokio::spawn(async move {
            if answer {
                let _ = tx.send(BrainEvent::Text(ANSWER.into())).await;
                let after = match then {
                    Then::Listen => None,
                    Then::HangUp => Some(BrainEvent::EndCall),
                    Then::Transfer(target) => Some(BrainEvent::Transfer {
                        target: target.into(),
                    }),
                };
                if let Some(event) = after {
                    let _ = tx.send(event).await;
                }
            }
            let _ = tx.send(BrainEvent::Done).await;
        });
        rx
    }
}

struct Engine {
    base: String,
    store: Store,
    vonage: Vonage,
    fake: FakeVonage,
    key: Arc<AppKey>,
    scope: Scope,
    agent_id: String,
    _dir: tempfile::TempDir,
}

impl Engine {
    fn event_url(&self, call_id: &str) -> String {
        format!("{}/carrier/vonage/event?call_id={call_id}", self.base)
    }
}

async fn engine(then: Then) -> Engine {
    engine_with(then, |_| {}).await
}

/// What hears, thinks and speaks in the engine under test.
#[derive(Clone, Copy, PartialEq)]
enum Speech {
    /// Scripted stand-ins: the conversation is known in advance.
    Scripted,
    /// The product's offline stack: Whisper, the offline brain and Piper.
    Offline,
}

async fn engine_with(then: Then, configure: impl FnOnce(&mut Config)) -> Engine {
    engine_speaking(Speech::Scripted, then, configure).await
}

async fn engine_speaking(
    speech: Speech,
    then: Then,
    configure: impl FnOnce(&mut Config),
) -> Engine {
    let key = Arc::new(AppKey::generate());
    let fake = FakeVonage::start(key.public.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key_path: PathBuf = dir.path().join("private.key");
    std::fs::write(&key_path, &key.pem).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config {
        public_url: Some(format!("http://{addr}")),
        database_url: format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        data_dir: dir.path().join("data"),
        vonage_application_id: Some(APPLICATION_ID.into()),
        vonage_private_key_path: Some(key_path),
        vonage_signature_secret: Some(SIGNATURE_SECRET.into()),
        vonage_api_base: fake.base.clone(),
        ..Config::default()
    };
    configure(&mut config);
    let store = Store::connect(&config.database_url)
        .await
        .unwrap()
        .with_public_url(&config.public_url());
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
                phone_number: Some(AGENT_PHONE.into()),
                transfer_targets: vec![DESK.into()],
                llm: Default::default(),
                tools: Vec::new(),
            },
        )
        .await
        .unwrap();
    let (stt, tts, brain): (Arc<dyn SpeechToText>, Arc<dyn TextToSpeech>, Arc<dyn Brain>) =
        match speech {
            Speech::Scripted => (
                Arc::new(ScriptedStt(HEARD)),
                Arc::new(ToneTts),
                Arc::new(ScriptBrain(then)),
            ),
            Speech::Offline => (
                boltcall::providers::build_stt(&config).await.unwrap(),
                boltcall::providers::build_tts(&config).await.unwrap(),
                boltcall::providers::llm::build_brain(&config),
            ),
        };
    let services = Arc::new(CallServices {
        admission: Admission::from_config(&config),
        config: Arc::new(config),
        store: store.clone(),
        stt,
        tts,
        brain,
        drain: Default::default(),
    });
    let vonage = Vonage::new(services);
    let router = vonage.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Engine {
        base: format!("http://{addr}"),
        store,
        vonage,
        fake,
        key,
        scope,
        agent_id: agent.id,
        _dir: dir,
    }
}

fn signed() -> Option<String> {
    Some(webhook_authorization(SIGNATURE_SECRET, None, 0))
}

/// The NCCO's WebSocket endpoint: `(uri, headers)`.
fn stream_endpoint(ncco: &Value) -> (String, Value) {
    assert_eq!(ncco[0]["action"], "connect", "{ncco}");
    let endpoint = &ncco[0]["endpoint"][0];
    assert_eq!(endpoint["type"], "websocket", "{ncco}");
    assert_eq!(endpoint["content-type"], "audio/l16;rate=16000", "{ncco}");
    (
        endpoint["uri"].as_str().unwrap().to_string(),
        endpoint["headers"].clone(),
    )
}

/// "Hi, what are your opening hours?" from the opening-hours fixture, at `rate`.
fn caller_question(rate: u32) -> Vec<i16> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/calls/opening_hours/caller.wav"
    );
    let mut reader = hound::WavReader::open(path).unwrap();
    assert_eq!(reader.spec().sample_rate, 8000);
    let pcm: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let narrow = &pcm[6_500 * 8..9_500 * 8];
    if rate == 8000 {
        return narrow.to_vec();
    }
    // Linear interpolation to 16 kHz: plenty for the VAD that hears it.
    narrow
        .windows(2)
        .flat_map(|w| [w[0], ((i32::from(w[0]) + i32::from(w[1])) / 2) as i16])
        .collect()
}

/// The call's record once it has ended.
async fn ended_call(store: &Store, scope: &Scope, id: Option<&str>) -> CallRecord {
    for _ in 0..300 {
        let page = store
            .list_calls(
                scope,
                &Default::default(),
                boltcall::store::PageRequest { page: 1, limit: 20 },
            )
            .await
            .unwrap();
        if let Some(call) = page
            .items
            .into_iter()
            .find(|c| c.ended_at.is_some() && id.is_none_or(|id| c.id == id))
        {
            return call;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the call was never finished");
}

async fn all_calls(engine: &Engine) -> Vec<CallRecord> {
    engine
        .store
        .list_calls(
            &engine.scope,
            &Default::default(),
            boltcall::store::PageRequest { page: 1, limit: 20 },
        )
        .await
        .unwrap()
        .items
}

/// An outbound call as the API records and hands it to the dialer.
async fn outbound(engine: &Engine, machine_detection: MachineDetection) -> OutboundCall {
    let record = engine
        .store
        .create_call(
            &engine.scope,
            NewCall {
                agent_id: engine.agent_id.clone(),
                direction: "outbound".into(),
                caller: AGENT_PHONE.into(),
                to: CALLER_PHONE.into(),
                carrier_call_id: None,
                status: "ringing".into(),
                context: None,
            },
        )
        .await
        .unwrap();
    OutboundCall {
        call_id: record.id,
        workspace_id: engine.scope.workspace_id.clone(),
        live: true,
        agent_id: engine.agent_id.clone(),
        from: AGENT_PHONE.into(),
        to: CALLER_PHONE.into(),
        context: None,
        permit: None,
        machine_detection,
    }
}

#[tokio::test]
async fn an_inbound_call_runs_through_the_offline_speech_stack() {
    let engine = engine_speaking(Speech::Offline, Then::Listen, |_| {}).await;
    let (status, ncco) = get_answer(
        &engine.base,
        "15550001000",
        "15550002000",
        "uuid-offline-1",
        signed(),
    )
    .await;
    assert_eq!(status, 200, "{ncco}");
    let (uri, headers) = stream_endpoint(&ncco);
    let mut socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
    socket.silence(4.0).await;
    // Piper speaking the greeting as 16 kHz L16: well over a second of sound.
    assert!(
        socket.sound_frames > 40,
        "greeting frames {}",
        socket.sound_frames
    );
    socket.hang_up().await;
    let call = ended_call(&engine.store, &engine.scope, None).await;
    assert_eq!(call.status, "completed");
    assert_eq!(call.transcript[0].role, "agent");
    assert_eq!(call.transcript[0].text, GREETING);
    assert!(call.recording_url.is_some());
}

#[tokio::test]
async fn an_inbound_call_is_greeted_answered_and_recorded() {
    let engine = engine(Then::Listen).await;
    let (status, ncco) = get_answer(
        &engine.base,
        "15550001000",
        "15550002000",
        "uuid-in-1",
        signed(),
    )
    .await;
    assert_eq!(status, 200, "{ncco}");
    let (uri, headers) = stream_endpoint(&ncco);
    assert_eq!(
        uri,
        format!(
            "{}/carrier/vonage/stream",
            engine.base.replace("http://", "ws://")
        )
    );
    assert_eq!(headers["uuid"], "uuid-in-1");
    assert_eq!(headers["to"], AGENT_PHONE);
    assert_eq!(headers["from"], CALLER_PHONE);

    let mut socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
    socket.silence(2.5).await;
    let greeting = socket.sound_frames;
    // "Hello, thanks for calling." is 26 characters of tone: 1.56 s, 78 frames.
    assert!((70..=90).contains(&greeting), "greeting frames {greeting}");
    socket.play(&caller_question(16_000)).await;
    socket.silence(3.0).await;
    let answer = socket.sound_frames - greeting;
    // "We are open nine to five." is 25 characters: 75 frames of tone.
    assert!((65..=85).contains(&answer), "answer frames {answer}");
    // Every frame the engine sent is one 20 ms binary message (checked on receipt), and only
    // while the agent spoke: Vonage buffers what it gets and plays silence when it runs dry.
    let quiet = socket.frames - socket.sound_frames;
    assert!(
        quiet <= 10,
        "{quiet} of {} frames without sound",
        socket.frames
    );
    let socket = socket.hang_up().await;
    assert!(socket.closed);

    let call = ended_call(&engine.store, &engine.scope, None).await;
    assert_eq!(call.status, "completed");
    assert_eq!(call.direction, "inbound");
    assert_eq!(call.caller, CALLER_PHONE);
    assert_eq!(call.to, AGENT_PHONE);
    assert_eq!(call.carrier_call_id.as_deref(), Some("uuid-in-1"));
    assert_eq!(call.end_reason.as_deref(), Some("caller_hangup"));
    let turns: Vec<(&str, &str)> = call
        .transcript
        .iter()
        .map(|t| (t.role.as_str(), t.text.as_str()))
        .collect();
    assert_eq!(
        turns,
        [("agent", GREETING), ("caller", HEARD), ("agent", ANSWER)]
    );
    assert!(call.duration_seconds.unwrap_or(0) >= 7);
    // No REST credentials were needed to hang up: the caller did.
    assert!(engine.fake.requests().is_empty());
}

#[tokio::test]
async fn an_eight_khz_stream_is_resampled_both_ways() {
    let engine = engine(Then::Listen).await;
    let (_, ncco) = get_answer(
        &engine.base,
        "15550001000",
        "15550002000",
        "uuid-in-8k",
        signed(),
    )
    .await;
    let (uri, headers) = stream_endpoint(&ncco);
    let mut socket = VonageSocket::connect(&uri, &headers, 8_000).await.unwrap();
    socket.silence(2.5).await;
    // 320-byte messages (checked on receipt) carrying the greeting.
    assert!(
        (70..=90).contains(&socket.sound_frames),
        "{}",
        socket.sound_frames
    );
    socket.play(&caller_question(8_000)).await;
    socket.silence(3.0).await;
    socket.hang_up().await;
    let call = ended_call(&engine.store, &engine.scope, None).await;
    assert!(
        call.transcript
            .iter()
            .any(|t| t.role == "caller" && t.text == HEARD)
    );
    assert!(call.transcript.iter().any(|t| t.text == ANSWER));
}

#[tokio::test]
async fn webhooks_without_a_valid_vonage_token_are_refused() {
    let engine = engine(Then::Listen).await;
    let answer = |auth: Option<String>| {
        let base = engine.base.clone();
        async move {
            get_answer(&base, "15550001000", "15550002000", "uuid-x", auth)
                .await
                .0
        }
    };
    assert_eq!(answer(None).await, 403);
    assert_eq!(
        answer(Some(webhook_authorization("wrong-secret", None, 0))).await,
        403
    );
    assert_eq!(
        answer(Some(webhook_authorization(SIGNATURE_SECRET, None, -600))).await,
        403,
        "stale"
    );
    assert_eq!(
        answer(Some(webhook_authorization(SIGNATURE_SECRET, None, 600))).await,
        403,
        "from the future"
    );
    assert_eq!(answer(signed()).await, 200);

    // POST answer: the token's payload_hash must be this body's.
    let body = json!({"to": "15550001000", "from": "15550002000", "uuid": "uuid-post",
                      "conversation_uuid": "CON-1"})
    .to_string();
    let post_answer = |auth: String, body: String| {
        let url = format!("{}/carrier/vonage/answer", engine.base);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("authorization", auth)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let tampered = body.replace("15550002000", "15559999999");
    let for_original = webhook_authorization(SIGNATURE_SECRET, Some(body.as_bytes()), 0);
    assert_eq!(post_answer(for_original.clone(), tampered).await.0, 403);
    let (status, ncco) = post_answer(for_original, body).await;
    assert_eq!(status, 200);
    assert_eq!(stream_endpoint(&ncco).1["uuid"], "uuid-post");

    // An event with a wrong payload_hash changes nothing.
    let call = outbound(&engine, MachineDetection::Off).await;
    engine.vonage.dial(call.clone());
    engine.fake.wait_for("POST", "/v1/calls", 1).await;
    let busy = json!({"uuid": "u", "status": "busy", "to": "15550002000", "from": "15550001000"});
    let other = json!({"uuid": "u", "status": "ringing"}).to_string();
    let response = reqwest::Client::new()
        .post(engine.event_url(&call.call_id))
        .header("content-type", "application/json")
        .header(
            "authorization",
            webhook_authorization(SIGNATURE_SECRET, Some(other.as_bytes()), 0),
        )
        .body(busy.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let unsigned = reqwest::Client::new()
        .post(engine.event_url(&call.call_id))
        .json(&busy)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 403);
    let record = engine
        .store
        .get_call_by_id(&call.call_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, "ringing");
    assert!(record.ended_at.is_none());
}

#[tokio::test]
async fn without_a_signature_secret_every_endpoint_refuses() {
    let engine = engine_with(Then::Listen, |config| config.vonage_signature_secret = None).await;
    let (status, ncco) = get_answer(
        &engine.base,
        "15550001000",
        "15550002000",
        "uuid-1",
        signed(),
    )
    .await;
    assert_eq!(status, 403, "{ncco}");
    assert_eq!(
        post_event(
            &format!("{}/carrier/vonage/event", engine.base),
            &json!({"status": "busy"})
        )
        .await,
        403
    );
    let uri = format!(
        "{}/carrier/vonage/stream",
        engine.base.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(&uri).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("stream accepted unconfigured: {:?}", other.map(|_| ())),
    }
    // And nothing can be dialled without the secret the stream token needs.
    let call = outbound(&engine, MachineDetection::Off).await;
    engine.vonage.dial(call.clone());
    let record = ended_call(&engine.store, &engine.scope, Some(&call.call_id)).await;
    assert_eq!(record.status, "failed");
    assert!(
        record
            .end_reason
            .as_deref()
            .is_some_and(|r| r.contains("BOLTCALL_VONAGE_SIGNATURE_SECRET")),
        "{:?}",
        record.end_reason
    );
    assert!(engine.fake.requests().is_empty());
}

#[tokio::test]
async fn unknown_and_paused_numbers_hear_why() {
    let engine = engine(Then::Listen).await;
    let (status, ncco) = get_answer(
        &engine.base,
        "19999999999",
        "15550002000",
        "uuid-1",
        signed(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ncco[0]["action"], "talk", "{ncco}");
    assert!(ncco[0]["text"].as_str().unwrap().contains("not in service"));
    engine
        .store
        .update_agent(
            &engine.scope,
            &engine.agent_id,
            AgentPatch {
                status: Some("paused".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, ncco) = get_answer(
        &engine.base,
        "15550001000",
        "15550002000",
        "uuid-2",
        signed(),
    )
    .await;
    assert_eq!(ncco[0]["action"], "talk", "{ncco}");
    let missed = ended_call(&engine.store, &engine.scope, None).await;
    assert_eq!(missed.status, "missed");
    assert_eq!(missed.carrier_call_id.as_deref(), Some("uuid-2"));
    assert_eq!(missed.caller, CALLER_PHONE);
}

#[tokio::test]
async fn a_stream_needs_the_token_of_its_own_call_and_uses_it_once() {
    const OTHER_PHONE: &str = "+15550003000";
    let engine = engine(Then::Listen).await;
    engine
        .store
        .create_agent(
            &Scope {
                workspace_id: "victim".into(),
                live: true,
            },
            NewAgent {
                name: "Victim".into(),
                voice_id: "voice_sarah".into(),
                greeting: Some("Victim line.".into()),
                prompt: None,
                knowledge_base_id: None,
                phone_number: Some(OTHER_PHONE.into()),
                transfer_targets: Vec::new(),
                llm: Default::default(),
                tools: Vec::new(),
            },
        )
        .await
        .unwrap();
    let (_, ncco) = get_answer(
        &engine.base,
        "15550001000",
        "15550002000",
        "uuid-t",
        signed(),
    )
    .await;
    let (uri, headers) = stream_endpoint(&ncco);
    let with = |changes: Value| {
        let mut headers = headers.clone();
        for (k, v) in changes.as_object().unwrap() {
            headers[k] = v.clone();
        }
        headers
    };
    let heard_agent = |headers: Value| {
        let uri = uri.clone();
        async move {
            let socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
            let socket = socket.read_until_closed().await;
            socket.frames > 0
        }
    };
    // No token, a forged one, the real one re-pointed at another number or call: refused.
    for forged in [
        with(json!({"boltcall_token": ""})),
        with(json!({"boltcall_token": "4102444800.AAAA"})),
        with(json!({"to": OTHER_PHONE})),
        with(json!({"uuid": "uuid-other"})),
        with(json!({"direction": "outbound", "call_id": "call_x"})),
    ] {
        assert!(!heard_agent(forged.clone()).await, "{forged}");
    }
    // The real one is answered…
    let mut socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
    socket.silence(1.0).await;
    assert!(socket.sound_frames > 0, "the signed call was not answered");
    // …once.
    assert!(!heard_agent(headers.clone()).await);
    socket.hang_up().await;
    let call = ended_call(&engine.store, &engine.scope, None).await;
    assert_eq!(call.to, AGENT_PHONE);
    let victim = engine
        .store
        .list_calls(
            &Scope {
                workspace_id: "victim".into(),
                live: true,
            },
            &Default::default(),
            boltcall::store::PageRequest { page: 1, limit: 10 },
        )
        .await
        .unwrap();
    assert!(victim.items.is_empty(), "the re-pointed call ran");
}

#[tokio::test]
async fn an_outbound_call_is_placed_streams_and_hangs_up_through_the_api() {
    let engine = engine(Then::HangUp).await;
    let call = outbound(&engine, MachineDetection::Off).await;
    engine.vonage.dial(call.clone());
    let create = engine.fake.wait_for("POST", "/v1/calls", 1).await;
    assert!(create.authorized, "RS256 token of the application");
    let body = &create.body;
    assert_eq!(
        body["to"],
        json!([{"type": "phone", "number": "15550002000"}])
    );
    assert_eq!(
        body["from"],
        json!({"type": "phone", "number": "15550001000"})
    );
    assert_eq!(body["event_url"], json!([engine.event_url(&call.call_id)]));
    assert!(body.get("advanced_machine_detection").is_none());
    let (uri, headers) = stream_endpoint(&body["ncco"]);
    assert_eq!(headers["call_id"], call.call_id.as_str());
    let uuid = "63f61863-4a51-4f6b-86e1-000000000001";
    // The uuid becomes the call's carrier id.
    for _ in 0..100 {
        let record = engine
            .store
            .get_call_by_id(&call.call_id)
            .await
            .unwrap()
            .unwrap();
        if record.carrier_call_id.as_deref() == Some(uuid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let event_url = engine.event_url(&call.call_id);
    for status in ["started", "ringing", "answered"] {
        let event = json!({"uuid": uuid, "status": status, "direction": "outbound",
            "to": "15550002000", "from": "15550001000", "conversation_uuid": "CON-1"});
        assert_eq!(post_event(&event_url, &event).await, 200);
    }

    let mut socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
    socket.silence(2.5).await;
    assert!(socket.sound_frames > 60, "greeting {}", socket.sound_frames);
    socket.play(&caller_question(16_000)).await;
    // The agent answers, then hangs up: through the REST API, then the socket closes.
    let socket = socket.read_until_closed().await;
    assert!(socket.closed);
    let hangup = engine.fake.wait_for("PUT", "/v1/calls/", 1).await;
    assert!(hangup.authorized);
    assert_eq!(hangup.path, format!("/v1/calls/{uuid}"));
    assert_eq!(hangup.body, json!({"action": "hangup"}));

    let record = ended_call(&engine.store, &engine.scope, Some(&call.call_id)).await;
    assert_eq!(record.status, "completed");
    assert_eq!(record.direction, "outbound");
    assert_eq!(record.carrier_call_id.as_deref(), Some(uuid));
    assert!(record.transcript.iter().any(|t| t.text == ANSWER));
    // Vonage's own `completed` afterwards finishes nothing twice.
    let completed = json!({"uuid": uuid, "status": "completed", "to": "15550002000"});
    assert_eq!(post_event(&event_url, &completed).await, 200);
    let again = engine
        .store
        .get_call_by_id(&call.call_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.status, "completed");
    assert_eq!(again.ended_at, record.ended_at);
}

#[tokio::test]
async fn busy_unanswered_and_refused_outbound_calls_end_once_with_their_status() {
    let engine = engine(Then::Listen).await;
    let busy = outbound(&engine, MachineDetection::Off).await;
    let unanswered = outbound(&engine, MachineDetection::Off).await;
    engine.vonage.dial(busy.clone());
    engine.fake.wait_for("POST", "/v1/calls", 1).await;
    engine.vonage.dial(unanswered.clone());
    engine.fake.wait_for("POST", "/v1/calls", 2).await;
    let event = |status: &str| json!({"uuid": "u", "status": status, "to": "15550002000"});
    assert_eq!(
        post_event(&engine.event_url(&busy.call_id), &event("busy")).await,
        200
    );
    assert_eq!(
        post_event(&engine.event_url(&unanswered.call_id), &event("timeout")).await,
        200
    );
    let record = ended_call(&engine.store, &engine.scope, Some(&busy.call_id)).await;
    assert_eq!(record.status, "busy");
    assert_eq!(record.end_reason.as_deref(), Some("vonage: busy"));
    let record = ended_call(&engine.store, &engine.scope, Some(&unanswered.call_id)).await;
    assert_eq!(record.status, "no-answer");
    // A later `completed` (Vonage sends one) leaves the record as it is.
    assert_eq!(
        post_event(&engine.event_url(&busy.call_id), &event("completed")).await,
        200
    );
    let again = engine
        .store
        .get_call_by_id(&busy.call_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.status, "busy");
    // A stream for a call that ended unconnected is refused.
    let create = engine.fake.wait_for("POST", "/v1/calls", 1).await;
    let (uri, headers) = stream_endpoint(&create.body["ncco"]);
    let socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
    assert_eq!(socket.read_until_closed().await.frames, 0);

    // Vonage refusing the call: failed, with its title and detail.
    engine.fake.reply_to_create(CreateReply::Refused {
        status: 400,
        body: json!({"type": "https://developer.vonage.com/api-errors#bad-request",
            "title": "Bad Request", "detail": "Invalid destination number", "instance": "x"}),
    });
    let refused = outbound(&engine, MachineDetection::Off).await;
    engine.vonage.dial(refused.clone());
    let record = ended_call(&engine.store, &engine.scope, Some(&refused.call_id)).await;
    assert_eq!(record.status, "failed");
    assert!(
        record
            .end_reason
            .as_deref()
            .is_some_and(|r| r.contains("Bad Request: Invalid destination number")),
        "{:?}",
        record.end_reason
    );
    assert_eq!(all_calls(&engine).await.len(), 3);
}

#[tokio::test]
async fn machine_detection_is_asked_of_vonage_and_its_verdict_accepted() {
    let engine = engine(Then::Listen).await;
    let call = outbound(
        &engine,
        MachineDetection::LeaveMessage("Call us back.".into()),
    )
    .await;
    engine.vonage.dial(call.clone());
    let create = engine.fake.wait_for("POST", "/v1/calls", 1).await;
    assert_eq!(
        create.body["advanced_machine_detection"],
        json!({"behavior": "continue", "mode": "detect_beep"})
    );
    let event_url = engine.event_url(&call.call_id);
    // The verdict (named by `call_uuid`) may beat the socket: it is kept for the stream.
    let verdict = json!({"call_uuid": "63f61863-4a51-4f6b-86e1-000000000001",
        "status": "machine", "to": "15550002000", "from": "15550001000"});
    assert_eq!(post_event(&event_url, &verdict).await, 200);
    let (uri, headers) = stream_endpoint(&create.body["ncco"]);
    let mut socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
    socket.silence(0.5).await;
    let beep = json!({"call_uuid": "63f61863-4a51-4f6b-86e1-000000000001",
        "status": "machine", "sub_state": "beep_start", "to": "15550002000"});
    assert_eq!(post_event(&event_url, &beep).await, 200);
    socket.silence(0.5).await;
    socket.hang_up().await;
    ended_call(&engine.store, &engine.scope, Some(&call.call_id)).await;
}

#[tokio::test]
async fn vonages_machine_verdict_is_recorded_as_answered_by() {
    let engine = engine(Then::Listen).await;
    let call = outbound(&engine, MachineDetection::HangUp).await;
    engine.vonage.dial(call.clone());
    let create = engine.fake.wait_for("POST", "/v1/calls", 1).await;
    let (uri, headers) = stream_endpoint(&create.body["ncco"]);
    let mut socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
    let verdict = json!({"call_uuid": "63f61863-4a51-4f6b-86e1-000000000001",
        "status": "machine", "sub_state": "beep_start", "to": "15550002000"});
    assert_eq!(
        post_event(&engine.event_url(&call.call_id), &verdict).await,
        200
    );
    socket.silence(1.0).await;
    let socket = socket.read_until_closed().await;
    assert!(socket.closed);
    let record = ended_call(&engine.store, &engine.scope, Some(&call.call_id)).await;
    assert_eq!(record.answered_by.as_deref(), Some("machine"));
}

#[tokio::test]
async fn transfer_moves_the_caller_with_an_ncco_through_the_api() {
    let engine = engine(Then::Transfer(DESK)).await;
    let (_, ncco) = get_answer(
        &engine.base,
        "15550001000",
        "15550002000",
        "uuid-transfer",
        signed(),
    )
    .await;
    let (uri, headers) = stream_endpoint(&ncco);
    let mut socket = VonageSocket::connect(&uri, &headers, 16_000).await.unwrap();
    socket.silence(2.0).await;
    socket.play(&caller_question(16_000)).await;
    let socket = socket.read_until_closed().await;
    assert!(socket.closed);
    let transfer = engine.fake.wait_for("PUT", "/v1/calls/", 1).await;
    assert!(transfer.authorized);
    assert_eq!(transfer.path, "/v1/calls/uuid-transfer");
    assert_eq!(
        transfer.body,
        json!({"action": "transfer", "destination": {"type": "ncco", "ncco": [{
            "action": "connect", "from": "15550001000",
            "endpoint": [{"type": "phone", "number": "14155550100"}]}]}})
    );
    let record = ended_call(&engine.store, &engine.scope, None).await;
    assert_eq!(record.transferred_to.as_deref(), Some(DESK));
    // Only the transfer: the call follows its new NCCO, nobody hung it up.
    assert_eq!(
        engine.fake.requests().len(),
        1,
        "{:?}",
        engine.fake.requests()
    );
}

#[tokio::test]
async fn dtmf_goes_out_through_the_api_with_the_applications_token() {
    let engine = engine(Then::Listen).await;
    let signer = ApiSigner::from_pem(APPLICATION_ID, &engine.key.pem).unwrap();
    let rest = VonageRest::new(&engine.fake.base, signer);
    rest.send_dtmf("uuid-d", "12#").await.unwrap();
    let sent = engine
        .fake
        .wait_for("PUT", "/v1/calls/uuid-d/dtmf", 1)
        .await;
    assert!(sent.authorized);
    assert_eq!(sent.body, json!({"digits": "12#"}));
    // A key Vonage does not know is refused, and the error says so.
    let stranger = ApiSigner::from_pem(APPLICATION_ID, &AppKey::generate().pem).unwrap();
    let refused = VonageRest::new(&engine.fake.base, stranger)
        .send_dtmf("uuid-d", "1")
        .await;
    match refused {
        Err(RestError::Api { status, message }) => {
            assert_eq!(status, 401);
            assert!(message.contains("Unauthorized"), "{message}");
        }
        other => panic!("accepted a stranger's token: {other:?}"),
    }
}
