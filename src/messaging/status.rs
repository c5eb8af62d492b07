//! Outbound message statuses and how a provider's report moves them: `queued` → `sent` →
//! `delivered` / `undelivered` / `failed`. Reports may arrive out of order or twice; one that
//! would move a message backwards, or out of a final status, changes nothing.

use crate::store::StatusChange;

const FROM_QUEUED: &[&str] = &["queued"];
const FROM_QUEUED_OR_SENT: &[&str] = &["queued", "sent"];

/// The change a Twilio `MessageStatus` asks for, or `None` for statuses that change nothing
/// (`accepted`, `scheduled`, `queued`, `sending`: still on their way).
pub fn from_twilio(
    status: &str,
    error_code: Option<String>,
    error_message: Option<String>,
) -> Option<StatusChange> {
    let (status, from) = match status {
        "sent" => ("sent", FROM_QUEUED),
        // WhatsApp reports `read` after (or instead of) `delivered`.
        "delivered" | "read" => ("delivered", FROM_QUEUED_OR_SENT),
        "undelivered" => ("undelivered", FROM_QUEUED_OR_SENT),
        "failed" | "canceled" => ("failed", FROM_QUEUED_OR_SENT),
        _ => return None,
    };
    Some(StatusChange {
        status: status.into(),
        from,
        error_code,
        error_message,
    })
}

/// The sandbox's simulated hand-off and delivery.
pub fn simulated() -> [StatusChange; 2] {
    let change = |status: &str, from| StatusChange {
        status: status.into(),
        from,
        error_code: None,
        error_message: None,
    };
    [
        change("sent", FROM_QUEUED),
        change("delivered", FROM_QUEUED_OR_SENT),
    ]
}

/// A provider that refused the message outright.
pub fn refused(code: Option<String>, message: String) -> StatusChange {
    StatusChange {
        status: "failed".into(),
        from: FROM_QUEUED,
        error_code: code,
        error_message: Some(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_statuses_map_forward_only() {
        assert!(from_twilio("queued", None, None).is_none());
        assert!(from_twilio("sending", None, None).is_none());
        let sent = from_twilio("sent", None, None).expect("sent");
        assert_eq!(sent.status, "sent");
        assert!(
            !sent.from.contains(&"delivered"),
            "late `sent` after delivery"
        );
        let read = from_twilio("read", None, None).expect("read");
        assert_eq!(read.status, "delivered");
        let failed = from_twilio("undelivered", Some("30003".into()), None).expect("undelivered");
        assert_eq!(failed.error_code.as_deref(), Some("30003"));
        assert!(!failed.from.contains(&"delivered"));
    }
}
