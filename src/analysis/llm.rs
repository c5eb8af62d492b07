//! Post-call analysis by the operator's LLM: `prompts/analysis.v1.txt` in JSON mode, the answer
//! validated, asked once more when it is invalid or the request fails, and the word-list
//! analysis when both attempts fail. The call's record waits for it, so the two attempts share
//! one time budget.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout_at};

use super::{CallAnalysis, CallFacts, Outcome, Sentiment, SentimentLabel, facts};
use crate::config::Config;
use crate::providers::llm::Role;
use crate::providers::llm::endpoint::Endpoint;

const TEMPLATE: &str = include_str!("../../prompts/analysis.v1.txt");
/// Both attempts together: a summary of a phone call takes a model one to three seconds, and
/// the call's record (and its `call.completed` webhook) should not wait much longer.
pub const ANALYSIS_BUDGET: Duration = Duration::from_secs(8);
const ATTEMPTS: usize = 2;
const MAX_TAGS: usize = 5;

pub struct LlmAnalyst {
    endpoint: Endpoint,
    budget: Duration,
}

/// What the model must answer.
#[derive(Deserialize)]
struct Answer {
    summary: String,
    sentiment: SentimentLabel,
    tags: Vec<String>,
    outcome: Outcome,
}

impl LlmAnalyst {
    pub fn new(endpoint: Endpoint, budget: Duration) -> Self {
        LlmAnalyst { endpoint, budget }
    }

    /// The configured LLM, or `None` when there is none.
    pub fn from_config(config: &Config) -> Option<Self> {
        Endpoint::from_config(config).map(|e| LlmAnalyst::new(e, ANALYSIS_BUDGET))
    }

    /// The LLM's analysis of the call, or the word lists' when it cannot give a valid one.
    pub async fn analyze(&self, call: &CallFacts<'_>) -> CallAnalysis {
        let words = super::analyze(call);
        let deadline = Instant::now() + self.budget;
        let mut messages = vec![json!({"role": "system", "content": prompt(call)})];
        for attempt in 1..=ATTEMPTS {
            let asked = timeout_at(deadline, self.ask(&messages)).await;
            let problem = match asked {
                Err(_) => "timed out".to_string(),
                Ok(Err(e)) => e,
                Ok(Ok(content)) => match validate(&content) {
                    Ok(answer) => {
                        return CallAnalysis {
                            // The label is the model's; the score stays the lexicon's measure.
                            sentiment: Sentiment {
                                label: answer.sentiment,
                                score: words.sentiment.score,
                            },
                            summary: answer.summary.trim().to_string(),
                            tags: answer.tags,
                            outcome: Some(answer.outcome),
                        };
                    }
                    Err(problem) => {
                        // The retry sees its mistake.
                        messages.push(json!({"role": "assistant", "content": content}));
                        messages.push(json!({"role": "user", "content": format!(
                            "That answer is invalid: {problem}. Reply with the corrected JSON object only."
                        )}));
                        format!("invalid answer: {problem}")
                    }
                },
            };
            tracing::warn!(attempt, "LLM call analysis failed: {problem}");
        }
        words
    }

    /// One chat completion in JSON mode; its message content.
    async fn ask(&self, messages: &[Value]) -> Result<String, String> {
        let body = json!({
            "model": self.endpoint.model,
            "messages": messages,
            "response_format": {"type": "json_object"},
        });
        let response = self
            .endpoint
            .request(&body)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if !status.is_success() {
            let quote: String = text.chars().take(200).collect();
            return Err(format!("HTTP {status}: {quote}"));
        }
        let completion: Value =
            serde_json::from_str(&text).map_err(|e| format!("answer is not JSON: {e}"))?;
        completion["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "answer has no message content".to_string())
    }
}

/// The template filled in for the call.
fn prompt(call: &CallFacts<'_>) -> String {
    let actions: Vec<String> = facts(call.tool_calls)
        .iter()
        .map(|f| f.sentence())
        .collect();
    let transcript: Vec<String> = call
        .lines
        .iter()
        .map(|line| {
            let who = match line.role {
                Role::Agent => "agent",
                Role::Caller => "caller",
            };
            format!("{who}: {}", line.text.trim())
        })
        .collect();
    TEMPLATE
        .replace(
            "{{actions}}",
            &if actions.is_empty() {
                "none".to_string()
            } else {
                actions.join("\n")
            },
        )
        .replace("{{transcript}}", &transcript.join("\n"))
}

/// The model's answer if it keeps to the template's rules, else what is wrong with it.
fn validate(content: &str) -> Result<Answer, String> {
    let answer: Answer = serde_json::from_str(content.trim()).map_err(|e| e.to_string())?;
    if answer.summary.trim().is_empty() {
        return Err("summary is empty".into());
    }
    if answer.tags.len() > MAX_TAGS {
        return Err(format!("{} tags, at most {MAX_TAGS}", answer.tags.len()));
    }
    if let Some(tag) = answer.tags.iter().find(|t| !is_tag(t)) {
        return Err(format!("tag {tag:?} is not lowercase and hyphenated"));
    }
    Ok(answer)
}

/// `lowercase`, `two-words`, `after-hours-2`.
fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_must_be_lowercase_and_hyphenated() {
        assert!(is_tag("new-customer") && is_tag("appointment") && is_tag("after-hours-2"));
        assert!(!is_tag("New-Customer") && !is_tag("new customer") && !is_tag("-x"));
        assert!(!is_tag("a--b") && !is_tag(""));
    }

    #[test]
    fn answers_outside_the_rules_are_refused() {
        let good = r#"{"summary": "Caller booked a cleaning.", "sentiment": "positive",
            "tags": ["appointment"], "outcome": {"result": "appointment-booked", "follow_up": null}}"#;
        assert!(validate(good).is_ok());
        for bad in [
            r#"{"summary": " ", "sentiment": "positive", "tags": [], "outcome": {"result": "question-answered"}}"#,
            r#"{"summary": "x", "sentiment": "ecstatic", "tags": [], "outcome": {"result": "question-answered"}}"#,
            r#"{"summary": "x", "sentiment": "neutral", "tags": ["a","b","c","d","e","f"], "outcome": {"result": "question-answered"}}"#,
            r#"{"summary": "x", "sentiment": "neutral", "tags": ["Pricing Question"], "outcome": {"result": "question-answered"}}"#,
            r#"{"summary": "x", "sentiment": "neutral", "tags": [], "outcome": {"result": "won-the-lottery"}}"#,
            r#"{"summary": "x", "sentiment": "neutral", "tags": []}"#,
            "Sure! Here is the JSON you asked for.",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
