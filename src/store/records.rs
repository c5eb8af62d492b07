//! Stored resources. Each serialises to exactly its public `/v1` shape (internal columns are
//! skipped), which is also the `data` of the events it causes.

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use super::time::public_ts;
use crate::agent::tools::http_tool::HttpTool;
use crate::analysis::Outcome;
use crate::providers::llm::AgentLlm;

fn ts<S: Serializer>(stored: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&public_ts(stored))
}

fn opt_ts<S: Serializer>(stored: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match stored {
        Some(t) => s.serialize_str(&public_ts(t)),
        None => s.serialize_none(),
    }
}

/// A JSON value kept in a TEXT column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonText<T>(pub T);

impl<T: serde::de::DeserializeOwned> TryFrom<String> for JsonText<T> {
    type Error = serde_json::Error;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&text).map(JsonText)
    }
}

impl<T: Serialize> Serialize for JsonText<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<T> std::ops::Deref for JsonText<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AgentRecord {
    pub id: String,
    #[serde(skip)]
    pub workspace_id: String,
    #[serde(skip)]
    pub live: bool,
    pub name: String,
    pub voice_id: String,
    pub greeting: Option<String>,
    pub prompt: Option<String>,
    pub knowledge_base_id: Option<String>,
    pub phone_number: Option<String>,
    /// Extension: the only numbers and `sip:` URIs `transfer_call` may send a caller to.
    #[sqlx(try_from = "String")]
    #[schema(value_type = Vec<String>)]
    pub transfer_targets: JsonText<Vec<String>>,
    /// Extension: this agent's LLM settings (unset fields use the operator's).
    #[sqlx(try_from = "String")]
    #[schema(value_type = AgentLlm)]
    pub llm: JsonText<AgentLlm>,
    /// Extension: operator HTTP tools the LLM may call (header values never shown).
    #[sqlx(try_from = "String")]
    #[schema(value_type = Vec<HttpTool>)]
    pub tools: JsonText<Vec<HttpTool>>,
    /// `active` or `paused`.
    pub status: String,
    #[serde(serialize_with = "ts")]
    pub created_at: String,
    #[serde(serialize_with = "ts")]
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct KnowledgeBaseRecord {
    pub id: String,
    #[serde(skip)]
    pub workspace_id: String,
    #[serde(skip)]
    pub live: bool,
    pub name: String,
    pub description: Option<String>,
    /// Number of documents in the knowledge base.
    pub document_count: i64,
    #[serde(serialize_with = "ts")]
    pub created_at: String,
    #[serde(serialize_with = "ts")]
    pub updated_at: String,
}

/// A text document of a knowledge base.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct KnowledgeDocument {
    pub id: String,
    pub knowledge_base_id: String,
    pub title: String,
    #[sqlx(rename = "body")]
    pub text: String,
    #[serde(serialize_with = "ts")]
    pub created_at: String,
}

/// One turn of a call transcript, with its position in the call (ms since answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptEntry {
    /// `agent` or `caller`.
    pub role: String,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A provider that failed during a call, and what the caller got instead (an extension of the
/// published call record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderFailure {
    /// Which part and engine: `stt:deepgram`, `tts:elevenlabs`, `llm:openai`, ….
    pub provider: String,
    pub error: String,
    /// Call time of the failure, ms since answer.
    pub at_ms: u64,
    /// What the caller heard instead (a fallback's answer, an apology, a skipped sentence).
    pub heard_instead: String,
}

