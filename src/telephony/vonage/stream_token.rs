//! The engine's own token for the audio WebSocket. Vonage does not sign the WebSocket it
//! opens, so the NCCO we return (from a signed webhook, or in a call we placed) carries this
//! token among the endpoint's `headers`; Vonage hands the headers back in the socket's first
//! message. The MAC binds the direction, the call (Vonage's uuid inbound, our call id
//! outbound, whose uuid is unknown when the NCCO is written) and the numbers, so a token
//! cannot be re-pointed at another agent; it expires, and `UsedTokens` lets each call stream
//! once. Keyed with the signature secret, so every engine of a deployment accepts it.
//! Sans-IO: the time is passed in.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::telephony::Direction;

/// The header (and first-message field) that carries the token.
pub const HEADER: &str = "boltcall_token";

/// Inbound: Vonage connects the socket right after our answer.
pub const INBOUND_TTL_SECS: u64 = 120;
/// Outbound: the callee may ring for up to two minutes, then machine detection runs.
pub const OUTBOUND_TTL_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no or malformed stream token")]
    Malformed,
    #[error("stream token does not match this call and its numbers")]
    Mismatch,
    #[error("stream token expired")]
    Expired,
    #[error("stream token already used for call {0}")]
    Replayed(String),
}

/// `<expires_at>.<mac>` for the stream of `call` (uuid inbound, call id outbound).
pub fn mint(
    key: &str,
    direction: Direction,
    call: &str,
    to: &str,
    from: &str,
    expires_at: u64,
) -> String {
    let tag = mac(key, direction, call, to, from, expires_at)
        .finalize()
        .into_bytes();
    format!("{expires_at}.{}", B64.encode(tag))
}

/// Checks `token` against what the socket's first message says; returns its expiry.
pub fn verify(
    key: &str,
    token: &str,
    direction: Direction,
    call: &str,
    to: &str,
    from: &str,
    now: u64,
) -> Result<u64, TokenError> {
    let (expires_at, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let expires_at: u64 = expires_at.parse().map_err(|_| TokenError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
    mac(key, direction, call, to, from, expires_at)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Mismatch)?;
    if now > expires_at {
        return Err(TokenError::Expired);
    }
    Ok(expires_at)
}

fn mac(
    key: &str,
    direction: Direction,
    call: &str,
    to: &str,
    from: &str,
    expires_at: u64,
) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    // Domain-separated from Vonage's own tokens under the same secret; each field is
    // length-prefixed so no two field lists hash alike.
    mac.update(b"boltcall-vonage-stream-v1");
    for field in [direction.as_str(), call, to, from] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    mac.update(&expires_at.to_be_bytes());
    mac
}

/// Calls whose token has opened a stream, kept until the token expires (at most the calls of
/// the last few minutes, each one placed by us or announced by a signed webhook).
#[derive(Debug, Default)]
pub struct UsedTokens {
    seen: Mutex<HashMap<String, u64>>,
}

impl UsedTokens {
    /// Claims `call`'s single use; `Replayed` when it was claimed before.
    pub fn claim(&self, call: &str, expires_at: u64, now: u64) -> Result<(), TokenError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, expiry| *expiry >= now);
        if seen.contains_key(call) {
            return Err(TokenError::Replayed(call.to_string()));
        }
        seen.insert(call.to_string(), expires_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "signature-secret";
    const TO: &str = "+15550001000";
    const FROM: &str = "+15550002000";

    #[test]
    fn a_token_fits_only_its_own_call_direction_and_numbers() {
        let token = mint(KEY, Direction::Inbound, "uuid-1", TO, FROM, 1_000);
        let check = |direction, call: &str, to: &str, from: &str, now| {
            verify(KEY, &token, direction, call, to, from, now)
        };
        assert_eq!(
            check(Direction::Inbound, "uuid-1", TO, FROM, 999),
            Ok(1_000)
        );
        for (direction, call, to, from) in [
            (Direction::Outbound, "uuid-1", TO, FROM),
            (Direction::Inbound, "uuid-2", TO, FROM),
            (Direction::Inbound, "uuid-1", "+15550009999", FROM),
            (Direction::Inbound, "uuid-1", TO, "+15550009999"),
        ] {
            assert_eq!(
                check(direction, call, to, from, 999),
                Err(TokenError::Mismatch)
            );
        }
        assert_eq!(
            verify("other", &token, Direction::Inbound, "uuid-1", TO, FROM, 999),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            check(Direction::Inbound, "uuid-1", TO, FROM, 1_001),
            Err(TokenError::Expired)
        );
        let (_, tag) = token.split_once('.').unwrap();
        let stretched = format!("9999999.{tag}");
        assert_eq!(
            verify(KEY, &stretched, Direction::Inbound, "uuid-1", TO, FROM, 999),
            Err(TokenError::Mismatch)
        );
        for junk in ["", "x", "1.", ".abc", "1.!!!"] {
            assert!(
                verify(KEY, junk, Direction::Inbound, "uuid-1", TO, FROM, 0).is_err(),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn each_call_streams_once_and_expired_calls_are_forgotten() {
        let used = UsedTokens::default();
        assert_eq!(used.claim("c1", 100, 10), Ok(()));
        assert_eq!(
            used.claim("c1", 100, 50),
            Err(TokenError::Replayed("c1".into()))
        );
        assert_eq!(used.claim("c2", 200, 150), Ok(()));
        assert_eq!(used.seen.lock().unwrap().len(), 1, "c1 expired at 100");
    }
}
