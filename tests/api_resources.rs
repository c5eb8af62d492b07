//! Calls, leads, messages, appointments, webhooks, knowledge bases, voices and analytics over
//! real HTTP, with the outbox events each change writes.

mod common;

use boltcall::store::{CallOutcome, NewCall, Scope, TranscriptEntry};
use boltcall::telephony::{Dialer, OutboundCall};
use common::{Options, TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Keeps the calls the API hands over, so tests can check what would be placed.
#[derive(Default)]
struct RecordingDialer {
    calls: Mutex<Vec<OutboundCall>>,
}

impl Dialer for RecordingDialer {
    fn dial(&self, call: OutboundCall) {
        self.calls.lock().unwrap().push(call);
    }
}

fn scope_of(workspace_id: &str, live: bool) -> Scope {
    Scope {
        workspace_id: workspace_id.into(),
        live,
    }
}

/// The scope of the agent `id` (looked up through the store).
async fn agent_scope(s: &TestServer, phone: &str) -> Scope {
    let agent = s
        .store
        .find_agent_by_phone(phone, true)
        .await
        .unwrap()
        .unwrap();
    scope_of(&agent.workspace_id, agent.live)
}

async fn event_types(s: &TestServer, scope: &Scope) -> Vec<String> {
    let mut events: Vec<String> = s
        .store
        .recent_events(scope, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    events.reverse();
    events
}

#[tokio::test]
async fn calls_from_the_call_path_are_listed_with_transcript_latency_and_recording() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (_, agent) = s
        .post(
            "/v1/agents",
            &key,
            json!({"name": "Desk", "voice_id": "voice_sarah", "phone_number": "+15550002222"}),
        )
        .await;
    let agent_id = agent["id"].as_str().unwrap();
    let scope = agent_scope(&s, "+15550002222").await;
    let call = s
        .store
        .create_call(
            &scope,
            NewCall {
                agent_id: agent_id.into(),
                direction: "inbound".into(),
                caller: "+15559998888".into(),
                to: "+15550002222".into(),
                carrier_call_id: Some("CA123".into()),
                status: "ringing".into(),
                context: None,
            },
        )
        .await
        .unwrap();
    s.store
        .set_call_status(&call.id, "in-progress")
        .await
        .unwrap();
    let (_, listed) = s.get("/v1/calls", &key).await;
    assert_eq!(listed["data"][0]["status"], "in-progress");
    assert_eq!(listed["data"][0]["recording_url"], Value::Null);

    // The recorder writes where the API looks.
    let recordings = s.data_dir.join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let wav = recordings.join(format!("{}.wav", call.id));
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    for i in 0..3200 {
        writer.write_sample((i % 100) as i16).unwrap();
    }
    writer.finalize().unwrap();
    let latency = json!({"turns": [{"voice_to_voice_ms": 420, "stt_ms": 90, "llm_first_token_ms": 200, "tts_first_audio_ms": 130}]});
    s.store
        .finish_call(
            &call.id,
            CallOutcome {
                status: "completed".into(),
                ended_at: chrono::Utc::now(),
                duration_seconds: 142,
                transcript: vec![
                    TranscriptEntry {
                        role: "agent".into(),
                        text: "Hello, thanks for calling...".into(),
                        start_ms: 0,
                        end_ms: 1800,
                    },
                    TranscriptEntry {
                        role: "caller".into(),
                        text: "Hi, I'd like to book...".into(),
                        start_ms: 2100,
                        end_ms: 3900,
                    },
                ],
                summary: Some("Caller requested appointment for Friday.".into()),
                sentiment: Some("positive".into()),
                tags: vec!["appointment".into(), "new-customer".into()],
                recording_path: Some(wav.display().to_string()),
                latency: latency.clone(),
                end_reason: Some("caller hung up".into()),
                outcome: None,
                provider_failures: Vec::new(),
                tool_calls: Vec::new(),
            },
        )
        .await
        .unwrap();

    let (status, got) = s.get(&format!("/v1/calls/{}", call.id), &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["direction"], "inbound");
    assert_eq!(got["caller"], "+15559998888");
    assert_eq!(got["duration_seconds"], 142);
    assert_eq!(got["sentiment"], "positive");
    assert_eq!(got["summary"], "Caller requested appointment for Friday.");
    assert_eq!(got["tags"], json!(["appointment", "new-customer"]));
    assert_eq!(got["transcript"][0]["role"], "agent");
    assert_eq!(got["transcript"][1]["text"], "Hi, I'd like to book...");
    assert_eq!(got["latency"], latency);
    assert_eq!(
        got["recording_url"],
        format!("{}/v1/calls/{}/recording", s.base, call.id)
    );
    assert_eq!(
        got["transcript_url"],
        format!("{}/v1/calls/{}/transcript", s.base, call.id)
    );

    let (status, transcript) = s
        .get(&format!("/v1/calls/{}/transcript", call.id), &key)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(transcript["transcript"][1]["start_ms"], 2100);
    assert_eq!(transcript["transcript"][1]["end_ms"], 3900);

    let response = s
        .http
        .get(s.url(&format!("/v1/calls/{}/recording", call.id)))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), std::fs::read(&wav).unwrap().as_slice());

    // Filters.
    let (_, by_agent) = s
        .get(
            &format!("/v1/calls?agent_id={agent_id}&direction=inbound"),
            &key,
        )
        .await;
    assert_eq!(by_agent["meta"]["total"], 1);
    let (_, outbound) = s.get("/v1/calls?direction=outbound", &key).await;
    assert_eq!(outbound["meta"]["total"], 0);
    let (_, future) = s.get("/v1/calls?from=2999-01-01", &key).await;
    assert_eq!(future["meta"]["total"], 0);
    let (_, past) = s
        .get("/v1/calls?from=2020-01-01T00:00:00Z&to=2999-12-31", &key)
        .await;
    assert_eq!(past["meta"]["total"], 1);
    let (status, err) = s.get("/v1/calls?direction=sideways", &key).await;
    assert_error(status, &err, "validation_error");
    let (status, err) = s.get("/v1/calls?from=last-tuesday", &key).await;
    assert_error(status, &err, "validation_error");

    assert_eq!(
        event_types(&s, &scope).await,
        ["call.started", "call.completed"]
    );
    let (_, overview) = s
        .get("/v1/analytics/overview?from=2020-01-01&to=2999-12-31", &key)
        .await;
    assert_eq!(
        overview["calls"],
        json!({"total": 1, "answered": 1, "missed": 0})
    );
    assert_eq!(overview["avg_response_time_seconds"], 0.42);
    let (_, usage) = s.get("/v1/analytics/usage", &key).await;
    assert_eq!(usage["minutes_used"], 3);
    assert_eq!(usage["minutes_limit"], 2000);
}