/// A tool the agent ran during a call (extension of the published call record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolCallEntry {
    /// `book_appointment`, `transfer_call`, an operator tool's name, ….
    pub name: String,
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    /// What the tool answered, as the agent saw it (errors included).
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct CallRecord {
    pub id: String,
    #[serde(skip)]
    pub workspace_id: String,
    #[serde(skip)]
    pub live: bool,
    pub agent_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub caller: String,
    #[sqlx(rename = "to_number")]
    pub to: String,
    #[serde(skip)]
    pub carrier_call_id: Option<String>,
    /// Briefing given to the agent for an outbound call.
    pub context: Option<String>,
    /// `ringing`, `in-progress`, `completed`, `missed`, `failed`, `busy` or `no-answer`.
    pub status: String,
    pub duration_seconds: Option<i64>,
    /// `positive`, `neutral` or `negative`.
    pub sentiment: Option<String>,
    pub summary: Option<String>,
    #[sqlx(try_from = "String")]
    #[schema(value_type = Vec<String>)]
    pub tags: JsonText<Vec<String>>,
    #[sqlx(try_from = "String")]
    #[schema(value_type = Vec<TranscriptEntry>)]
    pub transcript: JsonText<Vec<TranscriptEntry>>,
    #[serde(skip)]
    pub recording_path: Option<String>,
    /// Per-turn latency breakdown recorded by the call path.
    #[sqlx(try_from = "String")]
    #[schema(value_type = Object)]
    pub latency: JsonText<serde_json::Value>,
    pub end_reason: Option<String>,
    /// Extension: what the call came to (`result`: `appointment-booked`, `lead-captured`,
    /// `question-answered`, `message-taken`, `transferred`, `callback-requested`,
    /// `not-resolved`) and the business's `follow_up`; `null` until analysed or when unknown.
    #[sqlx(try_from = "String")]
    #[schema(value_type = Option<Object>)]
    pub outcome: JsonText<Option<Outcome>>,
    /// Extension: providers that failed during the call, oldest first.
    #[sqlx(try_from = "String")]
    #[schema(value_type = Vec<ProviderFailure>)]
    pub provider_failures: JsonText<Vec<ProviderFailure>>,
    /// Extension: the tools the agent ran, in order, with their arguments and results.
    #[sqlx(try_from = "String")]
    #[schema(value_type = Vec<ToolCallEntry>)]
    pub tool_calls: JsonText<Vec<ToolCallEntry>>,
    /// Extension: who answered an outbound call with `machine_detection` (`human`, `machine`,
    /// `fax`, `unknown`); `null` when detection did not run.
    pub answered_by: Option<String>,
    /// Extension: where the call was transferred (`transfer_call`); `null` when it was not.
    pub transferred_to: Option<String>,
    /// Set by the store from the public URL; `null` until a recording exists.
    #[sqlx(skip)]
    pub recording_url: Option<String>,
    #[sqlx(skip)]
    pub transcript_url: String,
    #[serde(serialize_with = "ts")]
    pub created_at: String,
    #[serde(serialize_with = "opt_ts")]
    #[schema(value_type = Option<String>)]
    pub ended_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct LeadRecord {
    pub id: String,
    #[serde(skip)]
    pub workspace_id: String,
    #[serde(skip)]
    pub live: bool,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// `new`, `contacted`, `qualified` or `converted`.
    pub status: String,
    pub source: Option<String>,
    pub score: Option<i64>,
    #[sqlx(try_from = "String")]
    #[schema(value_type = Vec<String>)]
    pub tags: JsonText<Vec<String>>,
    #[serde(serialize_with = "ts")]
    pub created_at: String,
    #[serde(serialize_with = "ts")]
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct MessageRecord {
    pub id: String,
    #[serde(skip)]
    pub workspace_id: String,
    #[serde(skip)]
    pub live: bool,
    /// `sms`, `whatsapp` or `email`.
    pub channel: String,
    /// `outbound` or `inbound`.
    pub direction: String,
    #[sqlx(rename = "to_number")]
    pub to: String,
    pub from_number: Option<String>,
    pub body: Option<String>,
    pub template: Option<String>,
    #[sqlx(try_from = "String")]
    #[schema(value_type = Option<Object>)]
    pub variables: JsonText<Option<serde_json::Value>>,
    pub lead_id: Option<String>,
    /// Outbound: `queued` (handed to the provider), `sent` (left the provider), then
    /// `delivered`, `undelivered` or `failed`, as the provider reports. Inbound: `received`.
    pub status: String,
    /// SMS segments the body takes (GSM-7: 160, or 153 each when split; UCS-2: 70, or 67).
    pub segments: Option<i64>,
    /// The provider's id of the message (Twilio's `SM…`/`MM…` SID).
    pub provider_sid: Option<String>,
    /// The provider's error code when the message failed or was undelivered.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    #[serde(serialize_with = "opt_ts")]
    pub sent_at: Option<String>,
    #[serde(serialize_with = "opt_ts")]
    pub delivered_at: Option<String>,
    #[serde(serialize_with = "opt_ts")]
    pub failed_at: Option<String>,
    #[serde(serialize_with = "ts")]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AppointmentRecord {
    pub id: String,
    #[serde(skip)]
    pub workspace_id: String,
    #[serde(skip)]
    pub live: bool,
    pub lead_id: Option<String>,
    pub agent_id: Option<String>,
    pub title: String,
    #[serde(serialize_with = "ts")]
    pub start_time: String,
    #[serde(serialize_with = "ts")]
    pub end_time: String,
    /// `upcoming`, `completed` or `cancelled`.
    pub status: String,
    #[serde(serialize_with = "ts")]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct WebhookRecord {
    pub id: String,
    #[serde(skip)]
    pub workspace_id: String,
    #[serde(skip)]
    pub live: bool,
    pub url: String,
    #[sqlx(try_from = "String")]
    #[schema(value_type = Vec<String>)]
    pub events: JsonText<Vec<String>>,
    /// Signing secret; shown only in the response that created the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `active`, or `disabled` (by `PATCH`, or by the engine after a whole retry schedule
    /// failed; `PATCH` with `status: "active"` re-enables it).
    pub status: String,
    /// Why the webhook is disabled; null while active.
    pub disabled_reason: Option<String>,
    #[serde(serialize_with = "ts")]
    pub created_at: String,
}

/// A call as the call path creates it.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub agent_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub caller: String,
    pub to: String,
    pub carrier_call_id: Option<String>,
    pub status: String,
    /// Outbound briefing for the agent.
    pub context: Option<String>,
}

/// Everything the call path knows when a call ends.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// `completed`, `missed`, `failed`, `busy` or `no-answer`.
    pub status: String,
    pub ended_at: chrono::DateTime<chrono::Utc>,
    pub duration_seconds: u64,
    pub transcript: Vec<TranscriptEntry>,
    pub summary: Option<String>,
    pub sentiment: Option<String>,
    pub tags: Vec<String>,
    /// Path of the stereo WAV, when one was written.
    pub recording_path: Option<String>,
    /// Per-turn latency breakdown, exposed as-is by `GET /v1/calls/:id`.
    pub latency: serde_json::Value,
    pub end_reason: Option<String>,
    pub outcome: Option<Outcome>,
    pub provider_failures: Vec<ProviderFailure>,
    pub tool_calls: Vec<ToolCallEntry>,
}

