//! A brain on any OpenAI-compatible chat-completions endpoint: streams the reply's text as it is
//! generated and runs the model's tool calls through the call's `ToolRunner`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{CreateChatCompletionRequest, FinishReason};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Brain, BrainContext, BrainEvent, BrainSession, Message, Role};
use crate::agent::dates::say_date;
use crate::agent::tools::ToolRunner;
use crate::agent::tools::arguments::{END_CALL, TRANSFER_CALL};

const PERSONA: &str = include_str!("../../../prompts/persona.v1.txt");
/// Knowledge beyond this many characters is left out of the system prompt.
const MAX_KNOWLEDGE_CHARS: usize = 12_000;
/// Model turns per reply: speaking, calling tools, speaking about their results.
const MAX_ROUNDS: usize = 4;
const REPLY_BUFFER: usize = 64;
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

pub struct OpenAiBrain {
    client: Client<OpenAIConfig>,
    model: String,
}

impl OpenAiBrain {
    pub fn new(base_url: &str, api_key: &str, model: &str) -> Self {
        let config = OpenAIConfig::new()
            .with_api_base(base_url.trim_end_matches('/'))
            .with_api_key(api_key);
        OpenAiBrain {
            client: Client::with_config(config),
            model: model.to_string(),
        }
    }
}

impl Brain for OpenAiBrain {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn start(&self, context: BrainContext, tools: Arc<dyn ToolRunner>) -> Box<dyn BrainSession> {
        Box::new(OpenAiSession {
            client: self.client.clone(),
            model: self.model.clone(),
            system: system_prompt(&context),
            tools,
            actions: Arc::new(Mutex::new(Vec::new())),
        })
    }
}

/// The persona template filled in for this call.
fn system_prompt(context: &BrainContext) -> String {
    let mut knowledge = String::new();
    for doc in &context.knowledge {
        if knowledge.len() + doc.title.len() + doc.text.len() > MAX_KNOWLEDGE_CHARS {
            break;
        }
        knowledge.push_str(&format!("## {}\n{}\n\n", doc.title, doc.text.trim()));
    }
    let (direction, briefing) = match &context.outbound_context {
        Some(b) => ("outbound", format!("You placed this call. Briefing: {b}")),
        None => ("inbound", String::new()),
    };
    let today = format!(
        "{} {}",
        say_date(context.now.date_naive()),
        context.now.format("%Y, %H:%M UTC")
    );
    PERSONA
        .replace("{{agent_name}}", &context.agent_name)
        .replace("{{instructions}}", context.prompt.trim())
        .replace("{{today}}", &today)
        .replace("{{caller_number}}", &context.caller_number)
        .replace("{{direction}}", direction)
        .replace("{{briefing}}", &briefing)
        .replace("{{knowledge}}", knowledge.trim())
}

struct OpenAiSession {
    client: Client<OpenAIConfig>,
    model: String,
    system: String,
    tools: Arc<dyn ToolRunner>,
    /// What the tools did earlier in the call; the history the session passes holds only words.
    actions: Arc<Mutex<Vec<String>>>,
}

impl BrainSession for OpenAiSession {
    fn reply(&mut self, history: &[Message]) -> mpsc::Receiver<BrainEvent> {
        let (tx, rx) = mpsc::channel(REPLY_BUFFER);
        let actions = self.actions.lock().map(|a| a.clone()).unwrap_or_default();
        let mut system = self.system.clone();
        if !actions.is_empty() {
            system.push_str("\n\nDone so far on this call:\n");
            system.push_str(&actions.join("\n"));
        }
        let mut messages = vec![json!({"role": "system", "content": system})];
        for m in history.iter().filter(|m| !m.text.trim().is_empty()) {
            let role = match m.role {
                Role::Agent => "assistant",
                Role::Caller => "user",
            };
            messages.push(json!({"role": role, "content": m.text}));
        }
        let turn = Turn {
            client: self.client.clone(),
            model: self.model.clone(),
            tools: self.tools.clone(),
            actions: self.actions.clone(),
            tx,
        };
        tokio::spawn(async move {
            let tx = turn.tx.clone();
            tokio::select! {
                result = turn.run(messages) => {
                    let last = match result {
                        Ok(()) => BrainEvent::Done,
                        Err(e) => BrainEvent::Error(e),
                    };
                    let _ = tx.send(last).await;
                }
                // Dropping the receiver cancels the request and any tool call in flight.
                () = tx.closed() => {}
            }
        });
        rx
    }
}

