//! Webhook delivery across engine processes: the real `boltcall serve` binary killed
//! mid-delivery and restarted, and two engines sharing one PostgreSQL.

mod common;
#[path = "webhooks/receiver.rs"]
mod receiver;

use std::collections::{BTreeMap, BTreeSet};

use boltcall::store::{Plan, Store};
use common::{TestDb, spawn_binary};
use receiver::{Mode, Receiver, verify_signature};
use serde_json::{Value, json};

const SECRET: &str = "whsec_0123456789abcdef";

/// A live key of workspace `acme` and a webhook to `url` for `lead.created`.
async fn seed(db: &TestDb, url: &str) -> (String, String) {
    let store = Store::connect(&db.url).await.unwrap();
    let key = store
        .create_key("acme", Plan::parse("pro").unwrap(), true)
        .await
        .unwrap();
    let scope = key.key.scope();
    let hook = store
        .create_webhook(
            &scope,
            url.into(),
            vec!["lead.created".into()],
            SECRET.into(),
        )
        .await
        .unwrap();
    store.close().await;
    (key.secret, hook.id)
}

fn engine_env(db: &TestDb, data_dir: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BOLTCALL_DATABASE_URL", db.url.clone()),
        ("BOLTCALL_DATA_DIR", data_dir.to_string()),
        ("BOLTCALL_RATE_LIMIT", "off".into()),
        ("BOLTCALL_WEBHOOK_ALLOW_LOOPBACK", "1".into()),
        ("BOLTCALL_WEBHOOK_TIMEOUT", "2".into()),
        ("BOLTCALL_WEBHOOK_RETRY_SCHEDULE", "0,0,0,0,0,0".into()),
    ]
}

async fn spawn(env: &[(&'static str, String)]) -> common::ServeProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_binary(&env).await
}

async fn create_lead(http: &reqwest::Client, base: &str, key: &str, name: &str) -> String {
    let lead: Value = http
        .post(format!("{base}/v1/leads"))
        .bearer_auth(key)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    lead["id"].as_str().expect("lead created").to_string()
}

/// Lead id → the event ids of the requests that carried it.
fn event_ids_by_lead(hits: &[receiver::Hit]) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for hit in hits {
        let lead = hit.json()["data"]["id"].as_str().unwrap().to_string();
        map.entry(lead).or_default().insert(hit.event_id.clone());
    }
    map
}

#[tokio::test]
async fn engine_killed_mid_delivery_resumes_after_restart_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(dir.path()).await;
    let receiver = Receiver::start(Mode::Hold).await;
    let (key, _) = seed(&db, &receiver.url).await;
    let env = engine_env(&db, &dir.path().join("data").display().to_string());
    let http = reqwest::Client::new();

    let engine = spawn(&env).await;
    let mut leads = Vec::new();
    for name in ["Ann", "Bob", "Cy", "Di", "Ed"] {
        leads.push(create_lead(&http, &engine.base, &key, name).await);
    }
    receiver
        .wait_until("a delivery in flight", |h| !h.is_empty())
        .await;
    drop(engine); // SIGKILL while the receiver holds the request
    let in_flight = receiver.hits();
    assert!(in_flight.iter().all(|h| h.answered.is_none()));

    receiver.set_mode(Mode::FailFirst(0));
    let _engine = spawn(&env).await;
    receiver
        .wait_until("every lead's event accepted", |h| {
            let accepted: BTreeSet<String> = h
                .iter()
                .filter(|h| h.answered == Some(204))
                .map(|h| h.json()["data"]["id"].as_str().unwrap().to_string())
                .collect();
            accepted.len() == leads.len()
        })
        .await;
    let by_lead = event_ids_by_lead(&receiver.hits());
    assert_eq!(
        by_lead.keys().cloned().collect::<BTreeSet<_>>(),
        leads.iter().cloned().collect()
    );
    for (lead, ids) in &by_lead {
        assert_eq!(
            ids.len(),
            1,
            "one event id across the restart for {lead}: {ids:?}"
        );
    }
    for hit in receiver.hits() {
        assert!(verify_signature(SECRET, &hit.signature, &hit.body));
    }
    // The request interrupted by the kill was made again, under its own id, after the restart.
    for held in &in_flight {
        assert!(
            receiver
                .accepted()
                .iter()
                .any(|h| h.event_id == held.event_id && h.body == held.body),
            "{held:?}"
        );
    }
}

#[tokio::test]
async fn two_engines_on_one_postgres_make_each_attempt_once() {
    if std::env::var("BOLTCALL_TEST_DATABASE_URL")
        .unwrap_or_default()
        .is_empty()
    {
        eprintln!("skipped: set BOLTCALL_TEST_DATABASE_URL to a PostgreSQL server");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(dir.path()).await;
    let receiver = Receiver::start(Mode::FailFirst(1)).await;
    let (key, hook) = seed(&db, &receiver.url).await;
    let env = engine_env(&db, &dir.path().join("data").display().to_string());
    let http = reqwest::Client::new();
    let engines = [spawn(&env).await, spawn(&env).await];

    const LEADS: usize = 40;
    for i in 0..LEADS {
        let base = &engines[i % 2].base;
        create_lead(&http, base, &key, &format!("Lead {i}")).await;
    }
    receiver
        .wait_until("every event accepted", |h| {
            h.iter().filter(|h| h.answered == Some(204)).count() >= LEADS
        })
        .await;
    // Both attempts of every event are recorded before the counts are compared, so a doubled
    // attempt (sent by both engines) would show in the log and at the receiver alike.
    let mut total = 0;
    for _ in 0..600 {
        let log: Value = http
            .get(format!("{}/v1/webhooks/{hook}/deliveries", engines[0].base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        total = log["meta"]["total"].as_i64().unwrap();
        if total >= 2 * LEADS as i64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        total,
        2 * LEADS as i64,
        "one failed and one accepted attempt per event"
    );
    let mut per_event: BTreeMap<String, Vec<Option<u16>>> = BTreeMap::new();
    for hit in receiver.hits() {
        per_event
            .entry(hit.event_id.clone())
            .or_default()
            .push(hit.answered);
    }
    assert_eq!(per_event.len(), LEADS);
    for (event, answers) in &per_event {
        assert_eq!(answers, &[Some(500), Some(204)], "{event}");
    }
}
