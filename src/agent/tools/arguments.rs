//! The call tools' arguments: their JSON schemas and their validation. Whoever calls a tool (the
//! offline policy or an LLM) gets `ToolError::InvalidArguments` with a message saying what to
//! fix, never a panic and never a half-written row.

use chrono::{DateTime, Utc};
use media::dtmf::tones::{KeySequence, MAX_SEQUENCE};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolError, ToolSpec};

pub const BOOK_APPOINTMENT: &str = "book_appointment";
pub const CAPTURE_LEAD: &str = "capture_lead";
pub const UPDATE_LEAD: &str = "update_lead";
pub const END_CALL: &str = "end_call";
pub const TRANSFER_CALL: &str = "transfer_call";
pub const SEND_SMS: &str = "send_sms";
pub const SEND_DTMF: &str = "send_dtmf";

/// The schemas of every call tool, as an LLM's function calling reads them.
pub fn call_tool_specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: BOOK_APPOINTMENT.into(),
            description: "Book an appointment for the caller once they have confirmed the service, day and time.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "What the appointment is for, e.g. \"Dental cleaning\""},
                    "start_time": {"type": "string", "format": "date-time", "description": "RFC 3339 start, e.g. 2026-03-27T10:00:00Z"},
                    "end_time": {"type": "string", "format": "date-time", "description": "RFC 3339 end, after start_time"},
                    "lead_id": {"type": "string", "description": "The caller's lead; defaults to the lead captured on this call"}
                },
                "required": ["title", "start_time", "end_time"],
                "additionalProperties": false
            }),
        },
        ToolSpec {
            name: CAPTURE_LEAD.into(),
            description: "Save the caller as a lead once their name is known.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "Full name"},
                    "phone": {"type": "string", "description": "E.164 phone number, e.g. +14155550123"},
                    "email": {"type": "string", "description": "Email address"},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["name"],
                "additionalProperties": false
            }),
        },
        ToolSpec {
            name: UPDATE_LEAD.into(),
            description: "Add or correct details of the lead captured on this call.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "lead_id": {"type": "string", "description": "Defaults to the lead captured on this call"},
                    "name": {"type": "string"},
                    "phone": {"type": "string", "description": "E.164 phone number"},
                    "email": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Replaces the lead's tags"}
                },
                "additionalProperties": false
            }),
        },
        ToolSpec {
            name: END_CALL.into(),
            description: "Hang up after the farewell has been spoken.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"reason": {"type": "string"}},
                "additionalProperties": false
            }),
        },
        ToolSpec {
            name: TRANSFER_CALL.into(),
            description: "Transfer the caller to a person once the handover sentence has been spoken.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "target": {"type": "string", "description": "E.164 number or sip: URI to transfer to"},
                    "reason": {"type": "string"}
                },
                "required": ["target"],
                "additionalProperties": false
            }),
        },
        ToolSpec {
            name: SEND_SMS.into(),
            description: "Text the caller (or another number) a short confirmation, e.g. the booked time and address.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "body": {"type": "string", "description": "The text, at most 1600 characters"},
                    "to": {"type": "string", "description": "E.164 number; defaults to the caller's number"}
                },
                "required": ["body"],
                "additionalProperties": false
            }),
        },
        ToolSpec {
            name: SEND_DTMF.into(),
            description: "Press keys on the phone keypad: to get through an automated phone menu (\"press 1 for sales\") or to enter a number it asks for. The keys are sent right after what you have said so far has been played; you do not need to say them.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "digits": {
                        "type": "string",
                        "pattern": format!("^[0-9*#A-Dw]{{1,{MAX_SEQUENCE}}}$"),
                        "description": "The keys in order: 0-9, *, #, A-D; w waits half a second. E.g. \"1\" or \"1234#\""
                    }
                },
                "required": ["digits"],
                "additionalProperties": false
            }),
        },
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDtmf {
    digits: String,
}

/// The keys of a `send_dtmf` call.
pub fn parse_dtmf(arguments: Value) -> Result<KeySequence, ToolError> {
    let raw: RawDtmf = decode(arguments)?;
    KeySequence::parse(raw.digits.trim())
        .map_err(|e| invalid(format!("digits: {e}; send e.g. \"1\" or \"1234#\"")))
}

#[derive(Debug, Clone, PartialEq)]
pub struct SendSms {
    pub body: String,
    pub to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    body: String,
    to: Option<String>,
}

