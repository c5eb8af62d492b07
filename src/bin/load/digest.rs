//! Digest answers (RFC 2617, MD5, qop=auth) for the load caller. The engine gives every
//! challenge a nonce of its own, but refuses an `nc` it has already seen for a nonce, so the
//! load caller counts its uses of each nonce, as RFC 2617 §3.2.2 asks of a client (and as a
//! trunk reusing a nonce across calls must).

use std::collections::HashMap;
use std::sync::Mutex;

use boltcall::telephony::sip::auth::{authorize_counted, parse_params};

/// How many requests we have sent with each nonce, across calls.
#[derive(Default)]
pub struct NonceCounts(Mutex<HashMap<String, u32>>);

impl NonceCounts {
    fn next(&self, nonce: &str) -> u32 {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(nonce.to_string()).or_default();
        *n += 1;
        *n
    }

    /// The `Authorization` value answering `challenge` (a `WWW-Authenticate` or
    /// `Proxy-Authenticate` value) for `method uri`; `None` when it is not MD5 with qop=auth.
    pub fn authorize(
        &self,
        challenge: &str,
        (user, password): (&str, &str),
        method: &str,
        uri: &str,
    ) -> Option<String> {
        let params = parse_params(challenge)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        // The engine's answer falls back to RFC 2069 without qop; a load caller whose
        // answers the engine would refuse is no use, so it declines instead.
        if !get("qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")) {
            return None;
        }
        let nc = self.next(get("nonce")?);
        let cnonce = format!("{:016x}", rand::random::<u64>());
        authorize_counted(challenge, user, password, method, uri, &cnonce, nc)
    }
}

#[cfg(test)]
mod tests {
    use boltcall::telephony::sip::auth::{DigestVerifier, Request};

    use super::*;

    #[test]
    fn two_calls_answering_the_same_nonce_both_pass_the_engines_check() {
        let mut verifier = DigestVerifier::new(
            "boltcall".into(),
            vec![("trunk".into(), "s3cret".into())],
            "secret".into(),
        );
        let source = "127.0.0.1".parse().unwrap();
        let uri = "sip:+14155550100@127.0.0.1:5060";
        let request = Request {
            method: "INVITE",
            uri,
            source,
        };
        // The engine gives each challenge a nonce of its own, but a client may answer a later
        // call with a nonce it already holds: its count must then go up.
        let first = verifier.challenge(1000, source, false);
        let counts = NonceCounts::default();
        let creds = ("trunk", "s3cret");
        for _ in 0..2 {
            let answer = counts.authorize(&first, creds, "INVITE", uri).unwrap();
            assert_eq!(
                verifier.verify(Some(&answer), &request, 1000),
                Ok("trunk".into())
            );
        }
        let wrong = counts
            .authorize(&first, ("trunk", "nope"), "INVITE", uri)
            .unwrap();
        assert!(verifier.verify(Some(&wrong), &request, 1000).is_err());
    }
}
