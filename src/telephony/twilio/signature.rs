//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + each POST parameter's name and
//! value, sorted by name)).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The signature Twilio computes for a request to `url` with form `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `signature` is Twilio's for this request, compared in constant time.
pub fn is_valid(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = BASE64.decode(signature.trim()) else {
        return false;
    };
    mac(auth_token, url, params).verify_slice(&given).is_ok()
}

/// Whether a webhook request Twilio made to `public_url` + `uri`'s path and query carries a valid
/// `X-Twilio-Signature` for its form `params`.
pub fn is_valid_request(
    auth_token: &str,
    public_url: &str,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    params: &[(String, String)],
) -> bool {
    let url = format!(
        "{public_url}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let given = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let valid = is_valid(auth_token, &url, params, given);
    if !valid {
        tracing::warn!(%url, "twilio webhook with a bad or missing signature");
    }
    valid
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Twilio sorts by name; a stable sort keeps repeated names in their sent order.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn matches_twilios_documented_example() {
        // The worked example of Twilio's webhook security documentation.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = compute("12345", url, &params());
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(is_valid("12345", url, &params(), &sig));
    }

    #[test]
    fn order_of_parameters_does_not_matter_but_values_do() {
        let url = "https://example.com/carrier/twilio/voice";
        let sig = compute("token", url, &params());
        let mut shuffled = params();
        shuffled.reverse();
        assert!(is_valid("token", url, &shuffled, &sig));
        shuffled[0].1.push('9');
        assert!(!is_valid("token", url, &shuffled, &sig));
        assert!(!is_valid("other", url, &params(), &sig));
        assert!(!is_valid("token", url, &params(), "not base64!"));
    }
}
