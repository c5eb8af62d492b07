//! Answering-machine detection end to end, as a test-mode user sees it: `POST
//! /v1/calls/outbound` with `machine_detection` and a test key, the simulated callee (a person,
//! or the documented voicemail numbers), the call record, its recording and the signed
//! `call.completed` webhook.

mod common;
#[path = "webhooks/receiver.rs"]
mod receiver;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use boltcall::agent::session::CallServices;
use boltcall::events::dispatcher::{Dispatcher, DispatcherSettings};
use boltcall::providers::llm::build_brain;
use boltcall::providers::tts::espeak::EspeakTts;
use boltcall::telephony::engine_dialer::simulate;
use boltcall::telephony::simulated::{VOICEMAIL_NO_BEEP_NUMBER, VOICEMAIL_NUMBER};
use boltcall::telephony::{Dialer, OutboundCall};
use common::scripted_stt::ScriptedStt;
use common::{Options, TestServer, assert_error};
use receiver::{Mode, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

const GREETING: &str = "Hi, this is Ava from Bright Smile Dental.";
/// How many frames the simulated callee may lead the session's recording by (its audio is
/// queued while the session opens the call).
const HEAD_START_FRAMES: usize = 5;
const MESSAGE: &str =
    "Hi Sam, this is Ava from Bright Smile Dental. Please call us back about your cleaning.";

/// The engine's test-mode dialer path (`EngineDialer` sends every test-mode call to
/// `simulate`), over the test server's store and configuration.
#[derive(Default)]
struct SimulatingDialer {
    services: OnceLock<Arc<CallServices>>,
}

impl Dialer for SimulatingDialer {
    fn dial(&self, call: OutboundCall) {
        assert!(!call.live, "these tests place test-mode calls only");
        let services = self.services.get().expect("services set").clone();
        tokio::spawn(simulate(services, call));
    }
}

struct Setup {
    server: TestServer,
    key: String,
    agent_id: String,
    hooks: Receiver,
}

async fn setup() -> Setup {
    let dialer = Arc::new(SimulatingDialer::default());
    let server = TestServer::start_with(Options {
        dialer: Some(dialer.clone()),
        webhook_allow_loopback: true,
        ..Options::default()
    })
    .await;
    let config = server.state.config.clone();
    let services = Arc::new(CallServices {
        admission: server.state.admission.clone(),
        stt: Arc::new(ScriptedStt("yes")),
        tts: Arc::new(EspeakTts),
        brain: build_brain(&config),
        config: config.clone(),
        store: server.store.clone(),
        drain: Default::default(),
    });
    assert!(dialer.services.set(services).is_ok());
    Dispatcher::new(
        server.store.clone(),
        DispatcherSettings::from_config(&config),
    )
    .unwrap()
    .spawn();
    let key = server.key("pro", false, "acme").await;
    let hooks = Receiver::start(Mode::FailFirst(0)).await;
    let (status, hook) = server
        .post(
            "/v1/webhooks",
            &key,
            json!({"url": hooks.url, "events": ["call.completed", "call.missed"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, agent) = server
        .post(
            "/v1/agents",
            &key,
            json!({"name": "Ava", "voice_id": "voice_sarah", "greeting": GREETING}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    Setup {
        agent_id: agent["id"].as_str().unwrap().to_string(),
        server,
        key,
        hooks,
    }
}

impl Setup {
    async fn call(&self, to: &str, machine_detection: Value) -> String {
        let (status, call) = self
            .server
            .post(
                "/v1/calls/outbound",
                &self.key,
                json!({"agent_id": self.agent_id, "to": to, "machine_detection": machine_detection}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{call}");
        assert_eq!(call["status"], "ringing");
        call["id"].as_str().unwrap().to_string()
    }

    /// The call record once the call has ended (a simulated call lasts under a minute).
    async fn finished(&self, id: &str) -> Value {
        for _ in 0..1200 {
            let (_, call) = self.server.get(&format!("/v1/calls/{id}"), &self.key).await;
            if !matches!(call["status"].as_str(), Some("ringing" | "in-progress")) {
                return call;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("call {id} never ended");
    }

    /// The `call.completed` (or `call.missed`) webhook of call `id`.
    async fn webhook(&self, id: &str) -> Value {
        let carries = |h: &receiver::Hit| h.json()["data"]["id"] == id;
        self.hooks
            .wait_until("the call's webhook", |hits| hits.iter().any(carries))
            .await;
        self.hooks
            .hits()
            .iter()
            .find(|h| carries(h))
            .unwrap()
            .json()
    }

    /// The call's stereo recording as (caller, agent) 16 kHz channels.
    async fn recording(&self, id: &str) -> (Vec<i16>, Vec<i16>) {
        let response = self
            .server
            .http
            .get(self.server.url(&format!("/v1/calls/{id}/recording")))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.bytes().await.unwrap();
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.spec().sample_rate, 16_000);
        let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
        let caller = samples.iter().step_by(2).copied().collect();
        let agent = samples.iter().skip(1).step_by(2).copied().collect();
        (caller, agent)
    }
}

/// 20 ms frames of `pcm` that are loud (mean square above -40 dBFS).
fn loud_frames(pcm: &[i16]) -> Vec<usize> {
    pcm.chunks(320)
        .enumerate()
        .filter(|(_, c)| {
            let power: f64 = c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / c.len() as f64;
            power > (32768.0f64 * 0.01).powi(2)
        })
        .map(|(i, _)| i)
        .collect()
}

/// Frames of `pcm` in which a 1 kHz tone holds most of the energy (the simulated beep).
fn beep_frames(pcm: &[i16]) -> Vec<usize> {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * 1000.0 / 16_000.0).cos();
    pcm.chunks_exact(320)
        .enumerate()
        .filter(|(_, c)| {
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            let mut energy = 0.0;
            for &x in c.iter() {
                let x = f64::from(x);
                energy += x * x;
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let bin = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            energy > 0.0 && 2.0 * bin / (320.0 * energy) > 0.8
        })
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn a_voicemail_is_detected_and_left_the_message_after_its_beep() {
    let s = setup().await;
    let id = s
        .call(
            VOICEMAIL_NUMBER,
            json!({"on_machine": "leave_message", "message": MESSAGE}),
        )
        .await;
    let call = s.finished(&id).await;
    assert_eq!(call["status"], "completed", "{call}");
    assert_eq!(call["answered_by"], "machine");
    assert_eq!(call["end_reason"], "voicemail_left");
    let transcript = call["transcript"].as_array().unwrap();
    let agent: Vec<&Value> = transcript.iter().filter(|t| t["role"] == "agent").collect();
    assert_eq!(
        agent.len(),
        1,
        "only the message, no greeting: {transcript:?}"
    );
    assert_eq!(agent[0]["text"], MESSAGE);

    // On the recording, the message starts only once the beep has stopped.
    let (caller, spoken) = s.recording(&id).await;
    let beep = beep_frames(&caller);
    assert!(beep.len() >= 20, "the voicemail beeped: {beep:?}");
    let beep_end = *beep.last().unwrap();
    let message_start = *loud_frames(&spoken)
        .first()
        .expect("the message was spoken");
    // Each channel counts 20 ms frames from its own start, and the callee starts talking a
    // moment before the session starts its clock: allow the agent's side that head start.
    assert!(
        message_start + HEAD_START_FRAMES > beep_end,
        "message from frame {message_start}, beep until frame {beep_end}"
    );
    let transcript_start = agent[0]["start_ms"].as_u64().unwrap();
    assert!(
        transcript_start + HEAD_START_FRAMES as u64 * 20 > beep_end as u64 * 20,
        "the transcript has the message from {transcript_start} ms"
    );

    let event = s.webhook(&id).await;
    assert_eq!(event["event"], "call.completed", "{event}");
    assert_eq!(event["data"]["answered_by"], "machine");
    assert_eq!(event["data"]["end_reason"], "voicemail_left");
}

#[tokio::test]
async fn a_greeting_without_a_beep_gets_the_message_after_its_silence() {
    let s = setup().await;
    let id = s
        .call(
            VOICEMAIL_NO_BEEP_NUMBER,
            json!({"on_machine": "leave_message", "message": MESSAGE}),
        )
        .await;
    let call = s.finished(&id).await;
    assert_eq!(call["answered_by"], "machine", "{call}");
    assert_eq!(call["end_reason"], "voicemail_left");
    let (caller, spoken) = s.recording(&id).await;
    assert!(beep_frames(&caller).is_empty());
    let greeting_end = *loud_frames(&caller).last().unwrap();
    let message_start = *loud_frames(&spoken)
        .first()
        .expect("the message was spoken");
    assert!(
        message_start > greeting_end + 50,
        "a second of silence first: message at frame {message_start}, greeting until {greeting_end}"
    );
}

#[tokio::test]
async fn hang_up_leaves_a_machine_without_a_word() {
    let s = setup().await;
    let id = s
        .call(VOICEMAIL_NUMBER, json!({"on_machine": "hang_up"}))
        .await;
    let call = s.finished(&id).await;
    assert_eq!(call["status"], "completed", "{call}");
    assert_eq!(call["answered_by"], "machine");
    assert_eq!(call["end_reason"], "machine_detected");
    assert_eq!(call["transcript"], json!([]));
    let (_, spoken) = s.recording(&id).await;
    assert_eq!(
        loud_frames(&spoken),
        Vec::<usize>::new(),
        "the agent said nothing"
    );
    // Hung up as soon as the greeting was recognised, well before its beep.
    let (caller, _) = s.recording(&id).await;
    assert!(beep_frames(&caller).is_empty());
    let event = s.webhook(&id).await;
    assert_eq!(event["data"]["answered_by"], "machine");
}

#[tokio::test]
async fn a_person_is_greeted_once_they_have_said_hello() {
    let s = setup().await;
    let id = s
        .call(
            "+15550101234",
            json!({"on_machine": "leave_message", "message": MESSAGE}),
        )
        .await;
    let call = s.finished(&id).await;
    assert_eq!(call["answered_by"], "human", "{call}");
    let transcript = call["transcript"].as_array().unwrap();
    assert_eq!(transcript[0]["role"], "agent", "{transcript:?}");
    assert_eq!(transcript[0]["text"], GREETING);
    assert!(!transcript.iter().any(|t| t["text"] == MESSAGE));
    // The greeting comes after the callee's "Hello, who is calling?", not over it.
    let (caller, spoken) = s.recording(&id).await;
    let hello = loud_frames(&caller);
    let hello_end =
        *hello.first().unwrap() + hello.windows(2).take_while(|w| w[1] - w[0] < 20).count();
    let greeting_start = *loud_frames(&spoken).first().expect("the agent greeted");
    assert!(
        greeting_start > hello_end,
        "greeting from frame {greeting_start}, hello until {hello_end}"
    );
    let event = s.webhook(&id).await;
    assert_eq!(event["data"]["answered_by"], "human");
}

#[tokio::test]
async fn without_detection_the_record_says_nothing_of_who_answered() {
    let s = setup().await;
    let (status, call) = s
        .server
        .post(
            "/v1/calls/outbound",
            &s.key,
            json!({"agent_id": s.agent_id, "to": VOICEMAIL_NUMBER}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = call["id"].as_str().unwrap();
    let call = s.finished(id).await;
    assert_eq!(call["answered_by"], Value::Null, "{call}");
    // The agent spoke to the machine at once, as it always did.
    assert_eq!(call["transcript"][0]["role"], "agent", "{call}");
}

#[tokio::test]
async fn bad_machine_detection_options_are_refused_in_the_error_envelope() {
    let s = setup().await;
    let long = "a".repeat(1001);
    for (body, code, names) in [
        (
            json!({"on_machine": "leave_message"}),
            "validation_error",
            "machine_detection.message",
        ),
        (
            json!({"on_machine": "leave_message", "message": "  "}),
            "validation_error",
            "machine_detection.message",
        ),
        (
            json!({"on_machine": "leave_message", "message": long}),
            "validation_error",
            "machine_detection.message",
        ),
        (
            json!({"on_machine": "hang_up", "message": "hi"}),
            "validation_error",
            "machine_detection.message",
        ),
        (
            json!({"on_machine": "sing"}),
            "validation_error",
            "machine_detection.on_machine",
        ),
        (json!({}), "bad_request", "machine_detection.on_machine"),
        (
            json!({"on_machine": "hang_up", "beep": true}),
            "validation_error",
            "machine_detection",
        ),
        (json!("hang_up"), "validation_error", "machine_detection"),
    ] {
        let (status, err) = s
            .server
            .post(
                "/v1/calls/outbound",
                &s.key,
                json!({"agent_id": s.agent_id, "to": "+15550101234", "machine_detection": body}),
            )
            .await;
        assert_error(status, &err, code);
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{body}: {message}");
    }
    // Nothing was placed.
    let (_, calls) = s.server.get("/v1/calls", &s.key).await;
    assert_eq!(calls["meta"]["total"], 0);
}
