//! HTTP Digest authentication for SIP (RFC 2617 / RFC 8760, MD5, qop=auth): challenges and
//! checks for inbound requests, answers to a trunk's challenges for outbound ones.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

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

/// The request whose credentials are checked.
pub struct Request<'a> {
    pub method: &'a str,
    /// The Request-URI: the digest's `uri` must name it, or the answer was made for another.
    pub uri: &'a str,
    /// Where the request came from: a nonce is only good from the address it was issued to.
    pub source: IpAddr,
}

/// Issues and checks digest challenges. Nonces are `<time>.<salt>.<mac>` where the MAC binds the
/// time, a random salt and the client's address to a per-process secret, so unanswered
/// challenges cost no state. The salt makes every challenge's nonce new: a trunk placing many
/// calls a second answers each with `nc=00000001`, which a nonce shared between calls would
/// refuse as a replay.
/// Only nonces that passed a full check are remembered, with the highest `nc` seen, so a
/// captured answer cannot be replayed while its nonce is fresh.
pub struct DigestVerifier {
    realm: String,
    users: Vec<(String, String)>,
    secret: String,
    /// Nonce → (issue time, highest `nc` accepted).
    used: HashMap<String, (u64, u32)>,
}

impl DigestVerifier {
    pub fn new(realm: String, users: Vec<(String, String)>, secret: String) -> Self {
        DigestVerifier {
            realm,
            users,
            secret,
            used: HashMap::new(),
        }
    }

    fn mac(&self, time: u64, salt: &str, source: IpAddr) -> String {
        md5_hex(&format!(
            "{time}:{salt}:{}:{}",
            source.to_canonical(),
            self.secret
        ))
    }

    fn nonce(&self, now_secs: u64, source: IpAddr) -> String {
        let salt = format!("{:016x}", rand::random::<u64>());
        format!("{now_secs}.{salt}.{}", self.mac(now_secs, &salt, source))
    }

    /// `None` for a nonce we did not issue to `source`; else its issue time.
    fn nonce_time(&self, nonce: &str, source: IpAddr) -> Option<u64> {
        let mut parts = nonce.splitn(3, '.');
        let (time, salt, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let time: u64 = time.parse().ok()?;
        (self.mac(time, salt, source) == mac).then_some(time)
    }

    /// The `WWW-Authenticate`/`Proxy-Authenticate` value for a 401/407 to `source`.
    pub fn challenge(&self, now_secs: u64, source: IpAddr, stale: bool) -> String {
        let mut out = format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.realm,
            self.nonce(now_secs, source)
        );
        if stale {
            out.push_str(", stale=true");
        }
        out
    }

    /// Checks an `Authorization` header for `request`; `None` header means "not sent".
    pub fn verify(
        &mut self,
        header: Option<&str>,
        request: &Request,
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
        if realm != self.realm
            || !uri_matches(uri, request.uri)
            || get(&params, "qop") != Some("auth")
        {
            return Err(AuthFailure::Forbidden);
        }
        let Some(issued) = self.nonce_time(nonce, request.source) else {
            return Err(AuthFailure::Challenge { stale: false });
        };
        if now_secs.saturating_sub(issued) > NONCE_LIFETIME_SECS {
            return Err(AuthFailure::Challenge { stale: true });
        }
        let (_, password) = self
            .users
            .iter()
            .find(|(u, _)| u == user)
            .ok_or(AuthFailure::Forbidden)?;
        let (nc_text, cnonce) = (field("nc")?, field("cnonce")?);
        let nc = u32::from_str_radix(nc_text, 16).map_err(|_| AuthFailure::Forbidden)?;
        let expected = response(
            user,
            realm,
            password,
            request.method,
            uri,
            nonce,
            Some((nc_text, cnonce)),
        );
        // Constant-time compare: the response is a password-derived secret.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            given.as_bytes(),
        )) {
            return Err(AuthFailure::Forbidden);
        }
        // A replay repeats an `nc` already used with this nonce: make the sender start over.
        if self.used.get(nonce).is_some_and(|(_, last)| nc <= *last) {
            return Err(AuthFailure::Challenge { stale: true });
        }
        self.used
            .retain(|_, (time, _)| now_secs.saturating_sub(*time) <= NONCE_LIFETIME_SECS);
        self.used.insert(nonce.to_string(), (issued, nc));
        Ok(user.to_string())
    }
}

