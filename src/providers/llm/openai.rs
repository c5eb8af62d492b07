//! A brain on any OpenAI-compatible chat-completions endpoint: streams the reply's text as it is
//! generated, runs the model's tool calls through the call's `ToolRunner`, answers
//! `lookup_knowledge` from the call's knowledge index, and keeps the caller from waiting on a
//! failing provider.
//!
//! Failures: a failure before the reply said anything is retried while the first-token window
//! lasts, then the configured fallback answers (the offline brain, another model on the same
//! endpoint, or nobody: `Error`, and the agent apologises). Once the reply has said something,
//! nothing is retried or re-answered — a second voice would repeat or contradict it — so the
//! reply ends with what was said. Every failure is reported as `ProviderFailed`.
//!
//! The HTTP and SSE handling is our own (reqwest, `sse.rs`, `round.rs`) rather than
//! async-openai's: it needs the `Retry-After` headers, a deadline on the first token distinct
//! from the idle timeout, and tolerance of chunks its typed structs reject.

mod history;
mod prompt;
mod round;
mod sse;
mod stream;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

pub use self::prompt::LOOKUP_KNOWLEDGE;
use self::round::{Round, ToolCall};
use self::stream::{Window, stream_round};
use super::endpoint::Endpoint;
use super::offline::OfflineSession;
use super::{Brain, BrainContext, BrainEvent, BrainSession, Message, Role};
use crate::agent::knowledge::{KnowledgeIndex, Retriever};
use crate::agent::tools::ToolRunner;
use crate::agent::tools::arguments::{END_CALL, TRANSFER_CALL};
use crate::config::Config;

/// Model turns per reply: speaking, calling tools, speaking about their results.
const MAX_ROUNDS: usize = 4;
const REPLY_BUFFER: usize = 64;

/// What answers when the LLM fails before its reply said anything (`llm_fallback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The offline dialogue policy answers the turn.
    Offline,
    /// Another model on the same endpoint.
    Model(String),
    /// Nobody: the reply fails and the agent apologises.
    None,
}

impl Fallback {
    pub fn parse(setting: &str) -> Self {
        match setting.trim() {
            "" | "offline" => Fallback::Offline,
            "none" => Fallback::None,
            model => Fallback::Model(model.to_string()),
        }
    }
}

/// The brain's limits, from the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub fallback: Fallback,
    /// From asking to the first token (text or tool call), retries included. A model fallback
    /// gets a window of its own.
    pub first_token: Duration,
    /// Longest silence inside a started stream.
    pub idle: Duration,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Limits {
            fallback: Fallback::parse(&config.llm_fallback),
            first_token: Duration::from_millis(config.llm_first_token_timeout_ms),
            idle: Duration::from_millis(config.llm_idle_timeout_ms),
        }
    }
}

pub struct OpenAiBrain {
    endpoint: Endpoint,
    limits: Limits,
}

impl OpenAiBrain {
    pub fn new(endpoint: Endpoint, limits: Limits) -> Self {
        OpenAiBrain { endpoint, limits }
    }
}

impl Brain for OpenAiBrain {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn start(&self, context: BrainContext, tools: Arc<dyn ToolRunner>) -> Box<dyn BrainSession> {
        let retriever: Option<Arc<dyn Retriever>> = (!context.knowledge.is_empty())
            .then(|| Arc::new(KnowledgeIndex::build(&context.knowledge)) as Arc<dyn Retriever>);
        let mut tool_specs: Vec<Value> = tools
            .specs()
            .into_iter()
            .map(|s| json!({"type": "function", "function": {"name": s.name, "description": s.description, "parameters": s.parameters}}))
            .collect();
        if retriever.is_some() {
            tool_specs.push(prompt::lookup_knowledge_spec());
        }
        let offline = (self.limits.fallback == Fallback::Offline)
            .then(|| Mutex::new(OfflineSession::new(&context, tools.clone())));
        Box::new(OpenAiSession {
            call: Arc::new(CallBrain {
                endpoint: self.endpoint.clone(),
                limits: self.limits.clone(),
                model: context
                    .llm
                    .model
                    .clone()
                    .unwrap_or_else(|| self.endpoint.model.clone()),
                temperature: context.llm.temperature,
                max_tokens: context.llm.max_tokens,
                system: prompt::system_prompt(&context),
                tools,
                tool_specs,
                retriever,
                actions: Mutex::new(Vec::new()),
                offline,
            }),
        })
    }
}

/// Everything one call's replies share.
struct CallBrain {
    endpoint: Endpoint,
    limits: Limits,
    /// The agent's model, else the operator's.
    model: String,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    system: String,
    tools: Arc<dyn ToolRunner>,
    tool_specs: Vec<Value>,
    /// `None` when the agent has no knowledge base.
    retriever: Option<Arc<dyn Retriever>>,
    /// What the tools did earlier in the call; the history the session passes holds only words.
    actions: Mutex<Vec<String>>,
    /// The offline brain standing by, when it is the fallback.
    offline: Option<Mutex<OfflineSession>>,
}

