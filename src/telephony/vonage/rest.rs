//! The Voice REST API calls the engine makes: create a call, and hang up, transfer or send
//! DTMF on a live one. Each request carries a fresh RS256 token of the application.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::api_token::ApiSigner;
use super::ncco::vonage_number;

/// How long Vonage gets to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Vonage answered with an error (its `title` and `detail`).
    #[error("vonage refused ({status}): {message}")]
    Api { status: u16, message: String },
    #[error("vonage unreachable: {0}")]
    Http(String),
    #[error("unexpected answer from vonage: {0}")]
    Malformed(String),
    #[error(transparent)]
    Sign(#[from] super::api_token::SignError),
}

/// A call to place: `POST /v1/calls`.
pub struct NewCall<'a> {
    /// Callee, E.164.
    pub to: &'a str,
    /// One of the application's numbers, E.164.
    pub from: &'a str,
    pub ncco: Value,
    pub event_url: String,
    /// Ask Vonage's advanced machine detection to report human/machine and the beep.
    pub machine_detection: bool,
}

#[derive(Deserialize)]
struct Created {
    uuid: String,
}

#[derive(Deserialize)]
struct ApiError {
    title: Option<String>,
    detail: Option<String>,
    error_title: Option<String>,
}

pub struct VonageRest {
    http: reqwest::Client,
    /// `https://api.nexmo.com` or a stand-in, without a trailing slash.
    api_base: String,
    signer: ApiSigner,
}

impl VonageRest {
    pub fn new(api_base: &str, signer: ApiSigner) -> Self {
        VonageRest {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            api_base: api_base.trim_end_matches('/').to_string(),
            signer,
        }
    }

    /// Places a call; returns its `uuid`.
    pub async fn create_call(&self, call: NewCall<'_>) -> Result<String, RestError> {
        let mut body = json!({
            "to": [{"type": "phone", "number": vonage_number(call.to)}],
            "from": {"type": "phone", "number": vonage_number(call.from)},
            "ncco": call.ncco,
            "event_url": [call.event_url],
            "event_method": "POST",
        });
        if call.machine_detection {
            // `continue`: the stream runs either way and the session acts on the verdict;
            // `detect_beep`: a machine's greeting end is reported too, to leave a message.
            body["advanced_machine_detection"] =
                json!({"behavior": "continue", "mode": "detect_beep"});
        }
        let response = self
            .send(self.http.post(self.url("/v1/calls")), &body)
            .await?;
        let created: Created = serde_json::from_slice(&response)
            .map_err(|e| RestError::Malformed(format!("create call: {e}")))?;
        Ok(created.uuid)
    }

    /// Ends the call (every leg of it).
    pub async fn hangup(&self, uuid: &str) -> Result<(), RestError> {
        let path = call_path(uuid, "")?;
        self.send(self.http.put(self.url(&path)), &json!({"action": "hangup"}))
            .await
            .map(drop)
    }

    /// Moves the call to a new NCCO (`destination`, see `ncco::transfer_destination`).
    pub async fn transfer(&self, uuid: &str, destination: Value) -> Result<(), RestError> {
        let path = call_path(uuid, "")?;
        let body = json!({"action": "transfer", "destination": destination});
        self.send(self.http.put(self.url(&path)), &body)
            .await
            .map(drop)
    }

    /// Plays DTMF digits into the call.
    pub async fn send_dtmf(&self, uuid: &str, digits: &str) -> Result<(), RestError> {
        let path = call_path(uuid, "/dtmf")?;
        self.send(self.http.put(self.url(&path)), &json!({"digits": digits}))
            .await
            .map(drop)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_base)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        body: &Value,
    ) -> Result<bytes::Bytes, RestError> {
        let jti = format!("{:032x}", rand::random::<u128>());
        let token = self.signer.token(unix_now(), &jti)?;
        let response = request
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| RestError::Http(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RestError::Http(e.to_string()))?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(RestError::Api {
            status: status.as_u16(),
            message: error_message(status, &bytes),
        })
    }
}

/// `title: detail` of Vonage's error body, or the HTTP status when the body says nothing.
fn error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let parsed: Option<ApiError> = serde_json::from_slice(body).ok();
    let (title, detail) = match parsed {
        Some(e) => (e.title.or(e.error_title), e.detail),
        None => (None, None),
    };
    match (title, detail) {
        (Some(title), Some(detail)) => format!("{title}: {detail}"),
        (Some(text), None) | (None, Some(text)) => text,
        (None, None) => status.canonical_reason().unwrap_or("error").to_string(),
    }
}

/// `/v1/calls/{uuid}{suffix}`; an error for a call whose uuid is not known.
fn call_path(uuid: &str, suffix: &str) -> Result<String, RestError> {
    let segment = path_segment(uuid);
    if segment.is_empty() {
        return Err(RestError::Malformed("no call uuid to address".into()));
    }
    Ok(format!("/v1/calls/{segment}{suffix}"))
}

/// A uuid as one path segment: anything but the characters uuids use is refused by Vonage
/// anyway, and must not walk the URL elsewhere.
fn path_segment(uuid: &str) -> String {
    uuid.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_use_vonages_title_and_detail() {
        let status = reqwest::StatusCode::BAD_REQUEST;
        assert_eq!(
            error_message(
                status,
                br#"{"type":"x","title":"Bad Request","detail":"Invalid number"}"#
            ),
            "Bad Request: Invalid number"
        );
        assert_eq!(
            error_message(status, br#"{"title":"Unauthorized"}"#),
            "Unauthorized"
        );
        assert_eq!(error_message(status, b"<html>"), "Bad Request");
    }

    #[test]
    fn uuids_stay_one_path_segment() {
        assert_eq!(path_segment("aaaa-bbbb-1234"), "aaaa-bbbb-1234");
        assert_eq!(path_segment("../../v2/x?y"), "v2xy");
        assert!(call_path("", "").is_err());
        assert!(call_path("../", "/dtmf").is_err());
        assert_eq!(call_path("u-1", "/dtmf").unwrap(), "/v1/calls/u-1/dtmf");
    }
}
