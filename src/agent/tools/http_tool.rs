//! Operator HTTP tools: an agent's own tools (an extension of the published agent). The model
//! sees each as a function; the engine checks the arguments against the declared schema, calls
//! the operator's URL through the SSRF guard and hands the answer back to the model.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{ToolError, ToolSpec, schema};
use crate::net::guarded_client::{self, check_literal_host, describe};

/// Tools one agent may declare.
pub const MAX_TOOLS: usize = 20;
/// What the API shows instead of a header's value; sending it back keeps the stored value.
pub const REDACTED: &str = "[redacted]";
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=30_000;
/// Enough for a lookup's answer; a model cannot use more and a bigger answer is cut here.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;
const USER_AGENT: &str = concat!("Boltcall-Tools/", env!("CARGO_PKG_VERSION"));

/// One operator tool as the agent stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpTool {
    /// Function name the model calls (`[A-Za-z0-9_-]`, at most 64).
    pub name: String,
    /// What the tool does and when to use it, for the model.
    pub description: String,
    /// JSON Schema (`type: object`) of the arguments; the engine enforces it.
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// `https://` URL called with the arguments (JSON body; query string for GET and DELETE).
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Sent with every call. Write-only: answers show `"[redacted]"`, and sending
    /// `"[redacted]"` back keeps the stored value.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub headers: SecretHeaders,
    /// 100–30000 ms, default 5000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_method() -> String {
    "POST".into()
}

fn default_timeout() -> u64 {
    5_000
}

/// Header values are secrets (API keys of the operator's backend): stored, never shown.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SecretHeaders(pub BTreeMap<String, String>);

impl Serialize for SecretHeaders {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.keys().map(|name| (name, REDACTED)))
    }
}

/// The tools as the store keeps them: header values in clear (the API's serialisation hides
/// them).
pub fn stored_json(tools: &[HttpTool]) -> String {
    let mut value = serde_json::to_value(tools).unwrap_or_else(|_| json!([]));
    if let Some(list) = value.as_array_mut() {
        for (tool, stored) in tools.iter().zip(list) {
            stored["headers"] = json!(tool.headers.0);
        }
    }
    value.to_string()
}

/// Fills values sent as `"[redacted]"` from the tool of the same name already stored; `Err`
/// names a redacted header with nothing stored to keep.
pub fn keep_redacted(tools: &mut [HttpTool], stored: &[HttpTool]) -> Result<(), String> {
    for tool in tools.iter_mut() {
        let before = stored.iter().find(|t| t.name == tool.name);
        for (name, value) in tool.headers.0.iter_mut() {
            if value != REDACTED {
                continue;
            }
            match before.and_then(|t| t.headers.0.get(name)) {
                Some(kept) => value.clone_from(kept),
                None => {
                    return Err(format!(
                        "tool {:?} header {name:?}: \"{REDACTED}\" keeps a stored value, and none is stored",
                        tool.name
                    ));
                }
            }
        }
    }
    Ok(())
}

impl HttpTool {
    pub fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }

    /// Calls the operator's URL with `arguments`. A non-2xx answer is an error the model is
    /// told about, with the body's start so it can explain or retry.
    pub async fn run(
        &self,
        arguments: Value,
        call_id: &str,
        allow_local: bool,
    ) -> Result<Value, ToolError> {
        schema::validate(&self.parameters, &arguments).map_err(ToolError::InvalidArguments)?;
        let failed = |why: String| ToolError::Failed(format!("{}: {why}", self.name));
        let mut url = url::Url::parse(&self.url).map_err(|e| failed(format!("bad URL: {e}")))?;
        check_literal_host(&url, allow_local).map_err(failed)?;
        let method = reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| failed(format!("bad method {}", self.method)))?;
        let in_query = matches!(method, reqwest::Method::GET | reqwest::Method::DELETE);
        if in_query {
            append_query(&mut url, &arguments);
        }
        let mut request = client(allow_local)
            .request(method, url)
            .timeout(Duration::from_millis(self.timeout_ms))
            .header("Boltcall-Call-Id", call_id);
        for (name, value) in &self.headers.0 {
            request = request.header(name, value);
        }
        if !in_query {
            request = request.json(&arguments);
        }
        let response = request.send().await.map_err(|e| failed(describe(&e)))?;
        let status = response.status();
        let body = read_capped(response)
            .await
            .map_err(|e| failed(describe(&e)))?;
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        if status.is_success() {
            Ok(json!({"status": status.as_u16(), "body": body}))
        } else {
            Err(failed(format!("HTTP {}: {body}", status.as_u16())))
        }
    }
}

/// One client per guard setting for every call of the process: its connection pool is shared,
/// and each request sets its own timeout.
fn client(allow_local: bool) -> &'static reqwest::Client {
    static CLIENTS: [OnceLock<reqwest::Client>; 2] = [OnceLock::new(), OnceLock::new()];
    CLIENTS[usize::from(allow_local)].get_or_init(|| {
        guarded_client::builder(allow_local)
            .user_agent(USER_AGENT)
            .build()
            .expect("a client with a resolver and no TLS options builds")
    })
}

/// GET/DELETE arguments as query parameters: scalars as text, anything nested as JSON.
fn append_query(url: &mut url::Url, arguments: &Value) {
    let Some(fields) = arguments.as_object().filter(|f| !f.is_empty()) else {
        return;
    };
    let mut query = url.query_pairs_mut();
    for (name, value) in fields {
        match value {
            Value::String(s) => query.append_pair(name, s),
            Value::Null => query.append_pair(name, ""),
            other => query.append_pair(name, &other.to_string()),
        };
    }
}

async fn read_capped(response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = MAX_RESPONSE_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_RESPONSE_BYTES {
            break;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(headers: &[(&str, &str)]) -> HttpTool {
        HttpTool {
            name: "check_order".into(),
            description: "Look up an order".into(),
            parameters: json!({"type": "object"}),
            url: "https://api.example.com/orders".into(),
            method: "GET".into(),
            headers: SecretHeaders(
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            timeout_ms: 5_000,
        }
    }

    #[test]
    fn header_values_are_stored_but_never_shown() {
        let tools = vec![tool(&[("Authorization", "Bearer s3cret")])];
        let shown = serde_json::to_string(&tools).unwrap();
        assert!(
            !shown.contains("s3cret") && shown.contains(REDACTED),
            "{shown}"
        );
        let stored = stored_json(&tools);
        let back: Vec<HttpTool> = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, tools);
    }

    #[test]
    fn redacted_values_keep_what_is_stored_and_nothing_else() {
        let stored = vec![tool(&[("Authorization", "Bearer s3cret")])];
        let mut sent = vec![tool(&[("Authorization", REDACTED), ("X-Extra", "1")])];
        keep_redacted(&mut sent, &stored).unwrap();
        assert_eq!(sent[0].headers.0["Authorization"], "Bearer s3cret");
        assert_eq!(sent[0].headers.0["X-Extra"], "1");
        let mut unknown = vec![tool(&[("X-Key", REDACTED)])];
        let err = keep_redacted(&mut unknown, &stored).unwrap_err();
        assert!(err.contains("X-Key"), "{err}");
    }

    #[test]
    fn query_arguments_keep_their_shape() {
        let mut url = url::Url::parse("https://api.example.com/orders?v=2").unwrap();
        append_query(
            &mut url,
            &json!({"id": "A 1", "n": 2, "tags": ["x"], "none": null}),
        );
        assert_eq!(
            url.as_str(),
            "https://api.example.com/orders?v=2&id=A+1&n=2&none=&tags=%5B%22x%22%5D"
        );
    }
}
