//! Post-call analysis: sentiment, summary, tags and outcome from the transcript and the tools'
//! results. The session calls `analyze_call` once the call has ended and stores the result:
//! the operator's LLM analyses the call when one is configured (`llm.rs`), and the word lists
//! (`analyze`, pure functions) when there is none or it fails.

mod facts;
pub mod llm;
mod sentiment;
mod summary;
mod tags;
mod text;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::agent::turn::{ToolCallRecord, TranscriptTurn};
use crate::config::Config;
use crate::providers::llm::Role;

pub use facts::{Fact, facts};
pub use sentiment::{Sentiment, SentimentLabel, sentiment, turn_score};
pub use summary::summarize;
pub use tags::{BusinessHours, tags};

/// One turn of the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub role: Role,
    pub text: &'a str,
}

impl<'a> From<&'a TranscriptTurn> for Line<'a> {
    fn from(turn: &'a TranscriptTurn) -> Self {
        Line {
            role: turn.role,
            text: &turn.text,
        }
    }
}

/// Everything the analysis looks at.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    pub lines: &'a [Line<'a>],
    pub tool_calls: &'a [ToolCallRecord],
    /// When the call started, in the agent's local time (for `after-hours`).
    pub local_start: Option<NaiveDateTime>,
    pub business_hours: BusinessHours,
}

/// The analysis stored on the call record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallAnalysis {
    pub sentiment: Sentiment,
    pub summary: String,
    pub tags: Vec<String>,
    /// What the call came to; `None` when the word lists cannot tell.
    pub outcome: Option<Outcome>,
}

/// What a call came to, and what the business should do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub result: Resolution,
    #[serde(default)]
    pub follow_up: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    AppointmentBooked,
    LeadCaptured,
    QuestionAnswered,
    MessageTaken,
    Transferred,
    CallbackRequested,
    NotResolved,
}

/// The analysis of a finished call: by the configured LLM (bounded by `llm::ANALYSIS_BUDGET`),
/// else by the word lists. A call without words needs no model.
pub async fn analyze_call(config: &Config, call: &CallFacts<'_>) -> CallAnalysis {
    match llm::LlmAnalyst::from_config(config) {
        Some(analyst) if !call.lines.is_empty() => analyst.analyze(call).await,
        _ => analyze(call),
    }
}

/// The word-list analysis.
pub fn analyze(call: &CallFacts<'_>) -> CallAnalysis {
    let facts = facts(call.tool_calls);
    let sentiment = sentiment(call.lines);
    CallAnalysis {
        outcome: outcome(&facts),
        summary: summarize(call.lines, &facts),
        tags: tags(
            call.lines,
            &facts,
            &sentiment,
            call.local_start,
            &call.business_hours,
        ),
        sentiment,
    }
}

/// What the tools' facts say the call came to: a booking, else a transfer, else a lead. Words
/// alone ("question answered", "message taken") are for a model to judge.
fn outcome(facts: &[Fact]) -> Option<Outcome> {
    let result = if facts
        .iter()
        .any(|f| matches!(f, Fact::AppointmentBooked { .. }))
    {
        Resolution::AppointmentBooked
    } else if facts.iter().any(|f| matches!(f, Fact::Transferred { .. })) {
        Resolution::Transferred
    } else if facts.iter().any(|f| matches!(f, Fact::LeadCaptured { .. })) {
        Resolution::LeadCaptured
    } else {
        return None;
    };
    Some(Outcome {
        result,
        follow_up: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn turn(role: Role, text: &str) -> TranscriptTurn {
        TranscriptTurn {
            role,
            text: text.into(),
            start_ms: 0,
            end_ms: 0,
            interrupted: false,
        }
    }

    #[test]
    fn a_booking_call_end_to_end() {
        let transcript = [
            turn(
                Role::Agent,
                "Thanks for calling Bright Dental. How can I help you today?",
            ),
            turn(
                Role::Caller,
                "Hi, I'm a new patient and I'd like to book a cleaning next Tuesday.",
            ),
            turn(
                Role::Agent,
                "I can do Tuesday at 2 p.m. May I have your name?",
            ),
            turn(
                Role::Caller,
                "Sure, it's Maria Lopez. That time is perfect, thank you so much!",
            ),
            turn(
                Role::Agent,
                "You're booked for Tuesday at 2 p.m. See you then!",
            ),
        ];
        let lines: Vec<Line<'_>> = transcript.iter().map(Line::from).collect();
        let tool_calls = [
            ToolCallRecord {
                name: "capture_lead".into(),
                arguments: json!({"name": "Maria Lopez", "phone": "+15551230000"}),
                result: json!({"id": "lead_9"}),
            },
            ToolCallRecord {
                name: "book_appointment".into(),
                arguments: json!({"title": "Cleaning", "start_time": "2025-03-25T14:00:00Z"}),
                result: json!({"id": "apt_3", "status": "upcoming"}),
            },
        ];
        let analysis = analyze(&CallFacts {
            lines: &lines,
            tool_calls: &tool_calls,
            local_start: None,
            business_hours: BusinessHours::default(),
        });
        assert_eq!(analysis.sentiment.label, SentimentLabel::Positive);
        assert_eq!(analysis.tags, vec!["appointment", "lead", "new-customer"]);
        assert_eq!(
            analysis.outcome.map(|o| o.result),
            Some(Resolution::AppointmentBooked)
        );
        assert!(
            analysis.summary.contains("book a cleaning next Tuesday"),
            "{}",
            analysis.summary
        );
        assert!(
            analysis
                .summary
                .contains("Lead captured: Maria Lopez, +15551230000.")
        );
        assert!(
            analysis
                .summary
                .ends_with("Booked: Cleaning at 2025-03-25T14:00:00Z.")
        );
    }
}
