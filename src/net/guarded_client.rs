//! HTTP clients for URLs a tenant chose (webhook receivers, operator tools): every address is
//! checked by the SSRF guard, redirects are not followed and no proxy resolves names past it.

use std::net::IpAddr;

use super::ssrf::{GuardedResolver, check};

/// A client builder with the guard in place; callers add their timeout and user agent.
pub fn builder(allow_local: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name itself, past the guard.
        .no_proxy()
        .dns_resolver(GuardedResolver::shared(allow_local))
}

/// Refuses a URL whose host is a literal address the guard forbids: names go through the
/// guarded resolver, literal addresses never reach it.
pub fn check_literal_host(url: &url::Url, allow_local: bool) -> Result<(), String> {
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match literal {
        Some(ip) => check(ip, allow_local).map_err(|why| format!("refused: {why}")),
        None => Ok(()),
    }
}

/// The error and its causes (reqwest's own message hides the guard's refusal in a source).
pub fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_string();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
