//! Fixture calls replayed through the whole offline pipeline (VAD, Whisper, Piper, the offline
//! brain and its tools, a fresh SQLite store). Models are installed on first use (cached).
//!
//! The replays are stepped (call time stands still while a provider works), so they go the
//! same however loaded the machine is; they run one at a time all the same, as each decodes
//! with all cores.

use std::path::{Path, PathBuf};

use boltcall::config::Config;
use boltcall::replay::{Pacing, Providers, ReplayOutcome, replay_fixture};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/calls")
        .join(name)
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn replay(name: &str) -> ReplayOutcome {
    let _alone = ONE_AT_A_TIME.lock().await;
    let config = Config::default();
    let providers = Providers {
        stt: boltcall::providers::build_stt(&config)
            .await
            .expect("offline STT"),
        tts: boltcall::providers::build_tts(&config)
            .await
            .expect("offline TTS"),
        brain: boltcall::providers::llm::build_brain(&config),
    };
    replay_fixture(&config, providers, &fixture(name), Pacing::Stepped)
        .await
        .expect("the replay runs")
}

/// Replays `name` and asserts every expectation of its scenario held.
async fn passes(name: &str) {
    let outcome = replay(name).await;
    assert!(
        outcome.passed,
        "{}",
        serde_json::to_string_pretty(&outcome.report).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_caller_is_reprompted_and_hangs_up() {
    passes("silent_caller").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dental_booking_books_friday_at_ten() {
    passes("dental_booking").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_hours_are_answered_from_the_knowledge_base() {
    passes("opening_hours").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_capture_takes_name_and_number() {
    passes("lead_capture").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_interrupts_the_greeting() {
    let outcome = replay("barge_in").await;
    let report = &outcome.report;
    assert!(report["barge_ins"].as_u64() >= Some(1), "{report}");
    let first = &report["transcript"][0];
    assert_eq!(first["role"], "agent", "{report}");
    assert_eq!(first["interrupted"], true, "{report}");
    let greeting =
        "Thanks for calling Bright Smile Dental, this is Sarah. How can I help you today?";
    let heard = first["text"].as_str().unwrap_or_default();
    assert!(heard.len() < greeting.len(), "kept {heard:?}");
    assert!(outcome.passed, "{report}");
}
