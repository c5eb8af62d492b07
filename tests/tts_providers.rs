//! The network text-to-speech engines against local servers that speak OpenAI's and
//! ElevenLabs' wire protocols: streaming, resampling, shared sockets, and every way a request
//! fails.

mod tts_fakes;

use std::sync::Arc;
use std::time::Duration;

use boltcall::config::Config;
use boltcall::providers::build_tts;
use boltcall::providers::tts::elevenlabs::ElevenLabsTts;
use boltcall::providers::tts::openai::OpenAiTts;
use boltcall::providers::tts::{TextToSpeech, Voice, find_voice};
use tokio::sync::Notify;
use tts_fakes::elevenlabs::{API_KEY, Behaviour, FakeElevenLabs, speech};
use tts_fakes::openai::{FakeOpenAi, Reply, TONE_HZ, TONE_SAMPLES};
use tts_fakes::{first_chunk, hear, zero_crossings};

fn sarah() -> &'static Voice {
    find_voice("voice_sarah").unwrap()
}

fn openai(fake: &FakeOpenAi) -> OpenAiTts {
    OpenAiTts::new(&fake.base_url, "sk-test".into(), "gpt-4o-mini-tts".into()).unwrap()
}

fn elevenlabs(fake: &FakeElevenLabs) -> ElevenLabsTts {
    ElevenLabsTts::new(&fake.base_url, API_KEY.into(), "eleven_flash_v2_5".into()).unwrap()
}

const OPENAI_401: &str = r#"{"error":{"message":"Incorrect API key provided: sk-test.","type":"invalid_request_error","code":"invalid_api_key"}}"#;
const OPENAI_429: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#;
const OPENAI_500: &str = r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#;

#[tokio::test]
async fn openai_streams_its_24khz_pcm_as_16khz_while_the_body_arrives() {
    let gate = Arc::new(Notify::new());
    let fake = FakeOpenAi::start(vec![Reply::Tone {
        gate: Some(gate.clone()),
    }])
    .await;
    let tts = openai(&fake);
    let mut rx = tts.synthesize("Hello there.".into(), sarah());

    // The server holds back most of the body until the client has played something.
    let first = first_chunk(&mut rx).await;
    gate.notify_one();
    let rest = hear(rx).await;
    assert!(rest.error.is_none(), "{:?}", rest.error);
    let audio = [first, rest.audio()].concat();

    let expected = TONE_SAMPLES * 2 / 3;
    assert!(
        audio.len().abs_diff(expected) <= 16,
        "{} samples, expected about {expected}",
        audio.len()
    );
    // 440 Hz over one second: about 880 zero crossings.
    let crossings = zero_crossings(&audio);
    assert!(
        (crossings as f32 - 2.0 * TONE_HZ).abs() <= 10.0,
        "{crossings} zero crossings"
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].authorization, "Bearer sk-test");
    assert_eq!(
        requests[0].json,
        serde_json::json!({
            "model": "gpt-4o-mini-tts",
            "input": "Hello there.",
            "voice": "nova",
            "response_format": "pcm",
        })
    );
}

