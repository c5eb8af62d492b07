//! Field validation shared by the resources. Every error names its field.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::error::{ApiError, ApiResult};
use crate::net::ssrf::{Reach, classify};

/// A required field: absent or null is `400`.
pub fn required<T>(value: Option<T>, field: &str) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::missing(field))
}

/// E.164: `+`, a non-zero digit, 8–15 digits in all.
pub fn phone(value: &str, field: &str) -> ApiResult<()> {
    let digits = value.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            field,
            format!("must be an E.164 phone number such as +15551234567, got {value:?}"),
        ))
    }
}

pub fn email(value: &str, field: &str) -> ApiResult<()> {
    let ok = value.len() <= 254
        && !value.chars().any(char::is_whitespace)
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(field, "must be an email address"))
    }
}

/// Non-blank text of at most `max` characters.
pub fn text(value: &str, field: &str, max: usize) -> ApiResult<()> {
    if value.trim().is_empty() {
        return Err(ApiError::validation(field, "must not be empty"));
    }
    let len = value.chars().count();
    if len > max {
        return Err(ApiError::validation(
            field,
            format!("must be at most {max} characters (got {len})"),
        ));
    }
    Ok(())
}

pub fn one_of(value: &str, field: &str, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::validation(
            field,
            format!("must be one of {}, got {value:?}", allowed.join(", ")),
        ))
    }
}

/// Extension `transfer_targets`: at most 20 E.164 numbers or `sip:` URIs, none able to carry
/// a header (CR/LF, brackets, quotes, `?`).
pub fn transfer_targets(values: &[String], field: &str) -> ApiResult<()> {
    if values.len() > 20 {
        return Err(ApiError::validation(field, "must hold at most 20 targets"));
    }
    match values
        .iter()
        .find(|t| !crate::agent::tools::arguments::is_transfer_target(t))
    {
        Some(bad) => Err(ApiError::validation(
            field,
            format!("each target must be an E.164 number or a plain sip: URI, got {bad:?}"),
        )),
        None => Ok(()),
    }
}

/// Segmentation tags: at most 20, each 1–50 characters.
pub fn tags(values: &[String], field: &str) -> ApiResult<()> {
    if values.len() > 20 {
        return Err(ApiError::validation(field, "must hold at most 20 tags"));
    }
    for tag in values {
        text(tag, field, 50)?;
    }
    Ok(())
}

/// Which end of a day a date-only value stands for.
#[derive(Clone, Copy)]
pub enum DayEdge {
    Start,
    End,
}

/// An ISO 8601 timestamp (RFC 3339) or a date (`2025-03-01`, the start or end of that UTC day).
pub fn datetime(value: &str, field: &str, edge: DayEdge) -> ApiResult<DateTime<Utc>> {
    if let Some(t) = crate::store::parse_ts(value) {
        return Ok(t);
    }
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let time = match edge {
            DayEdge::Start => NaiveTime::MIN,
            DayEdge::End => {
                NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or(NaiveTime::MIN)
            }
        };
        return Ok(day.and_time(time).and_utc());
    }
    Err(ApiError::validation(
        field,
        format!(
            "must be an ISO 8601 date or date-time such as 2025-03-20T14:00:00Z, got {value:?}"
        ),
    ))
}

/// A URL the engine will call for a tenant (webhooks, operator tools): https, and not a loopback/private address unless the operator allows it;
/// then plain http is accepted too, but only to such local targets. Names are checked again at
/// delivery time, when they are resolved; here only literal addresses and local-only names can
/// be refused.
pub fn outbound_url(value: &str, field: &str, allow_local: bool) -> ApiResult<url::Url> {
    let url = url::Url::parse(value)
        .map_err(|e| ApiError::validation(field, format!("is not a valid URL: {e}")))?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(ApiError::validation(
                field,
                format!("must use https, not {other}"),
            ));
        }
    };
    let reach = match url.host() {
        None => return Err(ApiError::validation(field, "must name a host")),
        Some(url::Host::Ipv4(ip)) => classify(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => classify(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) if is_local_name(name) => Reach::Local,
        Some(url::Host::Domain(_)) => Reach::Public,
    };
    match reach {
        Reach::Forbidden(why) => Err(ApiError::validation(
            field,
            format!("must not target {why}"),
        )),
        Reach::Local if !allow_local => Err(ApiError::validation(
            field,
            "must not target a loopback, private or link-local address",
        )),
        Reach::Public if !https => Err(ApiError::validation(
            field,
            "must use https (http is accepted only for loopback or private targets when the \
             engine allows them)",
        )),
        _ => Ok(url),
    }
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || [
            ".localhost",
            ".local",
            ".internal",
            ".localdomain",
            ".home.arpa",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || !name.contains('.')
}

/// Addresses a server-side request must never reach from a tenant's URL.
pub fn is_local_ip(ip: IpAddr) -> bool {
    classify(ip) != Reach::Public
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert!(phone("+1234567890", "to").is_ok());
        assert!(phone("+15551234567", "to").is_ok());
        for bad in [
            "1234567890",
            "+1234567",
            "+1234567890123456",
            "+0123456789",
            "+1 555 123",
            "",
        ] {
            let err = phone(bad, "to").unwrap_err();
            assert!(err.message.starts_with("`to`"), "{bad}");
        }
    }

    #[test]
    fn webhook_targets() {
        assert!(outbound_url("https://yourapp.com/hooks/boltcall", "url", false).is_ok());
        for bad in [
            "http://yourapp.com/h",
            "ftp://yourapp.com/h",
            "https://127.0.0.1/h",
            "https://10.1.2.3/h",
            "https://192.168.0.1/h",
            "https://169.254.169.254/latest",
            "https://[::1]/h",
            "https://[::ffff:127.0.0.1]/h",
            "https://localhost/h",
            "https://metadata.google.internal/h",
            "https://intranet/h",
            "not a url",
        ] {
            assert!(outbound_url(bad, "url", false).is_err(), "{bad}");
        }
        assert!(outbound_url("http://127.0.0.1:9000/h", "url", true).is_ok());
        assert!(outbound_url("http://localhost:9000/h", "url", true).is_ok());
        // The operator flag opens http to local targets only, never to the internet, and
        // never to metadata or link-local ranges.
        assert!(outbound_url("http://yourapp.com/h", "url", true).is_err());
        assert!(outbound_url("http://93.184.216.34/h", "url", true).is_err());
        assert!(outbound_url("http://169.254.169.254/latest", "url", true).is_err());
        assert!(outbound_url("https://[64:ff9b::7f00:1]/h", "url", true).is_err());
        assert!(outbound_url("ftp://127.0.0.1/h", "url", true).is_err());
    }

    #[test]
    fn dates_and_days() {
        let start = datetime("2025-03-01", "from", DayEdge::Start).unwrap();
        let end = datetime("2025-03-01", "to", DayEdge::End).unwrap();
        assert!(start < end);
        assert_eq!(start.to_rfc3339(), "2025-03-01T00:00:00+00:00");
        assert!(datetime("2025-03-20T14:00:00Z", "from", DayEdge::Start).is_ok());
        assert!(datetime("yesterday", "from", DayEdge::Start).is_err());
        assert!(datetime("2025-02-30", "from", DayEdge::Start).is_err());
    }

    #[test]
    fn emails_and_tags() {
        assert!(email("jane@example.com", "email").is_ok());
        assert!(email("jane@localhost", "email").is_err());
        assert!(email("jane example.com", "email").is_err());
        assert!(tags(&["a".into()], "tags").is_ok());
        assert!(tags(&["".into()], "tags").is_err());
    }
}
