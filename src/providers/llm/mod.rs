//! The agent's brain: turns the conversation so far into the agent's next words and tool calls.
//! The offline default is a deterministic dialogue policy; an OpenAI-compatible LLM sits beside it.

pub mod endpoint;
pub mod offline;
pub mod openai;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::agent::tools::ToolRunner;
use crate::config::Config;

/// The brain the configuration asks for: an OpenAI-compatible LLM when `llm_base_url` or
/// `llm_api_key` is set (with its timeouts and `llm_fallback`), else the offline dialogue
/// policy.
pub fn build_brain(config: &Config) -> Arc<dyn Brain> {
    match endpoint::Endpoint::from_config(config) {
        Some(endpoint) => Arc::new(openai::OpenAiBrain::new(
            endpoint,
            openai::Limits::from_config(config),
        )),
        None => Arc::new(offline::OfflineBrain),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Caller,
}

/// One turn of the conversation as the brain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub text: String,
}

/// A document of the agent's knowledge base.
#[derive(Debug, Clone)]
pub struct KnowledgeDoc {
    pub title: String,
    pub text: String,
}

/// Everything the brain knows about the agent and the call, fixed for the call's length.
#[derive(Debug, Clone)]
pub struct BrainContext {
    pub agent_name: String,
    /// The agent's system prompt / persona instructions.
    pub prompt: String,
    pub greeting: Option<String>,
    pub knowledge: Vec<KnowledgeDoc>,
    /// The caller's number (inbound) or the callee's (outbound).
    pub caller_number: String,
    /// Briefing from `POST /v1/calls/outbound`'s `context`.
    pub outbound_context: Option<String>,
    /// When the call started, so relative dates ("tomorrow") resolve.
    pub now: chrono::DateTime<chrono::Utc>,
    /// The agent's own LLM settings; unset fields take the operator's configuration.
    pub llm: AgentLlm,
}

/// The agent's `llm` object (an extension of the published agent): which model answers for
/// this agent and how. The endpoint and key stay in the operator's configuration.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AgentLlm {
    /// A model the operator's endpoint serves (e.g. `gpt-4o`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// 0–2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Longest reply in tokens, 1–4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

/// Brain → session, in order. `Done` or `Error` ends the reply.
#[derive(Debug, Clone, PartialEq)]
pub enum BrainEvent {
    /// The next piece of the agent's spoken reply (any length; the session splits sentences).
    Text(String),
    /// A tool ran (the brain calls tools itself through its `ToolRunner`); for the call record.
    ToolCalled {
        name: String,
        arguments: serde_json::Value,
        result: serde_json::Value,
    },
    /// Hang up once the reply so far has been spoken.
    EndCall,
    /// Blind-transfer the caller once the reply so far has been spoken.
    Transfer {
        target: String,
    },
    /// A provider behind the brain failed and the reply carries on without it (a retry, a
    /// fallback model, the offline brain); for the call record. `Error` is still sent when
    /// nothing could answer.
    ProviderFailed {
        provider: String,
        error: String,
        /// What answers instead (`retry`, the fallback's name).
        fallback: String,
    },
    Done,
    Error(String),
}

/// A brain serving many calls.
pub trait Brain: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts the brain for one call.
    fn start(&self, context: BrainContext, tools: Arc<dyn ToolRunner>) -> Box<dyn BrainSession>;
}

/// The brain of one call.
pub trait BrainSession: Send {
    /// Starts the reply to the conversation so far (the caller's last words are the last
    /// message). Dropping the receiver cancels the reply, including unfinished tool calls.
    fn reply(&mut self, history: &[Message]) -> mpsc::Receiver<BrainEvent>;
}