struct OpenAiSession {
    call: Arc<CallBrain>,
}

impl BrainSession for OpenAiSession {
    fn reply(&mut self, history: &[Message]) -> mpsc::Receiver<BrainEvent> {
        let (tx, rx) = mpsc::channel(REPLY_BUFFER);
        let reply = Reply {
            call: self.call.clone(),
            history: history.to_vec(),
            tx,
        };
        tokio::spawn(
            async move {
                let tx = reply.tx.clone();
                tokio::select! {
                    () = reply.run() => {}
                    // Dropping the receiver cancels the request and any tool call in flight.
                    () = tx.closed() => {}
                }
            }
            .in_current_span(),
        );
        rx
    }
}

/// What to do after a model failed.
enum Next {
    /// The reply already said something: it ends there.
    EndReply,
    Model(String),
    Offline,
    /// Nothing can answer: `Error`.
    GiveUp,
}

impl Next {
    /// The `fallback` of `ProviderFailed`.
    fn name(&self) -> String {
        match self {
            Next::Model(model) => model.clone(),
            Next::Offline => "offline".into(),
            Next::EndReply | Next::GiveUp => "none".into(),
        }
    }
}

/// One reply of one call.
struct Reply {
    call: Arc<CallBrain>,
    history: Vec<Message>,
    tx: mpsc::Sender<BrainEvent>,
}

impl Reply {
    /// Streams the reply and ends it with `Done` or `Error`.
    async fn run(&self) {
        let call = &self.call;
        let mut messages = self.messages().await;
        let mut model = call.model.clone();
        let mut on_fallback = false;
        // Text went out / a tool changed something in the world, in this reply.
        let (mut spoke, mut acted) = (false, false);
        let mut first_token_by = Instant::now() + call.limits.first_token;
        let mut rounds = 0;
        while rounds < MAX_ROUNDS {
            let provider = format!("llm:{model}");
            let window = Window {
                endpoint: &call.endpoint,
                first_token_by,
                idle: call.limits.idle,
                spoke,
                provider: &provider,
            };
            let mut round = Round::default();
            let streamed =
                stream_round(&window, &self.body(&model, &messages), &mut round, &self.tx).await;
            spoke |= !round.text.is_empty();
            if let Err(failure) = streamed {
                let next = self.after_failure(&model, spoke, on_fallback, acted);
                self.send(BrainEvent::ProviderFailed {
                    provider: provider.clone(),
                    error: failure.to_string(),
                    fallback: next.name(),
                })
                .await;
                match next {
                    Next::EndReply => break,
                    Next::Model(fallback) => {
                        model = fallback;
                        on_fallback = true;
                        first_token_by = Instant::now() + call.limits.first_token;
                        continue;
                    }
                    Next::Offline => return self.offline_answers().await,
                    Next::GiveUp => {
                        return self
                            .send(BrainEvent::Error(format!("{provider}: {failure}")))
                            .await;
                    }
                }
            }
            rounds += 1;
            let calls = round.tool_calls();
            if calls.is_empty() || round.truncated() {
                break;
            }
            messages.push(json!({
                "role": "assistant",
                "content": if round.text.is_empty() { Value::Null } else { json!(round.text) },
                "tool_calls": calls.iter().map(|c| json!({
                    "id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments}
                })).collect::<Vec<_>>(),
            }));
            let mut hand_over = None;
            for tool_call in &calls {
                let (arguments, result) = if tool_call.name == LOOKUP_KNOWLEDGE {
                    self.lookup(tool_call).await
                } else {
                    acted = true;
                    self.run_tool(tool_call).await
                };
                if result.get("error").is_none() {
                    if tool_call.name == END_CALL {
                        hand_over = Some(BrainEvent::EndCall);
                    } else if tool_call.name == TRANSFER_CALL
                        && let Some(target) = result.get("target").and_then(Value::as_str)
                    {
                        hand_over = Some(BrainEvent::Transfer {
                            target: target.to_string(),
                        });
                    }
                }
                messages.push(json!({"role": "tool", "tool_call_id": tool_call.id, "content": result.to_string()}));
                self.send(BrainEvent::ToolCalled {
                    name: tool_call.name.clone(),
                    arguments,
                    result,
                })
                .await;
            }
            if let Some(event) = hand_over {
                self.send(event).await;
                break;
            }
            first_token_by = Instant::now() + call.limits.first_token;
        }
        self.send(BrainEvent::Done).await;
    }

    async fn send(&self, event: BrainEvent) {
        // A closed receiver cancels the whole reply (see `reply`).
        let _ = self.tx.send(event).await;
    }

    fn after_failure(&self, model: &str, spoke: bool, on_fallback: bool, acted: bool) -> Next {
        if spoke {
            return Next::EndReply;
        }
        if on_fallback {
            return Next::GiveUp;
        }
        match &self.call.limits.fallback {
            Fallback::Model(fallback) if fallback != model => Next::Model(fallback.clone()),
            // The offline brain would answer the caller's words afresh and could redo what a
            // tool of this reply already did (book twice).
            Fallback::Offline if !acted && self.call.offline.is_some() => Next::Offline,
            _ => Next::GiveUp,
        }
    }

