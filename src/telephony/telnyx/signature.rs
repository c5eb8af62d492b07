//! Telnyx webhook signatures: Ed25519 over `{telnyx-timestamp}|{raw body}`, sent base64 in
//! `telnyx-signature-ed25519` and verified with the account's public key (base64, from the
//! portal). A signed webhook older or newer than `MAX_SKEW_SECS` is refused, so a captured one
//! cannot be replayed later. Sans-IO: the time is passed in.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// How far a webhook's timestamp may be from our clock, either way.
pub const MAX_SKEW_SECS: u64 = 300;

pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no telnyx-signature-ed25519 or telnyx-timestamp header")]
    Missing,
    #[error("telnyx-timestamp is not a Unix time")]
    BadTimestamp,
    #[error("webhook timestamp is {0} s away from now (at most 300 s allowed)")]
    Stale(u64),
    #[error("telnyx-signature-ed25519 is not a base64 Ed25519 signature")]
    Malformed,
    #[error("the signature does not verify with the configured public key")]
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BOLTCALL_TELNYX_PUBLIC_KEY is not a base64 Ed25519 public key (32 bytes)")]
pub struct KeyError;

/// The account's Ed25519 public key.
#[derive(Clone)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key as the Telnyx portal shows it: base64 of the 32 raw key bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| KeyError)?;
        Ok(PublicKey(bytes.try_into().map_err(|_| KeyError)?))
    }
}

/// Checks one webhook: `timestamp` and `signature` are the headers' values, `body` the raw
/// request body exactly as received, `now` Unix seconds.
pub fn verify(
    key: &PublicKey,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: u64,
) -> Result<(), SignatureError> {
    let sent: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now.abs_diff(sent);
    if skew > MAX_SKEW_SECS {
        return Err(SignatureError::Stale(skew));
    }
    let signature = BASE64
        .decode(signature.trim())
        .map_err(|_| SignatureError::Malformed)?;
    if signature.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.trim().as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    UnparsedPublicKey::new(&ED25519, &key.0)
        .verify(&signed, &signature)
        .map_err(|_| SignatureError::Invalid)
}

/// `verify` on a request's headers.
pub fn verify_headers(
    key: &PublicKey,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    now: u64,
) -> Result<(), SignatureError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER))
    else {
        return Err(SignatureError::Missing);
    };
    verify(key, timestamp, signature, body, now)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    use super::*;

    fn key_pair() -> (Ed25519KeyPair, PublicKey) {
        let pair = Ed25519KeyPair::generate().unwrap();
        let key = PublicKey::from_base64(&BASE64.encode(pair.public_key().as_ref())).unwrap();
        (pair, key)
    }

    fn sign(pair: &Ed25519KeyPair, timestamp: &str, body: &[u8]) -> String {
        let mut signed = format!("{timestamp}|").into_bytes();
        signed.extend_from_slice(body);
        BASE64.encode(pair.sign(&signed).as_ref())
    }

    const BODY: &[u8] = br#"{"data":{"event_type":"call.initiated"}}"#;

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let (pair, key) = key_pair();
        let sig = sign(&pair, "1700000000", BODY);
        assert_eq!(
            verify(&key, "1700000000", &sig, BODY, 1_700_000_010),
            Ok(())
        );
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(&key, "1700000000", &sig, &tampered, 1_700_000_010),
            Err(SignatureError::Invalid)
        );
        // The timestamp is signed too: moving it forward breaks the signature.
        assert_eq!(
            verify(&key, "1700000001", &sig, BODY, 1_700_000_010),
            Err(SignatureError::Invalid)
        );
        let (_, other) = key_pair();
        assert_eq!(
            verify(&other, "1700000000", &sig, BODY, 1_700_000_010),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn stale_or_future_timestamps_are_refused() {
        let (pair, key) = key_pair();
        let sig = sign(&pair, "1700000000", BODY);
        assert_eq!(
            verify(&key, "1700000000", &sig, BODY, 1_700_000_300),
            Ok(())
        );
        assert_eq!(
            verify(&key, "1700000000", &sig, BODY, 1_700_000_301),
            Err(SignatureError::Stale(301))
        );
        assert_eq!(
            verify(&key, "1700000000", &sig, BODY, 1_699_999_000),
            Err(SignatureError::Stale(1000))
        );
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        let (_, key) = key_pair();
        assert_eq!(
            verify(&key, "soon", "AAAA", BODY, 0),
            Err(SignatureError::BadTimestamp)
        );
        for sig in ["", "!!!", "AAAA", &BASE64.encode([0u8; 65])] {
            assert_eq!(
                verify(&key, "10", sig, BODY, 10),
                Err(SignatureError::Malformed),
                "{sig:?}"
            );
        }
        assert_eq!(
            verify(&key, "10", &BASE64.encode([0u8; 64]), BODY, 10),
            Err(SignatureError::Invalid)
        );
        assert!(PublicKey::from_base64("").is_err());
        assert!(PublicKey::from_base64("not base64").is_err());
        assert!(PublicKey::from_base64(&BASE64.encode([1u8; 31])).is_err());
        assert_eq!(
            verify_headers(&key, &axum::http::HeaderMap::new(), BODY, 0),
            Err(SignatureError::Missing)
        );
    }
}