#[tokio::test]
async fn openai_401_names_provider_status_and_message_without_retrying() {
    let fake = FakeOpenAi::start(vec![Reply::Error(401, OPENAI_401)]).await;
    let heard = hear(openai(&fake).synthesize("Hi.".into(), sarah())).await;
    assert!(heard.chunks.is_empty());
    let error = heard.error.expect("an error").0;
    assert!(error.contains("openai"), "{error}");
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("Incorrect API key provided"), "{error}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn openai_429_is_retried_once_and_then_speaks() {
    let fake = FakeOpenAi::start(vec![
        Reply::Error(429, OPENAI_429),
        Reply::Tone { gate: None },
    ])
    .await;
    let heard = hear(openai(&fake).synthesize("Hi.".into(), sarah())).await;
    assert!(heard.error.is_none(), "{:?}", heard.error);
    assert_eq!(heard.audio().len(), TONE_SAMPLES * 2 / 3);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn openai_500_twice_fails_after_one_retry() {
    let fake = FakeOpenAi::start(vec![Reply::Error(500, OPENAI_500)]).await;
    let heard = hear(openai(&fake).synthesize("Hi.".into(), sarah())).await;
    let error = heard.error.expect("an error").0;
    assert!(error.contains("500"), "{error}");
    assert!(error.contains("The server had an error"), "{error}");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn openai_connection_refused_is_retried_then_reported() {
    // A port nothing listens on: bind, note it, close.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let tts = OpenAiTts::new(
        &format!("http://127.0.0.1:{port}/v1"),
        "sk".into(),
        "m".into(),
    )
    .unwrap();
    let heard = hear(tts.synthesize("Hi.".into(), sarah())).await;
    let error = heard.error.expect("an error").0;
    assert!(error.contains("openai speech: cannot reach"), "{error}");
}

#[tokio::test]
async fn openai_broken_body_delivers_the_audio_so_far_then_an_error() {
    let fake = FakeOpenAi::start(vec![Reply::CutAfter(12_000)]).await;
    let heard = hear(openai(&fake).synthesize("Hi.".into(), sarah())).await;
    assert!(!heard.chunks.is_empty(), "no audio before the break");
    let error = heard.error.expect("an error").0;
    assert!(error.contains("openai"), "{error}");
    assert!(error.contains("broke off"), "{error}");
    // Audio already went out, so the sentence is not started again.
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn openai_without_a_first_byte_times_out() {
    let fake = FakeOpenAi::start(vec![Reply::Silent]).await;
    let tts = openai(&fake).with_timeouts(Duration::from_millis(300), Duration::from_secs(5));
    let heard = hear(tts.synthesize("Hi.".into(), sarah())).await;
    let error = heard.error.expect("an error").0;
    assert!(error.contains("no audio within 300 ms"), "{error}");
}

#[tokio::test]
async fn openai_dropping_the_receiver_closes_the_request() {
    let fake = FakeOpenAi::start(vec![Reply::Endless]).await;
    let tts = openai(&fake);
    let mut rx = tts.synthesize("Hi.".into(), sarah());
    first_chunk(&mut rx).await;
    drop(rx);
    tokio::time::timeout(tts_fakes::HANG, fake.client_gone.notified())
        .await
        .expect("the server kept streaming to a cancelled synthesis");
}

#[tokio::test]
async fn elevenlabs_speaks_a_context_with_the_real_message_sequence() {
    let gate = Arc::new(Notify::new());
    let fake = FakeElevenLabs::start(vec![Behaviour::Speak {
        batch: 1,
        gate: Some(gate.clone()),
    }])
    .await;
    let tts = elevenlabs(&fake);
    let mut rx = tts.synthesize(" Hello there. ".into(), sarah());
    // The server waits after its first audio message until the client has it.
    let first = first_chunk(&mut rx).await;
    gate.notify_one();
    let rest = hear(rx).await;
    assert!(rest.error.is_none(), "{:?}", rest.error);
    assert_eq!([first, rest.audio()].concat(), speech("Hello there."));

    let connections = fake.connections();
    assert_eq!(connections.len(), 1);
    let c = &connections[0];
    assert_eq!(
        c.uri,
        "/v1/text-to-speech/EXAVITQu4vr4xnSDxMaL/multi-stream-input?model_id=eleven_flash_v2_5&output_format=pcm_16000&inactivity_timeout=180&auto_mode=true"
    );
    assert_eq!(c.api_key, API_KEY);
    let [start, text, close] = &c.messages[..] else {
        panic!("{:?}", c.messages)
    };
    let context = start["context_id"].as_str().unwrap();
    assert_eq!(start["text"], " ");
    assert!(start["voice_settings"].is_object());
    assert_eq!(
        *text,
        serde_json::json!({"text": "Hello there. ", "context_id": context, "flush": true})
    );
    assert_eq!(
        *close,
        serde_json::json!({"context_id": context, "close_context": true})
    );
}

#[tokio::test]
async fn elevenlabs_reuses_one_socket_across_sentences() {
    let fake = FakeElevenLabs::start(vec![Behaviour::Speak {
        batch: 1,
        gate: None,
    }])
    .await;
    let tts = elevenlabs(&fake);
    for text in ["One.", "Two more.", "And three."] {
        let heard = hear(tts.synthesize(text.into(), sarah())).await;
        assert!(heard.error.is_none(), "{:?}", heard.error);
        assert_eq!(heard.audio(), speech(text));
    }
    let connections = fake.connections();
    assert_eq!(connections.len(), 1);
    let contexts: std::collections::HashSet<&str> = connections[0]
        .messages
        .iter()
        .filter_map(|m| m["context_id"].as_str())
        .collect();
    assert_eq!(contexts.len(), 3, "one context per sentence");
}

#[tokio::test]
async fn elevenlabs_interleaved_contexts_reach_their_own_receivers() {
    let fake = FakeElevenLabs::start(vec![Behaviour::Speak {
        batch: 2,
        gate: None,
    }])
    .await;
    let tts = elevenlabs(&fake);
    let a = tts.synthesize("The first caller's sentence.".into(), sarah());
    let b = tts.synthesize("Another one, longer than the first.".into(), sarah());
    let (a, b) = tokio::join!(hear(a), hear(b));
    assert!(a.error.is_none() && b.error.is_none());
    assert_eq!(a.audio(), speech("The first caller's sentence."));
    assert_eq!(b.audio(), speech("Another one, longer than the first."));
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn elevenlabs_opens_another_socket_beyond_five_contexts() {
    // The first socket holds its five contexts open until the gate opens.
    let gate = Arc::new(Notify::new());
    let fake = FakeElevenLabs::start(vec![
        Behaviour::Speak {
            batch: 5,
            gate: Some(gate.clone()),
        },
        Behaviour::Speak {
            batch: 1,
            gate: None,
        },
    ])
    .await;
    let tts = elevenlabs(&fake);
    let texts: Vec<String> = (1..=6).map(|i| format!("Sentence number {i}.")).collect();
    let mut receivers: Vec<_> = texts[..5]
        .iter()
        .map(|t| tts.synthesize(t.clone(), sarah()))
        .collect();
    fake.wait_until(|c| c.len() == 1 && closed_contexts(&c[0]) == 5)
        .await;
    receivers.push(tts.synthesize(texts[5].clone(), sarah()));
    fake.wait_until(|c| c.len() == 2 && closed_contexts(&c[1]) == 1)
        .await;
    gate.notify_one();
    let heard = futures::future::join_all(receivers.into_iter().map(hear)).await;
    for (text, heard) in texts.iter().zip(&heard) {
        assert!(heard.error.is_none(), "{:?}", heard.error);
        assert_eq!(heard.audio(), speech(text));
    }
    assert_eq!(fake.connections().len(), 2);
}

fn closed_contexts(connection: &tts_fakes::elevenlabs::Connection) -> usize {
    connection
        .messages
        .iter()
        .filter(|m| m["close_context"] == true)
        .count()
}

#[tokio::test]
async fn elevenlabs_reconnects_when_the_shared_socket_closed() {
    let fake = FakeElevenLabs::start(vec![
        Behaviour::CloseAfterOne,
        Behaviour::Speak {
            batch: 1,
            gate: None,
        },
    ])
    .await;
    let tts = elevenlabs(&fake);
    for text in ["Before the close.", "After it."] {
        let heard = hear(tts.synthesize(text.into(), sarah())).await;
        assert!(heard.error.is_none(), "{:?}", heard.error);
        assert_eq!(heard.audio(), speech(text));
    }
    assert_eq!(fake.connections().len(), 2);
}

#[tokio::test]
async fn elevenlabs_401_at_the_upgrade_is_reported_without_retrying() {
    let fake = FakeElevenLabs::start(vec![Behaviour::Reject(
        401,
        r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#,
    )])
    .await;
    let heard = hear(elevenlabs(&fake).synthesize("Hi.".into(), sarah())).await;
    let error = heard.error.expect("an error").0;
    assert!(error.contains("elevenlabs"), "{error}");
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("Invalid API key"), "{error}");
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn elevenlabs_429_at_the_upgrade_is_retried_once() {
    let fake = FakeElevenLabs::start(vec![
        Behaviour::Reject(429, r#"{"detail":"Too many concurrent requests"}"#),
        Behaviour::Speak {
            batch: 1,
            gate: None,
        },
    ])
    .await;
    let heard = hear(elevenlabs(&fake).synthesize("Hi there.".into(), sarah())).await;
    assert!(heard.error.is_none(), "{:?}", heard.error);
    assert_eq!(heard.audio(), speech("Hi there."));
    assert_eq!(fake.connections().len(), 2);
}

#[tokio::test]
async fn elevenlabs_error_message_and_policy_close_fail_without_retry() {
    let fake = FakeElevenLabs::start(vec![Behaviour::QuotaError]).await;
    let heard = hear(elevenlabs(&fake).synthesize("Hi.".into(), sarah())).await;
    let error = heard.error.expect("an error").0;
    assert!(error.contains("quota_exceeded"), "{error}");
    assert!(error.contains("Unusual activity detected"), "{error}");
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn elevenlabs_disconnect_mid_stream_delivers_the_audio_so_far_then_an_error() {
    let fake = FakeElevenLabs::start(vec![Behaviour::DropMidStream]).await;
    let heard = hear(elevenlabs(&fake).synthesize("A long enough sentence.".into(), sarah())).await;
    // Two messages of 333 bytes: 333 whole samples.
    assert_eq!(
        heard.audio(),
        speech("A long enough sentence.")[..333].to_vec()
    );
    let error = heard.error.expect("an error").0;
    assert!(error.contains("elevenlabs: connection lost"), "{error}");
    // Audio already went out, so the sentence is not started again.
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn elevenlabs_garbage_from_the_server_is_an_error() {
    let fake = FakeElevenLabs::start(vec![Behaviour::Garbage]).await;
    let heard = hear(elevenlabs(&fake).synthesize("Hi there.".into(), sarah())).await;
    let error = heard.error.expect("an error").0;
    assert!(error.contains("elevenlabs: unreadable message"), "{error}");
    assert!(error.contains("502 Bad Gateway"), "{error}");
}

#[tokio::test]
async fn elevenlabs_cancelled_before_the_socket_is_up_sends_nothing() {
    let upgrade = Arc::new(Notify::new());
    let fake = FakeElevenLabs::start(vec![Behaviour::HoldUpgrade(upgrade.clone())]).await;
    let tts = elevenlabs(&fake);
    drop(tts.synthesize("Never mind.".into(), sarah()));
    let kept = tts.synthesize("Still wanted.".into(), sarah());
    // Let both syntheses queue their contexts on the connecting socket, then let it connect.
    tokio::task::yield_now().await;
    upgrade.notify_one();
    let heard = hear(kept).await;
    assert!(heard.error.is_none(), "{:?}", heard.error);
    assert_eq!(heard.audio(), speech("Still wanted."));
    let connections = fake.connections();
    assert_eq!(connections.len(), 1);
    let texts: Vec<&str> = connections[0]
        .messages
        .iter()
        .filter_map(|m| m["text"].as_str())
        .filter(|t| t.trim() != "")
        .collect();
    assert_eq!(texts, ["Still wanted. "]);
}

#[tokio::test]
async fn elevenlabs_dropping_the_receiver_ends_the_synthesis() {
    let fake = FakeElevenLabs::start(vec![Behaviour::Endless]).await;
    let tts = elevenlabs(&fake);
    let mut rx = tts.synthesize("Talk forever.".into(), sarah());
    first_chunk(&mut rx).await;
    drop(rx);
    // With the synthesis gone and the engine dropped, nothing holds the socket: it closes.
    drop(tts);
    fake.client_closed().await;
}

fn config(tts: &str, data_dir: &std::path::Path) -> Config {
    Config {
        tts: tts.into(),
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    }
}

#[tokio::test]
async fn network_engines_need_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let error = build_tts(&config("openai", dir.path()))
        .await
        .err()
        .unwrap();
    assert!(format!("{error:#}").contains("OPENAI_API_KEY"), "{error:#}");
    let error = build_tts(&config("elevenlabs", dir.path()))
        .await
        .err()
        .unwrap();
    assert!(
        format!("{error:#}").contains("ELEVENLABS_API_KEY"),
        "{error:#}"
    );

    let mut with_keys = config("openai", dir.path());
    with_keys.openai_api_key = Some("sk".into());
    assert_eq!(build_tts(&with_keys).await.unwrap().name(), "openai");
    with_keys.tts = "elevenlabs".into();
    with_keys.elevenlabs_api_key = Some("xi".into());
    assert_eq!(build_tts(&with_keys).await.unwrap().name(), "elevenlabs");
    with_keys.elevenlabs_base_url = "ftp://example.com".into();
    let error = build_tts(&with_keys).await.err().unwrap();
    assert!(
        format!("{error:#}").contains("BOLTCALL_ELEVENLABS_BASE_URL"),
        "{error:#}"
    );
}
