//! Webhook delivery end to end in one process: a real API server, a real dispatcher and a real
//! receiver on local sockets. On PostgreSQL when `BOLTCALL_TEST_DATABASE_URL` is set.

mod common;
#[path = "webhooks/receiver.rs"]
mod receiver;

use std::collections::BTreeMap;
use std::time::Duration;

use boltcall::events::dispatcher::{Dispatcher, DispatcherSettings};
use boltcall::events::schedule::RetrySchedule;
use boltcall::store::Store;
use common::{Options, TestServer};
use receiver::{Mode, Receiver, verify_signature};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "whsec_0123456789abcdef";

async fn server() -> (TestServer, String) {
    let s = TestServer::start_with(Options {
        webhook_allow_loopback: true,
        ..Options::default()
    })
    .await;
    let key = s.key("pro", true, "acme").await;
    (s, key)
}

/// The workspace and mode `key` acts in.
async fn scope_of(s: &TestServer, key: &str) -> boltcall::store::Scope {
    s.store
        .authenticate(key)
        .await
        .unwrap()
        .expect("the test's key")
        .scope()
}

fn dispatcher(store: &Store, retries: &[u64], allow_local: bool) -> tokio::task::JoinHandle<()> {
    let settings = DispatcherSettings {
        schedule: RetrySchedule::from_secs(retries),
        timeout: Duration::from_secs(5),
        retention: Duration::from_secs(30 * 86_400),
        allow_local,
    };
    Dispatcher::new(store.clone(), settings).unwrap().spawn()
}

