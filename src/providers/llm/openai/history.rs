//! The conversation as chat messages, trimmed for long calls.
//!
//! Why these numbers: a phone turn is one to three sentences (~100–200 characters), so 40
//! messages are about 20 exchanges — ten minutes of talk or more — and 16,000 characters are
//! ~4,000 tokens. With the persona (~1,000 tokens), the retrieved knowledge and the tools
//! that fits an 8k-token model, and it keeps the prompt short: time to first token grows
//! with prompt length, and the caller hears that. What the tools did is listed in the system
//! prompt, so trimmed words do not lose bookings or leads.

use serde_json::{Value, json};

use crate::providers::llm::{Message, Role};

const MAX_HISTORY_MESSAGES: usize = 40;
const MAX_HISTORY_CHARS: usize = 16_000;

/// The call's words as chat messages (empty turns left out).
pub fn conversation(history: &[Message]) -> Vec<Value> {
    history
        .iter()
        .filter(|m| !m.text.trim().is_empty())
        .map(|m| {
            let role = match m.role {
                Role::Agent => "assistant",
                Role::Caller => "user",
            };
            json!({"role": role, "content": m.text})
        })
        .collect()
}

/// The most recent messages within the budget; returns them and whether earlier ones were
/// left out. An assistant message with tool calls and the tool results after it are kept or
/// dropped together (a result without its call is rejected by the API); the last message is
/// always kept.
pub fn trim(messages: Vec<Value>) -> (Vec<Value>, bool) {
    let mut units: Vec<Vec<Value>> = Vec::new();
    for message in messages {
        match units.last_mut() {
            Some(unit) if message["role"] == "tool" => unit.push(message),
            _ => units.push(vec![message]),
        }
    }
    let mut kept: Vec<Vec<Value>> = Vec::new();
    let (mut count, mut chars) = (0, 0);
    while let Some(unit) = units.pop() {
        let unit_chars: usize = unit.iter().map(size).sum();
        let over =
            count + unit.len() > MAX_HISTORY_MESSAGES || chars + unit_chars > MAX_HISTORY_CHARS;
        if over && !kept.is_empty() {
            units.push(unit);
            break;
        }
        count += unit.len();
        chars += unit_chars;
        kept.push(unit);
    }
    let trimmed = !units.is_empty();
    (kept.into_iter().rev().flatten().collect(), trimmed)
}

/// Characters a message puts in the prompt.
fn size(message: &Value) -> usize {
    let content = message["content"].as_str().map_or(0, str::len);
    let calls = message
        .get("tool_calls")
        .map_or(0, |calls| calls.to_string().len());
    content + calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(role: Role, text: &str) -> Message {
        Message {
            role,
            text: text.into(),
        }
    }

    #[test]
    fn a_short_call_is_kept_whole() {
        let history = [said(Role::Agent, "Hello!"), said(Role::Caller, "Hi there")];
        let (messages, trimmed) = trim(conversation(&history));
        assert!(!trimmed);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1], json!({"role": "user", "content": "Hi there"}));
    }

    #[test]
    fn a_long_call_keeps_its_latest_turns_within_budget() {
        let history: Vec<Message> = (0..200)
            .map(|i| {
                let role = if i % 2 == 0 {
                    Role::Caller
                } else {
                    Role::Agent
                };
                said(role, &format!("turn {i} {}", "words ".repeat(20)))
            })
            .collect();
        let (messages, trimmed) = trim(conversation(&history));
        assert!(trimmed);
        assert_eq!(messages.len(), MAX_HISTORY_MESSAGES);
        assert!(messages.iter().map(size).sum::<usize>() <= MAX_HISTORY_CHARS);
        assert!(
            messages
                .last()
                .and_then(|m| m["content"].as_str())
                .is_some_and(|c| c.starts_with("turn 199 "))
        );
    }

    #[test]
    fn tool_calls_and_their_results_stay_together() {
        let messages = vec![
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "capture_lead", "arguments": "{}"}},
            ]}),
            json!({"role": "tool", "tool_call_id": "a", "content": "y".repeat(200)}),
            json!({"role": "user", "content": "x".repeat(MAX_HISTORY_CHARS - 250)}),
        ];
        let (kept, trimmed) = trim(messages.clone());
        // The result would fit beside the long message, its call would not: both go.
        assert!(trimmed);
        assert_eq!(kept, messages[2..]);
        let huge = vec![json!({"role": "user", "content": "z".repeat(MAX_HISTORY_CHARS * 2)})];
        assert_eq!(trim(huge.clone()), (huge, false));
    }
}
