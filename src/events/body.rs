//! The webhook request body: `{"event", "timestamp", "data"}` with the full resource in `data`.

/// The body for an event whose resource is stored as the JSON text `payload`, spliced in as
/// is (it was serialised by the resource's own type; re-parsing would only reorder it).
pub fn event_body(event_type: &str, timestamp: &str, payload: &str) -> String {
    format!(
        "{{\"event\":{},\"timestamp\":{},\"data\":{payload}}}",
        crate::store::to_json_text(&event_type),
        crate::store::to_json_text(&timestamp),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_is_json_with_the_resource_in_data() {
        let body = super::event_body("lead.created", "2025-03-20T14:00:00Z", r#"{"id":"lead_1"}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "lead.created", "timestamp": "2025-03-20T14:00:00Z",
                               "data": {"id": "lead_1"}})
        );
    }
}
