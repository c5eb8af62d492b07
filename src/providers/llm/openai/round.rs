//! One model turn assembled from its streamed chunks, sans IO: the text to speak as it comes,
//! and tool calls whose name and arguments arrive in fragments keyed by `index` (a response
//! may interleave several calls' fragments). Unknown fields are ignored; a chunk that is not
//! JSON, or an `error` object in the stream, is a failure of the stream.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// A tool call assembled from streamed fragments.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What one event of the stream brought.
#[derive(Debug, PartialEq)]
pub enum Progress {
    /// Text to speak now.
    Text(String),
    /// Tool-call fragments: the model is answering, nothing to say yet.
    Working,
    /// Nothing the caller would notice (a role-only or empty delta, a usage chunk).
    Nothing,
    /// `[DONE]`: the stream is complete.
    Done,
}

#[derive(Debug, Default)]
pub struct Round {
    pub text: String,
    calls: BTreeMap<u32, ToolCall>,
    pub finish_reason: Option<String>,
}

impl Round {
    /// Applies one event's data.
    pub fn apply(&mut self, data: &str) -> Result<Progress, String> {
        if data.trim() == "[DONE]" {
            return Ok(Progress::Done);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            let start: String = data.chars().take(80).collect();
            format!("malformed stream chunk ({e}): {start}")
        })?;
        if let Some(error) = chunk.error {
            return Err(format!("error in the stream: {error}"));
        }
        let mut progress = Progress::Nothing;
        // Only the first choice is spoken (`n` is never asked for).
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta.unwrap_or_default();
            for fragment in delta.tool_calls.unwrap_or_default() {
                let call = self.calls.entry(fragment.index).or_default();
                if let Some(id) = fragment.id {
                    call.id = id;
                }
                if let Some(function) = fragment.function {
                    call.name.push_str(function.name.as_deref().unwrap_or(""));
                    call.arguments
                        .push_str(function.arguments.as_deref().unwrap_or(""));
                }
                progress = Progress::Working;
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                self.text.push_str(&text);
                progress = Progress::Text(text);
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        Ok(progress)
    }

    /// The tool calls, in index order; a call without an id gets one so its result can be
    /// matched to it.
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        self.calls
            .iter()
            .map(|(index, call)| ToolCall {
                id: if call.id.is_empty() {
                    format!("call_{index}")
                } else {
                    call.id.clone()
                },
                ..call.clone()
            })
            .collect()
    }

    /// The model stopped because it ran out of tokens: its tool calls are cut off.
    pub fn truncated(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(delta: Value) -> String {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": null}], "x_unknown": 1})
            .to_string()
    }

    #[test]
    fn interleaved_tool_call_fragments_are_assembled_per_index() {
        let mut round = Round::default();
        let pieces = [
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "capture_lead", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "book_", "arguments": "{\"title\":"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"name\":"}}, {"index": 1, "function": {"name": "appointment", "arguments": "\"Cleaning\"}"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Ana\"}"}}]}),
        ];
        for piece in pieces {
            assert_eq!(round.apply(&data(piece)), Ok(Progress::Working));
        }
        assert_eq!(
            round.tool_calls(),
            [
                ToolCall {
                    id: "a".into(),
                    name: "capture_lead".into(),
                    arguments: "{\"name\":\"Ana\"}".into()
                },
                ToolCall {
                    id: "b".into(),
                    name: "book_appointment".into(),
                    arguments: "{\"title\":\"Cleaning\"}".into()
                },
            ]
        );
    }

    #[test]
    fn text_role_only_chunks_and_the_end() {
        let mut round = Round::default();
        assert_eq!(
            round.apply(&data(json!({"role": "assistant", "content": ""}))),
            Ok(Progress::Nothing)
        );
        assert_eq!(
            round.apply(&data(json!({"content": "Hi"}))),
            Ok(Progress::Text("Hi".into()))
        );
        assert_eq!(round.apply("[DONE]"), Ok(Progress::Done));
        assert_eq!(round.text, "Hi");
    }

    #[test]
    fn garbage_and_stream_errors_fail_the_round() {
        let mut round = Round::default();
        assert!(round.apply("{\"choices\": [").is_err());
        assert!(
            round
                .apply(&json!({"error": {"message": "overloaded"}}).to_string())
                .is_err()
        );
    }
}
