//! The engine's own handshake token. The voice webhook (whose request Twilio signed) mints it
//! into the TwiML as a `<Parameter>`; the stream's `start` must bring it back, bound to the
//! call SID Twilio reports in `start` and the `to`/`from` the webhook saw. Anyone can open a
//! WebSocket and type a `start`, but only a call that passed the signed webhook carries a
//! token: it cannot be re-pointed at another number (the MAC covers `to`), it expires, and
//! `UsedTokens` lets each call SID stream once. Sans-IO: the time is passed in.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Name of the `<Parameter>` (and of the `customParameters` entry in `start`).
pub const PARAMETER: &str = "boltcall_token";

/// How long after the webhook answer the stream may start. Twilio connects within a second or
/// two; the margin covers a loaded engine.
pub const TTL_SECS: u64 = 120;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no or malformed stream token")]
    Malformed,
    #[error("stream token does not match the call SID, to and from of this stream")]
    Mismatch,
    #[error("stream token expired")]
    Expired,
    #[error("stream token already used for call {0}")]
    Replayed(String),
}

/// `<expires_at>.<mac>` for a stream of `call_sid` from `from` to `to`.
pub fn mint(key: &str, call_sid: &str, to: &str, from: &str, expires_at: u64) -> String {
    let tag = mac(key, call_sid, to, from, expires_at)
        .finalize()
        .into_bytes();
    format!("{expires_at}.{}", B64.encode(tag))
}

/// Checks `token` against what the stream's `start` says; returns its expiry.
pub fn verify(
    key: &str,
    token: &str,
    call_sid: &str,
    to: &str,
    from: &str,
    now: u64,
) -> Result<u64, TokenError> {
    let (expires_at, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let expires_at: u64 = expires_at.parse().map_err(|_| TokenError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
    mac(key, call_sid, to, from, expires_at)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Mismatch)?;
    if now > expires_at {
        return Err(TokenError::Expired);
    }
    Ok(expires_at)
}

fn mac(key: &str, call_sid: &str, to: &str, from: &str, expires_at: u64) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    // Domain-separated from Twilio's own signatures under the same auth token; each field is
    // length-prefixed so no two field lists hash alike.
    mac.update(b"boltcall-twilio-stream-v1");
    for field in [call_sid, to, from] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    mac.update(&expires_at.to_be_bytes());
    mac
}

/// Call SIDs whose token has started a stream, kept until the token expires (so the table
/// holds at most the calls of the last `TTL_SECS`, each one a webhook Twilio signed).
#[derive(Debug, Default)]
pub struct UsedTokens {
    seen: Mutex<HashMap<String, u64>>,
}

impl UsedTokens {
    /// Claims `call_sid`'s single use; `Replayed` when it was claimed before.
    pub fn claim(&self, call_sid: &str, expires_at: u64, now: u64) -> Result<(), TokenError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, expiry| *expiry >= now);
        if seen.contains_key(call_sid) {
            return Err(TokenError::Replayed(call_sid.to_string()));
        }
        seen.insert(call_sid.to_string(), expires_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "auth-token";

    #[test]
    fn a_token_fits_only_its_own_call() {
        let token = mint(KEY, "CA1", "+15550001000", "+15550002000", 1_000);
        assert_eq!(
            verify(KEY, &token, "CA1", "+15550001000", "+15550002000", 999),
            Ok(1_000)
        );
        for (sid, to, from) in [
            ("CA2", "+15550001000", "+15550002000"),
            ("CA1", "+15550009999", "+15550002000"),
            ("CA1", "+15550001000", "+15550009999"),
        ] {
            assert_eq!(
                verify(KEY, &token, sid, to, from, 999),
                Err(TokenError::Mismatch)
            );
        }
        assert_eq!(
            verify("other", &token, "CA1", "+15550001000", "+15550002000", 999),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            verify(KEY, &token, "CA1", "+15550001000", "+15550002000", 1_001),
            Err(TokenError::Expired)
        );
        // A later expiry grafted onto the old MAC does not verify.
        let (_, tag) = token.split_once('.').unwrap();
        let stretched = format!("9999999.{tag}");
        assert_eq!(
            verify(KEY, &stretched, "CA1", "+15550001000", "+15550002000", 999),
            Err(TokenError::Mismatch)
        );
        for junk in ["", "x", "1.", ".abc", "1.!!!"] {
            assert!(verify(KEY, junk, "CA1", "a", "b", 0).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn each_call_streams_once_and_the_table_forgets_expired_calls() {
        let used = UsedTokens::default();
        assert_eq!(used.claim("CA1", 100, 10), Ok(()));
        assert_eq!(
            used.claim("CA1", 100, 50),
            Err(TokenError::Replayed("CA1".into()))
        );
        assert_eq!(used.claim("CA2", 200, 150), Ok(()));
        assert_eq!(used.seen.lock().unwrap().len(), 1, "CA1 expired at 100");
    }
}