pub fn parse_sms(arguments: Value) -> Result<SendSms, ToolError> {
    let raw: RawSms = decode(arguments)?;
    let body = non_empty("body", &raw.body, crate::messaging::MAX_SMS_CHARS)?;
    if let Some(to) = &raw.to
        && !is_e164(to)
    {
        return Err(invalid(format!(
            "to must be an E.164 number such as +14155550123, got {to:?}"
        )));
    }
    Ok(SendSms { body, to: raw.to })
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookAppointment {
    pub title: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub lead_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeadDetails {
    pub lead_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferCall {
    pub target: String,
    pub reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBooking {
    title: String,
    start_time: String,
    end_time: String,
    lead_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLead {
    lead_id: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransfer {
    target: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnd {
    #[serde(rename = "reason")]
    _reason: Option<String>,
}

fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::InvalidArguments(message.into())
}

fn decode<T: for<'de> Deserialize<'de>>(arguments: Value) -> Result<T, ToolError> {
    serde_json::from_value(arguments).map_err(|e| invalid(e.to_string()))
}

fn rfc3339(field: &str, value: &str) -> Result<DateTime<Utc>, ToolError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            invalid(format!(
                "{field} must be an RFC 3339 time such as 2026-03-27T10:00:00Z, got {value:?}"
            ))
        })
}

fn non_empty(field: &str, value: &str, max: usize) -> Result<String, ToolError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid(format!("{field} must not be empty")));
    }
    if trimmed.chars().count() > max {
        return Err(invalid(format!("{field} must be at most {max} characters")));
    }
    Ok(trimmed.to_string())
}

/// `+` then 8 to 15 digits, the first not zero.
pub fn is_e164(phone: &str) -> bool {
    phone.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|part| !part.is_empty())
        && email.len() <= 254
}

pub fn parse_booking(arguments: Value) -> Result<BookAppointment, ToolError> {
    let raw: RawBooking = decode(arguments)?;
    let start_time = rfc3339("start_time", &raw.start_time)?;
    let end_time = rfc3339("end_time", &raw.end_time)?;
    if end_time <= start_time {
        return Err(invalid("end_time must be after start_time"));
    }
    Ok(BookAppointment {
        title: non_empty("title", &raw.title, 200)?,
        start_time,
        end_time,
        lead_id: raw.lead_id.filter(|id| !id.trim().is_empty()),
    })
}

