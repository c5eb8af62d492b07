//! A whole Twilio-protocol call on the network providers a production engine runs with: Deepgram
//! live streaming hears the caller, an OpenAI-compatible LLM answers and calls tools, ElevenLabs
//! speaks — each a local server speaking the provider's real wire protocol, each built from the
//! configuration the way `serve` builds it.

#[allow(dead_code)]
mod call_fakes;
#[allow(dead_code)]
mod tts_fakes;
#[allow(dead_code)]
#[path = "common/twilio_caller.rs"]
mod twilio_caller;

use std::sync::Arc;
use std::time::Duration;

use boltcall::agent::admission::Admission;
use boltcall::agent::session::CallServices;
use boltcall::config::Config;
use boltcall::providers::{build_stt, build_tts, llm::build_brain};
use boltcall::store::{NewAgent, PageRequest, Scope, Store};
use call_fakes::chat::{FakeChat, Reply};
use call_fakes::deepgram_script::ScriptedDeepgram;
use chrono::{Datelike, Duration as Days, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tts_fakes::elevenlabs::{self, Behaviour, FakeElevenLabs};
use twilio_caller::{Caller, caller_question, finished_call};

const AGENT_PHONE: &str = "+15550001000";
const CALLER_PHONE: &str = "+15550002000";
const GREETING: &str = "Thanks for calling Bright Smile Dental.";
const ASKS: &str = "I'd like to book a cleaning on Friday at ten";
/// What the transcript keeps: numbers reach the brain and the record as digits.
const HEARD: &str = "I'd like to book a cleaning on Friday at 10";

struct Fakes {
    deepgram: ScriptedDeepgram,
    elevenlabs: FakeElevenLabs,
    chat: FakeChat,
}

struct Engine {
    base: String,
    store: Store,
    scope: Scope,
}

async fn engine(fakes: &Fakes) -> Engine {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data_dir = std::env::temp_dir().join(boltcall::store::new_id("provider-call-"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let config = Config {
        public_url: Some(format!("http://{addr}")),
        database_url: format!("sqlite://{}", data_dir.join("db.sqlite").display()),
        data_dir,
        twilio_allow_unsigned: true,
        stt: "deepgram".into(),
        deepgram_api_key: Some("dg-test-key".into()),
        deepgram_base_url: fakes.deepgram.base_url.clone(),
        tts: "elevenlabs".into(),
        elevenlabs_api_key: Some(elevenlabs::API_KEY.into()),
        elevenlabs_base_url: fakes.elevenlabs.base_url.clone(),
        llm_base_url: Some(fakes.chat.base_url.clone()),
        llm_api_key: Some("sk-test".into()),
        ..Config::default()
    };
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
                greeting: Some(GREETING.into()),
                prompt: Some("You are the receptionist at Bright Smile Dental.".into()),
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
        stt: build_stt(&config).await.unwrap(),
        tts: build_tts(&config).await.unwrap(),
        brain: build_brain(&config),
        config: Arc::new(config),
        store: store.clone(),
        drain: Default::default(),
    });
    let router = boltcall::telephony::twilio::router(services);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Engine {
        base: format!("http://{addr}"),
        store,
        scope,
    }
}

/// Next Friday (at least a day away) at `hour`:00 UTC, RFC 3339.
fn next_friday_at(hour: u32) -> String {
    let mut day = Utc::now().date_naive() + Days::days(1);
    while day.weekday() != chrono::Weekday::Fri {
        day += Days::days(1);
    }
    format!("{day}T{hour:02}:00:00Z")
}

/// The caller asks, waits for the answer, and hangs up; returns the agent frames with sound
/// heard after the question.
async fn ask_and_listen(engine: &Engine, listen_seconds: f64) -> usize {
    let mut caller = Caller::dial(&engine.base, CALLER_PHONE, AGENT_PHONE).await;
    caller.silence(2.5).await;
    caller.play(&caller_question()).await;
    let before_answer = caller.sound_frames();
    caller.silence(listen_seconds).await;
    let answer = caller.sound_frames() - before_answer;
    caller.hang_up().await;
    answer
}

fn spoken_texts(fake: &FakeElevenLabs) -> String {
    fake.connections()
        .iter()
        .flat_map(|c| c.messages.iter())
        .filter_map(|m| m["text"].as_str())
        .collect()
}

#[tokio::test]
async fn an_llm_call_books_through_a_tool_and_the_caller_hears_the_confirmation() {
    let start = next_friday_at(10);
    let end = next_friday_at(11);
    let confirmation = "You're booked for a cleaning on Friday at 10 AM. See you then!";
    let fakes = Fakes {
        deepgram: ScriptedDeepgram::start(&[ASKS]).await,
        elevenlabs: FakeElevenLabs::start(vec![Behaviour::Speak {
            batch: 1,
            gate: None,
        }])
        .await,
        chat: FakeChat::start(vec![
            Reply::Calls(vec![(
                "book_appointment",
                json!({"title": "Cleaning", "start_time": start, "end_time": end}),
            )]),
            Reply::Says(
                vec![
                    "You're booked ",
                    "for a cleaning on Friday at 10 AM. ",
                    "See you then!",
                ],
                Duration::from_millis(40),
            ),
            Reply::Json(json!({
                "summary": "Caller booked a cleaning for Friday at 10 AM.",
                "sentiment": "positive",
                "tags": ["appointment"],
                "outcome": {"result": "appointment-booked", "follow_up": null}
            })),
        ])
        .await,
    };
    let engine = engine(&fakes).await;
    let answer_frames = ask_and_listen(&engine, 5.0).await;

    let call = finished_call(&engine.store).await;
    let turns: Vec<(&str, &str)> = call
        .transcript
        .iter()
        .map(|t| (t.role.as_str(), t.text.as_str()))
        .collect();
    assert_eq!(
        turns,
        [
            ("agent", GREETING),
            ("caller", HEARD),
            ("agent", confirmation)
        ],
        "{:?}",
        call.provider_failures
    );
    assert!(
        call.provider_failures.is_empty(),
        "{:?}",
        call.provider_failures
    );
    // The confirmation reached the caller as audio: ElevenLabs' 10 ms per character.
    assert!(answer_frames >= 20, "{answer_frames} frames of answer");
    assert!(spoken_texts(&fakes.elevenlabs).contains("See you then!"));

    let appointments = engine
        .store
        .list_appointments(
            &engine.scope,
            &Default::default(),
            PageRequest { page: 1, limit: 10 },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(appointments.len(), 1);
    assert_eq!(appointments[0].title, "Cleaning");

    // Deepgram was asked for the call's audio as the protocol says, with the key.
    let (path, auth) = fakes.deepgram.connections.lock().unwrap()[0].clone();
    assert!(path.starts_with("/v1/listen?"), "{path}");
    for part in [
        "encoding=linear16",
        "sample_rate=16000",
        "interim_results=true",
    ] {
        assert!(path.contains(part), "{path}");
    }
    assert_eq!(auth, "Token dg-test-key");

    // The LLM saw the tools, then the tool's result before it confirmed.
    let requests = fakes.chat.requests.lock().unwrap().clone();
    // Two rounds of the reply, then the post-call analysis in JSON mode.
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[2]["response_format"]["type"], "json_object");
    assert_eq!(
        call.summary.as_deref(),
        Some("Caller booked a cleaning for Friday at 10 AM.")
    );
    assert_eq!(call.sentiment.as_deref(), Some("positive"));
    assert_eq!(call.tags.0, ["appointment"]);
    assert_eq!(
        serde_json::to_value(&call.outcome).unwrap(),
        json!({"result": "appointment-booked", "follow_up": null})
    );
    let tool_names: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tool_names.contains(&"book_appointment"), "{tool_names:?}");
    let tool_result = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .cloned()
        .unwrap_or(Value::Null);
    assert!(
        tool_result["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Cleaning"),
        "{tool_result}"
    );
}

