//! Messaging over real HTTP: the engine against a local stand-in for Twilio's REST API that
//! checks Basic auth and the form, answers as Twilio does and posts signed status callbacks;
//! Twilio's inbound webhook; the sandbox of test keys; a live key without a provider; the
//! plan's `sms_limit`. Runs on SQLite, and on PostgreSQL with `BOLTCALL_TEST_DATABASE_URL`.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use base64::Engine;
use boltcall::config::Config;
use boltcall::store::Scope;
use boltcall::telephony::twilio::signature;
use common::{Options, TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACCOUNT_SID: &str = "ACtest0000000000000000000000000000";
const AUTH_TOKEN: &str = "twilio-test-token";
const FROM: &str = "+15005550006";
/// Recipients the stand-in treats specially, after Twilio's magic test numbers.
const INVALID_NUMBER: &str = "+15005550001";
const SENT_ONLY: &str = "+15005550009";

/// One request the stand-in accepted: its form fields.
type Form = Vec<(String, String)>;

#[derive(Clone, Default)]
struct FakeTwilio {
    requests: Arc<Mutex<Vec<Form>>>,
    http: reqwest::Client,
}

fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A form-encoded request body (reqwest's `form` is an optional feature not enabled here).
fn form_request(request: reqwest::RequestBuilder, params: &Form) -> reqwest::RequestBuilder {
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(params).unwrap())
}

/// Posts a status callback to `url` signed with the account's token, as Twilio does.
async fn post_signed(http: &reqwest::Client, url: &str, params: &[(&str, &str)]) -> StatusCode {
    let owned: Form = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let signature = signature::compute(AUTH_TOKEN, url, &owned);
    form_request(http.post(url), &owned)
        .header("X-Twilio-Signature", signature)
        .send()
        .await
        .expect("callback")
        .status()
}

/// `POST /2010-04-01/Accounts/{sid}/Messages.json`. Reports `sent` (and `delivered`, unless the
/// recipient is `SENT_ONLY`) before answering, so a report overtaking the answer is exercised.
async fn create_message(
    State(fake): State<FakeTwilio>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if account != ACCOUNT_SID || auth != Some(expected.as_str()) {
        let error = json!({"code": 20003, "message": "Authenticate", "status": 401});
        return (AxumStatus::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    let form: Form = serde_urlencoded::from_bytes(&body).expect("form-encoded");
    let n = {
        let mut requests = fake.requests.lock().unwrap();
        requests.push(form.clone());
        requests.len()
    };
    let to = field(&form, "To").unwrap_or_default().to_string();
    if to == INVALID_NUMBER {
        let error = json!({"code": 21211, "message": format!("The 'To' number {to} is not a valid phone number."), "status": 400});
        return (AxumStatus::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let sid = format!("SM{n:032x}");
    let callback = field(&form, "StatusCallback")
        .expect("StatusCallback")
        .to_string();
    let reports: &[&str] = if to == SENT_ONLY {
        &["sent"]
    } else {
        &["sent", "delivered"]
    };
    for status in reports {
        let code = post_signed(
            &fake.http,
            &callback,
            &[
                ("MessageSid", sid.as_str()),
                ("MessageStatus", *status),
                ("AccountSid", ACCOUNT_SID),
            ],
        )
        .await;
        assert!(code.is_success(), "status callback {status}: {code}");
    }
    let created = json!({
        "sid": sid, "status": "queued", "to": to,
        "from": field(&form, "From"), "body": field(&form, "Body"),
        "error_code": null, "error_message": null,
    });
    (AxumStatus::CREATED, axum::Json(created)).into_response()
}

/// Starts the stand-in and returns its base URL.
async fn start_fake(fake: FakeTwilio) -> String {
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            axum::routing::post(create_message),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// An engine whose live messages go to a fresh stand-in.
async fn with_twilio() -> (TestServer, FakeTwilio) {
    let fake = FakeTwilio::default();
    let api_base = start_fake(fake.clone()).await;
    let server = TestServer::start_with(Options {
        configure: Some(Box::new(move |c: &mut Config| {
            c.twilio_account_sid = Some(ACCOUNT_SID.into());
            c.twilio_auth_token = Some(AUTH_TOKEN.into());
            c.twilio_messaging_from = Some(FROM.into());
            c.twilio_api_base = api_base;
        })),
        ..Options::default()
    })
    .await;
    (server, fake)
}

async fn scope_of(s: &TestServer, live: bool) -> Scope {
    s.store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.live == live)
        .expect("key")
        .scope()
}

async fn events(s: &TestServer, live: bool) -> Vec<(String, Value)> {
    let scope = scope_of(s, live).await;
    let mut events: Vec<(String, Value)> = s
        .store
        .recent_events(&scope, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, serde_json::from_str(&e.payload).unwrap()))
        .collect();
    events.reverse();
    events
}

async fn count(s: &TestServer, live: bool, event: &str) -> usize {
    events(s, live)
        .await
        .iter()
        .filter(|(t, _)| t == event)
        .count()
}

async fn message(s: &TestServer, key: &str, id: &str) -> Value {
    let (_, all) = s.get("/v1/messages?limit=100", key).await;
    all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .expect("message listed")
}

#[tokio::test]
async fn twilio_sms_is_sent_with_the_account_and_delivered_by_signed_callbacks() {
    let (s, fake) = with_twilio().await;
    let key = s.key("pro", true, "acme").await;
    let (status, msg) = s
        .post("/v1/messages/sms", &key, json!({"to": "+14155550123", "body": "Your table is booked for 8pm. Reply STOP to opt out."}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    let form = fake.requests.lock().unwrap()[0].clone();
    assert_eq!(field(&form, "To"), Some("+14155550123"));
    assert_eq!(field(&form, "From"), Some(FROM));
    assert_eq!(
        field(&form, "Body"),
        Some("Your table is booked for 8pm. Reply STOP to opt out.")
    );
    let callback = field(&form, "StatusCallback").unwrap();
    let id = msg["id"].as_str().unwrap();
    assert_eq!(
        callback,
        format!("{}/carrier/twilio/sms/status?message_id={id}", s.base)
    );
    // The stand-in reported before answering: the answer already shows the delivery.
    assert_eq!(msg["status"], "delivered", "{msg}");
    assert_eq!(msg["provider_sid"], "SM00000000000000000000000000000001");
    assert_eq!(msg["segments"], 1);
    assert!(msg["sent_at"].is_string() && msg["delivered_at"].is_string());
    assert_eq!(count(&s, true, "message.delivered").await, 1);

    // Twilio may repeat a report, or send one late: neither is a second delivery.
    for status in ["delivered", "sent"] {
        let code = post_signed(
            &s.http,
            callback,
            &[
                ("MessageSid", "SM00000000000000000000000000000001"),
                ("MessageStatus", status),
            ],
        )
        .await;
        assert!(code.is_success());
    }
    assert_eq!(message(&s, &key, id).await["status"], "delivered");
    assert_eq!(count(&s, true, "message.delivered").await, 1);

    // A report not signed with the account's token changes nothing.
    let forged_params: Form = vec![
        (
            "MessageSid".into(),
            "SM00000000000000000000000000000001".into(),
        ),
        ("MessageStatus".into(), "failed".into()),
    ];
    let forged = form_request(s.http.post(callback), &forged_params)
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(message(&s, &key, id).await["status"], "delivered");

    let (_, usage) = s.get("/v1/analytics/usage", &key).await;
    assert_eq!(usage["sms_sent"], 1);
}

#[tokio::test]
async fn undelivered_is_final_and_never_reported_as_delivered() {
    let (s, _fake) = with_twilio().await;
    let key = s.key("pro", true, "acme").await;
    let long = "ж".repeat(135);
    let (status, msg) = s
        .post(
            "/v1/messages/sms",
            &key,
            json!({"to": SENT_ONLY, "body": long}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    assert_eq!(msg["status"], "sent", "{msg}");
    assert_eq!(msg["segments"], 3, "UCS-2: 67 per segment once split");
    let id = msg["id"].as_str().unwrap();
    let sid = msg["provider_sid"].as_str().unwrap();
    let callback = format!("{}/carrier/twilio/sms/status?message_id={id}", s.base);
    let undelivered = [
        ("MessageSid", sid),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
    ];
    assert!(
        post_signed(&s.http, &callback, &undelivered)
            .await
            .is_success()
    );
    let late = [("MessageSid", sid), ("MessageStatus", "delivered")];
    assert!(post_signed(&s.http, &callback, &late).await.is_success());
    let stored = message(&s, &key, id).await;
    assert_eq!(stored["status"], "undelivered", "{stored}");
    assert_eq!(stored["error_code"], "30003");
    assert!(stored["failed_at"].is_string() && stored["delivered_at"].is_null());
    assert_eq!(count(&s, true, "message.delivered").await, 0);
    let (_, overview) = s
        .get("/v1/analytics/overview?from=2020-01-01&to=2999-12-31", &key)
        .await;
    assert_eq!(overview["messages"], json!({"sent": 1, "delivered": 0}));
}

#[tokio::test]
async fn a_message_twilio_refuses_is_a_502_stored_as_failed_and_not_counted() {
    let (s, _fake) = with_twilio().await;
    let key = s.key("pro", true, "acme").await;
    let (status, err) = s
        .post(
            "/v1/messages/sms",
            &key,
            json!({"to": INVALID_NUMBER, "body": "hi"}),
        )
        .await;
    assert_error(status, &err, "provider_error");
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid phone number")
    );
    let (_, all) = s.get("/v1/messages", &key).await;
    assert_eq!(all["meta"]["total"], 1);
    assert_eq!(all["data"][0]["status"], "failed");
    assert_eq!(all["data"][0]["error_code"], "21211");
    let (_, usage) = s.get("/v1/analytics/usage", &key).await;
    assert_eq!(usage["sms_sent"], 0, "nothing left the engine");
}

#[tokio::test]
async fn a_live_key_without_a_provider_is_told_which_setting_is_missing() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    for (path, body) in [
        (
            "/v1/messages/sms",
            json!({"to": "+14155550123", "body": "hi"}),
        ),
        (
            "/v1/messages/whatsapp",
            json!({"to": "+14155550123", "template": "HX0123"}),
        ),
    ] {
        let (status, err) = s.post(path, &key, body).await;
        assert_error(status, &err, "service_unavailable");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("BOLTCALL_TWILIO_ACCOUNT_SID"),
            "{err}"
        );
    }
    let (_, all) = s.get("/v1/messages", &key).await;
    assert_eq!(all["meta"]["total"], 0, "nothing stored as sent");

    // Account set but no sender: that is the setting named.
    let s = TestServer::start_with(Options {
        configure: Some(Box::new(|c: &mut Config| {
            c.twilio_account_sid = Some(ACCOUNT_SID.into());
            c.twilio_auth_token = Some(AUTH_TOKEN.into());
        })),
        ..Options::default()
    })
    .await;
    let key = s.key("pro", true, "acme").await;
    let (status, err) = s
        .post(
            "/v1/messages/sms",
            &key,
            json!({"to": "+14155550123", "body": "hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("BOLTCALL_TWILIO_MESSAGING_FROM")
    );
}

#[tokio::test]
async fn test_keys_use_the_sandbox_which_never_calls_twilio() {
    let (s, fake) = with_twilio().await;
    let key = s.key("pro", false, "acme").await;
    let (status, msg) = s
        .post(
            "/v1/messages/sms",
            &key,
            json!({"to": "+14155550123", "body": "hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    assert_eq!(msg["status"], "sent");
    assert!(
        fake.requests.lock().unwrap().is_empty(),
        "the sandbox sent something"
    );
    assert_eq!(
        message(&s, &key, msg["id"].as_str().unwrap()).await["status"],
        "delivered"
    );
    assert_eq!(count(&s, false, "message.delivered").await, 1);
}

#[tokio::test]
async fn sms_past_the_plans_limit_is_refused_not_sent() {
    let s = TestServer::start().await;
    let key = s.key("free", false, "acme").await;
    for i in 0..50 {
        let (status, msg) = s
            .post(
                "/v1/messages/sms",
                &key,
                json!({"to": "+14155550123", "body": format!("reminder {i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{i}: {msg}");
    }
    let (status, err) = s
        .post(
            "/v1/messages/sms",
            &key,
            json!({"to": "+14155550123", "body": "one too many"}),
        )
        .await;
    assert_error(status, &err, "forbidden");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sms_limit of 50"),
        "{err}"
    );
    let (_, usage) = s.get("/v1/analytics/usage", &key).await;
    assert_eq!(usage["sms_sent"], 50);
    assert_eq!(usage["sms_limit"], 50);
    // WhatsApp is not SMS: the limit does not stop it.
    let (status, _) = s
        .post(
            "/v1/messages/whatsapp",
            &key,
            json!({"to": "+14155550123", "template": "HX0123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

/// Posts Twilio's inbound-message webhook, signed with `token`.
async fn inbound(s: &TestServer, token: &str, params: &[(&str, &str)]) -> reqwest::Response {
    let url = s.url("/carrier/twilio/sms");
    let owned: Form = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    form_request(s.http.post(&url), &owned)
        .header(
            "X-Twilio-Signature",
            signature::compute(token, &url, &owned),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn inbound_sms_is_stored_with_its_lead_and_emits_message_received() {
    let (s, _fake) = with_twilio().await;
    let key = s.key("pro", true, "acme").await;
    let (status, agent) = s
        .post(
            "/v1/agents",
            &key,
            json!({"name": "Front desk", "voice_id": "voice_sarah", "phone_number": FROM}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let sms = [
        ("MessageSid", "SM_in_1"),
        ("From", "+14155550177"),
        ("To", FROM),
        ("Body", "Can I move my appointment to Monday?"),
        ("NumMedia", "0"),
    ];
    let forged = inbound(&s, "not-the-token", &sms).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let (_, none) = s.get("/v1/messages", &key).await;
    assert_eq!(none["meta"]["total"], 0);

    let answer = inbound(&s, AUTH_TOKEN, &sms).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "application/xml");
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("<Response></Response>")
    );
    // Twilio retries a webhook it thinks failed: the same message is not stored twice.
    assert_eq!(inbound(&s, AUTH_TOKEN, &sms).await.status(), StatusCode::OK);
    let second = [
        ("MessageSid", "SM_in_2"),
        ("From", "+14155550177"),
        ("To", FROM),
        ("Body", "Thanks!"),
    ];
    assert_eq!(
        inbound(&s, AUTH_TOKEN, &second).await.status(),
        StatusCode::OK
    );

    let (_, leads) = s.get("/v1/leads?source=sms", &key).await;
    assert_eq!(leads["meta"]["total"], 1, "{leads}");
    let lead = &leads["data"][0];
    assert_eq!(lead["phone"], "+14155550177");
    let (_, msgs) = s.get("/v1/messages", &key).await;
    assert_eq!(msgs["meta"]["total"], 2);
    for m in msgs["data"].as_array().unwrap() {
        assert_eq!(m["direction"], "inbound");
        assert_eq!(m["status"], "received");
        assert_eq!(m["lead_id"], lead["id"]);
        assert_eq!(m["to"], FROM);
    }
    let received: Vec<Value> = events(&s, true)
        .await
        .into_iter()
        .filter(|(t, _)| t == "message.received")
        .map(|(_, data)| data)
        .collect();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0]["body"], "Can I move my appointment to Monday?");
    assert_eq!(count(&s, true, "lead.created").await, 1);
}

#[tokio::test]
async fn whatsapp_templates_anytime_free_form_only_within_24_hours_of_the_last_inbound() {
    let (s, fake) = with_twilio().await;
    let key = s.key("pro", true, "acme").await;
    s.post(
        "/v1/agents",
        &key,
        json!({"name": "Front desk", "voice_id": "voice_sarah", "phone_number": FROM}),
    )
    .await;
    let (status, err) = s
        .post(
            "/v1/messages/whatsapp",
            &key,
            json!({"to": "+14155550188", "body": "hello"}),
        )
        .await;
    assert_error(status, &err, "validation_error");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("24 hours")
    );

    let (status, msg) = s
        .post("/v1/messages/whatsapp", &key, json!({"to": "+14155550188", "template": "HXb5b62575e6e4ff6129ad7c8efe1f983e", "variables": {"1": "Friday"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    assert_eq!(msg["status"], "delivered");
    let form = fake.requests.lock().unwrap()[0].clone();
    assert_eq!(field(&form, "To"), Some("whatsapp:+14155550188"));
    assert_eq!(field(&form, "From"), Some("whatsapp:+15005550006"));
    assert_eq!(
        field(&form, "ContentSid"),
        Some("HXb5b62575e6e4ff6129ad7c8efe1f983e")
    );
    assert_eq!(field(&form, "ContentVariables"), Some(r#"{"1":"Friday"}"#));
    assert_eq!(field(&form, "Body"), None);

    let reply = [
        ("MessageSid", "SM_wa_1"),
        ("From", "whatsapp:+14155550188"),
        ("To", "whatsapp:+15005550006"),
        ("Body", "Friday works"),
    ];
    assert_eq!(
        inbound(&s, AUTH_TOKEN, &reply).await.status(),
        StatusCode::OK
    );
    let (status, msg) = s
        .post(
            "/v1/messages/whatsapp",
            &key,
            json!({"to": "whatsapp:+14155550188", "body": "See you then!"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    let form = fake.requests.lock().unwrap()[1].clone();
    assert_eq!(field(&form, "Body"), Some("See you then!"));
    assert_eq!(field(&form, "ContentSid"), None);
    let (_, wa) = s.get("/v1/messages?channel=whatsapp", &key).await;
    assert_eq!(wa["meta"]["total"], 3);
}
