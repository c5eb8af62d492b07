//! What the machine records for the call: transcript turns, per-turn latency, tool calls and
//! why the call ended.

use serde::Serialize;

use crate::providers::llm::Role;

/// One turn of the transcript as heard on the line, with call-relative times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptTurn {
    pub role: Role,
    pub text: String,
    /// Caller: first speech; agent: first audio played.
    pub start_ms: u64,
    /// Caller: last speech end; agent: last audio played (or the moment it was cut off).
    pub end_ms: u64,
    /// The agent was cut off by the caller; `text` holds only what was heard.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// Where the time of one reply went, in milliseconds. A stage that did not happen is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TurnLatency {
    /// 1-based index of the caller turn this reply answered.
    pub turn: usize,
    /// Caller speech end → end of turn decided.
    pub endpointing_ms: Option<u64>,
    /// Caller speech end → the recogniser's final for the last segment.
    pub stt_final_ms: Option<u64>,
    /// End of turn → first reply text from the brain.
    pub first_token_ms: Option<u64>,
    /// First piece handed to TTS → its first audio.
    pub tts_first_audio_ms: Option<u64>,
    /// End of turn → first agent audio handed to the pacer (played on the next 20 ms tick).
    pub first_media_out_ms: Option<u64>,
    /// Caller speech end → first agent audio: what the caller feels.
    pub voice_to_voice_ms: Option<u64>,
    /// The caller cut this reply short.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// A tool the brain ran during the call (as `BrainEvent::ToolCalled` reported it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallRecord {
    pub name: String,
    pub arguments: serde_json::Value,
    pub result: serde_json::Value,
}

/// Why the machine ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The caller hung up (or the transport went away).
    CallerHangup,
    /// The brain ended the call (`end_call`) after its reply was spoken.
    AgentHangup,
    /// The brain transferred the caller.
    Transferred,
    /// Nobody spoke after the reprompt.
    IdleTimeout,
    /// The call reached its maximum duration.
    MaxDuration,
    /// The engine shut down.
    Shutdown,
    /// Answering-machine detection: a machine answered and the call asked to hang up on one.
    MachineDetected,
    /// Answering-machine detection: the message was left after the machine's greeting.
    VoicemailLeft,
    /// Answering-machine detection: a fax machine answered.
    FaxDetected,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller_hangup",
            EndReason::AgentHangup => "agent_hangup",
            EndReason::Transferred => "transferred",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::MaxDuration => "max_duration",
            EndReason::Shutdown => "engine_shutdown",
            EndReason::MachineDetected => "machine_detected",
            EndReason::VoicemailLeft => "voicemail_left",
            EndReason::FaxDetected => "fax_detected",
        }
    }
}

/// The call's latency breakdown for the call record: every turn, plus per-stage
/// `{count, mean_ms, p50_ms, p95_ms, max_ms}` over the turns where the stage happened.
pub fn latency_report(turns: &[TurnLatency]) -> serde_json::Value {
    type Stage = fn(&TurnLatency) -> Option<u64>;
    let stages: [(&str, Stage); 6] = [
        ("endpointing", |t| t.endpointing_ms),
        ("stt_final", |t| t.stt_final_ms),
        ("first_token", |t| t.first_token_ms),
        ("tts_first_audio", |t| t.tts_first_audio_ms),
        ("first_media_out", |t| t.first_media_out_ms),
        ("voice_to_voice", |t| t.voice_to_voice_ms),
    ];
    let mut summary = serde_json::Map::new();
    for (name, stage) in stages {
        let mut values: Vec<u64> = turns.iter().filter_map(stage).collect();
        if values.is_empty() {
            continue;
        }
        values.sort_unstable();
        let mean = values.iter().sum::<u64>() / values.len() as u64;
        summary.insert(
            name.to_string(),
            serde_json::json!({
                "count": values.len(),
                "mean_ms": mean,
                "p50_ms": percentile(&values, 50),
                "p95_ms": percentile(&values, 95),
                "max_ms": values[values.len() - 1],
            }),
        );
    }
    serde_json::json!({ "turns": turns, "summary": summary })
}

/// Nearest-rank percentile of sorted, non-empty values.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_summarises_only_stages_that_happened() {
        let turns = [
            TurnLatency {
                turn: 1,
                endpointing_ms: Some(500),
                voice_to_voice_ms: Some(900),
                ..Default::default()
            },
            TurnLatency {
                turn: 2,
                endpointing_ms: Some(700),
                voice_to_voice_ms: Some(1300),
                interrupted: true,
                ..Default::default()
            },
        ];
        let report = latency_report(&turns);
        assert_eq!(report["summary"]["endpointing"]["mean_ms"], 600);
        assert_eq!(report["summary"]["endpointing"]["p50_ms"], 500);
        assert_eq!(report["summary"]["voice_to_voice"]["max_ms"], 1300);
        assert!(report["summary"].get("first_token").is_none());
        assert_eq!(report["turns"][1]["interrupted"], true);
        assert!(report["turns"][0].get("interrupted").is_none());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&values, 50), 10);
        assert_eq!(percentile(&values, 95), 19);
        assert_eq!(percentile(&[7], 95), 7);
    }
}
