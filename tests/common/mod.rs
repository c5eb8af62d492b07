//! Shared integration-test helper: a real HTTP server on a free port over a fresh database.
//!
//! ```ignore
//! mod common;
//! let server = common::TestServer::start().await;          // in-process `/v1` server
//! let key = server.key("pro", true, "acme").await;         // sk_live_… of workspace "acme"
//! let (status, body) = server.get("/v1/agents", &key).await;
//! ```
//!
//! The database is a temporary SQLite file, or, when `BOLTCALL_TEST_DATABASE_URL` names a
//! PostgreSQL server (`postgres://postgres@127.0.0.1:5432/test`), a uniquely named database
//! created for this server and dropped with it. `spawn_binary` runs the real `boltcall serve`
//! process instead, for tests of the command line.
#![allow(dead_code)] // each test binary uses a different part of this helper

pub mod scripted_stt;

use std::path::PathBuf;
use std::sync::Arc;

use boltcall::api::{ApiState, RateLimits};
use boltcall::config::Config;
use boltcall::store::Store;
use boltcall::telephony::{Dialer, OutboundCall};
use reqwest::StatusCode;
use serde_json::Value;

/// A change a test makes to the server's configuration.
pub type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

/// How to build a test server (default: limiter off, public https webhooks only).
#[derive(Default)]
pub struct Options {
    /// Rate limiting on (with `limits`) or off.
    pub rate_limit: bool,
    pub limits: RateLimits,
    pub webhook_allow_loopback: bool,
    /// The outbound dialer; one that leaves calls ringing when `None`.
    pub dialer: Option<Arc<dyn Dialer>>,
    /// Call admission (caps, minutes); one from the default configuration when `None`.
    pub admission: Option<Arc<boltcall::agent::admission::Admission>>,
    /// Changes to the configuration after the defaults above (e.g. Twilio settings).
    pub configure: Option<ConfigChange>,
}

pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub store: Store,
    pub state: ApiState,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    db: TestDb,
    _dir: tempfile::TempDir,
}

/// A database for one test server: its URL and how to dispose of it.
pub struct TestDb {
    pub url: String,
    /// `(admin URL, database name)` of a PostgreSQL database to drop afterwards.
    drop_pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database: SQLite in `dir`, or a new PostgreSQL database when
    /// `BOLTCALL_TEST_DATABASE_URL` is set.
    pub async fn create(dir: &std::path::Path) -> TestDb {
        match std::env::var("BOLTCALL_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                use sqlx::Connection;
                let name = format!(
                    "boltcall_test_{}",
                    boltcall::store::new_id("").to_lowercase()
                );
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to BOLTCALL_TEST_DATABASE_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(&admin).expect("postgres URL");
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    drop_pg: Some((admin, name)),
                }
            }
            _ => TestDb {
                url: format!("sqlite://{}", dir.join("boltcall.db").display()),
                drop_pg: None,
            },
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop_pg.take() else {
            return;
        };
        // Drop runs outside async context: use a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

impl TestServer {
    /// A server with rate limiting off and webhooks restricted to public https URLs.
    pub async fn start() -> TestServer {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::create(dir.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let mut config = Config {
            http_addr: addr,
            database_url: db.url.clone(),
            rate_limit: options.rate_limit,
            webhook_allow_loopback: options.webhook_allow_loopback,
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        if let Some(configure) = options.configure {
            configure(&mut config);
        }
        let store = Store::connect(&db.url)
            .await
            .expect("open store")
            .with_public_url(&base);
        let dialer = options.dialer.unwrap_or_else(|| Arc::new(IdleDialer));
        let data_dir = config.data_dir.clone();
        let mut state =
            ApiState::with_limits(store.clone(), Arc::new(config), dialer, options.limits);
        if let Some(admission) = options.admission {
            state = state.with_admission(admission);
        }
        let app = boltcall::api::router(state.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            base,
            store,
            state,
            data_dir,
            http: reqwest::Client::new(),
            task,
            db,
            _dir: dir,
        }
    }

    /// Creates a key (`plan`, live or test) in `workspace` and returns its secret.
    pub async fn key(&self, plan: &str, live: bool, workspace: &str) -> String {
        let plan = boltcall::store::Plan::parse(plan).expect("plan name");
        self.store
            .create_key(workspace, plan, live)
            .await
            .expect("create key")
            .secret
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path)).bearer_auth(key))
            .await
    }

    pub async fn delete(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.send(self.http.delete(self.url(path)).bearer_auth(key))
            .await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.post(self.url(path)).bearer_auth(key).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.patch(self.url(path)).bearer_auth(key).json(&body))
            .await
    }

    /// Sends a request and decodes the JSON answer (`Value::Null` when the body is not JSON).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        let body = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Asserts `body` is the error envelope with `code` and `status`.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert_eq!(body["error"]["status"], status.as_u16(), "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

/// A free local TCP port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `boltcall serve` child process on a free port; killed on drop.
pub struct ServeProcess {
    pub base: String,
    pub child: std::process::Child,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `boltcall` binary built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_boltcall"))
}

/// Runs `boltcall <args>` with `env` and returns (success, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run boltcall");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `boltcall serve` with `env` (plus its HTTP address) and waits until it answers.
/// Its log is dropped, or appended to the file `BOLTCALL_TEST_SERVE_LOG` names (with
/// `RUST_LOG`, to see what a failing test's engine did).
pub async fn spawn_binary(env: &[(&str, &str)]) -> ServeProcess {
    let port = free_port();
    let log = match std::env::var_os("BOLTCALL_TEST_SERVE_LOG") {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open BOLTCALL_TEST_SERVE_LOG")
            .into(),
        None => std::process::Stdio::null(),
    };
    let addr = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(binary())
        .arg("serve")
        .env("BOLTCALL_HTTP_ADDR", &addr)
        .env("BOLTCALL_SIP_ADDR", "127.0.0.1:0")
        // Unsigned Twilio requests, as in local development (no auth token in tests).
        .env("BOLTCALL_TWILIO_ALLOW_UNSIGNED", "1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn boltcall serve");
    let mut process = ServeProcess {
        base: format!("http://{addr}"),
        child,
    };
    let http = reqwest::Client::new();
    // Installing the offline models into a fresh data directory takes a while on a busy machine.
    for _ in 0..1200 {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("boltcall serve exited at start ({status})");
        }
        if http
            .get(format!("{}/v1/voices", process.base))
            .send()
            .await
            .is_ok()
        {
            return process;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("boltcall serve did not start on {addr}");
}

/// The dialer of API-only test servers: takes calls and leaves them ringing (placing calls has
/// its own tests, over SIP and the simulated callee).
struct IdleDialer;

impl Dialer for IdleDialer {
    fn dial(&self, _call: OutboundCall) {}
}
