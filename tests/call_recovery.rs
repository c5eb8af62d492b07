//! The store side of crash recovery, on SQLite and (with `BOLTCALL_TEST_DATABASE_URL`)
//! PostgreSQL: the turn journal, heartbeats, and which open calls an instance may take over.

mod common;

use boltcall::store::{NewAgent, NewCall, Scope, Store, StoreError, TranscriptEntry};
use chrono::{Duration, Utc};

fn scope() -> Scope {
    Scope {
        workspace_id: "default".into(),
        live: true,
    }
}

fn turn(role: &str, text: &str, at: u64) -> TranscriptEntry {
    TranscriptEntry {
        role: role.into(),
        text: text.into(),
        start_ms: at,
        end_ms: at + 900,
    }
}

fn agent() -> NewAgent {
    NewAgent {
        name: "Ava".into(),
        voice_id: "voice_sarah".into(),
        greeting: None,
        prompt: None,
        knowledge_base_id: None,
        phone_number: None,
        transfer_targets: Vec::new(),
        llm: Default::default(),
        tools: Vec::new(),
    }
}

fn new_call(agent_id: &str, status: &str) -> NewCall {
    NewCall {
        agent_id: agent_id.into(),
        direction: "inbound".into(),
        caller: "+15550002000".into(),
        to: "+15550001000".into(),
        carrier_call_id: None,
        status: status.into(),
        context: None,
    }
}

async fn open_call(store: &Store, agent_id: &str) -> String {
    let call = store
        .create_call(&scope(), new_call(agent_id, "in-progress"))
        .await
        .unwrap();
    store.claim_call(&call.id).await.unwrap();
    call.id
}

#[tokio::test]
async fn a_call_is_claimed_by_the_write_that_records_it_or_when_it_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(dir.path()).await;
    let store = Store::connect(&db.url)
        .await
        .unwrap()
        .with_instance_id("node-a");
    let agent = store.create_agent(&scope(), agent()).await.unwrap();
    // Answered inbound: one write records the call as this instance's, under the given id.
    let id = "call_answered_here".to_string();
    let inbound = store
        .create_running_call(&scope(), id.clone(), new_call(&agent.id, "in-progress"))
        .await
        .unwrap();
    assert_eq!(inbound.id, id);
    assert_eq!(store.heartbeat_calls().await.unwrap(), 1);
    // Outbound: recorded ringing by the API, nobody's until it is answered.
    let outbound = store
        .create_call(&scope(), new_call(&agent.id, "ringing"))
        .await
        .unwrap();
    assert_eq!(store.heartbeat_calls().await.unwrap(), 1);
    store.claim_call(&outbound.id).await.unwrap();
    assert_eq!(store.heartbeat_calls().await.unwrap(), 2);
    let answered = store.get_call_by_id(&outbound.id).await.unwrap().unwrap();
    assert_eq!(answered.status, "in-progress");
    // A call that was never recorded cannot be claimed.
    assert!(matches!(
        store.claim_call("call_never_recorded").await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn journal_keeps_the_transcript_as_the_machine_last_had_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(dir.path()).await;
    let store = Store::connect(&db.url).await.unwrap();
    let agent = store.create_agent(&scope(), agent()).await.unwrap();
    let call = open_call(&store, &agent.id).await;
    store
        .journal_turn(&call, 0, &turn("agent", "Hello.", 0))
        .await
        .unwrap();
    store
        .journal_turn(&call, 1, &turn("caller", "book", 1000))
        .await
        .unwrap();
    // The caller's turn was taken back, then said again in full.
    store.truncate_journal(&call, 1).await.unwrap();
    store
        .journal_turn(&call, 1, &turn("caller", "book a visit", 1000))
        .await
        .unwrap();
    store
        .journal_turn(&call, 1, &turn("caller", "book a visit please", 1000))
        .await
        .unwrap();
    let turns = store.journaled_turns(&call).await.unwrap();
    assert_eq!(
        turns,
        [
            turn("agent", "Hello.", 0),
            turn("caller", "book a visit please", 1000)
        ]
    );
}

#[tokio::test]
async fn an_instance_takes_its_own_calls_and_those_of_silent_instances_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(dir.path()).await;
    let a = Store::connect(&db.url)
        .await
        .unwrap()
        .with_instance_id("node-a");
    let b = Store::connect(&db.url)
        .await
        .unwrap()
        .with_instance_id("node-b");
    let agent = a.create_agent(&scope(), agent()).await.unwrap();
    let own = open_call(&a, &agent.id).await;
    let others = [
        open_call(&b, &agent.id).await,
        open_call(&b, &agent.id).await,
    ];
    assert_eq!(b.heartbeat_calls().await.unwrap(), 2);
    let ids = |taken: Vec<(boltcall::store::CallRecord, _)>| {
        let mut ids: Vec<String> = taken.into_iter().map(|(c, _)| c.id).collect();
        ids.sort();
        ids
    };
    let recent = Utc::now() - Duration::seconds(60);

    let taken = ids(a.take_orphaned_calls(recent).await.unwrap());
    if a.is_single_node() {
        // SQLite has one engine: every open call at its start is an orphan.
        let mut all = vec![own.clone(), others[0].clone(), others[1].clone()];
        all.sort();
        assert_eq!(taken, all);
        return;
    }
    // PostgreSQL: node-b is alive, so only node-a's own call is taken ...
    assert_eq!(taken, std::slice::from_ref(&own));
    // ... once: node-a now holds it, with a fresh heartbeat; node-b (restarting) takes only
    // its own.
    let mut b_own = others.to_vec();
    b_own.sort();
    assert_eq!(ids(b.take_orphaned_calls(recent).await.unwrap()), b_own);
    assert_eq!(
        a.take_orphaned_calls(recent).await.unwrap().len(),
        1,
        "its own, again"
    );
    // node-b falls silent (its heartbeats are older than the cut-off): its calls are taken.
    let later = Utc::now() + Duration::seconds(1);
    let taken = ids(a.take_orphaned_calls(later).await.unwrap());
    let mut expected = vec![own, others[0].clone(), others[1].clone()];
    expected.sort();
    assert_eq!(taken, expected);
}
