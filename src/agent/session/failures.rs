//! The providers that failed during one call, for its record and the log.

use crate::store::ProviderFailure;

/// A provider failing on every frame must not grow the record without bound; the log keeps
/// every failure.
const MAX_KEPT: usize = 50;

#[derive(Default)]
pub(super) struct FailureLog {
    kept: Vec<ProviderFailure>,
}

impl FailureLog {
    pub(super) fn push(
        &mut self,
        call_id: &str,
        at_ms: u64,
        provider: String,
        error: String,
        heard_instead: &str,
    ) {
        tracing::warn!(%call_id, at_ms, %provider, %error, heard_instead, "provider failed");
        if self.kept.len() < MAX_KEPT {
            self.kept.push(ProviderFailure {
                provider,
                error,
                at_ms,
                heard_instead: heard_instead.into(),
            });
        }
    }

    pub(super) fn as_slice(&self) -> &[ProviderFailure] {
        &self.kept
    }
}
