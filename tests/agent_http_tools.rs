//! Operator HTTP tools and per-agent LLM settings: saved through `/v1/agents` (secrets never
//! shown), and called by the call's tools against a real local HTTP server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use boltcall::agent::tools::http_tool::HttpTool;
use boltcall::agent::tools::{CallTools, ToolError, ToolRunner};
use boltcall::messaging::Messaging;
use common::{Options, TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn order_tool(url: &str) -> Value {
    json!({
        "name": "check_order",
        "description": "Look up an order by its id",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "minLength": 3}},
            "required": ["order_id"],
            "additionalProperties": false
        },
        "url": url,
        "headers": {"Authorization": "Bearer backend-s3cret"},
        "timeout_ms": 2000
    })
}

#[tokio::test]
async fn tools_and_llm_settings_are_saved_and_secrets_never_shown() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (status, agent) = s
        .post(
            "/v1/agents",
            &key,
            json!({"name": "Shop", "voice_id": "voice_james",
                   "llm": {"model": "gpt-4o", "temperature": 0.3, "max_tokens": 300},
                   "tools": [order_tool("https://shop.example.com/orders")]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let id = agent["id"].as_str().unwrap().to_string();
    assert_eq!(
        agent["llm"],
        json!({"model": "gpt-4o", "temperature": 0.3, "max_tokens": 300})
    );
    assert_eq!(agent["tools"][0]["method"], "POST");
    assert_eq!(
        agent["tools"][0]["headers"],
        json!({"Authorization": "[redacted]"})
    );
    let (_, got) = s.get(&format!("/v1/agents/{id}"), &key).await;
    assert!(!got.to_string().contains("backend-s3cret"), "{got}");

    // Sending the redacted value back keeps the secret; the store still holds it.
    let mut tool = agent["tools"][0].clone();
    tool["description"] = json!("Look up an order and its delivery date");
    let (status, patched) = s
        .patch(
            &format!("/v1/agents/{id}"),
            &key,
            json!({"tools": [tool], "llm": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["llm"], json!({}));
    let scope = s
        .store
        .authenticate(&key)
        .await
        .unwrap()
        .expect("the key")
        .scope();
    let stored = s.store.get_agent(&scope, &id).await.unwrap().unwrap();
    assert_eq!(
        stored.tools[0].headers.0["Authorization"],
        "Bearer backend-s3cret"
    );
    assert_eq!(
        stored.tools[0].description,
        "Look up an order and its delivery date"
    );
}

#[tokio::test]
async fn bad_tools_and_settings_are_refused_with_the_field() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let with_tool = |change: &dyn Fn(&mut Value)| {
        let mut tool = order_tool("https://shop.example.com/orders");
        change(&mut tool);
        json!({"name": "Shop", "voice_id": "voice_james", "tools": [tool]})
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with_tool(&|t| t["name"] = json!("book_appointment")),
            "built-in",
        ),
        (
            with_tool(&|t| t["name"] = json!("check order")),
            "tools[0].name",
        ),
        (
            with_tool(&|t| {
                t["parameters"] = json!({"type": "object", "properties": {"a": {"pattern": "x"}}})
            }),
            "pattern",
        ),
        (
            with_tool(&|t| t["url"] = json!("http://shop.example.com/orders")),
            "tools[0].url",
        ),
        (
            with_tool(&|t| t["url"] = json!("https://169.254.169.254/latest")),
            "tools[0].url",
        ),
        (
            with_tool(&|t| t["url"] = json!("https://127.0.0.1/orders")),
            "tools[0].url",
        ),
        (
            with_tool(&|t| t["method"] = json!("TRACE")),
            "tools[0].method",
        ),
        (
            with_tool(&|t| t["timeout_ms"] = json!(60_000)),
            "tools[0].timeout_ms",
        ),
        (
            with_tool(&|t| t["headers"] = json!({"Authorization": "[redacted]"})),
            "none is stored",
        ),
        (
            json!({"name": "Shop", "voice_id": "voice_james", "llm": {"temperature": 3}}),
            "llm.temperature",
        ),
        (
            json!({"name": "Shop", "voice_id": "voice_james", "llm": {"max_tokens": 0}}),
            "llm.max_tokens",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = s.post("/v1/agents", &key, body.clone()).await;
        assert_error(status, &answer, "validation_error");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body} → {answer}");
    }
    // Unknown fields of the extensions are refused, not ignored.
    let (status, answer) = s
        .post(
            "/v1/agents",
            &key,
            json!({"name": "Shop", "voice_id": "voice_james", "llm": {"modle": "x"}}),
        )
        .await;
    assert!(status.is_client_error(), "{answer}");
    let (_, list) = s.get("/v1/agents", &key).await;
    assert_eq!(list["meta"]["total"], 0, "nothing was saved: {list}");
}

/// What the operator's backend received.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, Option<String>, Option<String>, Value)>,
}

type Backend = Arc<Mutex<Seen>>;

async fn orders_post(
    State(seen): State<Backend>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (AxumStatus, Json<Value>) {
    record(&seen, "POST", &headers, body.clone());
    match body["order_id"].as_str() {
        Some("A1234") => (
            AxumStatus::OK,
            Json(json!({"status": "shipped", "eta": "Friday"})),
        ),
        _ => (
            AxumStatus::NOT_FOUND,
            Json(json!({"error": "no such order"})),
        ),
    }
}

async fn orders_get(
    State(seen): State<Backend>,
    headers: HeaderMap,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Json<Value> {
    record(&seen, "GET", &headers, json!(query));
    Json(json!({"found": query.get("order_id")}))
}

async fn slow(State(seen): State<Backend>, headers: HeaderMap) -> &'static str {
    record(&seen, "SLOW", &headers, Value::Null);
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

fn record(seen: &Backend, method: &str, headers: &HeaderMap, body: Value) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    seen.lock().unwrap().requests.push((
        method.into(),
        header("authorization"),
        header("boltcall-call-id"),
        body,
    ));
}

async fn backend() -> (String, Backend) {
    let seen = Backend::default();
    let app = axum::Router::new()
        .route("/orders", post(orders_post).get(orders_get))
        .route("/slow", post(slow))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, seen)
}

fn tool(base: &str, path: &str, method: &str, timeout_ms: u64) -> HttpTool {
    let mut value = order_tool(&format!("{base}{path}"));
    value["method"] = json!(method);
    value["timeout_ms"] = json!(timeout_ms);
    serde_json::from_value(value).unwrap()
}

async fn call_tools(s: &TestServer, tools: Vec<HttpTool>, allow_local: bool) -> CallTools {
    let key = s.key("pro", false, "acme").await;
    let scope = s
        .store
        .authenticate(&key)
        .await
        .unwrap()
        .expect("the key")
        .scope();
    CallTools::new(
        Messaging::new(s.store.clone(), s.state.config.clone()),
        scope,
        "agent_1".into(),
        "call_1".into(),
        "+14155550123".into(),
        chrono::Utc::now(),
    )
    .with_http_tools(tools, allow_local)
}

#[tokio::test]
async fn the_engine_calls_the_operators_url_with_the_checked_arguments() {
    let s = TestServer::start_with(Options {
        webhook_allow_loopback: true,
        ..Options::default()
    })
    .await;
    let (base, seen) = backend().await;
    let tools = call_tools(
        &s,
        vec![
            tool(&base, "/orders", "POST", 2000),
            HttpTool {
                name: "find_order".into(),
                ..tool(&base, "/orders", "GET", 2000)
            },
            HttpTool {
                name: "slow_lookup".into(),
                ..tool(&base, "/slow", "POST", 200)
            },
        ],
        true,
    )
    .await;
    let names: Vec<String> = tools.specs().into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"check_order".to_string())
            && names.contains(&"book_appointment".to_string())
    );

    let answer = tools
        .call("check_order", json!({"order_id": "A1234"}))
        .await
        .expect("the backend answers");
    assert_eq!(
        answer,
        json!({"status": 200, "body": {"status": "shipped", "eta": "Friday"}})
    );
    let answer = tools
        .call("find_order", json!({"order_id": "B777"}))
        .await
        .expect("the backend answers");
    assert_eq!(answer["body"], json!({"found": "B777"}));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.requests.len(), 2);
        let (method, auth, call_id, body) = &seen.requests[0];
        assert_eq!(method, "POST");
        assert_eq!(auth.as_deref(), Some("Bearer backend-s3cret"));
        assert_eq!(call_id.as_deref(), Some("call_1"));
        assert_eq!(body, &json!({"order_id": "A1234"}));
        assert_eq!(seen.requests[1].3, json!({"order_id": "B777"}));
    }

    // Arguments outside the schema never reach the backend.
    let err = tools
        .call("check_order", json!({"order_id": "A1", "extra": true}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments(_)), "{err}");
    assert_eq!(seen.lock().unwrap().requests.len(), 2);

    // The backend's refusal and a timeout reach the model as failures it can explain.
    let err = tools
        .call("check_order", json!({"order_id": "Z999"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToolError::Failed(m) if m.contains("HTTP 404") && m.contains("no such order")),
        "{err}"
    );
    let err = tools
        .call("slow_lookup", json!({"order_id": "A1234"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToolError::Failed(m) if m.contains("timed out")),
        "{err}"
    );
}

#[tokio::test]
async fn the_ssrf_guard_stands_between_a_tool_and_private_addresses() {
    let s = TestServer::start().await;
    let (base, seen) = backend().await;
    let by_name = base.replace("127.0.0.1", "localhost");
    let tools = call_tools(
        &s,
        vec![
            tool(&base, "/orders", "POST", 2000),
            HttpTool {
                name: "by_name".into(),
                ..tool(&by_name, "/orders", "POST", 2000)
            },
        ],
        false,
    )
    .await;
    for name in ["check_order", "by_name"] {
        let err = tools
            .call(name, json!({"order_id": "A1234"}))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ToolError::Failed(m) if m.contains("refused")),
            "{name}: {err}"
        );
    }
    assert!(seen.lock().unwrap().requests.is_empty());
}
