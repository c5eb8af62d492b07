//! The operator's OpenAI-compatible chat-completions endpoint, shared by the brain and the
//! post-call analysis: where it is, the key, and an HTTP client with the configured connect
//! timeout.

use std::time::Duration;

use serde_json::Value;

use crate::config::Config;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

#[derive(Clone)]
pub struct Endpoint {
    http: reqwest::Client,
    /// `{base}/chat/completions`.
    url: String,
    api_key: String,
    /// The operator's default model.
    pub model: String,
}

impl Endpoint {
    pub fn new(base_url: &str, api_key: &str, model: &str, connect_timeout: Duration) -> Self {
        Endpoint {
            http: reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .build()
                .unwrap_or_default(),
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key: api_key.to_string(),
            model: model.to_string(),
        }
    }

    /// The configured endpoint, or `None` when neither `llm_base_url` nor `llm_api_key` is set
    /// (no LLM: the offline brain and word-list analysis).
    pub fn from_config(config: &Config) -> Option<Self> {
        if config.llm_base_url.is_none() && config.llm_api_key.is_none() {
            return None;
        }
        Some(Endpoint::new(
            config.llm_base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            config.llm_api_key.as_deref().unwrap_or_default(),
            config.llm_model.as_deref().unwrap_or(DEFAULT_MODEL),
            Duration::from_millis(config.llm_connect_timeout_ms),
        ))
    }

    /// A chat-completions request with `body`, not yet sent.
    pub fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let request = self.http.post(&self.url).json(body);
        if self.api_key.is_empty() {
            request
        } else {
            request.bearer_auth(&self.api_key)
        }
    }
}
