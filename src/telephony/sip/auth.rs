//! HTTP Digest authentication for SIP (RFC 2617 / RFC 8760, MD5, qop=auth): challenges and
//! checks for inbound requests, answers to a trunk's challenges for outbound ones.

use std::fmt::Write as _;

use md5::{Digest, Md5};

use super::message::split_list;

/// Nonces older than this are refused as stale (the peer retries with a fresh one).
const NONCE_LIFETIME_SECS: u64 = 300;

fn md5_hex(input: &str) -> String {
    let digest = Md5::digest(input.as_bytes());
    let mut out = String::with_capacity(32);
    for byte in digest.iter() {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Parses `Digest k=v, k="v"` into pairs (names lowercased, quotes removed).
pub fn parse_params(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim().strip_prefix("Digest")?.trim_start();
    let mut out = Vec::new();
    for part in split_list(rest) {
        let (k, v) = part.split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        out.push((k.trim().to_ascii_lowercase(), v.to_string()));
    }
    Some(out)
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[allow(clippy::too_many_arguments)]
fn response(
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Why an inbound request's credentials were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials, or a stale nonce: challenge (again).
    Challenge { stale: bool },
    /// Wrong user or password: refuse.
    Forbidden,
}

/// Issues and checks digest challenges. Nonces are stateless: `<time>.<mac>` where the MAC
/// binds the time to a per-process secret, so no table grows with unanswered challenges.
pub struct DigestVerifier {
    realm: String,
    users: Vec<(String, String)>,
    secret: String,
}

impl DigestVerifier {
    pub fn new(realm: String, users: Vec<(String, String)>, secret: String) -> Self {
        DigestVerifier {
            realm,
            users,
            secret,
        }
    }

    fn nonce(&self, now_secs: u64) -> String {
        let mac = md5_hex(&format!("{now_secs}:{}", self.secret));
        format!("{now_secs}.{mac}")
    }

    fn nonce_fresh(&self, nonce: &str, now_secs: u64) -> Option<bool> {
        let (time, mac) = nonce.split_once('.')?;
        let time: u64 = time.parse().ok()?;
        if md5_hex(&format!("{time}:{}", self.secret)) != mac {
            return None;
        }
        Some(now_secs.saturating_sub(time) <= NONCE_LIFETIME_SECS)
    }

    /// The `WWW-Authenticate`/`Proxy-Authenticate` value for a 401/407.
    pub fn challenge(&self, now_secs: u64, stale: bool) -> String {
        let mut out = format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.realm,
            self.nonce(now_secs)
        );
        if stale {
            out.push_str(", stale=true");
        }
        out
    }

    /// Checks an `Authorization` header for `method`; `None` header means "not sent".
    pub fn verify(
        &self,
        header: Option<&str>,
        method: &str,
        now_secs: u64,
    ) -> Result<String, AuthFailure> {
        let params = header
            .and_then(parse_params)
            .ok_or(AuthFailure::Challenge { stale: false })?;
        let field = |name| get(&params, name).ok_or(AuthFailure::Forbidden);
        let (user, realm, nonce, uri, given) = (
            field("username")?,
            field("realm")?,
            field("nonce")?,
            field("uri")?,
            field("response")?,
        );
        if realm != self.realm {
            return Err(AuthFailure::Forbidden);
        }
        match self.nonce_fresh(nonce, now_secs) {
            None => return Err(AuthFailure::Challenge { stale: false }),
            Some(false) => return Err(AuthFailure::Challenge { stale: true }),
            Some(true) => {}
        }
        let (_, password) = self
            .users
            .iter()
            .find(|(u, _)| u == user)
            .ok_or(AuthFailure::Forbidden)?;
        let qop = match get(&params, "qop") {
            Some("auth") => Some((field("nc")?, field("cnonce")?)),
            Some(_) => return Err(AuthFailure::Forbidden),
            None => None,
        };
        let expected = response(user, realm, password, method, uri, nonce, qop);
        // Constant-time compare: the response is a password-derived secret.
        if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into() {
            Ok(user.to_string())
        } else {
            Err(AuthFailure::Forbidden)
        }
    }
}

/// Our answer to a trunk's challenge: the `Authorization`/`Proxy-Authorization` value.
pub fn authorize(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> Option<String> {
    let params = parse_params(challenge)?;
    let realm = get(&params, "realm")?;
    let nonce = get(&params, "nonce")?;
    if let Some(alg) = get(&params, "algorithm")
        && !alg.eq_ignore_ascii_case("MD5")
    {
        return None;
    }
    let qop_auth = get(&params, "qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth"));
    let nc = "00000001";
    let digest = response(
        user,
        realm,
        password,
        method,
        uri,
        nonce,
        qop_auth.then_some((nc, cnonce)),
    );
    let mut out = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{digest}\", algorithm=MD5"
    );
    if qop_auth {
        let _ = write!(out, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
    }
    if let Some(opaque) = get(&params, "opaque") {
        let _ = write!(out, ", opaque=\"{opaque}\"");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> DigestVerifier {
        DigestVerifier::new(
            "boltcall".into(),
            vec![("trunk".into(), "s3cret".into())],
            "k".into(),
        )
    }

    #[test]
    fn rfc2617_example_response() {
        // The worked example of RFC 2617 §3.5.
        let got = response(
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(got, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn our_answer_passes_our_check_and_a_wrong_password_does_not() {
        let v = verifier();
        let challenge = v.challenge(1000, false);
        let good = authorize(&challenge, "trunk", "s3cret", "INVITE", "sip:+1@h", "c1").unwrap();
        assert_eq!(v.verify(Some(&good), "INVITE", 1010), Ok("trunk".into()));
        let bad = authorize(&challenge, "trunk", "nope", "INVITE", "sip:+1@h", "c1").unwrap();
        assert_eq!(
            v.verify(Some(&bad), "INVITE", 1010),
            Err(AuthFailure::Forbidden)
        );
        assert_eq!(
            v.verify(Some(&good), "INVITE", 1000 + NONCE_LIFETIME_SECS + 1),
            Err(AuthFailure::Challenge { stale: true })
        );
        assert_eq!(
            v.verify(None, "INVITE", 1000),
            Err(AuthFailure::Challenge { stale: false })
        );
        let forged = good.replace("1000.", "1001.");
        assert_eq!(
            v.verify(Some(&forged), "INVITE", 1010),
            Err(AuthFailure::Challenge { stale: false })
        );
    }
}
