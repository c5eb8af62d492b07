//! Tools the brain can call during a call: the same interface for the offline brain and LLMs.

pub mod arguments;
mod call_tools;
pub mod http_tool;
pub mod schema;

pub use call_tools::CallTools;

use futures::future::BoxFuture;
use serde::Serialize;

/// What a tool is, as an LLM's function-calling schema describes it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool {0}")]
    Unknown(String),
    /// The arguments do not fit the schema; the message tells the brain what to fix.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("tool failed: {0}")]
    Failed(String),
}

/// Runs tools on behalf of one call (`book_appointment`, `capture_lead`, `update_lead`,
/// `end_call`, `transfer_call`, …).
pub trait ToolRunner: Send + Sync {
    fn specs(&self) -> Vec<ToolSpec>;
    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, ToolError>>;
}
