//! Checks a replayed call against its scenario's expectations.

use serde::Serialize;
use serde_json::{Value, json};

use super::scenario::Expectations;
use crate::providers::llm::Role;
use crate::store::{AppointmentRecord, LeadRecord};

/// One expectation with what was found.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub expected: Value,
    pub actual: Value,
    pub pass: bool,
}

/// What the call produced that expectations look at.
pub struct Observed<'a> {
    pub status: &'a str,
    pub end_reason: &'a str,
    /// `(role, text, interrupted)` per transcript turn.
    pub turns: Vec<(Role, &'a str, bool)>,
    pub tools: Vec<&'a str>,
    pub appointment: Option<&'a AppointmentRecord>,
    pub lead: Option<&'a LeadRecord>,
    pub sentiment: Option<&'a str>,
}

pub fn check(expect: &Expectations, seen: &Observed<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut add = |name: &str, expected: Value, actual: Value, pass: bool| {
        checks.push(Check {
            name: name.into(),
            expected,
            actual,
            pass,
        })
    };
    if let Some(status) = &expect.status {
        add(
            "status",
            json!(status),
            json!(seen.status),
            seen.status == status,
        );
    }
    if let Some(reason) = &expect.end_reason {
        add(
            "end_reason",
            json!(reason),
            json!(seen.end_reason),
            seen.end_reason == reason,
        );
    }
    let all_text = seen
        .turns
        .iter()
        .map(|(_, t, _)| normalise(t))
        .collect::<Vec<_>>()
        .join(" ");
    for phrase in &expect.transcript_contains {
        let pass = all_text.contains(&normalise(phrase));
        add("transcript_contains", json!(phrase), Value::Null, pass);
    }
    let agent_text = seen
        .turns
        .iter()
        .filter(|(role, _, _)| *role == Role::Agent)
        .map(|(_, t, _)| normalise(t))
        .collect::<Vec<_>>()
        .join(" ");
    for phrase in &expect.agent_said {
        let pass = agent_text.contains(&normalise(phrase));
        add("agent_said", json!(phrase), Value::Null, pass);
    }
    if let Some(tools) = &expect.tools_called {
        let mut ran: Vec<&str> = seen.tools.clone();
        ran.sort_unstable();
        ran.dedup();
        let mut want: Vec<&str> = tools.iter().map(String::as_str).collect();
        want.sort_unstable();
        want.dedup();
        // Hanging up is call control, checked by `end_reason`; listed only when it matters.
        if !want.contains(&"end_call") {
            ran.retain(|t| *t != "end_call");
        }
        add("tools_called", json!(want), json!(ran), ran == want);
    }
    if let Some(apt) = &expect.appointment {
        let actual = seen.appointment.map(
            |a| json!({"title": a.title, "start_time": crate::store::parse_ts(&a.start_time)}),
        );
        let pass = seen.appointment.is_some_and(|a| {
            apt.title
                .as_ref()
                .is_none_or(|t| t.eq_ignore_ascii_case(&a.title))
                && apt
                    .start_time
                    .is_none_or(|t| crate::store::parse_ts(&a.start_time) == Some(t))
        });
        add(
            "appointment",
            json!({"title": apt.title, "start_time": apt.start_time}),
            json!(actual),
            pass,
        );
    }
    if let Some(lead) = &expect.lead {
        let actual = seen
            .lead
            .map(|l| json!({"name": l.name, "phone": l.phone, "email": l.email}));
        let pass = seen.lead.is_some_and(|l| {
            lead.name
                .as_ref()
                .is_none_or(|n| n.eq_ignore_ascii_case(&l.name))
                && lead
                    .phone
                    .as_ref()
                    .is_none_or(|p| l.phone.as_ref() == Some(p))
                && lead
                    .email
                    .as_ref()
                    .is_none_or(|e| l.email.as_ref() == Some(e))
        });
        add(
            "lead",
            json!({"name": lead.name, "phone": lead.phone, "email": lead.email}),
            json!(actual),
            pass,
        );
    }
    if let Some(sentiment) = &expect.sentiment {
        add(
            "sentiment",
            json!(sentiment),
            json!(seen.sentiment),
            seen.sentiment == Some(sentiment.as_str()),
        );
    }
    if let Some(max) = expect.max_turns {
        let n = seen.turns.len();
        add("max_turns", json!(max), json!(n), n <= max);
    }
    if let Some(want) = expect.caller_turns {
        let n = seen
            .turns
            .iter()
            .filter(|(role, _, _)| *role == Role::Caller)
            .count();
        add("caller_turns", json!(want), json!(n), n == want);
    }
    if let Some(want) = expect.interrupted {
        let cut = seen.turns.iter().any(|(_, _, interrupted)| *interrupted);
        add("interrupted", json!(want), json!(cut), cut == want);
    }
    checks
}

/// Lowercase words without punctuation, so "10 AM." matches "10 am".
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '$' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed<'a>(turns: Vec<(Role, &'a str, bool)>) -> Observed<'a> {
        Observed {
            status: "completed",
            end_reason: "agent_hangup",
            turns,
            tools: vec!["capture_lead", "book_appointment", "capture_lead"],
            appointment: None,
            lead: None,
            sentiment: Some("positive"),
        }
    }

    #[test]
    fn phrases_match_regardless_of_case_and_punctuation() {
        let expect = Expectations {
            agent_said: vec!["booked for Friday, March 27 at 10 AM".into()],
            transcript_contains: vec!["jane smith".into()],
            ..Default::default()
        };
        let seen = observed(vec![
            (Role::Caller, "It's Jane Smith.", false),
            (
                Role::Agent,
                "You're booked for Friday, March 27 at 10 AM!",
                false,
            ),
        ]);
        assert!(check(&expect, &seen).iter().all(|c| c.pass));
    }

    #[test]
    fn failures_are_reported_with_what_was_found() {
        let expect = Expectations {
            status: Some("missed".into()),
            tools_called: Some(vec!["book_appointment".into()]),
            agent_said: vec!["goodbye".into()],
            appointment: Some(super::super::scenario::AppointmentExpectation {
                title: Some("Cleaning".into()),
                start_time: None,
            }),
            interrupted: Some(true),
            ..Default::default()
        };
        let seen = observed(vec![(Role::Agent, "Hello there.", false)]);
        let checks = check(&expect, &seen);
        assert_eq!(checks.len(), 5);
        assert!(checks.iter().all(|c| !c.pass), "{checks:?}");
        assert_eq!(
            checks[2].actual,
            json!(["book_appointment", "capture_lead"])
        );
    }
}
