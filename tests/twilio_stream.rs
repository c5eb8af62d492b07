//! Twilio Media Streams end to end: a real WebSocket client speaking Twilio's protocol against
//! the engine's router on a real socket. The session, VAD, turn machine, pacer, recorder and
//! store are the production ones; speech and brain are small scripted stand-ins so the
//! conversation is known in advance (the fixture replays exercise the real models).

#[path = "common/scripted_stt.rs"]
mod scripted_stt;
#[path = "common/twilio_caller.rs"]
mod twilio_caller;

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
use boltcall::store::{NewAgent, Scope, Store};
use boltcall::telephony::twilio::signature;
use scripted_stt::ScriptedStt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use twilio_caller::{Caller, caller_question, connect, finished_call, stream_ws_url};

const AGENT_PHONE: &str = "+15550001000";
const CALLER_PHONE: &str = "+15550002000";
const HEARD: &str = "what are your opening hours";
const ANSWER: &str = "We are open nine to five.";

/// Answers every caller turn the same way.
struct FixedBrain;

impl Brain for FixedBrain {
    fn name(&self) -> &'static str {
        "fixed"
    }
    fn start(&self, _context: BrainContext, _tools: Arc<dyn ToolRunner>) -> Box<dyn BrainSession> {
        Box::new(FixedBrain)
    }
}

impl BrainSession for FixedBrain {
    fn reply(&mut self, history: &[Message]) -> mpsc::Receiver<BrainEvent> {
        let (tx, rx) = mpsc::channel(4);
        let answer = history.last().is_some_and(|m| m.role == Role::Caller);
        tokio::spawn(async move {
            if answer {
                let _ = tx.send(BrainEvent::Text(ANSWER.into())).await;
            }
            let _ = tx.send(BrainEvent::Done).await;
        });
        rx
    }
}

struct Engine {
    base: String,
    store: Store,
    data_dir: PathBuf,
}

async fn engine(greeting: &str, token: Option<&str>) -> Engine {
    engine_with(greeting, |config| {
        config.twilio_auth_token = token.map(str::to_string);
        // Without a token the endpoints refuse everyone unless development mode allows it.
        config.twilio_allow_unsigned = token.is_none();
    })
    .await
}

