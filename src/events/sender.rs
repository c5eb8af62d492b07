//! One signed webhook POST through the SSRF guard.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::signature::sign;
use crate::net::guarded_client::{self, check_literal_host, describe};
use crate::store::AttemptOutcome;

/// How much of a receiver's answer is read (so the connection can be reused); the rest is
/// dropped unread.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

pub const USER_AGENT: &str = concat!("Boltcall-Webhooks/", env!("CARGO_PKG_VERSION"));

/// A request to make: the body is signed at send time, so each retry carries a fresh `t`.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub event_id: &'a str,
    pub body: &'a str,
}

pub struct WebhookSender {
    client: reqwest::Client,
    allow_local: bool,
}

impl WebhookSender {
    /// `allow_local` is `BOLTCALL_WEBHOOK_ALLOW_LOOPBACK`: loopback and private targets pass.
    pub fn new(timeout: Duration, allow_local: bool) -> Result<Self, reqwest::Error> {
        let client = guarded_client::builder(allow_local)
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(WebhookSender {
            client,
            allow_local,
        })
    }

    /// Makes one attempt; never fails, the outcome says what happened.
    pub async fn send(&self, out: &Outgoing<'_>) -> AttemptOutcome {
        let started = Instant::now();
        let result = self.post(out).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match result {
            Ok(status) if (200..300).contains(&status) => AttemptOutcome {
                status_code: Some(status),
                error: None,
                latency_ms,
            },
            Ok(status) => AttemptOutcome {
                status_code: Some(status),
                error: Some(format!("receiver answered HTTP {status}")),
                latency_ms,
            },
            Err(error) => AttemptOutcome {
                status_code: None,
                error: Some(error),
                latency_ms,
            },
        }
    }

    async fn post(&self, out: &Outgoing<'_>) -> Result<u16, String> {
        let url = url::Url::parse(out.url).map_err(|e| format!("invalid URL: {e}"))?;
        check_literal_host(&url, self.allow_local)?;
        let t = chrono::Utc::now().timestamp();
        let response = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header("Boltcall-Event-Id", out.event_id)
            .header(
                "Boltcall-Signature",
                sign(out.secret, t, out.body.as_bytes()),
            )
            .body(out.body.to_string())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let mut stream = response.bytes_stream();
        let mut read = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len();
            if read > MAX_RESPONSE_BYTES {
                break;
            }
        }
        Ok(status)
    }
}
