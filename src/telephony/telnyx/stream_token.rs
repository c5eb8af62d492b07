//! The engine's own token on the media stream URL. Telnyx does not sign its WebSocket
//! handshake, so the `stream_url` we hand it (in `answer` or `POST /v2/calls`) carries
//! `?leg=…&call=…&token=…`: an HMAC (keyed with the API key, which only we and Telnyx hold)
//! over the leg's direction, the call it belongs to — Telnyx's call control id inbound, our
//! own call id outbound, where the control id is not known yet — and an expiry. It is checked
//! before the upgrade, and each call streams once. Sans-IO: the time is passed in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::telephony::Direction;

/// Inbound: Telnyx opens the stream right after our `answer`; the margin covers a loaded engine.
pub const INBOUND_TTL_SECS: u64 = 120;
/// Outbound: the stream opens once the callee answers, after up to a minute of ringing and the
/// carrier's machine detection.
pub const OUTBOUND_TTL_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no or malformed stream token")]
    Malformed,
    #[error("stream token does not match this call")]
    Mismatch,
    #[error("stream token expired")]
    Expired,
    #[error("stream token already used for {0}")]
    Replayed(String),
}

/// The call a stream URL is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLeg {
    pub direction: Direction,
    /// Telnyx's call control id (inbound) or our call id (outbound).
    pub call: String,
}

impl StreamLeg {
    /// The key `UsedTokens` remembers this leg under.
    pub fn replay_key(&self) -> String {
        format!("{}:{}", self.direction.as_str(), self.call)
    }

    /// The stream URL's query: `leg`, `call` and a token valid until `expires_at`.
    pub fn query(&self, key: &str, expires_at: u64) -> String {
        let token = mint(key, self, expires_at);
        serde_urlencoded::to_string([
            ("leg", self.direction.as_str()),
            ("call", self.call.as_str()),
            ("token", token.as_str()),
        ])
        .unwrap_or_default()
    }
}

/// `<expires_at>.<mac>`.
pub fn mint(key: &str, leg: &StreamLeg, expires_at: u64) -> String {
    let tag = mac(key, leg, expires_at).finalize().into_bytes();
    format!("{expires_at}.{}", B64.encode(tag))
}

/// Checks the stream URL's query; the leg it is for and the token's expiry.
pub fn verify_query(
    key: &str,
    query: &[(String, String)],
    now: u64,
) -> Result<(StreamLeg, u64), TokenError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let direction = match get("leg") {
        Some("inbound") => Direction::Inbound,
        Some("outbound") => Direction::Outbound,
        _ => return Err(TokenError::Malformed),
    };
    let call = get("call").filter(|c| !c.is_empty());
    let (Some(call), Some(token)) = (call, get("token")) else {
        return Err(TokenError::Malformed);
    };
    let leg = StreamLeg {
        direction,
        call: call.to_string(),
    };
    let expires_at = verify(key, &leg, token, now)?;
    Ok((leg, expires_at))
}

/// Checks `token` for `leg`; returns its expiry.
pub fn verify(key: &str, leg: &StreamLeg, token: &str, now: u64) -> Result<u64, TokenError> {
    let (expires_at, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let expires_at: u64 = expires_at.parse().map_err(|_| TokenError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
    mac(key, leg, expires_at)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Mismatch)?;
    if now > expires_at {
        return Err(TokenError::Expired);
    }
    Ok(expires_at)
}

fn mac(key: &str, leg: &StreamLeg, expires_at: u64) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    // Domain-separated from anything else keyed with the API key; fields length-prefixed.
    mac.update(b"boltcall-telnyx-stream-v1");
    for field in [leg.direction.as_str(), leg.call.as_str()] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    mac.update(&expires_at.to_be_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "KEY0123";

    fn leg(direction: Direction, call: &str) -> StreamLeg {
        StreamLeg {
            direction,
            call: call.into(),
        }
    }

    fn parsed(query: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(query).unwrap()
    }

    #[test]
    fn a_query_verifies_for_its_own_leg_only() {
        let inbound = leg(Direction::Inbound, "v3:abc-DEF_1");
        let query = inbound.query(KEY, 1_000);
        assert_eq!(
            verify_query(KEY, &parsed(&query), 999),
            Ok((inbound.clone(), 1_000))
        );
        assert_eq!(
            verify_query(KEY, &parsed(&query), 1_001),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_query("other", &parsed(&query), 999),
            Err(TokenError::Mismatch)
        );
        // The same token moved onto another call, or the other direction, fails.
        let token = mint(KEY, &inbound, 1_000);
        for other in [
            leg(Direction::Inbound, "v3:abc-DEF_2"),
            leg(Direction::Outbound, "v3:abc-DEF_1"),
        ] {
            assert_eq!(verify(KEY, &other, &token, 0), Err(TokenError::Mismatch));
        }
        // A later expiry grafted onto the MAC does not verify.
        let (_, tag) = token.split_once('.').unwrap();
        assert_eq!(
            verify(KEY, &inbound, &format!("99999.{tag}"), 0),
            Err(TokenError::Mismatch)
        );
    }

    #[test]
    fn malformed_queries_are_errors() {
        for query in [
            "",
            "leg=inbound&call=x",
            "leg=sideways&call=x&token=1.AAAA",
            "leg=inbound&call=&token=1.AAAA",
            "leg=inbound&call=x&token=",
            "leg=inbound&call=x&token=abc",
            "leg=inbound&call=x&token=1.!!",
        ] {
            assert!(
                verify_query(KEY, &parsed(query), 0).is_err(),
                "{query:?} verified"
            );
        }
    }
}
