//! The end of a call: its status, transcript, analysis and latency, written to the store.

use std::path::PathBuf;

use super::{CallReport, CallServices};
use crate::agent::turn::{EndReason, ToolCallRecord, TranscriptTurn, TurnMachine, latency_report};
use crate::analysis::{BusinessHours, CallFacts, Line, analyze_call};
use crate::providers::llm::Role;
use crate::store::{CallOutcome, ProviderFailure, ToolCallEntry, TranscriptEntry};
use crate::telephony::HangupReason;

/// What a call left when it ended, for its record.
pub(super) struct Ended<'a> {
    pub duration_ms: u64,
    pub turn: &'a TurnMachine,
    pub hangup: Option<&'a HangupReason>,
    pub recording_path: Option<PathBuf>,
    pub provider_failures: &'a [ProviderFailure],
}

/// Writes the finished call (`call.completed` or `call.missed`) and reports it.
pub(super) async fn finish(
    services: &CallServices,
    call_id: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    ended: Ended<'_>,
) -> CallReport {
    let Ended {
        duration_ms,
        turn,
        hangup,
        recording_path,
        provider_failures,
    } = ended;
    let transcript = turn.transcript().to_vec();
    // A machine hung up on was answered, though nothing was said.
    let answered_by_machine = matches!(
        turn.end_reason(),
        Some(EndReason::MachineDetected | EndReason::FaxDetected)
    );
    let heard_anything = !transcript.is_empty() || answered_by_machine;
    let status = match hangup {
        Some(HangupReason::TransportError(_)) if !heard_anything => "failed",
        // The caller left before a word was exchanged either way.
        _ if !heard_anything => "missed",
        _ => "completed",
    };
    let end_reason = match (turn.end_reason(), hangup) {
        (_, Some(HangupReason::TransportError(message))) => format!("transport_error: {message}"),
        (_, Some(HangupReason::MediaTimeout)) => "media_timeout".to_string(),
        (Some(reason), _) => reason.as_str().to_string(),
        (None, _) => "caller_hangup".to_string(),
    };
    let entries: Vec<TranscriptEntry> = transcript.iter().map(transcript_entry).collect();
    let lines: Vec<Line<'_>> = transcript.iter().map(Line::from).collect();
    let facts = CallFacts {
        lines: &lines,
        tool_calls: turn.tool_calls(),
        // The agent's time zone is unknown, so no `after-hours` guess.
        local_start: None,
        business_hours: BusinessHours::default(),
    };
    let analysis = analyze_call(&services.config, &facts).await;
    let sentiment = analysis.sentiment.label.as_str().to_string();
    let outcome = CallOutcome {
        status: status.into(),
        ended_at: started_at + chrono::Duration::milliseconds(duration_ms as i64),
        duration_seconds: duration_ms.div_ceil(1000),
        transcript: entries,
        summary: Some(analysis.summary.clone()),
        sentiment: Some(sentiment.clone()),
        tags: analysis.tags.clone(),
        recording_path: recording_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        latency: latency_report(turn.latencies()),
        end_reason: Some(end_reason.clone()),
        outcome: analysis.outcome.clone(),
        provider_failures: provider_failures.to_vec(),
        tool_calls: turn.tool_calls().iter().map(tool_call_entry).collect(),
    };
    if let Err(e) = services.store.finish_call(call_id, outcome).await {
        tracing::error!(%call_id, "cannot write the finished call: {e}");
    }
    tracing::info!(%call_id, %status, %end_reason, duration_ms, "call ended");
    CallReport {
        call_id: Some(call_id.to_string()),
        status: status.into(),
        end_reason,
        duration_ms,
        transcript,
        tool_calls: turn.tool_calls().to_vec(),
        latencies: turn.latencies().to_vec(),
        sentiment: Some(sentiment),
        summary: Some(analysis.summary),
        tags: analysis.tags,
        recording_path,
    }
}

/// A transcript turn as the call record stores it.
pub(super) fn transcript_entry(t: &TranscriptTurn) -> TranscriptEntry {
    TranscriptEntry {
        role: match t.role {
            Role::Agent => "agent".into(),
            Role::Caller => "caller".into(),
        },
        text: t.text.clone(),
        start_ms: t.start_ms,
        end_ms: t.end_ms,
    }
}

/// A tool call as the call record stores it.
fn tool_call_entry(call: &ToolCallRecord) -> ToolCallEntry {
    ToolCallEntry {
        name: call.name.clone(),
        arguments: call.arguments.clone(),
        result: call.result.clone(),
    }
}

/// The record of a call that could not start.
pub(super) fn failed(reason: &str) -> crate::store::CallOutcome {
    CallOutcome::unanswered("failed", reason)
}