pub fn parse_lead(arguments: Value, name_required: bool) -> Result<LeadDetails, ToolError> {
    let raw: RawLead = decode(arguments)?;
    if name_required && raw.lead_id.is_some() {
        return Err(invalid(
            "capture_lead creates a new lead and takes no lead_id; use update_lead",
        ));
    }
    let name = raw
        .name
        .as_deref()
        .map(|n| non_empty("name", n, 200))
        .transpose()?;
    if name_required && name.is_none() {
        return Err(invalid("name is required"));
    }
    let phone = raw.phone.map(|p| p.replace([' ', '-', '(', ')', '.'], ""));
    if let Some(phone) = &phone
        && !is_e164(phone)
    {
        return Err(invalid(format!(
            "phone must be E.164 (a + and 8 to 15 digits), got {phone:?}"
        )));
    }
    let email = raw.email.map(|e| e.trim().to_lowercase());
    if let Some(email) = &email
        && !is_email(email)
    {
        return Err(invalid(format!(
            "email must look like name@example.com, got {email:?}"
        )));
    }
    let tags = raw
        .tags
        .map(|tags| {
            tags.iter()
                .map(|t| non_empty("tags[]", t, 64))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let details = LeadDetails {
        lead_id: raw.lead_id,
        name,
        phone,
        email,
        tags,
    };
    if !name_required
        && details.name.is_none()
        && details.phone.is_none()
        && details.email.is_none()
        && details.tags.is_none()
    {
        return Err(invalid("give at least one of name, phone, email, tags"));
    }
    Ok(details)
}

pub fn parse_transfer(arguments: Value) -> Result<TransferCall, ToolError> {
    let raw: RawTransfer = decode(arguments)?;
    let target = raw.target.trim().to_string();
    if !is_transfer_target(&target) {
        return Err(invalid(format!(
            "target must be an E.164 number or a sip: URI, got {target:?}"
        )));
    }
    Ok(TransferCall {
        target,
        reason: raw.reason,
    })
}

/// Whether `target` is well formed and one of the agent's configured `allowed` targets.
pub fn is_allowed_transfer(allowed: &[String], target: &str) -> bool {
    is_transfer_target(target) && allowed.iter().any(|a| a == target)
}

/// An E.164 number, or a `sip:`/`sips:` URI `user@host[;param=value]` of at most 256
/// characters. The SIP character set is deliberately narrow: no whitespace or CR/LF (a new
/// header line), no `<`, `>` or `"` (escaping the Refer-To brackets) and no `?` (URI headers,
/// which a REFER target copies into the INVITE it causes).
pub fn is_transfer_target(target: &str) -> bool {
    if is_e164(target) {
        return true;
    }
    let Some(rest) = target
        .strip_prefix("sip:")
        .or_else(|| target.strip_prefix("sips:"))
    else {
        return false;
    };
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._~+@:;=%".contains(c);
    target.len() <= 256
        && rest.chars().all(safe)
        && rest
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
}

pub fn parse_end(arguments: Value) -> Result<(), ToolError> {
    let arguments = if arguments.is_null() {
        json!({})
    } else {
        arguments
    };
    decode::<RawEnd>(arguments).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl std::fmt::Debug, ToolError>) -> String {
        match result {
            Err(ToolError::InvalidArguments(m)) => m,
            other => panic!("expected invalid arguments, got {other:?}"),
        }
    }

    #[test]
    fn booking_needs_rfc3339_times_in_order() {
        let ok = parse_booking(json!({"title": "Cleaning", "start_time": "2026-03-27T10:00:00Z", "end_time": "2026-03-27T10:45:00+00:00"}))
            .expect("valid booking");
        assert_eq!(ok.end_time - ok.start_time, chrono::Duration::minutes(45));
        let m = message(parse_booking(
            json!({"title": "Cleaning", "start_time": "friday at ten", "end_time": "2026-03-27T10:45:00Z"}),
        ));
        assert!(m.contains("start_time must be an RFC 3339"), "{m}");
        let m = message(parse_booking(
            json!({"title": "Cleaning", "start_time": "2026-03-27T10:00:00Z", "end_time": "2026-03-27T09:00:00Z"}),
        ));
        assert_eq!(m, "end_time must be after start_time");
        let m = message(parse_booking(
            json!({"title": "  ", "start_time": "2026-03-27T10:00:00Z", "end_time": "2026-03-27T11:00:00Z"}),
        ));
        assert_eq!(m, "title must not be empty");
        let m = message(parse_booking(json!({"start_time": "2026-03-27T10:00:00Z"})));
        assert!(m.contains("missing field"), "{m}");
    }

    #[test]
    fn lead_details_are_checked() {
        let lead = parse_lead(json!({"name": "Jane Smith", "phone": "+1 (415) 555-0123", "email": "Jane@Example.com"}), true)
            .expect("valid lead");
        assert_eq!(lead.phone.as_deref(), Some("+14155550123"));
        assert_eq!(lead.email.as_deref(), Some("jane@example.com"));
        assert!(
            message(parse_lead(
                json!({"name": "Jane", "phone": "5551234"}),
                true
            ))
            .contains("E.164")
        );
        assert!(
            message(parse_lead(
                json!({"name": "Jane", "email": "jane at example"}),
                true
            ))
            .contains("email")
        );
        assert_eq!(
            message(parse_lead(json!({"phone": "+14155550123"}), true)),
            "name is required"
        );
        assert!(message(parse_lead(json!({}), false)).contains("at least one"));
        assert!(
            message(parse_lead(json!({"name": "Jane", "age": 3}), true)).contains("unknown field")
        );
    }

    #[test]
    fn transfer_targets_are_numbers_or_sip_uris() {
        assert!(parse_transfer(json!({"target": "+14155550100"})).is_ok());
        assert!(parse_transfer(json!({"target": "sip:desk@pbx.example.com"})).is_ok());
        assert!(message(parse_transfer(json!({"target": "the manager"}))).contains("E.164"));
    }

    #[test]
    fn sip_targets_cannot_smuggle_headers() {
        for forged in [
            "sip:desk@pbx.example.com\r\nX-Evil: 1",
            "sip:desk@pbx.example.com\nContact: <sip:toll@premium.example>",
            "sip:desk@pbx.example.com>;x=<sip:toll@premium.example",
            "sip:desk@pbx.example.com?Replaces=abc",
            "sip:desk pbx@example.com",
            "sip:@pbx.example.com",
            "sip:desk@",
        ] {
            assert!(!is_transfer_target(forged), "{forged:?} accepted");
        }
        assert!(is_transfer_target(
            "sips:desk@pbx.example.com;transport=tls"
        ));
        assert!(!is_transfer_target(&format!(
            "sip:{}@x.example",
            "a".repeat(260)
        )));
    }

    #[test]
    fn dtmf_keys_are_checked() {
        assert_eq!(
            parse_dtmf(json!({"digits": " 1w23#a "}))
                .expect("keys")
                .as_str(),
            "1w23#A"
        );
        assert!(message(parse_dtmf(json!({"digits": "press 1"}))).contains("not a DTMF key"));
        assert!(message(parse_dtmf(json!({"digits": ""}))).contains("no keys"));
        assert!(message(parse_dtmf(json!({"digits": "1".repeat(33)}))).contains("at most 32"));
        assert!(message(parse_dtmf(json!({"digits": 1}))).contains("invalid type"));
        assert!(message(parse_dtmf(json!({"keys": "1"}))).contains("unknown field"));
    }

    #[test]
    fn phone_and_email_shapes() {
        assert!(is_e164("+14155550123"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("14155550123"));
        assert!(!is_e164("+1234567"));
        assert!(is_email("a.b@c.co"));
        assert!(!is_email("a@b"));
        assert!(!is_email("a b@c.com"));
        assert!(!is_email("@c.com"));
    }
}