#[tokio::test]
async fn recording_is_404_until_it_exists() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (_, agent) = s
        .post(
            "/v1/agents",
            &key,
            json!({"name": "Desk", "voice_id": "voice_sarah", "phone_number": "+15550003333"}),
        )
        .await;
    let scope = agent_scope(&s, "+15550003333").await;
    let call = s
        .store
        .create_call(
            &scope,
            NewCall {
                agent_id: agent["id"].as_str().unwrap().into(),
                direction: "inbound".into(),
                caller: "+15559998888".into(),
                to: "+15550003333".into(),
                carrier_call_id: None,
                status: "ringing".into(),
                context: None,
            },
        )
        .await
        .unwrap();
    let (status, err) = s
        .get(&format!("/v1/calls/{}/recording", call.id), &key)
        .await;
    assert_error(status, &err, "not_found");
    let (status, err) = s.get("/v1/calls/call_missing", &key).await;
    assert_error(status, &err, "not_found");
}

#[tokio::test]
async fn outbound_calls_ring_then_reach_the_dialer() {
    let dialer = Arc::new(RecordingDialer::default());
    let s = TestServer::start_with(Options {
        dialer: Some(dialer.clone()),
        ..Options::default()
    })
    .await;
    let live = s.key("pro", true, "acme").await;
    let test = s.key("pro", false, "acme").await;
    for key in [&live, &test] {
        let (_, agent) = s
            .post(
                "/v1/agents",
                key,
                json!({"name": "Out", "voice_id": "voice_james"}),
            )
            .await;
        let agent_id = agent["id"].as_str().unwrap().to_string();
        let body = json!({"agent_id": agent_id, "to": "+1555000111", "context": "Follow up on dental cleaning inquiry"});
        let (status, call) = s.post("/v1/calls/outbound", key, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{call}");
        assert_eq!(call["status"], "ringing");
        assert_eq!(call["agent_id"], agent_id.as_str());
        assert_eq!(call["to"], "+1555000111");
        assert_eq!(call["direction"], "outbound");
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert!(call["created_at"].is_string());

        // The dialer got the call as recorded, in the key's mode, with its briefing.
        let placed = dialer.calls.lock().unwrap().pop().expect("dialed");
        assert_eq!(placed.call_id, call["id"].as_str().unwrap());
        assert_eq!(placed.live, key == &live);
        assert_eq!(placed.agent_id, agent_id);
        assert_eq!(placed.to, "+1555000111");
        assert_eq!(
            placed.context.as_deref(),
            Some("Follow up on dental cleaning inquiry")
        );

        s.patch(
            &format!("/v1/agents/{agent_id}"),
            key,
            json!({"status": "paused"}),
        )
        .await;
        let (status, err) = s.post("/v1/calls/outbound", key, body).await;
        assert_error(status, &err, "conflict");
    }
    let (status, err) = s
        .post(
            "/v1/calls/outbound",
            &live,
            json!({"agent_id": "agent_nope", "to": "+1555000111"}),
        )
        .await;
    assert_error(status, &err, "not_found");
    let (status, err) = s
        .post(
            "/v1/calls/outbound",
            &live,
            json!({"agent_id": "agent_nope", "to": "555"}),
        )
        .await;
    assert_error(status, &err, "validation_error");
    let (status, err) = s
        .post("/v1/calls/outbound", &live, json!({"to": "+1555000111"}))
        .await;
    assert_error(status, &err, "bad_request");
}

#[tokio::test]
async fn leads_filter_sort_patch_and_emit_events() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (status, jane) = s
        .post("/v1/leads", &key, json!({"name": "Jane Smith", "phone": "+1555123456", "email": "jane@example.com", "source": "call", "tags": ["high-intent"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{jane}");
    assert_eq!(jane["status"], "new");
    assert!(jane["id"].as_str().unwrap().starts_with("lead_"));
    let (_, john) = s
        .post(
            "/v1/leads",
            &key,
            json!({"name": "John Doe", "source": "form"}),
        )
        .await;
    let jane_id = jane["id"].as_str().unwrap();

    let (status, patched) = s
        .patch(
            &format!("/v1/leads/{jane_id}"),
            &key,
            json!({"status": "qualified", "score": 85}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["status"], "qualified");
    assert_eq!(patched["score"], 85);
    let (_, got) = s.get(&format!("/v1/leads/{jane_id}"), &key).await;
    assert_eq!(got["tags"], json!(["high-intent"]));

    let (_, qualified) = s.get("/v1/leads?status=qualified", &key).await;
    assert_eq!(qualified["meta"]["total"], 1);
    let (_, forms) = s.get("/v1/leads?source=form", &key).await;
    assert_eq!(forms["data"][0]["id"], john["id"]);
    let (_, by_name) = s.get("/v1/leads?sort=name&order=asc", &key).await;
    assert_eq!(by_name["data"][0]["name"], "Jane Smith");
    let (_, by_name_desc) = s.get("/v1/leads?sort=name", &key).await;
    assert_eq!(by_name_desc["data"][0]["name"], "John Doe");
    let (_, paged) = s
        .get("/v1/leads?limit=1&page=2&sort=name&order=asc", &key)
        .await;
    assert_eq!(paged["data"][0]["name"], "John Doe");
    assert_eq!(paged["meta"], json!({"page": 2, "limit": 1, "total": 2}));

    for (query, field) in [
        ("status=hot", "status"),
        ("source=tv", "source"),
        ("sort=secret", "sort"),
        ("order=up", "order"),
        ("page=0", "page"),
    ] {
        let (status, err) = s.get(&format!("/v1/leads?{query}"), &key).await;
        assert_error(status, &err, "validation_error");
        assert!(err["error"]["message"].as_str().unwrap().contains(field));
    }
    for (body, field) in [
        (json!({"name": "X", "phone": "12"}), "phone"),
        (json!({"name": "X", "email": "nope"}), "email"),
        (json!({"name": "X", "tags": "vip"}), "tags"),
    ] {
        let (status, err) = s.post("/v1/leads", &key, body).await;
        assert_error(status, &err, "validation_error");
        assert!(err["error"]["message"].as_str().unwrap().contains(field));
    }
    let (status, err) = s
        .patch(&format!("/v1/leads/{jane_id}"), &key, json!({"score": 101}))
        .await;
    assert_error(status, &err, "validation_error");
    let (status, err) = s
        .patch("/v1/leads/lead_nope", &key, json!({"status": "contacted"}))
        .await;
    assert_error(status, &err, "not_found");

    let scope = s.store.list_keys().await.unwrap()[0].scope();
    assert_eq!(
        event_types(&s, &scope).await,
        ["lead.created", "lead.created", "lead.updated"]
    );
    let events = s.store.recent_events(&scope, 1).await.unwrap();
    let payload: Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(payload["status"], "qualified");
    assert_eq!(payload["id"], jane_id);
}

#[tokio::test]
async fn messages_are_stored_and_delivery_is_simulated() {
    let s = TestServer::start().await;
    let key = s.key("starter", false, "acme").await;
    let (_, lead) = s
        .post(
            "/v1/leads",
            &key,
            json!({"name": "Jane", "phone": "+1555000111"}),
        )
        .await;
    let (status, sms) = s
        .post("/v1/messages/sms", &key, json!({"to": "+1555000111", "body": "Thanks for calling! Your appointment is confirmed."}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sms}");
    assert_eq!(sms["channel"], "sms");
    assert_eq!(sms["status"], "sent");
    assert_eq!(sms["to"], "+1555000111");
    assert_eq!(sms["lead_id"], lead["id"]);
    let (status, wa) = s
        .post("/v1/messages/whatsapp", &key, json!({"to": "+1555000111", "template": "appointment_reminder", "variables": {"1": "Friday"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wa}");
    assert_eq!(wa["channel"], "whatsapp");
    assert_eq!(wa["status"], "sent");

    let (_, all) = s.get("/v1/messages", &key).await;
    assert_eq!(all["meta"]["total"], 2);
    assert!(
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] == "delivered" && m["direction"] == "outbound")
    );
    let (_, only_sms) = s.get("/v1/messages?channel=sms", &key).await;
    assert_eq!(
        only_sms["data"][0]["body"],
        "Thanks for calling! Your appointment is confirmed."
    );
    let (_, for_lead) = s
        .get(
            &format!("/v1/messages?lead_id={}", lead["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(for_lead["meta"]["total"], 2);

    let long = "x".repeat(1601);
    for (path, body, code, field) in [
        (
            "/v1/messages/sms",
            json!({"to": "+1555000111", "body": long}),
            "validation_error",
            "body",
        ),
        (
            "/v1/messages/sms",
            json!({"to": "nope", "body": "hi"}),
            "validation_error",
            "to",
        ),
        (
            "/v1/messages/sms",
            json!({"to": "+1555000111"}),
            "bad_request",
            "body",
        ),
        (
            "/v1/messages/whatsapp",
            json!({"to": "+1555000111"}),
            "bad_request",
            "template",
        ),
        (
            "/v1/messages/whatsapp",
            json!({"to": "+1555000111", "template": "t", "variables": []}),
            "validation_error",
            "variables",
        ),
    ] {
        let (status, err) = s.post(path, &key, body).await;
        assert_error(status, &err, code);
        assert!(
            err["error"]["message"].as_str().unwrap().contains(field),
            "{err}"
        );
    }
    let (status, err) = s.get("/v1/messages?channel=fax", &key).await;
    assert_error(status, &err, "validation_error");

    let scope = s.store.list_keys().await.unwrap()[0].scope();
    let types = event_types(&s, &scope).await;
    assert_eq!(
        types.iter().filter(|t| *t == "message.delivered").count(),
        2
    );
    let (_, overview) = s
        .get("/v1/analytics/overview?from=2020-01-01&to=2999-12-31", &key)
        .await;
    assert_eq!(overview["messages"], json!({"sent": 2, "delivered": 2}));
    let (_, usage) = s.get("/v1/analytics/usage", &key).await;
    assert_eq!(usage["sms_sent"], 1);
    assert_eq!(usage["sms_limit"], 200);
}

#[tokio::test]
async fn appointments_book_filter_and_cancel_once() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (_, lead) = s.post("/v1/leads", &key, json!({"name": "Jane"})).await;
    let (_, agent) = s
        .post(
            "/v1/agents",
            &key,
            json!({"name": "Desk", "voice_id": "voice_sarah"}),
        )
        .await;
    let (status, apt) = s
        .post(
            "/v1/appointments",
            &key,
            json!({"lead_id": lead["id"], "agent_id": agent["id"], "title": "Dental Cleaning",
               "start_time": "2999-03-25T10:00:00Z", "end_time": "2999-03-25T11:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{apt}");
    assert_eq!(apt["status"], "upcoming");
    assert_eq!(apt["start_time"], "2999-03-25T10:00:00Z");
    let (_, past) = s
        .post("/v1/appointments", &key, json!({"title": "Checkup", "start_time": "2020-01-01T10:00:00Z", "end_time": "2020-01-01T10:30:00Z"}))
        .await;
    assert_eq!(past["status"], "completed");

    let (_, upcoming) = s.get("/v1/appointments?status=upcoming", &key).await;
    assert_eq!(upcoming["meta"]["total"], 1);
    let (_, completed) = s.get("/v1/appointments?status=completed", &key).await;
    assert_eq!(completed["data"][0]["title"], "Checkup");
    let (_, by_agent) = s
        .get(
            &format!(
                "/v1/appointments?agent_id={}",
                agent["id"].as_str().unwrap()
            ),
            &key,
        )
        .await;
    assert_eq!(by_agent["meta"]["total"], 1);
    let (_, window) = s
        .get("/v1/appointments?from=2999-03-25&to=2999-03-25", &key)
        .await;
    assert_eq!(window["meta"]["total"], 1);

    let path = format!("/v1/appointments/{}", apt["id"].as_str().unwrap());
    let (status, cancelled) = s.delete(&path, &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled, json!({"id": apt["id"], "status": "cancelled"}));
    let (status, err) = s.delete(&path, &key).await;
    assert_error(status, &err, "conflict");
    let (_, got) = s.get(&path, &key).await;
    assert_eq!(got["status"], "cancelled");

    for (body, code, field) in [
        (
            json!({"title": "T", "start_time": "2999-01-01T10:00:00Z", "end_time": "2999-01-01T09:00:00Z"}),
            "validation_error",
            "end_time",
        ),
        (
            json!({"title": "T", "start_time": "soon", "end_time": "2999-01-01T09:00:00Z"}),
            "validation_error",
            "start_time",
        ),
        (
            json!({"start_time": "2999-01-01T10:00:00Z", "end_time": "2999-01-01T11:00:00Z"}),
            "bad_request",
            "title",
        ),
        (
            json!({"title": "T", "lead_id": "lead_nope", "start_time": "2999-01-01T10:00:00Z", "end_time": "2999-01-01T11:00:00Z"}),
            "validation_error",
            "lead_id",
        ),
    ] {
        let (status, err) = s.post("/v1/appointments", &key, body).await;
        assert_error(status, &err, code);
        assert!(
            err["error"]["message"].as_str().unwrap().contains(field),
            "{err}"
        );
    }
    let scope = s.store.list_keys().await.unwrap()[0].scope();
    let types = event_types(&s, &scope).await;
    assert_eq!(
        types.iter().filter(|t| *t == "appointment.booked").count(),
        2
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "appointment.cancelled")
            .count(),
        1
    );
    let (_, overview) = s
        .get("/v1/analytics/overview?from=2020-01-01&to=2999-12-31", &key)
        .await;
    assert_eq!(
        overview["appointments"],
        json!({"booked": 2, "completed": 1, "cancelled": 1})
    );
}

#[tokio::test]
async fn webhooks_validate_targets_and_show_secrets_once() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (status, hook) = s
        .post("/v1/webhooks", &key, json!({"url": "https://yourapp.com/hooks/boltcall", "events": ["call.completed", "lead.created", "appointment.booked"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(hook["status"], "active");
    let (_, list) = s.get("/v1/webhooks", &key).await;
    assert_eq!(list["data"][0]["url"], "https://yourapp.com/hooks/boltcall");
    assert!(list["data"][0].get("secret").is_none());
    let (_, own) = s.post("/v1/webhooks", &key, json!({"url": "https://a.example.com/h", "events": ["lead.updated"], "secret": "my-own-secret-1234"})).await;
    assert_eq!(own["secret"], "my-own-secret-1234");

    for body in [
        json!({"url": "http://yourapp.com/h", "events": ["lead.created"]}),
        json!({"url": "https://127.0.0.1/h", "events": ["lead.created"]}),
        json!({"url": "https://169.254.169.254/latest/meta-data", "events": ["lead.created"]}),
        json!({"url": "https://yourapp.com/h", "events": ["lead.exploded"]}),
        json!({"url": "https://yourapp.com/h", "events": []}),
        json!({"url": "https://yourapp.com/h", "events": ["lead.created"], "secret": "short"}),
    ] {
        let (status, err) = s.post("/v1/webhooks", &key, body.clone()).await;
        assert_error(status, &err, "validation_error");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let (status, err) = s
        .post("/v1/webhooks", &key, json!({"events": ["lead.created"]}))
        .await;
    assert_error(status, &err, "bad_request");

    let path = format!("/v1/webhooks/{}", hook["id"].as_str().unwrap());
    let (status, deleted) = s.delete(&path, &key).await;
    assert_eq!(
        (status, deleted),
        (StatusCode::OK, json!({"deleted": true}))
    );
    let (status, err) = s.delete(&path, &key).await;
    assert_error(status, &err, "not_found");

    let loopback = TestServer::start_with(Options {
        webhook_allow_loopback: true,
        ..Options::default()
    })
    .await;
    let key = loopback.key("pro", true, "acme").await;
    let (status, _) = loopback
        .post(
            "/v1/webhooks",
            &key,
            json!({"url": "http://127.0.0.1:9999/h", "events": ["call.started"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn knowledge_bases_hold_documents_agents_link_to() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (status, kb) = s
        .post(
            "/v1/knowledge_bases",
            &key,
            json!({"name": "Clinic FAQ", "description": "Hours and prices"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kb}");
    let kb_id = kb["id"].as_str().unwrap().to_string();
    assert!(kb_id.starts_with("kb_"));
    let (status, doc) = s
        .post(
            &format!("/v1/knowledge_bases/{kb_id}/documents"),
            &key,
            json!({"title": "Hours", "text": "Open 9 to 5, Monday to Friday."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    let (_, detail) = s.get(&format!("/v1/knowledge_bases/{kb_id}"), &key).await;
    assert_eq!(detail["document_count"], 1);
    assert_eq!(
        detail["documents"][0]["text"],
        "Open 9 to 5, Monday to Friday."
    );
    let (_, list) = s.get("/v1/knowledge_bases", &key).await;
    assert_eq!(list["meta"]["total"], 1);

    let (status, agent) = s
        .post("/v1/agents", &key, json!({"name": "Desk", "voice_id": "voice_sarah", "knowledge_base_id": kb_id, "phone_number": "+15550004444"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let record = s
        .store
        .find_agent_by_phone("+15550004444", true)
        .await
        .unwrap()
        .unwrap();
    let docs = s
        .store
        .knowledge_documents(&scope_of(&record.workspace_id, true), &kb_id)
        .await
        .unwrap();
    assert_eq!(docs[0].title, "Hours");

    let other = s.key("pro", true, "globex").await;
    let (status, err) = s.get(&format!("/v1/knowledge_bases/{kb_id}"), &other).await;
    assert_error(status, &err, "not_found");
    let (status, err) = s
        .post(
            &format!("/v1/knowledge_bases/{kb_id}/documents"),
            &other,
            json!({"title": "x", "text": "y"}),
        )
        .await;
    assert_error(status, &err, "not_found");

    let (status, _) = s
        .delete(
            &format!(
                "/v1/knowledge_bases/{kb_id}/documents/{}",
                doc["id"].as_str().unwrap()
            ),
            &key,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .delete(&format!("/v1/knowledge_bases/{kb_id}"), &key)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, agent) = s
        .get(
            &format!("/v1/agents/{}", agent["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(agent["knowledge_base_id"], Value::Null);
}

#[tokio::test]
async fn voices_list_the_library() {
    let s = TestServer::start().await;
    let key = s.key("free", true, "acme").await;
    let (status, voices) = s.get("/v1/voices", &key).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = voices["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"voice_sarah") && ids.contains(&"voice_james"));
    assert!(voices["data"][0]["engines"]["espeak"].is_string());
}

#[tokio::test]
async fn analytics_require_a_period_and_count_api_calls() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (status, err) = s.get("/v1/analytics/overview?from=2025-03-01", &key).await;
    assert_error(status, &err, "bad_request");
    assert!(err["error"]["message"].as_str().unwrap().contains("to"));
    let (status, err) = s
        .get("/v1/analytics/overview?from=2025-03-31&to=2025-03-01", &key)
        .await;
    assert_error(status, &err, "validation_error");
    let (status, overview) = s
        .get("/v1/analytics/overview?from=2025-03-01&to=2025-03-31", &key)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        overview["period"],
        json!({"from": "2025-03-01", "to": "2025-03-31"})
    );
    assert_eq!(overview["calls"]["total"], 0);
    let (_, usage) = s.get("/v1/analytics/usage", &key).await;
    // Four calls so far, this one included.
    assert_eq!(usage["api_calls"], 4);
    assert!(
        usage["billing_period"]["from"]
            .as_str()
            .unwrap()
            .ends_with("-01")
    );
    // Test-mode calls are counted apart.
    let test_key = s.key("pro", false, "acme").await;
    let (_, test_usage) = s.get("/v1/analytics/usage", &test_key).await;
    assert_eq!(test_usage["api_calls"], 1);
}
