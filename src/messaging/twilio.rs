//! Twilio Programmable Messaging: `POST /2010-04-01/Accounts/{sid}/Messages.json` with the
//! account's Basic auth, form-encoded, for SMS and WhatsApp (`whatsapp:` addresses).

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::provider::{Accepted, MessageSender, Outgoing, ProviderError};

/// How long Twilio gets to accept a message.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Who a message is sent from when the request names no number.
#[derive(Debug, Clone)]
pub enum Sender {
    /// A Twilio number (E.164).
    Number(String),
    /// A Messaging Service (`MG…`), which picks the number.
    Service(String),
}

pub struct TwilioMessaging {
    http: reqwest::Client,
    /// `https://api.twilio.com` or a stand-in, without a trailing slash.
    api_base: String,
    account_sid: String,
    auth_token: String,
    sender: Sender,
}

#[derive(Deserialize)]
struct Created {
    sid: String,
    from: Option<String>,
}

#[derive(Deserialize)]
struct TwilioError {
    code: Option<serde_json::Value>,
    message: Option<String>,
}

impl TwilioMessaging {
    pub fn new(api_base: &str, account_sid: &str, auth_token: &str, sender: Sender) -> Self {
        TwilioMessaging {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            api_base: api_base.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            auth_token: auth_token.to_string(),
            sender,
        }
    }

    /// The form Twilio's Messages resource expects.
    fn form(&self, m: &Outgoing) -> Vec<(&'static str, String)> {
        let address = |number: &str| match m.channel.as_str() {
            "whatsapp" => format!("whatsapp:{number}"),
            _ => number.to_string(),
        };
        let mut form = vec![("To", address(&m.to))];
        match (&m.from_number, &self.sender) {
            (Some(from), _) | (None, Sender::Number(from)) => form.push(("From", address(from))),
            (None, Sender::Service(sid)) => form.push(("MessagingServiceSid", sid.clone())),
        }
        if let Some(body) = &m.body {
            form.push(("Body", body.clone()));
        }
        if let Some(template) = &m.template {
            form.push(("ContentSid", template.clone()));
            if let Some(vars) = &m.variables {
                form.push(("ContentVariables", vars.to_string()));
            }
        }
        form.push(("StatusCallback", m.status_callback.clone()));
        form
    }
}

fn encode_form(form: &[(&str, String)]) -> String {
    // Pairs of strings always encode.
    serde_urlencoded::to_string(form).unwrap_or_default()
}

impl MessageSender for TwilioMessaging {
    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, ProviderError>> {
        Box::pin(async move {
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                self.api_base, self.account_sid
            );
            let response = self
                .http
                .post(&url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header(reqwest::header::CONTENT_TYPE, FORM_CONTENT_TYPE)
                .body(encode_form(&self.form(m)))
                .send()
                .await
                .map_err(|e| ProviderError::Unreachable(format!("cannot reach Twilio: {e}")))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| {
                ProviderError::Unreachable(format!("Twilio's answer broke off: {e}"))
            })?;
            if status.is_success() {
                let created: Created = serde_json::from_slice(&body).map_err(|e| {
                    ProviderError::Unreachable(format!("unexpected answer from Twilio: {e}"))
                })?;
                let from_number = created
                    .from
                    .map(|f| f.trim_start_matches("whatsapp:").to_string())
                    .filter(|f| !f.is_empty());
                return Ok(Accepted {
                    provider_sid: Some(created.sid),
                    from_number,
                    simulated: false,
                });
            }
            let error: Option<TwilioError> = serde_json::from_slice(&body).ok();
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
                return Err(ProviderError::Unreachable(format!(
                    "Twilio failed: {message}"
                )));
            }
            Err(ProviderError::Rejected { code, message })
        })
    }
}
