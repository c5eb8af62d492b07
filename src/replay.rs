//! `boltcall replay`: runs a fixture call through the whole pipeline faster than real time and
//! prints a JSON report; exit code 1 when an expectation fails.
//!
//! The pipeline is the production one: the session, real VAD, the configured STT/TTS and brain
//! with its tools, and a fresh SQLite store. The session runs on `Pacing::Replay` (call time
//! jumps ahead while nothing is pending and runs at wall speed while a provider works, so
//! latencies are real) or, with `--stepped`, on `Pacing::Stepped` (call time waits for the
//! providers, so the call goes the same on any machine).

pub mod caller_audio;
pub mod driver;
pub mod expect;
pub mod scenario;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::{Value, json};

pub use crate::agent::session::Pacing;
pub use driver::Providers;
use driver::Replayed;
use expect::{Observed, check};
use scenario::Scenario;

use crate::agent::turn::latency_report;
use crate::config::Config;

/// A replay's JSON report and whether every expectation held.
pub struct ReplayOutcome {
    pub report: Value,
    pub passed: bool,
}

pub async fn run(config: &Config, fixture: &Path, pacing: Pacing) -> anyhow::Result<ExitCode> {
    let providers = Providers {
        stt: crate::providers::build_stt(config).await?,
        tts: crate::providers::build_tts(config).await?,
        brain: crate::providers::llm::build_brain(config),
    };
    let outcome = replay_fixture(config, providers, fixture, pacing).await?;
    println!("{}", serde_json::to_string_pretty(&outcome.report)?);
    Ok(if outcome.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Replays the fixture directory `fixture` and checks its expectations. The call's stereo
/// recording is kept at `<data_dir>/replays/<fixture name>.wav`.
pub async fn replay_fixture(
    config: &Config,
    providers: Providers,
    fixture: &Path,
    pacing: Pacing,
) -> anyhow::Result<ReplayOutcome> {
    let scenario = Scenario::load(fixture)?;
    let name = fixture
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fixture".into());
    let work_dir = std::env::temp_dir().join(crate::store::new_id("boltcall-replay-"));
    let wall = Instant::now();
    let replayed =
        driver::replay_call(config, providers, fixture, &scenario, &work_dir, pacing).await;
    let wall_ms = wall.elapsed().as_millis() as u64;
    let result = match replayed {
        Ok(replayed) => report(config, &name, &scenario, &replayed, wall_ms).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&work_dir);
    result
}

async fn report(
    config: &Config,
    name: &str,
    scenario: &Scenario,
    replayed: &Replayed,
    wall_ms: u64,
) -> anyhow::Result<ReplayOutcome> {
    let call = &replayed.report;
    let (store, scope) = (&replayed.store, &replayed.scope);
    // The records the tools made, as the store has them at the end of the call.
    let ids = |prefix: &str| -> Vec<String> {
        let mut found = Vec::new();
        for tool in &call.tool_calls {
            collect_ids(&tool.result, prefix, &mut found);
        }
        found
    };
    let mut appointment = None;
    if let Some(id) = ids("apt_").last() {
        appointment = store.get_appointment(scope, id).await?;
    }
    let mut lead = None;
    if let Some(id) = ids("lead_").last() {
        lead = store.get_lead(scope, id).await?;
    }
    let seen = Observed {
        status: &call.status,
        end_reason: &call.end_reason,
        turns: call
            .transcript
            .iter()
            .map(|t| (t.role, t.text.as_str(), t.interrupted))
            .collect(),
        tools: call.tool_calls.iter().map(|t| t.name.as_str()).collect(),
        appointment: appointment.as_ref(),
        lead: lead.as_ref(),
        sentiment: call.sentiment.as_deref(),
    };
    let checks = check(&scenario.expect, &seen);
    let passed = checks.iter().all(|c| c.pass);
    let recording = match &call.recording_path {
        Some(path) => {
            let kept = config.data_dir.join("replays").join(format!("{name}.wav"));
            std::fs::create_dir_all(config.data_dir.join("replays"))?;
            std::fs::copy(path, &kept)?;
            Some(kept.display().to_string())
        }
        None => None,
    };
    let call_seconds = call.duration_ms as f64 / 1000.0;
    let report = json!({
        "fixture": name,
        "description": scenario.description,
        "status": call.status,
        "end_reason": call.end_reason,
        "duration_seconds": call_seconds,
        "caller_audio_seconds": replayed.caller_seconds,
        "wall_seconds": wall_ms as f64 / 1000.0,
        "speedup": if wall_ms > 0 { call_seconds * 1000.0 / wall_ms as f64 } else { 0.0 },
        "transcript": call.transcript,
        "tool_calls": call.tool_calls,
        "appointment": appointment,
        "lead": lead,
        "sentiment": call.sentiment,
        "summary": call.summary,
        "tags": call.tags,
        "barge_ins": replayed.clears,
        "latency": latency_report(&call.latencies),
        "recording": recording,
        "expectations": checks,
        "passed": passed,
    });
    Ok(ReplayOutcome { report, passed })
}

/// Every string in `value` that looks like an id with `prefix`, in document order.
fn collect_ids(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.starts_with(prefix) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, prefix, out)),
        Value::Object(map) => map.values().for_each(|v| collect_ids(v, prefix, out)),
        _ => {}
    }
}
