//! Finishing a call whose session is gone — it panicked, or the engine crashed — from what
//! survived it: the journaled transcript and the recording on disk.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::CallReport;
use super::recording::recording_path;
use crate::analysis::{BusinessHours, CallFacts, Line, analyze_call};
use crate::config::Config;
use crate::providers::llm::Role;
use crate::store::{CallOutcome, CallRecord, Store, StoreError, parse_ts};

/// An instance silent this long is taken for dead: its open calls are finished by whoever
/// starts next. Several heartbeats fit in it.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a running engine says its calls are alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// Finishes every call a dead engine run left open (see `Store::take_orphaned_calls`), each as
/// `failed` with its transcript so far, a playable recording and `call.completed`. Returns how
/// many were finished.
pub async fn recover_orphaned_calls(store: &Store, config: &Config) -> Result<usize, StoreError> {
    let now = Utc::now();
    let stale_before = now - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default();
    let orphans = store.take_orphaned_calls(stale_before).await?;
    for (call, heartbeat) in &orphans {
        let started = parse_ts(&call.created_at).unwrap_or(now);
        // Last sign of life: its heartbeat, or later audio or words if they say so.
        let alive_until = heartbeat.unwrap_or(started).max(started);
        let finished =
            finish_from_journal(store, config, call, started, alive_until, "engine_crashed")
                .await?;
        tracing::warn!(call_id = %call.id, status = %finished.status,
            duration_s = finished.duration_seconds, "finished a call interrupted by a crash");
    }
    Ok(orphans.len())
}

/// The call task panicked: finish the call from its journal as `failed`.
pub(super) async fn finish_after_panic(
    store: &Store,
    config: &Config,
    call_id: &str,
    started: DateTime<Utc>,
) -> CallReport {
    let mut report = CallReport {
        call_id: Some(call_id.to_string()),
        status: "failed".into(),
        end_reason: "internal_error".into(),
        duration_ms: 0,
        transcript: Vec::new(),
        tool_calls: Vec::new(),
        latencies: Vec::new(),
        sentiment: None,
        summary: None,
        tags: Vec::new(),
        recording_path: None,
    };
    let call = match store.get_call_by_id(call_id).await {
        Ok(Some(call)) => call,
        Ok(None) => return report,
        Err(e) => {
            tracing::error!(%call_id, "cannot finish the call after its panic: {e}");
            return report;
        }
    };
    match finish_from_journal(store, config, &call, started, Utc::now(), "internal_error").await {
        Ok(call) => {
            report.duration_ms = call.duration_seconds.unwrap_or(0).max(0) as u64 * 1000;
            report.summary = call.summary;
            report.sentiment = call.sentiment;
            report.tags = call.tags.0;
            report.recording_path = call.recording_path.map(Into::into);
        }
        Err(e) => tracing::error!(%call_id, "cannot finish the call after its panic: {e}"),
    }
    report
}

/// Writes the end of `call` from its journal: `failed` with `reason`, ended at the latest of
/// `alive_until` and the end of its words and audio.
async fn finish_from_journal(
    store: &Store,
    config: &Config,
    call: &CallRecord,
    started: DateTime<Utc>,
    alive_until: DateTime<Utc>,
    reason: &str,
) -> Result<CallRecord, StoreError> {
    let transcript = store.journaled_turns(&call.id).await?;
    let path = recording_path(config, &call.id);
    let recording = if path.exists() {
        match media::wav_repair::repair_wav(&path) {
            Ok(repaired) => Some(repaired.duration_ms),
            Err(e) => {
                tracing::error!(call_id = %call.id, path = %path.display(),
                    "the recording cannot be repaired: {e}");
                None
            }
        }
    } else {
        None
    };
    let spoken_ms = transcript.iter().map(|t| t.end_ms).max().unwrap_or(0);
    let media_ms = spoken_ms.max(recording.unwrap_or(0));
    let ended = alive_until.max(started + chrono::Duration::milliseconds(media_ms as i64));
    let duration_ms = (ended - started).num_milliseconds().max(0) as u64;
    let lines: Vec<Line<'_>> = transcript
        .iter()
        .map(|t| Line {
            role: if t.role == "agent" {
                Role::Agent
            } else {
                Role::Caller
            },
            text: &t.text,
        })
        .collect();
    let facts = CallFacts {
        lines: &lines,
        tool_calls: &[],
        local_start: None,
        business_hours: BusinessHours::default(),
    };
    let analysis = analyze_call(config, &facts).await;
    let outcome = CallOutcome {
        status: "failed".into(),
        ended_at: ended,
        duration_seconds: duration_ms.div_ceil(1000),
        summary: Some(analysis.summary),
        sentiment: Some(analysis.sentiment.label.as_str().to_string()),
        tags: analysis.tags,
        transcript,
        recording_path: recording.map(|_| path.to_string_lossy().into_owned()),
        latency: serde_json::json!({}),
        end_reason: Some(reason.into()),
        outcome: analysis.outcome,
        provider_failures: Vec::new(),
        tool_calls: Vec::new(),
    };
    store.finish_call(&call.id, outcome).await
}