struct Turn {
    client: Client<OpenAIConfig>,
    model: String,
    tools: Arc<dyn ToolRunner>,
    actions: Arc<Mutex<Vec<String>>>,
    tx: mpsc::Sender<BrainEvent>,
}

/// A tool call assembled from streamed fragments.
#[derive(Default)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
}

impl Turn {
    async fn run(&self, mut messages: Vec<Value>) -> Result<(), String> {
        let tools: Vec<Value> = self
            .tools
            .specs()
            .into_iter()
            .map(|s| json!({"type": "function", "function": {"name": s.name, "description": s.description, "parameters": s.parameters}}))
            .collect();
        for _ in 0..MAX_ROUNDS {
            let request: CreateChatCompletionRequest = serde_json::from_value(json!({
                "model": self.model,
                "messages": messages,
                "tools": tools,
                "stream": true,
            }))
            .map_err(|e| format!("building the request: {e}"))?;
            let mut stream = self
                .client
                .chat()
                .create_stream(request)
                .await
                .map_err(|e| format!("LLM request failed: {e}"))?;
            let mut text = String::new();
            let mut calls: BTreeMap<u32, PendingCall> = BTreeMap::new();
            let mut finish = None;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| format!("LLM stream failed: {e}"))?;
                for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
                    if let Some(piece) = choice.delta.content.filter(|p| !p.is_empty()) {
                        text.push_str(&piece);
                        let _ = self.tx.send(BrainEvent::Text(piece)).await;
                    }
                    for fragment in choice.delta.tool_calls.unwrap_or_default() {
                        let call = calls.entry(fragment.index).or_default();
                        if let Some(id) = fragment.id {
                            call.id = id;
                        }
                        if let Some(function) = fragment.function {
                            if let Some(name) = function.name {
                                call.name.push_str(&name);
                            }
                            if let Some(arguments) = function.arguments {
                                call.arguments.push_str(&arguments);
                            }
                        }
                    }
                    finish = choice.finish_reason.or(finish);
                }
            }
            if calls.is_empty() || finish == Some(FinishReason::Length) {
                return Ok(());
            }
            let calls: Vec<PendingCall> = calls.into_values().collect();
            messages.push(json!({
                "role": "assistant",
                "content": if text.is_empty() { Value::Null } else { json!(text) },
                "tool_calls": calls.iter().map(|c| json!({
                    "id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments}
                })).collect::<Vec<_>>(),
            }));
            let mut hand_over = None;
            for call in &calls {
                let (arguments, result) = self.run_tool(call).await;
                if result.get("error").is_none() {
                    if call.name == END_CALL {
                        hand_over = Some(BrainEvent::EndCall);
                    } else if call.name == TRANSFER_CALL
                        && let Some(target) = result.get("target").and_then(Value::as_str)
                    {
                        hand_over = Some(BrainEvent::Transfer {
                            target: target.to_string(),
                        });
                    }
                }
                messages.push(
                    json!({"role": "tool", "tool_call_id": call.id, "content": result.to_string()}),
                );
                let _ = self
                    .tx
                    .send(BrainEvent::ToolCalled {
                        name: call.name.clone(),
                        arguments,
                        result,
                    })
                    .await;
            }
            if let Some(event) = hand_over {
                let _ = self.tx.send(event).await;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Runs one tool call; bad JSON from the model becomes an error result it can correct.
    async fn run_tool(&self, call: &PendingCall) -> (Value, Value) {
        let arguments: Value = match serde_json::from_str(if call.arguments.trim().is_empty() {
            "{}"
        } else {
            &call.arguments
        }) {
            Ok(v) => v,
            Err(e) => {
                let raw = json!(call.arguments);
                return (
                    raw,
                    json!({"error": format!("arguments are not valid JSON: {e}")}),
                );
            }
        };
        let result = match self.tools.call(&call.name, arguments.clone()).await {
            Ok(value) => {
                if let Ok(mut actions) = self.actions.lock() {
                    actions.push(format!("{}({}) -> {}", call.name, arguments, value));
                }
                value
            }
            Err(e) => json!({"error": e.to_string()}),
        };
        (arguments, result)
    }
}

#[cfg(test)]
mod tests;
