//! Twilio's Voice REST API for the calls the engine places and steers: create a call
//! (`POST /2010-04-01/Accounts/{sid}/Calls.json`) and update a live one (`…/Calls/{CallSid}.json`:
//! hang it up, or replace its TwiML to transfer it). Basic auth with the account SID and auth
//! token, form-encoded bodies, Twilio's JSON `code`/`message` on errors. One client per engine.

use std::time::Duration;

use serde::Deserialize;

/// How long Twilio gets to answer one request. A create or update is a single quick write on
/// Twilio's side; a call that waits longer is better failed than left hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Status callback events asked for on every call the engine places.
const STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// Twilio answered and refused (4xx): its message and error code.
    #[error("Twilio refused the request: {message}")]
    Refused {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Twilio could not be reached, timed out, failed (5xx) or answered nonsense.
    #[error("{0}")]
    Unreachable(String),
}

impl RestError {
    /// What the call record's `end_reason` says about a refused or failed request.
    pub fn reason(&self) -> String {
        match self {
            RestError::Refused { message, code, .. } => match code {
                Some(code) => format!("{message} (Twilio error {code})"),
                None => message.clone(),
            },
            RestError::Unreachable(message) => message.clone(),
        }
    }
}

/// A call to create: where to, from which number, what to run when it is answered, and where
/// Twilio reports progress.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub to: String,
    pub from: String,
    pub twiml: String,
    pub status_callback: String,
    /// Async answering-machine detection reporting to this URL (`DetectMessageEnd`).
    pub amd_callback: Option<String>,
}

impl NewCall {
    fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("To", self.to.clone()),
            ("From", self.from.clone()),
            ("Twiml", self.twiml.clone()),
            ("StatusCallback", self.status_callback.clone()),
            ("StatusCallbackMethod", "POST".into()),
        ];
        for event in STATUS_EVENTS {
            form.push(("StatusCallbackEvent", event.into()));
        }
        if let Some(url) = &self.amd_callback {
            form.push(("MachineDetection", "DetectMessageEnd".into()));
            form.push(("AsyncAmd", "true".into()));
            form.push(("AsyncAmdStatusCallback", url.clone()));
            form.push(("AsyncAmdStatusCallbackMethod", "POST".into()));
        }
        form
    }
}

#[derive(Deserialize)]
struct CallResource {
    sid: String,
}

#[derive(Deserialize)]
struct TwilioError {
    code: Option<serde_json::Value>,
    message: Option<String>,
}

pub struct TwilioRest {
    http: reqwest::Client,
    /// `https://api.twilio.com` or a stand-in, without a trailing slash.
    api_base: String,
    account_sid: String,
    auth_token: String,
}

impl std::fmt::Debug for TwilioRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the auth token.
        f.debug_struct("TwilioRest")
            .field("api_base", &self.api_base)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

impl TwilioRest {
    pub fn new(api_base: &str, account_sid: &str, auth_token: &str) -> Self {
        TwilioRest {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            api_base: api_base.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            auth_token: auth_token.to_string(),
        }
    }

    /// Places a call; returns its CallSid.
    pub async fn create_call(&self, call: &NewCall) -> Result<String, RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.api_base, self.account_sid
        );
        let body = self.post(&url, &call.form()).await?;
        let created: CallResource = serde_json::from_slice(&body)
            .map_err(|e| RestError::Unreachable(format!("unexpected answer from Twilio: {e}")))?;
        Ok(created.sid)
    }

    /// Ends a live call (`Status=completed`).
    pub async fn hang_up(&self, call_sid: &str) -> Result<(), RestError> {
        self.update(call_sid, &[("Status", "completed".into())])
            .await
    }

    /// Replaces a live call's TwiML: the call leaves whatever it runs now (our stream) and
    /// runs `twiml` instead.
    pub async fn redirect(&self, call_sid: &str, twiml: &str) -> Result<(), RestError> {
        self.update(call_sid, &[("Twiml", twiml.to_string())]).await
    }

    async fn update(&self, call_sid: &str, form: &[(&str, String)]) -> Result<(), RestError> {
        if call_sid.is_empty() || !call_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(RestError::Unreachable(format!(
                "not a Twilio call SID: {call_sid:?}"
            )));
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls/{call_sid}.json",
            self.api_base, self.account_sid
        );
        self.post(&url, form).await.map(|_| ())
    }

    /// POSTs `form`; the body of a 2xx answer, Twilio's error otherwise.
    async fn post(&self, url: &str, form: &[(&str, String)]) -> Result<Vec<u8>, RestError> {
        // Pairs of strings always encode.
        let body = serde_urlencoded::to_string(form).unwrap_or_default();
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header(reqwest::header::CONTENT_TYPE, FORM_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| RestError::Unreachable(format!("cannot reach Twilio: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| RestError::Unreachable(format!("Twilio's answer broke off: {e}")))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        Err(error_of(status, &body))
    }
}

/// Twilio's error body (`{"code": 21211, "message": "…", "status": 400}`) as a `RestError`.
fn error_of(status: reqwest::StatusCode, body: &[u8]) -> RestError {
    let error: Option<TwilioError> = serde_json::from_slice(body).ok();
    let code = error
        .as_ref()
        .and_then(|e| e.code.as_ref())
        .map(|c| match c {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    let message = error
        .and_then(|e| e.message)
        .unwrap_or_else(|| format!("Twilio answered HTTP {status}"));
    if status.is_server_error() {
        return RestError::Unreachable(format!("Twilio failed: {message}"));
    }
    RestError::Refused {
        status: status.as_u16(),
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_form_asks_for_every_status_event_and_amd_only_when_wanted() {
        let mut call = NewCall {
            to: "+15550001111".into(),
            from: "+15550002222".into(),
            twiml: "<Response/>".into(),
            status_callback: "https://e.example/carrier/twilio/status?call_id=call_1".into(),
            amd_callback: None,
        };
        let form = call.form();
        let events: Vec<&str> = form
            .iter()
            .filter(|(k, _)| *k == "StatusCallbackEvent")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
        assert!(
            !form
                .iter()
                .any(|(k, _)| k.contains("Amd") || *k == "MachineDetection")
        );
        call.amd_callback = Some("https://e.example/carrier/twilio/amd?call_id=call_1".into());
        let form = call.form();
        let get = |name: &str| {
            form.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("MachineDetection"), Some("DetectMessageEnd"));
        assert_eq!(get("AsyncAmd"), Some("true"));
        assert_eq!(
            get("AsyncAmdStatusCallback"),
            Some("https://e.example/carrier/twilio/amd?call_id=call_1")
        );
    }

    #[test]
    fn twilio_errors_keep_code_and_message() {
        let body = br#"{"code": 21211, "message": "The 'To' number 123 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        let error = error_of(reqwest::StatusCode::BAD_REQUEST, body);
        assert_eq!(
            error,
            RestError::Refused {
                status: 400,
                code: Some("21211".into()),
                message: "The 'To' number 123 is not a valid phone number.".into()
            }
        );
        assert_eq!(
            error.reason(),
            "The 'To' number 123 is not a valid phone number. (Twilio error 21211)"
        );
        assert!(matches!(
            error_of(reqwest::StatusCode::BAD_GATEWAY, b"<html>"),
            RestError::Unreachable(_)
        ));
        assert_eq!(
            error_of(reqwest::StatusCode::UNAUTHORIZED, b"not json").reason(),
            "Twilio answered HTTP 401 Unauthorized"
        );
    }
}
