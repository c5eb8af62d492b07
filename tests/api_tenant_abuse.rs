//! Tenant abuse over real HTTP: one phone number cannot be claimed twice (even by racing
//! workspaces), agents transfer only to configured targets, and outbound calls stop at the
//! plan's minutes and the concurrency caps — test-mode (simulated) calls included.

mod common;

use std::sync::{Arc, Mutex};

use boltcall::agent::admission::Admission;
use boltcall::store::CallOutcome;
use boltcall::telephony::{Dialer, OutboundCall};
use common::{Options, TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn agent(phone: &str) -> Value {
    json!({"name": "Desk", "voice_id": "voice_sarah", "phone_number": phone})
}

#[tokio::test]
async fn racing_workspaces_get_one_number_and_one_409() {
    let s = TestServer::start().await;
    let acme = s.key("pro", true, "acme").await;
    let globex = s.key("pro", true, "globex").await;
    let body = agent("+15550009999");
    let (a, b) = tokio::join!(
        s.post("/v1/agents", &acme, body.clone()),
        s.post("/v1/agents", &globex, body.clone())
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    let loser = if a.0 == StatusCode::CONFLICT {
        a.1
    } else {
        b.1
    };
    assert_error(StatusCode::CONFLICT, &loser, "conflict");
    assert!(
        loser["error"]["message"]
            .as_str()
            .unwrap()
            .contains("+15550009999")
    );

    // Many more claims at once, across both workspaces: still exactly one owner.
    let claims: Vec<_> = (0..8)
        .map(|n| {
            let key = if n % 2 == 0 { &acme } else { &globex };
            s.post("/v1/agents", key, agent("+15550008888"))
        })
        .collect();
    let created = futures::future::join_all(claims)
        .await
        .into_iter()
        .filter(|(status, body)| {
            if *status != StatusCode::CREATED {
                assert_error(*status, body, "conflict");
            }
            *status == StatusCode::CREATED
        })
        .count();
    assert_eq!(created, 1);

    // Moving another agent onto a taken number is a conflict too; test mode has its own numbers.
    let (_, other) = s.post("/v1/agents", &globex, agent("+15550007777")).await;
    let path = format!("/v1/agents/{}", other["id"].as_str().unwrap());
    let (status, err) = s
        .patch(&path, &globex, json!({"phone_number": "+15550009999"}))
        .await;
    assert_error(status, &err, "conflict");
    let test_key = s.key("pro", false, "globex").await;
    let (status, _) = s.post("/v1/agents", &test_key, agent("+15550009999")).await;
    assert_eq!(status, StatusCode::CREATED);
    let live = s
        .store
        .find_agent_by_phone("+15550009999", true)
        .await
        .unwrap()
        .unwrap();
    assert!(live.live, "live calls reach only the live agent");
}

#[tokio::test]
async fn transfer_targets_are_validated_and_returned() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    for bad in [
        json!(["sip:desk@pbx.example.com\r\nContact: <sip:toll@premium.example>"]),
        json!(["sip:desk@pbx.example.com?X-Evil=1"]),
        json!(["the manager"]),
    ] {
        let mut body = agent("+15550006666");
        body["transfer_targets"] = bad;
        let (status, err) = s.post("/v1/agents", &key, body).await;
        assert_error(status, &err, "validation_error");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("transfer_targets")
        );
    }
    let mut body = agent("+15550006666");
    body["transfer_targets"] = json!(["+14155550100", "sip:desk@pbx.example.com"]);
    let (status, created) = s.post("/v1/agents", &key, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["transfer_targets"],
        json!(["+14155550100", "sip:desk@pbx.example.com"])
    );
    let path = format!("/v1/agents/{}", created["id"].as_str().unwrap());
    let (status, err) = s
        .patch(
            &path,
            &key,
            json!({"transfer_targets": ["sip:a@b.example\nX: y"]}),
        )
        .await;
    assert_error(status, &err, "validation_error");
    let (status, patched) = s.patch(&path, &key, json!({"transfer_targets": []})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["transfer_targets"], json!([]));
}

