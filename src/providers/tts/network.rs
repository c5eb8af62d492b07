//! What the network engines share: how a failed request is described and whether it is worth
//! one more try.

use std::time::Duration;

use super::TtsError;

/// Pause before retrying a request the provider turned away (429, 5xx): long enough for a
/// momentary overload to pass, short enough to keep the caller from noticing much.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(250);

/// One failed attempt at a synthesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For the call log: the provider, the status and the provider's own words.
    pub message: String,
    /// `Some(pause)` when another attempt may succeed (overload, server error, a connection
    /// that could not be made or died before any audio); `None` when it would fail the same way.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn fatal(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retryable(message: impl Into<String>, after: Duration) -> Self {
        Failure {
            message: message.into(),
            retry_after: Some(after),
        }
    }
}

impl From<Failure> for TtsError {
    fn from(failure: Failure) -> Self {
        TtsError(failure.message)
    }
}

/// Whether to try `failure` again, waiting its pause first: once per synthesis, and only
/// before any audio went out (after that, a retry would repeat words the caller heard).
pub async fn retry_once(
    provider: &str,
    failure: &Failure,
    sent_audio: bool,
    retried: &mut bool,
) -> bool {
    match failure.retry_after {
        Some(pause) if !sent_audio && !*retried => {
            tracing::warn!(error = %failure.message, "{provider} speech failed; retrying once");
            *retried = true;
            tokio::time::sleep(pause).await;
            true
        }
        _ => false,
    }
}

/// Whether an HTTP status is a transient refusal worth one retry.
pub fn is_transient(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// At most `limit` characters of a provider's reply, for an error message.
pub fn excerpt(text: &str, limit: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(limit) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses_are_overload_and_server_errors() {
        assert!(is_transient(429) && is_transient(500) && is_transient(503));
        assert!(!is_transient(400) && !is_transient(401) && !is_transient(404));
    }

    #[test]
    fn excerpts_cut_on_characters() {
        assert_eq!(excerpt("  short  ", 10), "short");
        assert_eq!(excerpt("ééééé", 3), "ééé…");
    }
}
