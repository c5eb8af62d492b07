//! The OpenAI-compatible brain against a local server speaking the chat-completions SSE wire
//! format: streamed text, a tool call split over several chunks, and the follow-up request.
//! Failures, fallbacks and retrieval are tested in `tests/llm_brain.rs`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::TimeZone;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use std::time::Duration;

use super::{Fallback, Limits, OpenAiBrain};
use crate::agent::tools::arguments::{self, call_tool_specs};
use crate::agent::tools::{ToolError, ToolRunner, ToolSpec};
use crate::providers::llm::endpoint::Endpoint;
use crate::providers::llm::{Brain, BrainContext, BrainEvent, KnowledgeDoc, Message, Role};

/// A request as the server saw it: its `Authorization` header and JSON body.
type Seen = (Option<String>, Value);

#[derive(Clone, Default)]
struct Server {
    requests: Arc<Mutex<Vec<Seen>>>,
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {body}\n\n")
}

async fn completions(
    State(server): State<Server>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let request: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, HeaderMap::new(), String::new()),
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let round = {
        let mut requests = server.requests.lock().expect("lock");
        requests.push((auth, request));
        requests.len()
    };
    let events = if round == 1 {
        [
            chunk(json!({"role": "assistant", "content": "Sure, "}), None),
            chunk(json!({"content": "one moment."}), None),
            chunk(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "book_appointment", "arguments": "{\"title\": \"Cleaning\", "}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"start_time\": \"2030-03-29T10:00:00Z\", \"end_time\": \"2030-03-29T10:45:00Z\"}"}}]}), None),
            chunk(json!({}), Some("tool_calls")),
        ]
        .concat()
    } else {
        [
            chunk(
                json!({"role": "assistant", "content": "You're booked for "}),
                None,
            ),
            chunk(json!({"content": "Friday at 10 AM."}), None),
            chunk(json!({}), Some("stop")),
        ]
        .concat()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        "text/event-stream".parse().expect("header value"),
    );
    (StatusCode::OK, headers, format!("{events}data: [DONE]\n\n"))
}

#[derive(Default)]
struct Recorded(Mutex<Vec<Value>>);

impl ToolRunner for Recorded {
    fn specs(&self) -> Vec<ToolSpec> {
        call_tool_specs()
    }

    fn call<'a>(&'a self, name: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            if name != arguments::BOOK_APPOINTMENT {
                return Err(ToolError::Unknown(name.to_string()));
            }
            arguments::parse_booking(args.clone())?;
            self.0.lock().expect("lock").push(args);
            Ok(json!({"id": "apt_1", "status": "upcoming"}))
        })
    }
}

#[tokio::test]
async fn streams_text_runs_the_tool_call_and_speaks_its_result() {
    let server = Server::default();
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    let brain = OpenAiBrain::new(
        Endpoint::new(
            &format!("http://{addr}/v1/"),
            "sk-test",
            "test-model",
            Duration::from_secs(2),
        ),
        // Generous limits: this test is about the happy path, not the timeouts.
        Limits {
            fallback: Fallback::None,
            first_token: Duration::from_secs(30),
            idle: Duration::from_secs(30),
        },
    );
    let tools = Arc::new(Recorded::default());
    let context = BrainContext {
        agent_name: "Sarah".into(),
        prompt: "You are the receptionist at Bright Smile Dental.".into(),
        greeting: None,
        knowledge: vec![KnowledgeDoc {
            title: "Hours".into(),
            text: "Open 8 to 6.".into(),
        }],
        caller_number: "+14155550123".into(),
        outbound_context: None,
        now: chrono::Utc
            .with_ymd_and_hms(2030, 3, 25, 9, 0, 0)
            .single()
            .expect("valid time"),
        llm: Default::default(),
    };
    let mut session = brain.start(context, tools.clone());
    let history = [Message {
        role: Role::Caller,
        text: "book me a cleaning friday at ten".into(),
    }];
    let mut rx = session.reply(&history);
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        let done = matches!(event, BrainEvent::Done | BrainEvent::Error(_));
        events.push(event);
        if done {
            break;
        }
    }
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            BrainEvent::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Sure, one moment.You're booked for Friday at 10 AM.");
    assert!(events.iter().any(|e| matches!(e, BrainEvent::ToolCalled { name, result, .. } if name == "book_appointment" && result["id"] == "apt_1")), "{events:?}");
    assert_eq!(events.last(), Some(&BrainEvent::Done));
    assert_eq!(tools.0.lock().expect("lock").len(), 1);

    let requests = server.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 2);
    let (auth, first) = &requests[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
    assert_eq!(first["model"], "test-model");
    assert_eq!(first["stream"], true);
    // The seven call tools and `lookup_knowledge`.
    assert_eq!(first["tools"].as_array().map(Vec::len), Some(8));
    assert!(first.get("temperature").is_none() && first.get("max_tokens").is_none());
    let system = first["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(
        system.contains("You are Sarah")
            && system.contains("Bright Smile Dental")
            && system.contains("documents \"Hours\""),
        "{system}"
    );
    assert_eq!(
        first["messages"][1],
        json!({"role": "user", "content": "book me a cleaning friday at ten"})
    );
    let second = &requests[1].1["messages"];
    assert_eq!(
        second[2]["tool_calls"][0]["function"]["name"],
        "book_appointment"
    );
    assert_eq!(second[3]["role"], "tool");
    assert_eq!(second[3]["tool_call_id"], "call_1");
    serving.abort();
}