async fn subscribe(s: &TestServer, key: &str, url: &str, events: &[&str]) -> String {
    let (status, hook) = s
        .post(
            "/v1/webhooks",
            key,
            json!({"url": url, "events": events, "secret": SECRET}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    hook["id"].as_str().unwrap().to_string()
}

async fn create_lead(s: &TestServer, key: &str, name: &str) -> Value {
    let (status, lead) = s.post("/v1/leads", key, json!({"name": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{lead}");
    lead
}

#[tokio::test]
async fn failing_receiver_gets_each_event_retried_under_one_id_and_signed() {
    let (s, key) = server().await;
    let receiver = Receiver::start(Mode::FailFirst(2)).await;
    let hook = subscribe(&s, &key, &receiver.url, &["lead.created"]).await;
    let _dispatcher = dispatcher(&s.store, &[0, 0, 0], true);
    let mut leads = Vec::new();
    for name in ["Ann", "Bob", "Cy"] {
        leads.push(create_lead(&s, &key, name).await);
    }
    receiver
        .wait_until("three accepted events", |h| {
            h.iter().filter(|h| h.answered == Some(204)).count() == 3
        })
        .await;

    let mut by_event: BTreeMap<String, Vec<receiver::Hit>> = BTreeMap::new();
    for hit in receiver.hits() {
        by_event.entry(hit.event_id.clone()).or_default().push(hit);
    }
    assert_eq!(by_event.len(), 3, "one event id per event");
    for (event_id, hits) in &by_event {
        assert!(event_id.starts_with("evt_"), "{event_id}");
        let answers: Vec<_> = hits.iter().map(|h| h.answered).collect();
        assert_eq!(answers, [Some(500), Some(500), Some(204)], "{event_id}");
        for hit in hits {
            assert!(
                verify_signature(SECRET, &hit.signature, &hit.body),
                "{hit:?}"
            );
            assert!(!verify_signature(
                "whsec_other_secret_x",
                &hit.signature,
                &hit.body
            ));
            assert_eq!(hit.content_type, "application/json");
            assert!(
                hit.user_agent.starts_with("Boltcall-Webhooks/"),
                "{}",
                hit.user_agent
            );
            assert_eq!(hit.body, hits[0].body, "retries carry the same body");
        }
    }
    // The body holds the full resource, exactly as the API shows it.
    for lead in &leads {
        let hit = receiver
            .accepted()
            .into_iter()
            .find(|h| h.json()["data"]["id"] == lead["id"])
            .expect("each lead's event delivered");
        let body = hit.json();
        assert_eq!(body["event"], "lead.created");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        let (_, shown) = s
            .get(&format!("/v1/leads/{}", lead["id"].as_str().unwrap()), &key)
            .await;
        assert_eq!(body["data"], shown);
    }

    // Every attempt is recorded, newest first, paginated.
    let path = format!("/v1/webhooks/{hook}/deliveries");
    let (status, log) = s.get(&format!("{path}?limit=100"), &key).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["meta"]["total"], 9);
    let attempts = log["data"].as_array().unwrap();
    let times: Vec<&str> = attempts
        .iter()
        .map(|a| a["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    for a in attempts {
        match a["attempt"].as_i64().unwrap() {
            1 | 2 => {
                assert_eq!(a["status_code"], 500);
                assert!(a["error"].as_str().unwrap().contains("500"), "{a}");
            }
            3 => {
                assert_eq!(a["status_code"], 204);
                assert!(a["error"].is_null());
            }
            n => panic!("attempt {n}"),
        }
        assert!(a["latency_ms"].as_i64().unwrap() >= 0);
        assert_eq!(a["event"], "lead.created");
    }
    let (_, page2) = s.get(&format!("{path}?limit=4&page=3"), &key).await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["meta"]["total"], 9);
    let (status, err) = s.get("/v1/webhooks/wh_missing/deliveries", &key).await;
    common::assert_error(status, &err, "not_found");
}

#[tokio::test]
async fn endpoint_failing_its_schedule_is_disabled_until_patched_active() {
    let (s, key) = server().await;
    let receiver = Receiver::start(Mode::FailFirst(usize::MAX)).await;
    let hook = subscribe(&s, &key, &receiver.url, &["lead.created"]).await;
    let _dispatcher = dispatcher(&s.store, &[0], true);
    create_lead(&s, &key, "Ann").await;
    receiver
        .wait_until("two failed attempts", |h| h.len() == 2)
        .await;
    let mut webhook = Value::Null;
    for _ in 0..1200 {
        let (_, list) = s.get("/v1/webhooks", &key).await;
        webhook = list["data"][0].clone();
        if webhook["status"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(webhook["status"], "disabled", "{webhook}");
    let reason = webhook["disabled_reason"].as_str().unwrap();
    assert!(
        reason.contains("2 consecutive") && reason.contains("500"),
        "{reason}"
    );

    // Disabled: nothing is sent.
    receiver.set_mode(Mode::FailFirst(0));
    create_lead(&s, &key, "Bob").await;
    let path = format!("/v1/webhooks/{hook}");
    for bad in [
        json!({"status": "paused"}),
        json!({"url": "http://yourapp.com/h"}),
        json!({"events": ["lead.exploded"]}),
        json!({"events": []}),
    ] {
        let (status, err) = s.patch(&path, &key, bad.clone()).await;
        common::assert_error(status, &err, "validation_error");
    }
    // The test ping goes out even to a disabled endpoint, signed, and is logged.
    let (status, ping) = s.post(&format!("{path}/test"), &key, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{ping}");
    assert_eq!(
        (ping["event"].clone(), ping["status_code"].clone()),
        (json!("ping"), json!(204))
    );
    let hits = receiver.hits();
    assert_eq!(
        hits.len(),
        3,
        "only the ping reached the disabled endpoint: {hits:#?}"
    );
    let sent = &hits[2];
    assert_eq!(sent.json()["event"], "ping");
    assert_eq!(sent.event_id, ping["event_id"].as_str().unwrap());
    assert!(verify_signature(SECRET, &sent.signature, &sent.body));

    let (status, patched) = s
        .patch(
            &path,
            &key,
            json!({"status": "active", "events": ["lead.created", "lead.updated"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["status"], "active");
    assert!(patched["disabled_reason"].is_null());
    assert!(
        patched.get("secret").is_none(),
        "the secret is shown only at creation"
    );
    let carol = create_lead(&s, &key, "Carol").await;
    receiver
        .wait_until("Carol's event", |h| {
            h.iter()
                .any(|h| h.answered == Some(204) && h.json()["data"]["id"] == carol["id"])
        })
        .await;
    let (status, err) = s
        .patch("/v1/webhooks/wh_missing", &key, json!({"status": "active"}))
        .await;
    common::assert_error(status, &err, "not_found");
}

#[tokio::test]
async fn delivery_refuses_local_targets_and_follows_no_redirect() {
    let (s, key) = server().await;
    let receiver = Receiver::start(Mode::FailFirst(0)).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // Stored directly: registration would refuse these, and delivery must refuse them too
    // (a name can resolve somewhere else by the time it is used).
    let scope = scope_of(&s, &key).await;
    let targets = [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://[64:ff9b::7f00:1]:{port}/hook"),
        format!("http://10.0.0.1:{port}/hook"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://100.64.0.1/hook".to_string(),
        "http://0.0.0.0/hook".to_string(),
    ];
    for url in &targets {
        s.store
            .create_webhook(
                &scope,
                url.clone(),
                vec!["lead.created".into()],
                SECRET.into(),
            )
            .await
            .unwrap();
    }
    let strict = dispatcher(&s.store, &[], false);
    create_lead(&s, &key, "Ann").await;
    let (_, list) = s.get("/v1/webhooks", &key).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        targets.len(),
        "{list}"
    );
    for _ in 0..1200 {
        let (_, list) = s.get("/v1/webhooks", &key).await;
        if list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] == "disabled")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, list) = s.get("/v1/webhooks", &key).await;
    for hook in list["data"].as_array().unwrap() {
        assert_eq!(hook["status"], "disabled", "{hook}");
        let (_, log) = s
            .get(
                &format!("/v1/webhooks/{}/deliveries", hook["id"].as_str().unwrap()),
                &key,
            )
            .await;
        let attempt = &log["data"][0];
        assert!(attempt["status_code"].is_null(), "{hook} {attempt}");
        assert!(
            attempt["error"].as_str().unwrap().contains("refused"),
            "{hook} {attempt}"
        );
    }
    assert!(
        receiver.hits().is_empty(),
        "nothing reached the local receiver"
    );
    strict.abort();

    // A redirect is an answer, not an instruction: the attempt fails and nothing follows it.
    receiver.set_mode(Mode::Redirect);
    subscribe(&s, &key, &receiver.url, &["lead.created"]).await;
    let loose = dispatcher(&s.store, &[], true);
    create_lead(&s, &key, "Bob").await;
    receiver
        .wait_until("the redirected attempt", |h| !h.is_empty())
        .await;
    loose.abort();
    let hits = receiver.hits();
    assert!(
        hits.iter()
            .all(|h| h.path == "/hook" && h.answered == Some(307)),
        "{hits:#?}"
    );
}

#[tokio::test]
async fn settled_events_are_pruned_after_retention() {
    let (s, key) = server().await;
    let receiver = Receiver::start(Mode::FailFirst(0)).await;
    let hook = subscribe(&s, &key, &receiver.url, &["lead.created"]).await;
    create_lead(&s, &key, "Ann").await;
    let tomorrow = boltcall::store::format_ts(chrono::Utc::now() + chrono::Duration::days(1));
    // Not yet delivered: kept whatever its age.
    assert_eq!(s.store.prune_delivered_events(&tomorrow).await.unwrap(), 0);
    let _dispatcher = dispatcher(&s.store, &[0], true);
    receiver.wait_until("the event", |h| h.len() == 1).await;
    let scope = scope_of(&s, &key).await;
    // Wait for the outcome to be recorded.
    for _ in 0..1200 {
        let (_, log) = s
            .get(&format!("/v1/webhooks/{hook}/deliveries"), &key)
            .await;
        if log["meta"]["total"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let yesterday = boltcall::store::format_ts(chrono::Utc::now() - chrono::Duration::days(1));
    assert_eq!(s.store.prune_delivered_events(&yesterday).await.unwrap(), 0);
    assert_eq!(s.store.recent_events(&scope, 10).await.unwrap().len(), 1);
    assert_eq!(s.store.prune_delivered_events(&tomorrow).await.unwrap(), 1);
    assert!(s.store.recent_events(&scope, 10).await.unwrap().is_empty());
    let (_, log) = s
        .get(&format!("/v1/webhooks/{hook}/deliveries"), &key)
        .await;
    assert_eq!(log["meta"]["total"], 0);
}
