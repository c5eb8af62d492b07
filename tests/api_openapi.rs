//! The OpenAPI document describes what the server really answers: every documented operation is
//! called, and each real response body is checked against the schema the document gives for it
//! (a small JSON-schema check: $ref, oneOf/anyOf/allOf, type, required, properties, items, enum).

mod common;

use std::collections::BTreeSet;

use boltcall::store::{CallOutcome, NewCall, TranscriptEntry};
use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Checker {
    doc: Value,
    covered: BTreeSet<(String, String)>,
    failures: Vec<String>,
}

impl Checker {
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.trim_start_matches('#');
                self.doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {r}"))
            }
            None => schema,
        }
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        for (keyword, any) in [("oneOf", true), ("anyOf", true), ("allOf", false)] {
            if let Some(alternatives) = schema.get(keyword).and_then(Value::as_array) {
                let results: Vec<Vec<String>> = alternatives
                    .iter()
                    .map(|alt| {
                        let mut e = Vec::new();
                        self.check(alt, value, at, &mut e);
                        e
                    })
                    .collect();
                if any && !results.iter().any(Vec::is_empty) {
                    errors.push(format!(
                        "{at}: matches no {keyword} alternative: {results:?}"
                    ));
                }
                if !any {
                    errors.extend(results.into_iter().flatten());
                }
            }
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let ok = types.iter().any(|t| match *t {
                "null" => value.is_null(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                _ => false,
            });
            if !ok {
                errors.push(format!("{at}: {value} is not of type {types:?}"));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{at}: {value} not in enum {allowed:?}"));
        }
        if let Value::Object(map) = value {
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = name.as_str().unwrap_or_default();
                if !map.contains_key(name) {
                    errors.push(format!("{at}: missing required property {name}"));
                }
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if let Some(v) = map.get(name) {
                        self.check(sub, v, &format!("{at}.{name}"), errors);
                    }
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                self.check(item_schema, item, &format!("{at}[{i}]"), errors);
            }
        }
    }

    /// Checks one real response against the document's schema for `method template status`.
    fn verify(&mut self, method: &Method, template: &str, status: StatusCode, body: &Value) {
        let op = &self.doc["paths"][template][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let responses = &op["responses"];
        let response = responses
            .get(status.as_str())
            .or_else(|| responses.get("default"))
            .unwrap_or_else(|| panic!("{method} {template}: status {status} undocumented"));
        let schema = &response["content"]["application/json"]["schema"];
        let mut errors = Vec::new();
        self.check(schema, body, "$", &mut errors);
        if !errors.is_empty() {
            self.failures.push(format!(
                "{method} {template} {status}: {errors:?}\n  body: {body}"
            ));
        }
        if status.is_success() {
            self.covered
                .insert((method.as_str().to_lowercase(), template.to_string()));
        }
    }
}