async fn engine_with(greeting: &str, configure: impl FnOnce(&mut Config)) -> Engine {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data_dir = std::env::temp_dir().join(boltcall::store::new_id("twilio-test-"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut config = Config {
        public_url: Some(format!("http://{addr}")),
        database_url: format!("sqlite://{}", data_dir.join("db.sqlite").display()),
        data_dir: data_dir.clone(),
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
    store
        .create_agent(
            &scope,
            NewAgent {
                name: "Ava".into(),
                voice_id: "voice_sarah".into(),
                greeting: Some(greeting.into()),
                prompt: None,
                knowledge_base_id: None,
                phone_number: Some(AGENT_PHONE.into()),
                transfer_targets: Vec::new(),
                llm: Default::default(),
                tools: Vec::new(),
            },
        )
        .await
        .unwrap();
    let services = Arc::new(CallServices {
        admission: Admission::from_config(&config),
        config: Arc::new(config),
        store: store.clone(),
        stt: Arc::new(ScriptedStt(HEARD)),
        tts: Arc::new(ToneTts),
        brain: Arc::new(FixedBrain),
        drain: Default::default(),
    });
    let router = boltcall::telephony::twilio::router(services);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Engine {
        base: format!("http://{addr}"),
        store,
        data_dir,
    }
}

fn voice_form(to: &str) -> Vec<(String, String)> {
    [
        ("CallSid", "CA0001"),
        ("From", CALLER_PHONE),
        ("To", to),
        ("AccountSid", "AC0001"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn post_voice(engine: &Engine, to: &str, signature: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/carrier/twilio/voice", engine.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(voice_form(to)).unwrap());
    if let Some(sig) = signature {
        request = request.header("X-Twilio-Signature", sig);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn unknown_number_is_told_so_and_hung_up() {
    let engine = engine("Hello.", None).await;
    let (status, body) = post_voice(&engine, "+19999999999", None).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<Say>") && body.contains("not in service"),
        "{body}"
    );
    assert!(body.contains("<Hangup/>"), "{body}");
    assert!(!body.contains("<Stream"), "{body}");
}

#[tokio::test]
async fn known_number_connects_a_stream_with_the_call_parameters() {
    let engine = engine("Hello.", None).await;
    let (status, body) = post_voice(&engine, AGENT_PHONE, None).await;
    assert_eq!(status, 200);
    let ws = engine.base.replace("http://", "ws://");
    assert!(
        body.contains(&format!(r#"<Stream url="{ws}/carrier/twilio/stream">"#)),
        "{body}"
    );
    assert!(
        body.contains(r#"<Parameter name="call_sid" value="CA0001"/>"#),
        "{body}"
    );
    assert!(body.contains(&format!(
        r#"<Parameter name="from" value="{CALLER_PHONE}"/>"#
    )));
    assert!(
        body.contains(r#"<Parameter name="agent_id" value="agent_"#),
        "{body}"
    );
}

#[tokio::test]
async fn signature_is_required_when_an_auth_token_is_set() {
    let engine = engine("Hello.", Some("s3cret")).await;
    let url = format!("{}/carrier/twilio/voice", engine.base);
    assert_eq!(post_voice(&engine, AGENT_PHONE, None).await.0, 403);
    let forged = signature::compute("wrong", &url, &voice_form(AGENT_PHONE));
    assert_eq!(post_voice(&engine, AGENT_PHONE, Some(&forged)).await.0, 403);
    let good = signature::compute("s3cret", &url, &voice_form(AGENT_PHONE));
    let (status, body) = post_voice(&engine, AGENT_PHONE, Some(&good)).await;
    assert_eq!(status, 200);
    assert!(body.contains("<Stream"), "{body}");
    // The stream handshake is signed too.
    let ws_url = format!(
        "{}/carrier/twilio/stream",
        engine.base.replace("http://", "ws://")
    );
    assert!(tokio_tungstenite::connect_async(&ws_url).await.is_err());
}

#[tokio::test]
async fn a_call_is_greeted_answered_paced_and_recorded() {
    let engine = engine("Hello, thanks for calling.", None).await;
    let mut caller = Caller::dial(&engine.base, CALLER_PHONE, AGENT_PHONE).await;
    caller.silence(2.5).await;
    let greeting_sound = caller.sound_frames();
    // "Hello, thanks for calling." is 26 characters of tone: 1.56 s, 78 frames.
    assert!(
        (70..=90).contains(&greeting_sound),
        "greeting frames {greeting_sound}"
    );
    caller.play(&caller_question()).await;
    caller.silence(3.0).await;
    let elapsed_ms = caller.started.elapsed().as_millis() as usize;
    // One message per 20 ms tick while the agent speaks, never ahead of real time, and none
    // while it is quiet (Twilio plays silence when its buffer runs dry): each stretch of
    // speech ends with a mark instead.
    let sent = caller.media.len();
    assert!(
        sent <= elapsed_ms / 20 + 2,
        "{sent} messages in {elapsed_ms} ms"
    );
    let quiet = sent - caller.sound_frames();
    assert!(quiet <= 10, "{quiet} of {sent} messages without sound");
    assert_eq!(
        caller.marks, 2,
        "one mark after the greeting, one after the answer"
    );
    let answer_sound = caller.sound_frames() - greeting_sound;
    // "We are open nine to five." is 25 characters: 75 frames of tone.
    assert!(
        (65..=85).contains(&answer_sound),
        "answer frames {answer_sound}"
    );
    assert_eq!(caller.clears, 0);
    let caller = caller.hang_up().await;
    assert!(caller.closed);

    let call = finished_call(&engine.store).await;
    assert_eq!(call.status, "completed");
    assert_eq!(call.caller, CALLER_PHONE);
    assert_eq!(call.to, AGENT_PHONE);
    assert_eq!(call.end_reason.as_deref(), Some("caller_hangup"));
    let turns: Vec<(&str, &str)> = call
        .transcript
        .iter()
        .map(|t| (t.role.as_str(), t.text.as_str()))
        .collect();
    assert_eq!(
        turns,
        [
            ("agent", "Hello, thanks for calling."),
            ("caller", HEARD),
            ("agent", ANSWER)
        ]
    );
    assert!(
        call.transcript[1].start_ms >= 2_500,
        "{:?}",
        call.transcript[1]
    );
    assert!(call.summary.is_some() && call.sentiment.is_some());
    assert!(call.duration_seconds.unwrap_or(0) >= 7);
    assert!(
        call.latency["turns"][0]["voice_to_voice_ms"]
            .as_u64()
            .is_some(),
        "{:?}",
        call.latency
    );
    let recording = engine
        .data_dir
        .join("recordings")
        .join(format!("{}.wav", call.id));
    assert_eq!(
        call.recording_url,
        Some(format!("{}/v1/calls/{}/recording", engine.base, call.id))
    );
    let wav = hound::WavReader::open(&recording).unwrap();
    assert_eq!(wav.spec().channels, 2);
    let seconds = wav.duration() as f64 / f64::from(wav.spec().sample_rate);
    assert!(seconds >= 7.0, "recording of {seconds} s");
    // The call rested (no ticks) between the greeting and the answer: the answer is still
    // recorded where it was played, after the question, not where the agent's side left off.
    let samples: Vec<i16> = wav.into_samples().map(Result::unwrap).collect();
    let sounding = |side: usize| -> Vec<bool> {
        samples
            .chunks(2 * 320)
            .map(|frame| frame.iter().skip(side).step_by(2).any(|s| s.abs() > 500))
            .collect()
    };
    let (caller_side, agent_side) = (sounding(0), sounding(1));
    let question_end = caller_side.iter().rposition(|&s| s).expect("the question");
    let answer_start = (125..agent_side.len())
        .find(|&f| agent_side[f])
        .expect("the answer");
    assert!(
        answer_start > question_end && answer_start < question_end + 100,
        "answer at frame {answer_start}, question ended at frame {question_end}"
    );
}

#[tokio::test]
async fn caller_speaking_over_the_greeting_clears_it_and_truncates_it() {
    let greeting = "Hello and welcome to the clinic, where every smile matters to us. \
                    Our opening hours are eight to six on weekdays.";
    let engine = engine(greeting, None).await;
    let mut caller = Caller::dial(&engine.base, CALLER_PHONE, AGENT_PHONE).await;
    caller.silence(1.0).await;
    caller.play(&caller_question()).await;
    caller.silence(3.0).await;
    assert!(caller.clears >= 1, "no clear after barge-in");
    let caller = caller.hang_up().await;
    assert!(caller.closed);
    let call = finished_call(&engine.store).await;
    let first = &call.transcript[0];
    assert_eq!(first.role, "agent");
    assert!(
        first.text.len() < greeting.len()
            && greeting.starts_with(first.text.trim_end_matches(['.', ','])),
        "greeting kept as {:?}",
        first.text
    );
    assert!(
        call.transcript
            .iter()
            .any(|t| t.role == "agent" && t.text == ANSWER)
    );
}

#[tokio::test]
async fn malformed_messages_are_skipped_and_the_call_goes_on() {
    let engine = engine("Hi.", None).await;
    let mut caller = Caller::dial(&engine.base, CALLER_PHONE, AGENT_PHONE).await;
    for junk in [
        WsMessage::Text("not json".into()),
        WsMessage::Text(r#"{"event":"media","media":{"payload":"%%%"}}"#.into()),
        WsMessage::Text(r#"{"event":"teleport"}"#.into()),
        WsMessage::Text(r#"{"event":"dtmf","dtmf":{"digit":"12"}}"#.into()),
        WsMessage::Binary(vec![1, 2, 3].into()),
    ] {
        caller.send_raw(junk).await;
    }
    caller.silence(1.0).await;
    caller.play(&caller_question()).await;
    caller.silence(3.0).await;
    assert!(!caller.closed);
    assert!(caller.sound_frames() > 60, "the call went quiet");
    caller.hang_up().await;
    let call = finished_call(&engine.store).await;
    assert_eq!(call.status, "completed");
    assert!(call.transcript.iter().any(|t| t.text == ANSWER));
}

#[tokio::test]
async fn a_socket_dropped_without_stop_ends_the_call_as_hung_up() {
    let engine = engine("Hello, thanks for calling.", None).await;
    let mut caller = Caller::dial(&engine.base, CALLER_PHONE, AGENT_PHONE).await;
    caller.silence(2.0).await;
    drop(caller);
    let call = finished_call(&engine.store).await;
    assert_eq!(call.status, "completed");
    assert_eq!(call.end_reason.as_deref(), Some("caller_hangup"));
}

/// The value of the TwiML `<Parameter name="…">`.
fn twiml_parameter(xml: &str, name: &str) -> String {
    let marker = format!(r#"<Parameter name="{name}" value=""#);
    let start = xml
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {xml}"))
        + marker.len();
    let len = xml[start..].find('"').unwrap();
    xml[start..start + len].to_string()
}

/// Reads until the engine closes the socket; `true` when any agent audio arrived first.
async fn heard_agent_before_close(caller: Caller) -> bool {
    let caller = caller.read_until_closed().await;
    !caller.media.is_empty()
}

#[tokio::test]
async fn without_a_token_or_the_development_flag_the_endpoints_refuse_everyone() {
    let engine = engine_with("Hello.", |config| {
        config.twilio_auth_token = None;
        config.twilio_allow_unsigned = false;
    })
    .await;
    let (status, body) = post_voice(&engine, AGENT_PHONE, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("<Stream"), "{body}");
    match connect(&engine.base, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("stream accepted unconfigured: {:?}", other.map(|_| ())),
    }
    assert!(
        engine
            .store
            .list_calls(
                &Scope {
                    workspace_id: "default".into(),
                    live: true
                },
                &Default::default(),
                boltcall::store::PageRequest { page: 1, limit: 10 },
            )
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_stream_needs_the_token_of_its_own_call_and_uses_it_once() {
    const TOKEN: &str = "s3cret";
    const OTHER_PHONE: &str = "+15550003000";
    let engine = engine("Hello, thanks for calling.", Some(TOKEN)).await;
    // Another tenant's agent: the number an attacker would re-point the call at.
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
    let voice_url = format!("{}/carrier/twilio/voice", engine.base);
    let good = signature::compute(TOKEN, &voice_url, &voice_form(AGENT_PHONE));
    let (status, xml) = post_voice(&engine, AGENT_PHONE, Some(&good)).await;
    assert_eq!(status, 200, "{xml}");
    let token = twiml_parameter(&xml, "boltcall_token");
    let handshake = signature::compute(TOKEN, &stream_ws_url(&engine.base), &[]);
    let params = |to: &str, token: &str| json!({"call_sid": "CA0001", "from": CALLER_PHONE, "to": to, "boltcall_token": token});
    let start = |params: Value| {
        let engine = &engine;
        let handshake = handshake.clone();
        async move {
            let ws = connect(&engine.base, Some(&handshake)).await.unwrap();
            Caller::start(ws, "CA0001", params).await
        }
    };

    // No token, a forged one, and the real one re-pointed at another number: refused.
    for params in [
        json!({"call_sid": "CA0001", "from": CALLER_PHONE, "to": AGENT_PHONE}),
        params(AGENT_PHONE, "4102444800.AAAA"),
        params(OTHER_PHONE, &token),
    ] {
        assert!(
            !heard_agent_before_close(start(params.clone()).await).await,
            "{params}"
        );
    }
    // The real start is answered.
    let mut caller = start(params(AGENT_PHONE, &token)).await;
    caller.silence(1.0).await;
    assert!(
        caller.sound_frames() > 0,
        "the signed call was not answered"
    );
    // Replaying the same handshake while (or after) the call runs is refused.
    assert!(!heard_agent_before_close(start(params(AGENT_PHONE, &token)).await).await);
    caller.hang_up().await;
    let call = finished_call(&engine.store).await;
    assert_eq!(call.to, AGENT_PHONE);
    let victim_calls = engine
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
    assert!(victim_calls.items.is_empty(), "the re-pointed call ran");
}

#[tokio::test]
async fn an_oversized_message_closes_the_stream() {
    let engine = engine("Hello.", None).await;
    let mut caller = Caller::dial(&engine.base, CALLER_PHONE, AGENT_PHONE).await;
    caller
        .send_raw(WsMessage::Text("x".repeat(100 * 1024).into()))
        .await;
    let caller = caller.read_until_closed().await;
    assert!(caller.closed);
    let call = finished_call(&engine.store).await;
    assert_eq!(call.end_reason.as_deref(), Some("caller_hangup"));
}

#[tokio::test]
async fn streams_beyond_the_cap_are_refused_with_503() {
    let engine = engine_with("Hello.", |config| {
        config.twilio_allow_unsigned = true;
        config.twilio_max_streams = 1;
    })
    .await;
    let first = connect(&engine.base, None).await.unwrap();
    match connect(&engine.base, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("second stream accepted: {:?}", other.map(|_| ())),
    }
    drop(first);
    // The slot frees once the engine sees the close.
    let mut reopened = false;
    for _ in 0..100 {
        if connect(&engine.base, None).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened, "the closed stream's slot was never freed");
}

#[tokio::test]
async fn a_workspace_at_its_call_cap_gets_a_spoken_refusal() {
    let engine = engine_with("Hello, thanks for calling.", |config| {
        config.twilio_allow_unsigned = true;
        config.workspace_max_concurrent_calls = 1;
    })
    .await;
    let mut caller = Caller::dial(&engine.base, CALLER_PHONE, AGENT_PHONE).await;
    caller.silence(1.0).await;
    assert!(caller.sound_frames() > 0);
    let (status, xml) = post_voice(&engine, AGENT_PHONE, None).await;
    assert_eq!(status, 200);
    assert!(xml.contains("<Say>") && xml.contains("<Hangup/>"), "{xml}");
    assert!(!xml.contains("<Stream"), "{xml}");
    // A second stream that skipped the webhook is closed too.
    assert!(
        !heard_agent_before_close(Caller::dial(&engine.base, CALLER_PHONE, AGENT_PHONE).await)
            .await
    );
    caller.hang_up().await;
    finished_call(&engine.store).await;
    // The slot frees when the session task returns, just after it writes the record.
    let mut freed = false;
    for _ in 0..100 {
        if post_voice(&engine, AGENT_PHONE, None)
            .await
            .1
            .contains("<Stream")
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the ended call's slot was never freed");
}
