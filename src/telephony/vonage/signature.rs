//! Vonage's signed webhooks: `Authorization: Bearer <JWT>`, HS256 under the account's
//! signature secret. The claims carry `iat` (checked against our clock), `application_id`
//! and, for a request with a body, `payload_hash`: the hex SHA-256 of the body as sent.
//! Sans-IO: the time is passed in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A token older than this is refused: Vonage signs each delivery as it sends it.
pub const MAX_AGE_SECS: u64 = 300;
/// Clock skew tolerated for a token issued "in the future".
pub const MAX_SKEW_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookAuthError {
    #[error("no Authorization: Bearer token")]
    Missing,
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is signed with {0}, not HS256")]
    Algorithm(String),
    #[error("the token's signature does not match the signature secret")]
    Signature,
    #[error("the token was issued {0} s ago")]
    Stale(u64),
    #[error("the token is issued in the future")]
    Future,
    #[error("the token is for another Vonage application")]
    Application,
    #[error("the body does not match the token's payload_hash")]
    PayloadHash,
}

/// What a webhook's token must match.
pub struct Expected<'a> {
    pub secret: &'a str,
    /// `application_id` the token must carry, when the engine knows its application.
    pub application_id: Option<&'a str>,
    /// The raw body of a POST (its SHA-256 must be the token's `payload_hash`); `None` for a
    /// GET, whose parameters travel in the URL.
    pub body: Option<&'a [u8]>,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    iat: Option<serde_json::Number>,
    application_id: Option<String>,
    payload_hash: Option<String>,
}

/// Checks the `Authorization` header of a webhook against `expected`.
pub fn verify(
    authorization: Option<&str>,
    expected: &Expected<'_>,
) -> Result<(), WebhookAuthError> {
    let token = authorization
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
        .ok_or(WebhookAuthError::Missing)?;
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WebhookAuthError::Malformed);
    };
    let header: Header = decode_json(header)?;
    if header.alg != "HS256" {
        return Err(WebhookAuthError::Algorithm(header.alg));
    }
    let signature = B64
        .decode(signature.trim_end_matches('='))
        .map_err(|_| WebhookAuthError::Malformed)?;
    let signed_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
    let mut mac = Hmac::<Sha256>::new_from_slice(expected.secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(&token.as_bytes()[..signed_len]);
    mac.verify_slice(&signature)
        .map_err(|_| WebhookAuthError::Signature)?;
    // Only a token whose signature holds is worth reading further.
    let claims: Claims = decode_json(claims)?;
    let iat = claims
        .iat
        .and_then(|n| n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)))
        .ok_or(WebhookAuthError::Malformed)?;
    if iat > expected.now + MAX_SKEW_SECS {
        return Err(WebhookAuthError::Future);
    }
    let age = expected.now.saturating_sub(iat);
    if age > MAX_AGE_SECS {
        return Err(WebhookAuthError::Stale(age));
    }
    if let Some(application_id) = expected.application_id
        && claims.application_id.as_deref() != Some(application_id)
    {
        return Err(WebhookAuthError::Application);
    }
    if let Some(body) = expected.body {
        let given = claims.payload_hash.unwrap_or_default();
        if !given.eq_ignore_ascii_case(&payload_hash(body)) {
            return Err(WebhookAuthError::PayloadHash);
        }
    }
    Ok(())
}

/// The hex SHA-256 of a body, as Vonage writes it in `payload_hash`.
pub fn payload_hash(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An HS256 token over `claims`: what Vonage sends, for tests and local tools.
pub fn sign(secret: &str, claims: &serde_json::Value) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = B64.encode(claims.to_string());
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(format!("{header}.{claims}").as_bytes());
    let signature = B64.encode(mac.finalize().into_bytes());
    format!("{header}.{claims}.{signature}")
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, WebhookAuthError> {
    let bytes = B64
        .decode(part.trim_end_matches('='))
        .map_err(|_| WebhookAuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| WebhookAuthError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "signature-secret";
    const APP: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
    const NOW: u64 = 1_700_000_000;

    fn expected(body: Option<&[u8]>) -> Expected<'_> {
        Expected {
            secret: SECRET,
            application_id: Some(APP),
            body,
            now: NOW,
        }
    }

    fn bearer(claims: serde_json::Value) -> String {
        format!("Bearer {}", sign(SECRET, &claims))
    }

    #[test]
    fn a_fresh_token_for_this_body_and_application_passes() {
        let body = br#"{"status":"ringing","uuid":"u1"}"#;
        let auth = bearer(json!({
            "iat": NOW - 2, "jti": "j1", "iss": "Vonage", "application_id": APP,
            "payload_hash": payload_hash(body), "api_key": "k"
        }));
        assert_eq!(verify(Some(&auth), &expected(Some(body))), Ok(()));
        // A GET carries no body to hash.
        let auth = bearer(json!({"iat": NOW, "application_id": APP}));
        assert_eq!(verify(Some(&auth), &expected(None)), Ok(()));
    }

    #[test]
    fn every_mismatch_is_refused() {
        let body = br#"{"status":"busy"}"#;
        let claims = |iat: u64, app: &str, hash: &str| json!({"iat": iat, "application_id": app, "payload_hash": hash});
        let good_hash = payload_hash(body);
        let cases = [
            (
                bearer(claims(NOW - 400, APP, &good_hash)),
                WebhookAuthError::Stale(400),
            ),
            (
                bearer(claims(NOW + 120, APP, &good_hash)),
                WebhookAuthError::Future,
            ),
            (
                bearer(claims(NOW, "other-app", &good_hash)),
                WebhookAuthError::Application,
            ),
            (
                bearer(claims(NOW, APP, &payload_hash(b"{}"))),
                WebhookAuthError::PayloadHash,
            ),
            (
                bearer(json!({"iat": NOW, "application_id": APP})),
                WebhookAuthError::PayloadHash,
            ),
            (
                format!("Bearer {}", sign("wrong", &claims(NOW, APP, &good_hash))),
                WebhookAuthError::Signature,
            ),
            (
                bearer(json!({"application_id": APP})),
                WebhookAuthError::Malformed,
            ),
        ];
        for (auth, error) in cases {
            assert_eq!(
                verify(Some(&auth), &expected(Some(body))),
                Err(error),
                "{auth}"
            );
        }
    }

    #[test]
    fn junk_and_other_algorithms_are_errors_not_panics() {
        for auth in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Basic abc"),
            Some("Bearer a.b"),
            Some("Bearer a.b.c.d"),
            Some("Bearer !!.??.**"),
            Some("Bearer e30.e30."),
        ] {
            assert!(verify(auth, &expected(None)).is_err(), "{auth:?}");
        }
        // alg "none" (or RS256 with our secret as a "public key") never passes.
        let none = format!(
            "Bearer {}.{}.",
            B64.encode(br#"{"alg":"none"}"#),
            B64.encode(json!({"iat": NOW, "application_id": APP}).to_string())
        );
        assert_eq!(
            verify(Some(&none), &expected(None)),
            Err(WebhookAuthError::Algorithm("none".into()))
        );
    }

    #[test]
    fn a_tampered_claim_breaks_the_signature() {
        let token = sign(SECRET, &json!({"iat": NOW, "application_id": "other"}));
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = B64.encode(json!({"iat": NOW, "application_id": APP}).to_string());
        let forged = format!("Bearer {}.{forged_claims}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(Some(&forged), &expected(None)),
            Err(WebhookAuthError::Signature)
        );
    }
}
