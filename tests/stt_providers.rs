//! The network speech-to-text providers against local servers that speak Deepgram's
//! live-streaming WebSocket protocol and OpenAI's transcription endpoint: partials, one final
//! per end of speech, Finalize, reconnecting with the caller's audio replayed, refused keys,
//! keep-alives, garbage, retries and streamed deltas.

mod stt_fakes;

use std::time::Duration;

use boltcall::providers::stt::deepgram::{DeepgramSettings, DeepgramStt, Timing};
use boltcall::providers::stt::openai::{OpenAiSettings, OpenAiStt};
use boltcall::providers::stt::{SpeechToText, SttEvent, SttInput, SttStream};
use media::InternalFrame;
use stt_fakes::deepgram::{Behaviour, FakeDeepgram};
use stt_fakes::openai::{FakeOpenAi, Reply};
use stt_fakes::words::{FRAME, recognise, say, silence};
use tokio::time::timeout;

/// Upper bound on any wait: reached only when something is broken.
const PATIENCE: Duration = Duration::from_secs(10);

fn deepgram(fake: &FakeDeepgram, timing: Timing) -> DeepgramStt {
    DeepgramStt::new(DeepgramSettings {
        api_key: "dg-test-key".into(),
        base_url: fake.base_url.clone(),
        model: "nova-3".into(),
        timing,
    })
    .unwrap()
}

/// Timing for tests: quick retries, and finals that wait long enough that only the server's
/// answer (never the timeout) can produce them.
fn timing() -> Timing {
    Timing {
        final_wait_ms: 8_000,
        backoff_first_ms: 20,
        ..Timing::default()
    }
}

async fn send_frames(stream: &SttStream, frames: Vec<Vec<i16>>) {
    for pcm in frames {
        let frame = InternalFrame::from_slice(16_000, &pcm).unwrap();
        stream.input.send(SttInput::Audio(frame)).await.unwrap();
    }
}

/// The caller says `words` as one VAD segment, with the frames around it a VAD would see.
async fn utterance(stream: &SttStream, words: &[&str]) {
    send_frames(stream, silence(15)).await;
    stream.input.send(SttInput::SpeechStart).await.unwrap();
    send_frames(stream, say(words, 12)).await;
    send_frames(stream, silence(15)).await;
    stream.input.send(SttInput::SpeechEnd).await.unwrap();
}

/// Events up to and including the first final (or error).
async fn until_final(stream: &mut SttStream) -> Vec<SttEvent> {
    let mut seen = Vec::new();
    loop {
        let event = timeout(PATIENCE, stream.events.recv())
            .await
            .expect("the recogniser answered in time")
            .expect("the recogniser is still running");
        let last = !matches!(event, SttEvent::Partial { .. });
        seen.push(event);
        if last {
            return seen;
        }
    }
}

/// Closes the input and returns every event until the stream ends.
async fn close(mut stream: SttStream) -> Vec<SttEvent> {
    drop(stream.input);
    let mut rest = Vec::new();
    while let Some(event) = timeout(PATIENCE, stream.events.recv())
        .await
        .expect("the stream ended in time")
    {
        rest.push(event);
    }
    rest
}

