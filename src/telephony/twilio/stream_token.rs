//! The engine's own handshake token. Whoever sends Twilio the TwiML that opens a stream mints
//! it into that TwiML as a `<Parameter>`; the stream's `start` must bring it back. Anyone can
//! open a WebSocket and type a `start`, but only a call the engine answered (the voice webhook,
//! whose request Twilio signed) or placed (the REST create) carries a token: it cannot be
//! re-pointed at another number (the MAC covers `to` and `from`), it expires, and `UsedTokens`
//! lets each call stream once.
//!
//! An inbound token is bound to the CallSid Twilio reports in `start`. An outbound call's
//! CallSid is unknown until Twilio has created the call, after the TwiML was written, so its
//! token is bound to the engine's own call id instead. Sans-IO: the time is passed in.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Name of the `<Parameter>` (and of the `customParameters` entry in `start`).
pub const PARAMETER: &str = "boltcall_token";

/// How long after the webhook answer an inbound stream may start. Twilio connects within a
/// second or two; the margin covers a loaded engine.
pub const TTL_SECS: u64 = 120;

/// How long after the create an outbound stream may start: Twilio rings for up to 600 s, then
/// answering-machine detection may listen before the stream opens.
pub const OUTBOUND_TTL_SECS: u64 = 900;

/// Which call a token opens a stream for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A call Twilio brought to the voice webhook: its CallSid.
    Inbound { call_sid: &'a str },
    /// A call the engine placed: the engine's call id.
    Outbound { call_id: &'a str },
}

impl Subject<'_> {
    fn domain(&self) -> &'static [u8] {
        match self {
            Subject::Inbound { .. } => b"boltcall-twilio-stream-v1",
            Subject::Outbound { .. } => b"boltcall-twilio-outbound-stream-v1",
        }
    }

    fn id(&self) -> &str {
        match self {
            Subject::Inbound { call_sid } => call_sid,
            Subject::Outbound { call_id } => call_id,
        }
    }

    /// The key `UsedTokens` remembers (CallSids and call ids never share a table row).
    fn used_key(&self) -> String {
        match self {
            Subject::Inbound { call_sid } => format!("in:{call_sid}"),
            Subject::Outbound { call_id } => format!("out:{call_id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no or malformed stream token")]
    Malformed,
    #[error("stream token does not match the call, to and from of this stream")]
    Mismatch,
    #[error("stream token expired")]
    Expired,
    #[error("stream token already used for call {0}")]
    Replayed(String),
}

/// `<expires_at>.<mac>` for a stream of `subject` from `from` to `to`.
pub fn mint(key: &str, subject: Subject<'_>, to: &str, from: &str, expires_at: u64) -> String {
    let tag = mac(key, subject, to, from, expires_at)
        .finalize()
        .into_bytes();
    format!("{expires_at}.{}", B64.encode(tag))
}