    /// The system prompt, the conversation (trimmed for long calls) and this turn's knowledge.
    async fn messages(&self) -> Vec<Value> {
        let call = &self.call;
        let mut system = call.system.clone();
        let actions = call.actions.lock().map(|a| a.clone()).unwrap_or_default();
        if !actions.is_empty() {
            system.push_str("\n\nDone so far on this call:\n");
            system.push_str(&actions.join("\n"));
        }
        let (conversation, trimmed) = history::trim(history::conversation(&self.history));
        if trimmed {
            system.push_str("\n\nThe start of this call is no longer shown.");
        }
        let mut messages = vec![json!({"role": "system", "content": system})];
        messages.extend(conversation);
        let query = prompt::knowledge_query(&self.history);
        if let Some(retriever) = &call.retriever
            && !query.is_empty()
        {
            let passages = retriever.retrieve(&query, prompt::PASSAGES_PER_TURN).await;
            if !passages.is_empty() {
                prompt::insert_knowledge(&mut messages, prompt::knowledge_section(&passages));
            }
        }
        messages
    }

    fn body(&self, model: &str, messages: &[Value]) -> Value {
        let call = &self.call;
        let mut body = json!({"model": model, "messages": messages, "stream": true});
        if !call.tool_specs.is_empty() {
            body["tools"] = json!(call.tool_specs);
        }
        if let Some(temperature) = call.temperature {
            // Through its decimal form, so 0.3 is sent as 0.3 and not as 0.30000001192….
            let decimal: f64 = temperature
                .to_string()
                .parse()
                .unwrap_or(f64::from(temperature));
            body["temperature"] = json!(decimal);
        }
        if let Some(max_tokens) = call.max_tokens {
            // `max_tokens` rather than `max_completion_tokens`: every OpenAI-compatible server
            // reads it.
            body["max_tokens"] = json!(max_tokens);
        }
        body
    }

    /// The offline brain answers this turn in the model's place.
    async fn offline_answers(&self) {
        let Some(offline) = &self.call.offline else {
            return;
        };
        // The model answered every caller turn up to its last words.
        let last_agent = self.history.iter().rposition(|m| m.role == Role::Agent);
        let answered = last_agent.map_or(0, |at| {
            self.history[..at]
                .iter()
                .filter(|m| m.role == Role::Caller)
                .count()
        });
        // The lock is held only to start the reply (a poisoned lock holds its guard: dropped).
        let rx = match offline.lock() {
            Ok(mut session) => Some(session.reply_after(&self.history, answered)),
            Err(_) => None,
        };
        let Some(mut rx) = rx else {
            return self
                .send(BrainEvent::Error("offline brain unavailable".into()))
                .await;
        };
        while let Some(event) = rx.recv().await {
            if let BrainEvent::ToolCalled {
                name,
                arguments,
                result,
            } = &event
                && result.get("error").is_none()
            {
                self.remember(name, arguments, result);
            }
            let last = matches!(event, BrainEvent::Done | BrainEvent::Error(_));
            self.send(event).await;
            if last {
                return;
            }
        }
    }

    fn remember(&self, name: &str, arguments: &Value, result: &Value) {
        if let Ok(mut actions) = self.call.actions.lock() {
            actions.push(format!("{name}({arguments}) -> {result}"));
        }
    }

    /// `lookup_knowledge`, answered from the call's knowledge index.
    async fn lookup(&self, tool_call: &ToolCall) -> (Value, Value) {
        let arguments: Value = serde_json::from_str(&tool_call.arguments)
            .unwrap_or_else(|_| json!(tool_call.arguments));
        let Some(query) = arguments
            .get("query")
            .and_then(Value::as_str)
            .filter(|q| !q.trim().is_empty())
        else {
            return (
                arguments,
                json!({"error": "invalid arguments: query (a string) is required"}),
            );
        };
        let passages = match &self.call.retriever {
            Some(retriever) => retriever.retrieve(query, prompt::PASSAGES_PER_LOOKUP).await,
            None => Vec::new(),
        };
        let result = prompt::lookup_result(&passages);
        (arguments, result)
    }

    /// Runs one tool call; bad JSON from the model becomes an error result it can correct.
    async fn run_tool(&self, tool_call: &ToolCall) -> (Value, Value) {
        let raw = if tool_call.arguments.trim().is_empty() {
            "{}"
        } else {
            &tool_call.arguments
        };
        let arguments: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                return (
                    json!(tool_call.arguments),
                    json!({"error": format!("arguments are not valid JSON: {e}")}),
                );
            }
        };
        let result = match self
            .call
            .tools
            .call(&tool_call.name, arguments.clone())
            .await
        {
            Ok(value) => {
                self.remember(&tool_call.name, &arguments, &value);
                value
            }
            Err(e) => json!({"error": e.to_string()}),
        };
        (arguments, result)
    }
}

#[cfg(test)]
mod tests;