fn partials(events: &[SttEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Partial { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn final_text(text: &str) -> SttEvent {
    SttEvent::Final { text: text.into() }
}

#[tokio::test]
async fn deepgram_streams_partials_then_one_final_and_closes_cleanly() {
    let fake = FakeDeepgram::start(Behaviour {
        endpointing: true,
        ..Behaviour::default()
    })
    .await;
    let mut stream = deepgram(&fake, timing()).open();
    utterance(&stream, &["book", "a", "table"]).await;
    let events = until_final(&mut stream).await;
    assert_eq!(events.last(), Some(&final_text("book a table")));
    let partials = partials(&events);
    assert!(!partials.is_empty(), "{events:?}");
    assert!(
        partials.iter().all(|p| "book a table".starts_with(p)),
        "{partials:?}"
    );
    // The rest of the call's silence brings no second final.
    send_frames(&stream, silence(80)).await;
    let rest = close(stream).await;
    assert!(
        rest.iter().all(|e| matches!(e, SttEvent::Partial { .. })),
        "{rest:?}"
    );

    let connections = fake.connections();
    assert_eq!(connections.len(), 1);
    let seen = &connections[0];
    assert_eq!(seen.authorization.as_deref(), Some("Token dg-test-key"));
    let query = seen.path_and_query.strip_prefix("/v1/listen?").unwrap();
    for pair in [
        "model=nova-3",
        "encoding=linear16",
        "sample_rate=16000",
        "channels=1",
        "interim_results=true",
        "punctuate=true",
        "smart_format=true",
        "endpointing=300",
        "utterance_end_ms=1000",
        "vad_events=true",
    ] {
        assert!(
            query.split('&').any(|p| p == pair),
            "{pair} missing from {query}"
        );
    }
    assert_eq!(recognise(&seen.audio), "book a table");
    assert_eq!(seen.audio.len(), (15 + 36 + 15 + 80) * FRAME);
    assert_eq!(
        seen.controls.last().map(String::as_str),
        Some("CloseStream")
    );
}

#[tokio::test]
async fn deepgram_finalize_round_trip() {
    // No server endpointing: only the answer to our Finalize can settle the words.
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let mut stream = deepgram(&fake, timing()).open();
    utterance(&stream, &["book", "a", "table"]).await;
    let events = until_final(&mut stream).await;
    assert_eq!(events.last(), Some(&final_text("book a table")));
    assert_eq!(fake.connections()[0].controls, vec!["Finalize"]);
    // A second segment gets its own final with only its own words.
    utterance(&stream, &["for", "two"]).await;
    let events = until_final(&mut stream).await;
    assert_eq!(events.last(), Some(&final_text("for two")));
}

#[tokio::test]
async fn deepgram_reconnects_and_replays_the_callers_words() {
    // The first connection vanishes in the middle of "table".
    let fake = FakeDeepgram::start(Behaviour {
        drop_first_after_frames: Some(15 + 30),
        ..Behaviour::default()
    })
    .await;
    let mut stream = deepgram(&fake, timing()).open();
    utterance(&stream, &["book", "a", "table"]).await;
    let events = until_final(&mut stream).await;
    assert_eq!(
        events.last(),
        Some(&final_text("book a table")),
        "{events:?}"
    );
    let connections = fake.connections();
    assert_eq!(connections.len(), 2, "one reconnect");
    let (first, second) = (&connections[0], &connections[1]);
    assert!(
        first.audio.len() < (15 + 36) * FRAME,
        "the first connection lost the end"
    );
    // The new connection heard the whole utterance again, from its start.
    assert_eq!(recognise(&second.audio), "book a table");
    assert_eq!(second.audio.len(), (15 + 36 + 15) * FRAME);
    assert_eq!(second.controls, vec!["Finalize"]);
}

#[tokio::test]
async fn deepgram_refused_key_is_one_clear_error_without_retries() {
    let fake = FakeDeepgram::start(Behaviour {
        refuse: Some(401),
        ..Behaviour::default()
    })
    .await;
    let mut stream = deepgram(&fake, timing()).open();
    let event = timeout(PATIENCE, stream.events.recv()).await.unwrap();
    let Some(SttEvent::Error { message }) = event else {
        panic!("expected an error, got {event:?}");
    };
    assert!(
        message.contains("401") && message.contains("DEEPGRAM_API_KEY"),
        "{message}"
    );
    assert!(message.contains("Invalid credentials"), "{message}");
    // The stream ends; nothing retries.
    assert_eq!(timeout(PATIENCE, stream.events.recv()).await.unwrap(), None);
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn deepgram_idle_stream_sends_keepalives() {
    let fake = FakeDeepgram::start(Behaviour::default()).await;
    let stream = deepgram(
        &fake,
        Timing {
            keepalive_ms: 50,
            ..timing()
        },
    )
    .open();
    // No audio at all: the connection must still be kept open.
    timeout(PATIENCE, async {
        loop {
            let keepalives = fake.connections().first().map_or(0, |c| {
                c.controls.iter().filter(|k| *k == "KeepAlive").count()
            });
            if keepalives >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("keep-alives while idle");
    assert!(fake.connections()[0].audio.is_empty());
    drop(stream);
}

#[tokio::test]
async fn deepgram_ignores_garbage_and_unknown_messages() {
    let fake = FakeDeepgram::start(Behaviour {
        noise: true,
        endpointing: true,
        ..Behaviour::default()
    })
    .await;
    let mut stream = deepgram(&fake, timing()).open();
    utterance(&stream, &["table", "for", "two"]).await;
    let events = until_final(&mut stream).await;
    assert_eq!(
        events.last(),
        Some(&final_text("table for two")),
        "{events:?}"
    );
}

fn openai(fake: &FakeOpenAi, model: &str) -> OpenAiStt {
    OpenAiStt::new(OpenAiSettings {
        api_key: "sk-test".into(),
        base_url: fake.base_url.clone(),
        model: model.into(),
        retry_delay: Duration::from_millis(20),
    })
    .unwrap()
}

#[tokio::test]
async fn openai_posts_the_segment_as_a_wav_and_answers_one_final() {
    let fake = FakeOpenAi::start(Vec::new()).await;
    let mut stream = openai(&fake, "whisper-1").open();
    utterance(&stream, &["book", "a", "table"]).await;
    let events = until_final(&mut stream).await;
    assert_eq!(events, vec![final_text("book a table")]);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(seen.authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(seen.fields["model"], "whisper-1");
    assert_eq!(seen.fields["response_format"], "json");
    assert!(
        !seen.fields.contains_key("stream"),
        "whisper-1 does not stream"
    );
    assert_eq!(seen.file_type.as_deref(), Some("audio/wav"));
    assert_eq!(
        (seen.sample_rate, seen.channels, seen.bits),
        (16_000, 1, 16)
    );
    // The segment: the 300 ms before the VAD fired, the words, the hangover.
    assert_eq!(seen.samples.len(), (15 + 36 + 15) * FRAME);
    // Audio outside segments is never posted.
    send_frames(&stream, silence(50)).await;
    assert!(close(stream).await.is_empty());
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn openai_retries_once_after_429() {
    let fake = FakeOpenAi::start(vec![Reply::Status(429)]).await;
    let mut stream = openai(&fake, "whisper-1").open();
    utterance(&stream, &["for", "two"]).await;
    let events = until_final(&mut stream).await;
    assert_eq!(events, vec![final_text("for two")]);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn openai_two_server_errors_are_an_error_and_the_stream_goes_on() {
    let fake = FakeOpenAi::start(vec![Reply::Status(500), Reply::Status(500)]).await;
    let mut stream = openai(&fake, "whisper-1").open();
    utterance(&stream, &["book"]).await;
    let events = until_final(&mut stream).await;
    let [SttEvent::Error { message }] = &events[..] else {
        panic!("expected one error, got {events:?}");
    };
    assert!(message.contains("500"), "{message}");
    assert_eq!(fake.requests().len(), 2, "one retry, no more");
    utterance(&stream, &["a", "table"]).await;
    assert_eq!(until_final(&mut stream).await, vec![final_text("a table")]);
}

#[tokio::test]
async fn openai_refused_key_is_not_retried() {
    let fake = FakeOpenAi::start(vec![Reply::Status(401)]).await;
    let mut stream = openai(&fake, "whisper-1").open();
    utterance(&stream, &["book"]).await;
    let events = until_final(&mut stream).await;
    let [SttEvent::Error { message }] = &events[..] else {
        panic!("expected one error, got {events:?}");
    };
    assert!(message.contains("OPENAI_API_KEY"), "{message}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn openai_streamed_deltas_become_partials() {
    let fake = FakeOpenAi::start(Vec::new()).await;
    let mut stream = openai(&fake, "gpt-4o-mini-transcribe").open();
    utterance(&stream, &["book", "a", "table"]).await;
    let events = until_final(&mut stream).await;
    assert_eq!(
        events,
        vec![
            SttEvent::Partial {
                text: "book".into()
            },
            SttEvent::Partial {
                text: "book a".into()
            },
            SttEvent::Partial {
                text: "book a table".into()
            },
            final_text("book a table"),
        ]
    );
    assert_eq!(fake.requests()[0].fields["stream"], "true");
}

#[tokio::test]
async fn build_stt_needs_the_providers_key_and_builds_them_with_it() {
    use boltcall::config::Config;
    use boltcall::providers::build_stt;
    for (stt, key) in [
        ("deepgram", "DEEPGRAM_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
    ] {
        let mut config = Config {
            stt: stt.into(),
            ..Config::default()
        };
        let err = build_stt(&config).await.err().expect("no key, no engine");
        assert!(format!("{err:#}").contains(key), "{err:#}");
        config.deepgram_api_key = Some("dg".into());
        config.openai_api_key = Some("sk".into());
        assert_eq!(build_stt(&config).await.unwrap().name(), stt);
    }
}
