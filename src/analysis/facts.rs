//! Facts the brain's tools established during the call (booked appointment, captured lead,
//! transfer), read from their recorded arguments and results.

use serde_json::Value;

use crate::agent::turn::ToolCallRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    AppointmentBooked {
        title: Option<String>,
        start: Option<String>,
    },
    AppointmentCancelled,
    LeadCaptured {
        name: Option<String>,
        phone: Option<String>,
        email: Option<String>,
    },
    LeadUpdated,
    Transferred {
        target: Option<String>,
    },
}

impl Fact {
    /// One sentence for the summary.
    pub fn sentence(&self) -> String {
        match self {
            Fact::AppointmentBooked { title, start } => {
                let what = title.as_deref().unwrap_or("Appointment");
                match start {
                    Some(start) => format!("Booked: {what} at {start}."),
                    None => format!("Booked: {what}."),
                }
            }
            Fact::AppointmentCancelled => "An appointment was cancelled.".into(),
            Fact::LeadCaptured { name, phone, email } => {
                let details: Vec<&str> = [name, phone, email]
                    .into_iter()
                    .filter_map(|v| v.as_deref())
                    .collect();
                if details.is_empty() {
                    "Lead captured.".into()
                } else {
                    format!("Lead captured: {}.", details.join(", "))
                }
            }
            Fact::LeadUpdated => "Lead details updated.".into(),
            Fact::Transferred { target } => match target {
                Some(t) => format!("Caller transferred to {t}."),
                None => "Caller transferred.".into(),
            },
        }
    }
}

/// The facts of the tool calls that succeeded, in call order.
pub fn facts(tool_calls: &[ToolCallRecord]) -> Vec<Fact> {
    tool_calls
        .iter()
        .filter(|call| succeeded(&call.result))
        .filter_map(|call| {
            let field = |keys: &[&str]| {
                keys.iter().find_map(|k| {
                    text_field(&call.result, k).or_else(|| text_field(&call.arguments, k))
                })
            };
            match call.name.as_str() {
                "book_appointment" => Some(Fact::AppointmentBooked {
                    title: field(&["title", "service"]),
                    start: field(&["start_time", "start", "time"]),
                }),
                "cancel_appointment" => Some(Fact::AppointmentCancelled),
                "capture_lead" | "create_lead" => Some(Fact::LeadCaptured {
                    name: field(&["name"]),
                    phone: field(&["phone"]),
                    email: field(&["email"]),
                }),
                "update_lead" => Some(Fact::LeadUpdated),
                "transfer_call" => Some(Fact::Transferred {
                    target: field(&["target", "to", "number"]),
                }),
                _ => None,
            }
        })
        .collect()
}

/// A tool result counts as success unless it says otherwise (`error`, `ok: false`,
/// `success: false`, `status: "error"/"failed"`).
fn succeeded(result: &Value) -> bool {
    match result {
        Value::Object(map) => {
            let flag_false = |k: &str| map.get(k).is_some_and(|v| v == &Value::Bool(false));
            let status_failed = map
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| matches!(s, "error" | "failed" | "rejected"));
            !map.contains_key("error")
                && !flag_false("ok")
                && !flag_false("success")
                && !status_failed
        }
        Value::String(s) => !s.to_ascii_lowercase().starts_with("error"),
        Value::Bool(b) => *b,
        _ => true,
    }
}

/// A non-empty string field of an object, looking one level into nested objects
/// (`{"appointment": {"title": …}}`).
fn text_field(value: &Value, key: &str) -> Option<String> {
    let map = value.as_object()?;
    if let Some(s) = map
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
    {
        return Some(s.trim().to_string());
    }
    map.values()
        .filter(|v| v.is_object())
        .find_map(|v| {
            v.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
        })
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, arguments: Value, result: Value) -> ToolCallRecord {
        ToolCallRecord {
            name: name.into(),
            arguments,
            result,
        }
    }

    #[test]
    fn successful_tools_become_facts_and_failures_do_not() {
        let calls = [
            call(
                "book_appointment",
                json!({"title": "Cleaning", "start_time": "2025-03-21T10:30:00Z"}),
                json!({"error": "slot taken"}),
            ),
            call(
                "book_appointment",
                json!({"title": "Cleaning", "start_time": "2025-03-21T11:30:00Z"}),
                json!({"appointment": {"id": "apt_1", "title": "Dental cleaning"}}),
            ),
            call(
                "capture_lead",
                json!({"name": "Ana Ruiz", "phone": "+15551234567"}),
                json!({"id": "lead_1"}),
            ),
            call("end_call", json!({}), json!({"ok": true})),
        ];
        let facts = facts(&calls);
        assert_eq!(
            facts,
            vec![
                Fact::AppointmentBooked {
                    title: Some("Dental cleaning".into()),
                    start: Some("2025-03-21T11:30:00Z".into()),
                },
                Fact::LeadCaptured {
                    name: Some("Ana Ruiz".into()),
                    phone: Some("+15551234567".into()),
                    email: None,
                },
            ]
        );
        assert_eq!(
            facts[1].sentence(),
            "Lead captured: Ana Ruiz, +15551234567."
        );
        assert!(!succeeded(&json!({"ok": false})));
        assert!(!succeeded(&json!("Error: no such slot")));
    }
}
