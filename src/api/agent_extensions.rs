//! Validation of the agent's extensions: its `llm` settings and its operator HTTP tools.

use axum::http::{HeaderName, HeaderValue};

use super::error::{ApiError, ApiResult};
use super::validate::{outbound_url, text};
use crate::agent::tools::arguments::call_tool_specs;
use crate::agent::tools::http_tool::{self, HttpTool, METHODS, TIMEOUT_MS};
use crate::agent::tools::schema::check_schema;
use crate::providers::llm::AgentLlm;
use crate::providers::llm::openai::LOOKUP_KNOWLEDGE;

const MAX_HEADERS: usize = 20;

pub fn check_llm(llm: &AgentLlm) -> ApiResult<()> {
    if let Some(model) = &llm.model {
        text(model, "llm.model", 200)?;
    }
    if let Some(t) = llm.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::validation("llm.temperature", "must be 0–2"));
    }
    if let Some(n) = llm.max_tokens
        && !(1..=4096).contains(&n)
    {
        return Err(ApiError::validation("llm.max_tokens", "must be 1–4096"));
    }
    Ok(())
}

/// Checks the tools and fills `"[redacted]"` header values from `stored` (the agent's tools
/// before this update).
pub fn check_tools(
    tools: &mut [HttpTool],
    stored: &[HttpTool],
    allow_local: bool,
) -> ApiResult<()> {
    if tools.len() > http_tool::MAX_TOOLS {
        return Err(ApiError::validation(
            "tools",
            format!("holds at most {} tools", http_tool::MAX_TOOLS),
        ));
    }
    let built_in: Vec<String> = call_tool_specs().into_iter().map(|s| s.name).collect();
    for (i, tool) in tools.iter().enumerate() {
        let field = |name: &str| format!("tools[{i}].{name}");
        let valid_name = !tool.name.is_empty()
            && tool.name.len() <= 64
            && tool
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(ApiError::validation(
                &field("name"),
                "must be 1–64 letters, digits, `_` or `-`",
            ));
        }
        if built_in.contains(&tool.name) || tool.name == LOOKUP_KNOWLEDGE {
            return Err(ApiError::validation(
                &field("name"),
                format!("{:?} is a built-in tool", tool.name),
            ));
        }
        if tools[..i].iter().any(|t| t.name == tool.name) {
            return Err(ApiError::validation(
                &field("name"),
                format!("{:?} is declared twice", tool.name),
            ));
        }
        text(&tool.description, &field("description"), 1024)?;
        check_schema(&tool.parameters)
            .map_err(|e| ApiError::validation(&field("parameters"), e))?;
        outbound_url(&tool.url, &field("url"), allow_local)?;
        if !METHODS.contains(&tool.method.as_str()) {
            return Err(ApiError::validation(
                &field("method"),
                format!("must be one of {}", METHODS.join(", ")),
            ));
        }
        if !TIMEOUT_MS.contains(&tool.timeout_ms) {
            return Err(ApiError::validation(
                &field("timeout_ms"),
                format!("must be {}–{}", TIMEOUT_MS.start(), TIMEOUT_MS.end()),
            ));
        }
        if tool.headers.0.len() > MAX_HEADERS {
            return Err(ApiError::validation(
                &field("headers"),
                format!("holds at most {MAX_HEADERS} headers"),
            ));
        }
        for (name, value) in &tool.headers.0 {
            if HeaderName::from_bytes(name.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
            {
                return Err(ApiError::validation(
                    &field("headers"),
                    format!("{name:?} is not a valid header name and value"),
                ));
            }
        }
    }
    http_tool::keep_redacted(tools, stored).map_err(|e| ApiError::validation("tools", e))
}