/// Checks `token` against what the stream's `start` says; returns its expiry.
pub fn verify(
    key: &str,
    token: &str,
    subject: Subject<'_>,
    to: &str,
    from: &str,
    now: u64,
) -> Result<u64, TokenError> {
    let (expires_at, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let expires_at: u64 = expires_at.parse().map_err(|_| TokenError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
    mac(key, subject, to, from, expires_at)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Mismatch)?;
    if now > expires_at {
        return Err(TokenError::Expired);
    }
    Ok(expires_at)
}

fn mac(key: &str, subject: Subject<'_>, to: &str, from: &str, expires_at: u64) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    // Domain-separated from Twilio's own signatures under the same auth token, and inbound
    // from outbound; each field is length-prefixed so no two field lists hash alike.
    mac.update(subject.domain());
    for field in [subject.id(), to, from] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    mac.update(&expires_at.to_be_bytes());
    mac
}

/// Calls whose token has started a stream, kept until the token expires (so the table holds
/// at most the calls of the last `OUTBOUND_TTL_SECS`, each one the engine answered or placed).
#[derive(Debug, Default)]
pub struct UsedTokens {
    seen: Mutex<HashMap<String, u64>>,
}

impl UsedTokens {
    /// Claims `subject`'s single use; `Replayed` when it was claimed before.
    pub fn claim(&self, subject: Subject<'_>, expires_at: u64, now: u64) -> Result<(), TokenError> {
        if self.claim_key(subject.used_key(), expires_at, now) {
            Ok(())
        } else {
            Err(TokenError::Replayed(subject.id().to_string()))
        }
    }

    /// Claims the single use of a token known by `key` (another carrier's stream tokens);
    /// `false` when it was claimed before.
    pub fn claim_key(&self, key: String, expires_at: u64, now: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, expiry| *expiry >= now);
        if seen.contains_key(&key) {
            return false;
        }
        seen.insert(key, expires_at);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "auth-token";

    fn inbound(call_sid: &str) -> Subject<'_> {
        Subject::Inbound { call_sid }
    }

    fn outbound(call_id: &str) -> Subject<'_> {
        Subject::Outbound { call_id }
    }

    #[test]
    fn a_token_fits_only_its_own_call() {
        let token = mint(KEY, inbound("CA1"), "+15550001000", "+15550002000", 1_000);
        assert_eq!(
            verify(
                KEY,
                &token,
                inbound("CA1"),
                "+15550001000",
                "+15550002000",
                999
            ),
            Ok(1_000)
        );
        for (sid, to, from) in [
            ("CA2", "+15550001000", "+15550002000"),
            ("CA1", "+15550009999", "+15550002000"),
            ("CA1", "+15550001000", "+15550009999"),
        ] {
            assert_eq!(
                verify(KEY, &token, inbound(sid), to, from, 999),
                Err(TokenError::Mismatch)
            );
        }
        assert_eq!(
            verify(
                "other",
                &token,
                inbound("CA1"),
                "+15550001000",
                "+15550002000",
                999
            ),
            Err(TokenError::Mismatch)
        );
        assert_eq!(
            verify(
                KEY,
                &token,
                inbound("CA1"),
                "+15550001000",
                "+15550002000",
                1_001
            ),
            Err(TokenError::Expired)
        );
        // A later expiry grafted onto the old MAC does not verify.
        let (_, tag) = token.split_once('.').unwrap();
        let stretched = format!("9999999.{tag}");
        assert_eq!(
            verify(
                KEY,
                &stretched,
                inbound("CA1"),
                "+15550001000",
                "+15550002000",
                999
            ),
            Err(TokenError::Mismatch)
        );
        for junk in ["", "x", "1.", ".abc", "1.!!!"] {
            assert!(
                verify(KEY, junk, inbound("CA1"), "a", "b", 0).is_err(),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn inbound_and_outbound_tokens_do_not_stand_in_for_each_other() {
        let out = mint(
            KEY,
            outbound("call_1"),
            "+15550002000",
            "+15550001000",
            1_000,
        );
        assert_eq!(
            verify(
                KEY,
                &out,
                outbound("call_1"),
                "+15550002000",
                "+15550001000",
                10
            ),
            Ok(1_000)
        );
        assert_eq!(
            verify(
                KEY,
                &out,
                outbound("call_2"),
                "+15550002000",
                "+15550001000",
                10
            ),
            Err(TokenError::Mismatch)
        );
        // The same id as a CallSid: another domain, another MAC.
        assert_eq!(
            verify(
                KEY,
                &out,
                inbound("call_1"),
                "+15550002000",
                "+15550001000",
                10
            ),
            Err(TokenError::Mismatch)
        );
        let inb = mint(KEY, inbound("CA1"), "+15550001000", "+15550002000", 1_000);
        assert_eq!(
            verify(
                KEY,
                &inb,
                outbound("CA1"),
                "+15550001000",
                "+15550002000",
                10
            ),
            Err(TokenError::Mismatch)
        );
    }

    #[test]
    fn each_call_streams_once_and_the_table_forgets_expired_calls() {
        let used = UsedTokens::default();
        assert_eq!(used.claim(inbound("CA1"), 100, 10), Ok(()));
        assert_eq!(
            used.claim(inbound("CA1"), 100, 50),
            Err(TokenError::Replayed("CA1".into()))
        );
        // An outbound call id that happens to equal a CallSid is another call.
        assert_eq!(used.claim(outbound("CA1"), 100, 50), Ok(()));
        assert_eq!(
            used.claim(outbound("CA1"), 100, 60),
            Err(TokenError::Replayed("CA1".into()))
        );
        assert_eq!(used.claim(inbound("CA2"), 200, 150), Ok(()));
        assert_eq!(
            used.seen.lock().unwrap().len(),
            1,
            "CA1's claims expired at 100"
        );
    }
}
