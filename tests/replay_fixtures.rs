//! Fixture calls replayed through the whole offline pipeline (VAD, Whisper, Piper, the offline
//! brain and its tools, a fresh SQLite store). Models are installed on first use (cached).
//!
//! These two fixtures depend on VAD, turn-taking and TTS only for what they check; the
//! speech-heavy fixtures (dental_booking, opening_hours, lead_capture) are run with
//! `boltcall replay` (see BENCHMARKS.md).

use std::path::{Path, PathBuf};

use boltcall::config::Config;
use boltcall::replay::{Providers, ReplayOutcome, replay_fixture};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/calls")
        .join(name)
}

async fn replay(name: &str) -> ReplayOutcome {
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
    replay_fixture(&config, providers, &fixture(name))
        .await
        .expect("the replay runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_caller_is_reprompted_and_hangs_up() {
    let outcome = replay("silent_caller").await;
    assert!(
        outcome.passed,
        "{}",
        serde_json::to_string_pretty(&outcome.report).unwrap_or_default()
    );
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
}
