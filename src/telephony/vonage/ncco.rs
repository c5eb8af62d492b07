//! NCCOs (Vonage's call control objects) and the numbers in them.

use serde_json::{Value, json};

/// The audio format we ask Vonage for: 16-bit linear PCM at the engine's own rate.
pub const CONTENT_TYPE: &str = "audio/l16;rate=16000";

/// `[connect → websocket]`: the call's audio goes to our stream endpoint; `headers` come back
/// in the socket's first message.
pub fn connect_stream(uri: &str, headers: &[(String, String)]) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!([{
        "action": "connect",
        "endpoint": [{
            "type": "websocket",
            "uri": uri,
            "content-type": CONTENT_TYPE,
            "headers": headers,
        }]
    }])
}

/// `[talk]`: say why the call cannot be taken; with nothing after it, Vonage hangs up.
pub fn talk(text: &str) -> Value {
    json!([{"action": "talk", "text": text}])
}

/// The `destination` of a transfer: a new NCCO connecting the caller to `target` (a phone
/// number, or a `sip:` URI), shown `caller_id` (one of the application's numbers: Vonage
/// refuses other caller ids on phone legs).
pub fn transfer_destination(target: &str, caller_id: &str) -> Value {
    let endpoint = if target.starts_with("sip:") || target.starts_with("sips:") {
        json!({"type": "sip", "uri": target})
    } else {
        json!({"type": "phone", "number": vonage_number(target)})
    };
    let mut connect = json!({"action": "connect", "endpoint": [endpoint]});
    if !caller_id.is_empty() {
        connect["from"] = Value::String(vonage_number(caller_id));
    }
    json!({"type": "ncco", "ncco": [connect]})
}

/// The stream URL for a public base URL: `http` becomes `ws`, `https` becomes `wss`.
pub fn stream_url(public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{ws}/carrier/vonage/stream")
}

/// A number as Vonage writes it: E.164 digits without the `+`.
pub fn vonage_number(number: &str) -> String {
    number.trim().trim_start_matches('+').to_string()
}

/// A number as the engine stores it: E.164 with the `+` (Vonage sends bare digits).
pub fn e164(number: &str) -> String {
    let number = number.trim();
    if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{number}")
    } else {
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_carries_the_uri_format_and_headers() {
        let ncco = connect_stream(
            "wss://calls.example.com/carrier/vonage/stream",
            &[("boltcall_token".into(), "1.abc".into())],
        );
        let endpoint = &ncco[0]["endpoint"][0];
        assert_eq!(ncco[0]["action"], "connect");
        assert_eq!(endpoint["type"], "websocket");
        assert_eq!(
            endpoint["uri"],
            "wss://calls.example.com/carrier/vonage/stream"
        );
        assert_eq!(endpoint["content-type"], "audio/l16;rate=16000");
        assert_eq!(endpoint["headers"]["boltcall_token"], "1.abc");
    }

    #[test]
    fn transfers_go_to_phones_and_sip_uris() {
        let phone = transfer_destination("+14155550100", "+15550001000");
        assert_eq!(phone["type"], "ncco");
        assert_eq!(phone["ncco"][0]["action"], "connect");
        assert_eq!(phone["ncco"][0]["from"], "15550001000");
        assert_eq!(
            phone["ncco"][0]["endpoint"][0],
            json!({"type": "phone", "number": "14155550100"})
        );
        let sip = transfer_destination("sip:desk@pbx.example.com", "+15550001000");
        assert_eq!(
            sip["ncco"][0]["endpoint"][0],
            json!({"type": "sip", "uri": "sip:desk@pbx.example.com"})
        );
    }

    #[test]
    fn numbers_and_urls() {
        assert_eq!(e164("447700900000"), "+447700900000");
        assert_eq!(e164("+447700900000"), "+447700900000");
        assert_eq!(e164("Unknown"), "Unknown");
        assert_eq!(vonage_number("+447700900000"), "447700900000");
        assert_eq!(
            stream_url("https://calls.example.com/"),
            "wss://calls.example.com/carrier/vonage/stream"
        );
        assert_eq!(
            stream_url("http://127.0.0.1:8080"),
            "ws://127.0.0.1:8080/carrier/vonage/stream"
        );
        assert!(talk("Goodbye.")[0]["text"] == "Goodbye.");
    }
}
