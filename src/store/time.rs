//! Stored timestamps: fixed-width RFC 3339 UTC text with microseconds, so that text order is
//! time order on both engines. Resources show them at second precision.

use chrono::{DateTime, SecondsFormat, Utc};

const STORED: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// `t` in the stored format.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.format(STORED).to_string()
}

/// The current time in the stored format.
pub fn now_ts() -> String {
    format_ts(Utc::now())
}

/// Parses a stored or user-supplied RFC 3339 timestamp.
pub fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A stored timestamp as shown in resources (`2025-03-20T14:00:00Z`).
pub(crate) fn public_ts(stored: &str) -> String {
    match parse_ts(stored) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        None => stored.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_format_sorts_as_time() {
        let a = parse_ts("2025-03-20T14:00:00Z").unwrap();
        let b = parse_ts("2025-03-20T14:00:00.5+00:00").unwrap();
        assert!(format_ts(a) < format_ts(b));
        assert_eq!(public_ts(&format_ts(b)), "2025-03-20T14:00:00Z");
    }
}
