//! HTTP hygiene, each shown by doing the abuse: a client dribbling headers is cut off, a
//! request that never finishes is answered 408, connections past the cap wait, made-up API
//! keys are refused before they reach the database, no database password appears in an
//! error, and a recording path outside the data directory is never served.

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use boltcall::api::RateLimits;
use boltcall::http_serve::{HttpLimits, serve};
use boltcall::store::{CallOutcome, NewAgent, NewCall};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// Short, so the tests run in real time (paused time needs tokio's test-util feature).
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// A server with a fast route and one that never answers.
async fn server(max_connections: usize) -> std::net::SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/stuck", get(std::future::pending::<&'static str>));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = HttpLimits {
        header_timeout: HEADER_TIMEOUT,
        request_timeout: Duration::from_secs(2),
        max_connections,
    };
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    addr
}

/// Everything the server sends until it closes the connection.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_client_dribbling_headers_is_disconnected() {
    let addr = server(8).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    // The rest of the headers never comes: the server hangs up after the timeout.
    let answer = read_all(&mut slow).await;
    assert!(!answer.contains("200"), "{answer}");
    assert!(started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(100));
}

#[tokio::test]
async fn a_request_that_never_finishes_is_answered_408() {
    let addr = server(8).await;
    let response = reqwest::get(format!("http://{addr}/stuck")).await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], 408);
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let addr = server(2).await;
    let mut idle = [
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    let started = tokio::time::Instant::now();
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // It was served only once the two idle connections had been timed out and closed.
    assert!(started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(100));
    for stream in &mut idle {
        assert_eq!(stream.read(&mut [0u8; 16]).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn made_up_keys_are_refused_before_any_database_lookup() {
    let server = common::TestServer::start_with(common::Options {
        rate_limit: true,
        limits: RateLimits {
            anonymous: RateLimits::quota(3, Duration::from_secs(3600)),
            ..RateLimits::default()
        },
        ..Default::default()
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let (status, _) = server
            .get("/v1/agents", &format!("sk_live_madeup{i}"))
            .await;
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    // With the database gone, a lookup would fail (500): the refusals come before any.
    server.store.close().await;
    for i in 4..6 {
        let (status, _) = server
            .get("/v1/agents", &format!("sk_live_madeup{i}"))
            .await;
        assert_eq!(status.as_u16(), 429, "made-up key {i}");
    }
}

#[test]
fn no_database_password_in_start_up_errors() {
    for url in [
        "postgres://boltcall:hunter2@127.0.0.1:1/boltcall",
        "mysql://boltcall:hunter2@127.0.0.1/boltcall",
    ] {
        for command in ["serve", "migrate"] {
            let (ok, stdout, stderr) = common::run_cli(
                &[command],
                &[
                    ("BOLTCALL_DATABASE_URL", url),
                    ("BOLTCALL_HTTP_ADDR", "127.0.0.1:0"),
                    ("BOLTCALL_SIP_ADDR", "127.0.0.1:0"),
                    ("RUST_LOG", "debug"),
                ],
            );
            assert!(!ok, "{command} with {url} should fail");
            assert!(
                !stdout.contains("hunter2") && !stderr.contains("hunter2"),
                "{command}: {stdout}{stderr}"
            );
        }
    }
    let (_, _, stderr) = common::run_cli(
        &["serve"],
        &[(
            "BOLTCALL_DATABASE_URL",
            "mysql://boltcall:hunter2@db/boltcall",
        )],
    );
    assert!(stderr.contains("boltcall:***@db"), "{stderr}");
}

#[tokio::test]
async fn recordings_are_served_only_from_the_recordings_directory() {
    let server = common::TestServer::start().await;
    let key = server.key("pro", true, "acme").await;
    let scope = server
        .store
        .authenticate(&key)
        .await
        .unwrap()
        .expect("the key")
        .scope();
    let agent = server
        .store
        .create_agent(
            &scope,
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
            },
        )
        .await
        .unwrap();
    let recordings = server.data_dir.join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let secret = server.data_dir.join("secret.txt");
    std::fs::write(&secret, "not a recording").unwrap();
    let inside = recordings.join("ok.wav");
    std::fs::write(&inside, b"RIFF....WAVE").unwrap();
    let paths = [
        ("/etc/passwd".to_string(), 404),
        (secret.display().to_string(), 404),
        (recordings.join("../secret.txt").display().to_string(), 404),
        (inside.display().to_string(), 200),
    ];
    for (path, expected) in paths {
        let call = server
            .store
            .create_call(
                &scope,
                NewCall {
                    agent_id: agent.id.clone(),
                    direction: "inbound".into(),
                    caller: "+15550002000".into(),
                    to: "+15550001000".into(),
                    carrier_call_id: None,
                    status: "in-progress".into(),
                    context: None,
                },
            )
            .await
            .unwrap();
        let mut outcome = CallOutcome::unanswered("completed", "caller_hangup");
        outcome.recording_path = Some(path.clone());
        server.store.finish_call(&call.id, outcome).await.unwrap();
        let response = server
            .http
            .get(server.url(&format!("/v1/calls/{}/recording", call.id)))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("not a recording") && !body.contains("root:"),
            "{path}"
        );
    }
}