#[tokio::test]
async fn every_endpoint_answers_as_documented() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (_, doc) = s.send(s.http.get(s.url("/v1/openapi.json"))).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut c = Checker {
        doc,
        covered: BTreeSet::new(),
        failures: Vec::new(),
    };

    macro_rules! call {
        ($method:expr, $template:expr, $path:expr) => {
            call!($method, $template, $path, Value::Null)
        };
        ($method:expr, $template:expr, $path:expr, $body:expr) => {{
            let mut request = s.http.request($method, s.url(&$path)).bearer_auth(&key);
            if !$body.is_null() {
                request = request.json(&$body);
            }
            let (status, body) = s.send(request).await;
            c.verify(&$method, $template, status, &body);
            body
        }};
    }

    let kb = call!(
        Method::POST,
        "/v1/knowledge_bases",
        "/v1/knowledge_bases",
        json!({"name": "FAQ"})
    );
    let kb_id = kb["id"].as_str().unwrap().to_string();
    let doc = call!(
        Method::POST,
        "/v1/knowledge_bases/{id}/documents",
        format!("/v1/knowledge_bases/{kb_id}/documents"),
        json!({"title": "Hours", "text": "9 to 5"})
    );
    call!(Method::GET, "/v1/knowledge_bases", "/v1/knowledge_bases");
    call!(
        Method::GET,
        "/v1/knowledge_bases/{id}",
        format!("/v1/knowledge_bases/{kb_id}")
    );
    call!(
        Method::GET,
        "/v1/knowledge_bases/{id}/documents",
        format!("/v1/knowledge_bases/{kb_id}/documents")
    );

    let agent = call!(
        Method::POST,
        "/v1/agents",
        "/v1/agents",
        json!({"name": "Desk", "voice_id": "voice_sarah", "knowledge_base_id": kb_id, "phone_number": "+15550005555"})
    );
    let agent_id = agent["id"].as_str().unwrap().to_string();
    call!(Method::GET, "/v1/agents", "/v1/agents");
    call!(
        Method::GET,
        "/v1/agents/{id}",
        format!("/v1/agents/{agent_id}")
    );
    call!(
        Method::PATCH,
        "/v1/agents/{id}",
        format!("/v1/agents/{agent_id}"),
        json!({"greeting": "Hello"})
    );
    call!(Method::GET, "/v1/voices", "/v1/voices");

    let outbound = call!(
        Method::POST,
        "/v1/calls/outbound",
        "/v1/calls/outbound",
        json!({"agent_id": agent_id, "to": "+1555000111"})
    );
    assert!(outbound["id"].is_string());
    let scope = s.store.list_keys().await.unwrap()[0].scope();
    let inbound = s
        .store
        .create_call(
            &scope,
            NewCall {
                agent_id: agent_id.clone(),
                direction: "inbound".into(),
                caller: "+15559990000".into(),
                to: "+15550005555".into(),
                carrier_call_id: None,
                status: "ringing".into(),
                context: None,
            },
        )
        .await
        .unwrap();
    let wav = s
        .data_dir
        .join("recordings")
        .join(format!("{}.wav", inbound.id));
    std::fs::create_dir_all(wav.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(&wav, spec)
        .unwrap()
        .finalize()
        .unwrap();
    s.store
        .finish_call(
            &inbound.id,
            CallOutcome {
                status: "completed".into(),
                ended_at: chrono::Utc::now(),
                duration_seconds: 30,
                transcript: vec![TranscriptEntry {
                    role: "agent".into(),
                    text: "Hi".into(),
                    start_ms: 0,
                    end_ms: 500,
                }],
                summary: Some("Short call.".into()),
                sentiment: Some("neutral".into()),
                tags: vec![],
                recording_path: Some(wav.display().to_string()),
                latency: json!({"turns": [{"voice_to_voice_ms": 300}]}),
                end_reason: None,
                outcome: None,
                provider_failures: Vec::new(),
                tool_calls: Vec::new(),
            },
        )
        .await
        .unwrap();
    call!(Method::GET, "/v1/calls", "/v1/calls");
    call!(
        Method::GET,
        "/v1/calls/{id}",
        format!("/v1/calls/{}", inbound.id)
    );
    call!(
        Method::GET,
        "/v1/calls/{id}/transcript",
        format!("/v1/calls/{}/transcript", inbound.id)
    );
    let recording = s
        .http
        .get(s.url(&format!("/v1/calls/{}/recording", inbound.id)))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(recording.headers()["content-type"], "audio/wav");
    assert!(c.doc["paths"]["/v1/calls/{id}/recording"]["get"]["responses"]["200"]["content"]["audio/wav"].is_object());
    c.covered
        .insert(("get".into(), "/v1/calls/{id}/recording".into()));

    let lead = call!(
        Method::POST,
        "/v1/leads",
        "/v1/leads",
        json!({"name": "Jane", "phone": "+1555123456", "tags": ["vip"]})
    );
    let lead_id = lead["id"].as_str().unwrap().to_string();
    call!(Method::GET, "/v1/leads", "/v1/leads");
    call!(
        Method::GET,
        "/v1/leads/{id}",
        format!("/v1/leads/{lead_id}")
    );
    call!(
        Method::PATCH,
        "/v1/leads/{id}",
        format!("/v1/leads/{lead_id}"),
        json!({"status": "contacted"})
    );

    // No messaging provider is configured here: a live key's send is an error (documented as
    // the default response), and the sandbox of a test key answers the success shape.
    let err = call!(
        Method::POST,
        "/v1/messages/sms",
        "/v1/messages/sms",
        json!({"to": "+1555123456", "body": "Hi"})
    );
    assert_eq!(err["error"]["status"], 503, "{err}");
    let test_key = s.key("pro", false, "acme").await;
    for (path, body) in [
        (
            "/v1/messages/sms",
            json!({"to": "+1555123456", "body": "Hi"}),
        ),
        (
            "/v1/messages/whatsapp",
            json!({"to": "+1555123456", "template": "reminder", "variables": {"1": "Fri"}}),
        ),
    ] {
        let request = s.http.post(s.url(path)).bearer_auth(&test_key).json(&body);
        let (status, body) = s.send(request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        c.verify(&Method::POST, path, status, &body);
    }
    call!(Method::GET, "/v1/messages", "/v1/messages");

    let apt = call!(
        Method::POST,
        "/v1/appointments",
        "/v1/appointments",
        json!({"lead_id": lead_id, "agent_id": agent_id, "title": "Cleaning", "start_time": "2999-01-01T10:00:00Z", "end_time": "2999-01-01T11:00:00Z"})
    );
    let apt_id = apt["id"].as_str().unwrap().to_string();
    call!(Method::GET, "/v1/appointments", "/v1/appointments");
    call!(
        Method::GET,
        "/v1/appointments/{id}",
        format!("/v1/appointments/{apt_id}")
    );
    call!(
        Method::DELETE,
        "/v1/appointments/{id}",
        format!("/v1/appointments/{apt_id}")
    );

    let hook = call!(
        Method::POST,
        "/v1/webhooks",
        "/v1/webhooks",
        json!({"url": "https://example.com/h", "events": ["lead.created"]})
    );
    call!(Method::GET, "/v1/webhooks", "/v1/webhooks");
    let hook_path = format!("/v1/webhooks/{}", hook["id"].as_str().unwrap());
    call!(
        Method::PATCH,
        "/v1/webhooks/{id}",
        hook_path.clone(),
        json!({"events": ["lead.created", "lead.updated"], "status": "active"})
    );
    call!(
        Method::POST,
        "/v1/webhooks/{id}/test",
        format!("{hook_path}/test"),
        json!({})
    );
    call!(
        Method::GET,
        "/v1/webhooks/{id}/deliveries",
        format!("{hook_path}/deliveries")
    );
    call!(
        Method::DELETE,
        "/v1/webhooks/{id}",
        format!("/v1/webhooks/{}", hook["id"].as_str().unwrap())
    );

    call!(
        Method::GET,
        "/v1/analytics/overview",
        "/v1/analytics/overview?from=2020-01-01&to=2999-01-01"
    );
    call!(Method::GET, "/v1/analytics/usage", "/v1/analytics/usage");

    // Browser calls: a JSON body is not an SDP offer, and a call that is not running cannot
    // be hung up; both answer the envelope. Their successes (an SDP answer, 204) are made by
    // a real browser against `boltcall serve` in tests/web_call_browser.rs.
    let refused = call!(
        Method::POST,
        "/v1/agents/{id}/web-calls",
        format!("/v1/agents/{agent_id}/web-calls"),
        json!({"sdp": "v=0"})
    );
    assert_eq!(refused["error"]["status"], 415, "{refused}");
    call!(
        Method::DELETE,
        "/v1/web-calls/{id}",
        "/v1/web-calls/call_missing"
    );
    let web_call = &c.doc["paths"]["/v1/agents/{id}/web-calls"]["post"];
    assert!(web_call["requestBody"]["content"]["application/sdp"].is_object());
    assert!(web_call["responses"]["201"]["content"]["application/sdp"].is_object());
    c.covered
        .insert(("post".into(), "/v1/agents/{id}/web-calls".into()));
    c.covered
        .insert(("delete".into(), "/v1/web-calls/{id}".into()));

    // Error responses match the documented envelope too.
    call!(Method::GET, "/v1/agents/{id}", "/v1/agents/agent_missing");
    call!(
        Method::POST,
        "/v1/leads",
        "/v1/leads",
        json!({"email": "x"})
    );

    call!(
        Method::DELETE,
        "/v1/knowledge_bases/{id}/documents/{doc_id}",
        format!(
            "/v1/knowledge_bases/{kb_id}/documents/{}",
            doc["id"].as_str().unwrap()
        )
    );
    call!(
        Method::DELETE,
        "/v1/knowledge_bases/{id}",
        format!("/v1/knowledge_bases/{kb_id}")
    );
    call!(
        Method::DELETE,
        "/v1/agents/{id}",
        format!("/v1/agents/{agent_id}")
    );

    assert!(
        c.failures.is_empty(),
        "responses differ from the document:\n{}",
        c.failures.join("\n")
    );
    let documented: BTreeSet<(String, String)> = c.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .filter(|(m, _)| ["get", "post", "patch", "delete", "put"].contains(&m.as_str()))
        .collect();
    let missing: Vec<_> = documented.difference(&c.covered).collect();
    assert!(
        missing.is_empty(),
        "documented but never exercised: {missing:?}"
    );
    assert!(
        documented.len() >= 34,
        "only {} operations documented",
        documented.len()
    );
}