/// The digest `uri` must be the Request-URI; a user agent that names only our host (sipp
/// does) is accepted when host and port are the Request-URI's.
fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    let host = |uri: &str| {
        let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
        let rest = rest.split(';').next().unwrap_or(rest);
        rest.rsplit_once('@')
            .map_or(rest, |(_, h)| h)
            .to_ascii_lowercase()
    };
    digest_uri == request_uri
        || (!digest_uri.contains('@') && host(digest_uri) == host(request_uri))
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
    authorize_counted(challenge, user, password, method, uri, cnonce, 1)
}

/// `authorize` for the `nc`th request answering the challenge's nonce (RFC 2617 §3.2.2): a
/// client that reuses a nonce must count its uses, or the server takes the repeat for a replay.
pub fn authorize_counted(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
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
    let nc = format!("{nc:08x}");
    let digest = response(
        user,
        realm,
        password,
        method,
        uri,
        nonce,
        qop_auth.then_some((nc.as_str(), cnonce)),
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

    const URI: &str = "sip:+1@h";

    fn invite(source: &str) -> Request<'static> {
        Request {
            method: "INVITE",
            uri: URI,
            source: source.parse().unwrap(),
        }
    }

    #[test]
    fn our_answer_passes_our_check_and_a_wrong_password_does_not() {
        let mut v = verifier();
        let from = invite("192.0.2.1");
        let challenge = v.challenge(1000, from.source, false);
        let bad = authorize(&challenge, "trunk", "nope", "INVITE", URI, "c1").unwrap();
        assert_eq!(
            v.verify(Some(&bad), &from, 1010),
            Err(AuthFailure::Forbidden)
        );
        let good = authorize(&challenge, "trunk", "s3cret", "INVITE", URI, "c1").unwrap();
        assert_eq!(
            v.verify(Some(&good), &from, 1000 + NONCE_LIFETIME_SECS + 1),
            Err(AuthFailure::Challenge { stale: true })
        );
        assert_eq!(
            v.verify(None, &from, 1000),
            Err(AuthFailure::Challenge { stale: false })
        );
        let forged = good.replace("1000.", "1001.");
        assert_eq!(
            v.verify(Some(&forged), &from, 1010),
            Err(AuthFailure::Challenge { stale: false })
        );
        assert_eq!(v.verify(Some(&good), &from, 1010), Ok("trunk".into()));
    }

    #[test]
    fn calls_challenged_in_the_same_second_each_start_their_own_count() {
        let mut v = verifier();
        let from = invite("192.0.2.1");
        let answers: Vec<String> = (0..3)
            .map(|i| {
                let challenge = v.challenge(1000, from.source, false);
                authorize(
                    &challenge,
                    "trunk",
                    "s3cret",
                    "INVITE",
                    URI,
                    &format!("c{i}"),
                )
                .unwrap()
            })
            .collect();
        for answer in &answers {
            assert_eq!(v.verify(Some(answer), &from, 1000), Ok("trunk".into()));
        }
    }

    #[test]
    fn replays_other_sources_other_uris_and_missing_qop_are_refused() {
        let mut v = verifier();
        let from = invite("192.0.2.1");
        let challenge = v.challenge(1000, from.source, false);
        let good = authorize(&challenge, "trunk", "s3cret", "INVITE", URI, "c1").unwrap();
        // The nonce was issued to 192.0.2.1: from anywhere else it is not ours.
        assert_eq!(
            v.verify(Some(&good), &invite("192.0.2.99"), 1010),
            Err(AuthFailure::Challenge { stale: false })
        );
        assert_eq!(v.verify(Some(&good), &from, 1010), Ok("trunk".into()));
        // The same answer again (same nc) is a replay.
        assert_eq!(
            v.verify(Some(&good), &from, 1011),
            Err(AuthFailure::Challenge { stale: true })
        );
        // A valid answer made for another Request-URI does not authorise this one.
        let other = Request {
            uri: "sip:+1999@h",
            ..invite("192.0.2.1")
        };
        let fresh = v.challenge(1020, from.source, false);
        let elsewhere = authorize(&fresh, "trunk", "s3cret", "INVITE", URI, "c2").unwrap();
        assert_eq!(
            v.verify(Some(&elsewhere), &other, 1021),
            Err(AuthFailure::Forbidden)
        );
        // RFC 2069 answers (no qop, so no nc to track) are refused.
        let legacy = authorize(
            &fresh.replace(", qop=\"auth\"", ""),
            "trunk",
            "s3cret",
            "INVITE",
            URI,
            "c3",
        )
        .unwrap();
        assert!(!legacy.contains("qop"));
        assert_eq!(
            v.verify(Some(&legacy), &from, 1021),
            Err(AuthFailure::Forbidden)
        );
        assert_eq!(v.verify(Some(&elsewhere), &from, 1021), Ok("trunk".into()));
    }
}