impl CallOutcome {
    /// The record of a call that ended before any conversation: no transcript, no audio.
    pub fn unanswered(status: &str, end_reason: impl Into<String>) -> Self {
        CallOutcome {
            status: status.into(),
            ended_at: chrono::Utc::now(),
            duration_seconds: 0,
            transcript: Vec::new(),
            summary: None,
            sentiment: None,
            tags: Vec::new(),
            recording_path: None,
            latency: serde_json::json!({}),
            end_reason: Some(end_reason.into()),
            outcome: None,
            provider_failures: Vec::new(),
            tool_calls: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewLead {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub source: Option<String>,
    pub tags: Vec<String>,
}

/// Fields to change on a lead; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LeadPatch {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub source: Option<String>,
    pub score: Option<i64>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct NewAppointment {
    pub lead_id: Option<String>,
    pub agent_id: Option<String>,
    pub title: String,
    pub start_time: chrono::DateTime<chrono::Utc>,
    pub end_time: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone)]
pub struct NewAgent {
    pub name: String,
    pub voice_id: String,
    pub greeting: Option<String>,
    pub prompt: Option<String>,
    pub knowledge_base_id: Option<String>,
    pub phone_number: Option<String>,
    /// Validated `transfer_call` targets (`api::validate::transfer_target`).
    pub transfer_targets: Vec<String>,
    pub llm: AgentLlm,
    /// Validated operator tools, header values in clear.
    pub tools: Vec<HttpTool>,
}

/// Fields to change on an agent; the outer `None` leaves a field as it is, `Some(None)` clears
/// an optional one.
#[derive(Debug, Clone, Default)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub voice_id: Option<String>,
    pub greeting: Option<Option<String>>,
    pub prompt: Option<Option<String>>,
    pub knowledge_base_id: Option<Option<String>>,
    pub phone_number: Option<Option<String>>,
    pub transfer_targets: Option<Vec<String>>,
    pub llm: Option<AgentLlm>,
    /// Replaces the tools; `"[redacted]"` header values already resolved by the caller.
    pub tools: Option<Vec<HttpTool>>,
    pub status: Option<String>,
}

/// A message to store (and, through `Messaging::send`, to send); numbers are E.164.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub channel: String,
    pub to: String,
    pub from_number: Option<String>,
    pub body: Option<String>,
    pub template: Option<String>,
    pub variables: Option<serde_json::Value>,
    pub lead_id: Option<String>,
    /// SMS segments; `Messaging::send` counts them.
    pub segments: Option<i64>,
}

/// A message a provider delivered to us.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub channel: String,
    /// Our number (E.164) the message was sent to.
    pub to: String,
    /// The sender (E.164).
    pub from_number: String,
    pub body: Option<String>,
    pub provider_sid: String,
    pub lead_id: String,
    pub segments: Option<i64>,
}