#[tokio::test]
async fn a_failing_llm_hands_the_turn_to_the_offline_brain_and_the_call_record_says_so() {
    let fakes = Fakes {
        deepgram: ScriptedDeepgram::start(&["What are your opening hours?"]).await,
        elevenlabs: FakeElevenLabs::start(vec![Behaviour::Speak {
            batch: 1,
            gate: None,
        }])
        .await,
        chat: FakeChat::start((0..8).map(|_| Reply::Fail(500)).collect()).await,
    };
    let engine = engine(&fakes).await;
    let answer_frames = ask_and_listen(&engine, 5.0).await;

    let call = finished_call(&engine.store).await;
    let turns: Vec<(&str, &str)> = call
        .transcript
        .iter()
        .map(|t| (t.role.as_str(), t.text.as_str()))
        .collect();
    assert_eq!(turns.len(), 3, "{turns:?}");
    assert_eq!(turns[1], ("caller", "What are your opening hours?"));
    // The offline brain answered: it says it does not know rather than the apology.
    assert_eq!(turns[2].0, "agent");
    assert!(!turns[2].1.is_empty());
    assert!(answer_frames >= 20, "{answer_frames} frames of answer");
    let llm_failures: Vec<_> = call
        .provider_failures
        .iter()
        .filter(|f| f.provider.starts_with("llm:"))
        .collect();
    assert!(!llm_failures.is_empty(), "{:?}", call.provider_failures);
    assert!(
        llm_failures
            .iter()
            .any(|f| f.heard_instead.contains("offline")),
        "{llm_failures:?}"
    );
    assert!(
        llm_failures.iter().all(|f| f.error.contains("500")),
        "{llm_failures:?}"
    );
    // The word lists wrote the summary when the LLM could not.
    assert!(call.summary.is_some() && call.sentiment.is_some());
}
