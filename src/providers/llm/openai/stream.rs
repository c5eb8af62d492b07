//! One model turn over HTTP: the request, its streamed answer under the first-token and idle
//! timeouts, and retries of failures that happen before the reply said anything.
//!
//! The retries spend the same first-token window as the first attempt (the caller is waiting
//! in silence): a 429 whose `Retry-After` does not fit in what is left of it is not retried,
//! and the caller's fallback answers instead.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout, timeout_at};

use super::round::{Progress, Round};
use super::sse::SseDecoder;
use crate::providers::llm::BrainEvent;
use crate::providers::llm::endpoint::Endpoint;

/// Attempts per round, the first included.
const MAX_ATTEMPTS: u32 = 3;
/// Wait before retrying a server error or a failed connection, times the attempt number.
const BACKOFF: Duration = Duration::from_millis(100);
/// A `Retry-After` longer than this is not waited for even if the window allowed it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(1);
/// An error body is quoted up to this many characters.
const ERROR_QUOTE_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error("request failed: {0}")]
    Request(String),
    #[error("HTTP {status}: {body}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("no answer within the first-token timeout")]
    FirstTokenTimeout,
    #[error("the stream went silent")]
    Idle,
    #[error("the stream broke off: {0}")]
    Disconnected(String),
    #[error("{0}")]
    Malformed(String),
}

impl Failure {
    /// How long to wait before trying again, when trying again may help.
    fn retry_wait(&self, attempt: u32) -> Option<Duration> {
        match self {
            Failure::Status {
                status: 429,
                retry_after,
                ..
            } => Some(
                retry_after
                    .unwrap_or(BACKOFF * attempt)
                    .min(MAX_RETRY_AFTER),
            ),
            Failure::Status { status, .. } if *status >= 500 => Some(BACKOFF * attempt),
            Failure::Request(_) | Failure::Disconnected(_) => Some(BACKOFF * attempt),
            _ => None,
        }
    }
}

/// Where and how long one round may stream.
pub struct Window<'a> {
    pub endpoint: &'a Endpoint,
    /// The first token (text or a tool call) must come by then, retries included.
    pub first_token_by: Instant,
    /// Longest silence between chunks once the answer has started.
    pub idle: Duration,
    /// The reply already said something: never try again, what was said stands.
    pub spoke: bool,
    /// Names the model in `ProviderFailed`.
    pub provider: &'a str,
}

/// Streams one round into `round`, sending its text as it comes. Failures before any text are
/// retried within the window (each reported as `ProviderFailed` with fallback `retry`); the
/// last failure is returned with whatever `round` holds.
pub async fn stream_round(
    window: &Window<'_>,
    body: &Value,
    round: &mut Round,
    tx: &mpsc::Sender<BrainEvent>,
) -> Result<(), Failure> {
    let mut attempt = 1;
    loop {
        *round = Round::default();
        let failure = match attempt_round(window, body, round, tx).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        let wait = failure
            .retry_wait(attempt)
            .filter(|_| !window.spoke && round.text.is_empty() && attempt < MAX_ATTEMPTS)
            .filter(|wait| Instant::now() + *wait < window.first_token_by);
        let Some(wait) = wait else {
            return Err(failure);
        };
        let _ = tx
            .send(BrainEvent::ProviderFailed {
                provider: window.provider.to_string(),
                error: failure.to_string(),
                fallback: "retry".into(),
            })
            .await;
        sleep(wait).await;
        attempt += 1;
    }
}

async fn attempt_round(
    window: &Window<'_>,
    body: &Value,
    round: &mut Round,
    tx: &mpsc::Sender<BrainEvent>,
) -> Result<(), Failure> {
    let sent = timeout_at(window.first_token_by, window.endpoint.request(body).send()).await;
    let mut response = sent
        .map_err(|_| Failure::FirstTokenTimeout)?
        .map_err(|e| Failure::Request(error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = retry_after(response.headers());
        let text = timeout_at(window.first_token_by, response.text()).await;
        let body: String = text
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
            .chars()
            .take(ERROR_QUOTE_CHARS)
            .collect();
        return Err(Failure::Status {
            status: status.as_u16(),
            retry_after,
            body,
        });
    }
    let mut decoder = SseDecoder::default();
    let mut started = false;
    loop {
        let read = if started {
            timeout(window.idle, response.chunk()).await
        } else {
            timeout_at(window.first_token_by, response.chunk()).await
        };
        let bytes = match read {
            Err(_) if started => return Err(Failure::Idle),
            Err(_) => return Err(Failure::FirstTokenTimeout),
            Ok(Err(e)) => return Err(Failure::Disconnected(error_chain(&e))),
            // Some servers close without `[DONE]` once the finish reason is out.
            Ok(Ok(None)) if round.finish_reason.is_some() => return Ok(()),
            Ok(Ok(None)) => {
                return Err(Failure::Disconnected(
                    "the stream ended before it was complete".into(),
                ));
            }
            Ok(Ok(Some(bytes))) => bytes,
        };
        for data in decoder.push(&bytes) {
            match round.apply(&data).map_err(Failure::Malformed)? {
                Progress::Text(text) => {
                    started = true;
                    let _ = tx.send(BrainEvent::Text(text)).await;
                }
                Progress::Working => started = true,
                Progress::Nothing => {}
                Progress::Done => return Ok(()),
            }
        }
    }
}

/// `retry-after-ms` (OpenAI's) or `retry-after` in seconds; an HTTP date is not worth parsing
/// for waits this short.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prefers_milliseconds_and_caps_the_wait() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "2".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "250".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        let limited = Failure::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(30)),
            body: String::new(),
        };
        assert_eq!(limited.retry_wait(1), Some(MAX_RETRY_AFTER));
        let refused = Failure::Status {
            status: 401,
            retry_after: None,
            body: String::new(),
        };
        assert_eq!(refused.retry_wait(1), None);
        assert_eq!(Failure::FirstTokenTimeout.retry_wait(1), None);
    }
}