/// Places nothing: keeps each call (and with it its admission permit) until released.
#[derive(Default)]
struct HoldingDialer {
    calls: Mutex<Vec<OutboundCall>>,
}

impl Dialer for HoldingDialer {
    fn dial(&self, call: OutboundCall) {
        self.calls.lock().unwrap().push(call);
    }
}

async fn capped_server(max_calls: usize, per_workspace: usize) -> (TestServer, Arc<HoldingDialer>) {
    let dialer = Arc::new(HoldingDialer::default());
    let s = TestServer::start_with(Options {
        dialer: Some(dialer.clone()),
        admission: Some(Admission::new(max_calls, per_workspace)),
        ..Options::default()
    })
    .await;
    (s, dialer)
}

async fn agent_id(s: &TestServer, key: &str, phone: &str) -> String {
    let (status, agent) = s.post("/v1/agents", key, agent(phone)).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    agent["id"].as_str().unwrap().to_string()
}

async fn call(s: &TestServer, key: &str, agent_id: &str) -> (StatusCode, Value) {
    s.post(
        "/v1/calls/outbound",
        key,
        json!({"agent_id": agent_id, "to": "+15550001234"}),
    )
    .await
}

#[tokio::test]
async fn concurrent_calls_are_capped_per_workspace_and_per_process() {
    let (s, dialer) = capped_server(3, 2).await;
    // Test keys' calls are simulated, and they count like live ones.
    let acme_test = s.key("pro", false, "acme").await;
    let acme_agent = agent_id(&s, &acme_test, "+15550005551").await;
    assert_eq!(
        call(&s, &acme_test, &acme_agent).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&s, &acme_test, &acme_agent).await.0,
        StatusCode::CREATED
    );
    let (status, err) = call(&s, &acme_test, &acme_agent).await;
    assert_error(status, &err, "rate_limited");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("workspace")
    );
    // Live calls of the same workspace share its cap.
    let acme_live = s.key("pro", true, "acme").await;
    let acme_live_agent = agent_id(&s, &acme_live, "+15550005552").await;
    let (status, err) = call(&s, &acme_live, &acme_live_agent).await;
    assert_error(status, &err, "rate_limited");

    let globex = s.key("pro", true, "globex").await;
    let globex_agent = agent_id(&s, &globex, "+15550005553").await;
    assert_eq!(
        call(&s, &globex, &globex_agent).await.0,
        StatusCode::CREATED
    );
    let initech = s.key("pro", true, "initech").await;
    let initech_agent = agent_id(&s, &initech, "+15550005554").await;
    let (status, err) = call(&s, &initech, &initech_agent).await;
    assert_error(status, &err, "rate_limited");
    assert!(err["error"]["message"].as_str().unwrap().contains("engine"));

    // Calls that end free their slots.
    dialer.calls.lock().unwrap().clear();
    assert_eq!(
        call(&s, &initech, &initech_agent).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&s, &acme_test, &acme_agent).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn calls_stop_when_the_plans_minutes_are_used_up() {
    let (s, dialer) = capped_server(10, 10).await;
    for live in [true, false] {
        let key = s.key("free", live, "acme").await;
        let phone = if live { "+15550004441" } else { "+15550004442" };
        let agent = agent_id(&s, &key, phone).await;
        let (status, first) = call(&s, &key, &agent).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        // That call lasted the free plan's 60 minutes.
        let mut outcome = CallOutcome::unanswered("completed", "caller_hangup");
        outcome.duration_seconds = 60 * 60;
        s.store
            .finish_call(first["id"].as_str().unwrap(), outcome)
            .await
            .unwrap();
        let (status, err) = call(&s, &key, &agent).await;
        assert_error(status, &err, "quota_exceeded");
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("minutes")
        );
        let (_, usage) = s.get("/v1/analytics/usage", &key).await;
        assert_eq!(usage["minutes_used"], 60);
    }
    // A workspace with minutes left is not affected.
    let other = s.key("free", true, "globex").await;
    let agent = agent_id(&s, &other, "+15550004443").await;
    assert_eq!(call(&s, &other, &agent).await.0, StatusCode::CREATED);
    assert_eq!(dialer.calls.lock().unwrap().len(), 3);
}
