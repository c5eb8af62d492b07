//! Telnyx Call Control REST (API v2): placing calls and the commands on a live one. One client
//! per engine; `Bearer` API key; errors carry Telnyx's own `errors[].detail`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// Telnyx answers commands in well under a second; a stuck request must not hold a call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    #[error("telnyx {status}: {detail}")]
    Api { status: u16, detail: String },
    #[error("telnyx unreachable: {0}")]
    Transport(String),
    #[error("telnyx answered without a call_control_id")]
    NoCallControlId,
}

pub struct TelnyxRest {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

/// A command on a live call (`POST /v2/calls/{id}/actions/{name}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Answer(Value),
    Reject { cause: &'static str },
    Hangup,
    Transfer { to: String },
    SendDtmf { digits: String },
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Answer(_) => "answer",
            Action::Reject { .. } => "reject",
            Action::Hangup => "hangup",
            Action::Transfer { .. } => "transfer",
            Action::SendDtmf { .. } => "send_dtmf",
        }
    }

    fn body(&self) -> Value {
        match self {
            Action::Answer(body) => body.clone(),
            Action::Reject { cause } => json!({ "cause": cause }),
            Action::Hangup => json!({}),
            Action::Transfer { to } => json!({ "to": to }),
            Action::SendDtmf { digits } => json!({ "digits": digits }),
        }
    }
}

#[derive(Deserialize)]
struct Created {
    data: CreatedData,
}

#[derive(Deserialize)]
struct CreatedData {
    call_control_id: Option<String>,
}

impl TelnyxRest {
    pub fn new(base: &str, api_key: &str) -> Result<Self, reqwest::Error> {
        Ok(TelnyxRest {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
        })
    }

    /// `POST /v2/calls`; the new call's `call_control_id`.
    pub async fn dial(&self, body: &Value) -> Result<String, RestError> {
        let response = self.post(&format!("{}/v2/calls", self.base), body).await?;
        let created: Created =
            serde_json::from_slice(&response).map_err(|_| RestError::NoCallControlId)?;
        created
            .data
            .call_control_id
            .filter(|id| !id.is_empty())
            .ok_or(RestError::NoCallControlId)
    }

    pub async fn command(&self, call_control_id: &str, action: &Action) -> Result<(), RestError> {
        // The id is opaque (`v3:…`): it goes in the path percent-encoded.
        let url = format!(
            "{}/v2/calls/{}/actions/{}",
            self.base,
            encode_segment(call_control_id),
            action.name()
        );
        self.post(&url, &action.body()).await.map(|_| ())
    }

    async fn post(&self, url: &str, body: &Value) -> Result<Vec<u8>, RestError> {
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .map_err(|e| RestError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RestError::Transport(e.without_url().to_string()))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(RestError::Api {
            status: status.as_u16(),
            detail: error_detail(&bytes),
        })
    }
}

/// Telnyx's `{"errors": [{"code", "title", "detail"}]}`, as one line.
fn error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ApiError>,
    }
    #[derive(Deserialize)]
    struct ApiError {
        code: Option<Value>,
        title: Option<String>,
        detail: Option<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<Errors>(body) else {
        let text = String::from_utf8_lossy(body);
        return text.chars().take(200).collect();
    };
    parsed
        .errors
        .iter()
        .map(|e| {
            let text = e
                .detail
                .as_deref()
                .or(e.title.as_deref())
                .unwrap_or("error");
            match &e.code {
                Some(Value::String(code)) => format!("{text} ({code})"),
                Some(Value::Number(code)) => format!("{text} ({code})"),
                _ => text.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_telnyx_wrote_them() {
        let body = br#"{"errors":[{"code":"10015","title":"Invalid value","detail":"The 'to' number is not valid.","source":{"pointer":"/to"}}]}"#;
        assert_eq!(error_detail(body), "The 'to' number is not valid. (10015)");
        assert_eq!(
            error_detail(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }

    #[test]
    fn call_control_ids_stay_one_path_segment() {
        assert_eq!(encode_segment("v3:Ab-c_d"), "v3:Ab-c_d");
        assert_eq!(encode_segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn commands_have_telnyx_bodies() {
        assert_eq!(Action::Hangup.body(), json!({}));
        assert_eq!(
            Action::Transfer {
                to: "+15550003000".into()
            }
            .body(),
            json!({"to": "+15550003000"})
        );
        assert_eq!(
            Action::SendDtmf {
                digits: "12#".into()
            }
            .body(),
            json!({"digits": "12#"})
        );
        assert_eq!(Action::Reject { cause: "USER_BUSY" }.name(), "reject");
    }
}
