//! The LLM brain and the LLM call analysis against a local server speaking OpenAI chat
//! completions: SSE streams (`data: {...}` lines, `data: [DONE]`), error statuses with
//! `Retry-After`, a stream that stays silent, garbage, a connection cut mid-stream.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Response, StatusCode};
use axum::routing::post;
use boltcall::agent::tools::arguments::call_tool_specs;
use boltcall::agent::tools::{ToolError, ToolRunner, ToolSpec};
use boltcall::agent::turn::ToolCallRecord;
use boltcall::analysis::llm::LlmAnalyst;
use boltcall::analysis::{BusinessHours, CallFacts, Line, Resolution, SentimentLabel, analyze};
use boltcall::config::Config;
use boltcall::providers::llm::endpoint::Endpoint;
use boltcall::providers::llm::{
    AgentLlm, BrainContext, BrainEvent, KnowledgeDoc, Message, Role, build_brain,
};
use chrono::TimeZone;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// Generous upper bound so a broken test fails instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// One scripted answer of the server, in request order.
enum Scripted {
    /// These SSE events, then `data: [DONE]`.
    Stream(Vec<Value>),
    /// These raw `data:` payloads (no `[DONE]`), then the connection is cut.
    Cut(Vec<String>),
    /// These events, then the stream stays open and silent.
    Hang(Vec<Value>),
    /// An error status with headers and a JSON error body.
    Status(u16, Vec<(&'static str, &'static str)>),
    /// A non-streamed completion whose message content is this.
    Completion(String),
}

#[derive(Clone, Default)]
struct Server {
    script: Arc<Mutex<VecDeque<Scripted>>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Server {
    async fn start(script: Vec<Scripted>) -> (Self, String) {
        let server = Server {
            script: Arc::new(Mutex::new(script.into())),
            requests: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, format!("http://{addr}/v1"))
    }

    fn requests(&self) -> Vec<Value> {
        self.requests.lock().expect("lock").clone()
    }
}

fn sse(data: &str) -> String {
    format!("data: {data}\n\n")
}

fn chunk(delta: Value) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "system_fingerprint": "fp_1", "x_vendor_field": {"anything": true},
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]
    })
}

fn finish(reason: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

/// A streamed spoken answer.
fn says(pieces: &[&str]) -> Scripted {
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}))];
    events.extend(pieces.iter().map(|p| chunk(json!({"content": p}))));
    events.push(finish("stop"));
    Scripted::Stream(events)
}

async fn completions(State(server): State<Server>, body: String) -> Response<Body> {
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    server.requests.lock().expect("lock").push(request);
    let next = server.script.lock().expect("lock").pop_front();
    let sse_response = |body: Body| {
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(body)
            .expect("response")
    };
    match next {
        Some(Scripted::Stream(events)) => {
            let mut text: String = events.iter().map(|e| sse(&e.to_string())).collect();
            text.push_str(&sse("[DONE]"));
            sse_response(Body::from(text))
        }
        Some(Scripted::Cut(payloads)) => {
            let sent = futures::stream::iter(
                payloads
                    .into_iter()
                    .map(|p| Ok::<_, std::io::Error>(sse(&p))),
            );
            // The text goes out first; then the body fails and the connection is dropped.
            let cut = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("connection lost"))
            });
            sse_response(Body::from_stream(sent.chain(cut)))
        }
        Some(Scripted::Hang(events)) => {
            let sent = futures::stream::iter(
                events
                    .into_iter()
                    .map(|e| Ok::<_, std::io::Error>(sse(&e.to_string()))),
            );
            sse_response(Body::from_stream(sent.chain(futures::stream::pending())))
        }
        Some(Scripted::Status(status, headers)) => {
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            let error =
                json!({"error": {"message": format!("scripted {status}"), "type": "server_error"}});
            response
                .header("content-type", "application/json")
                .body(Body::from(error.to_string()))
                .expect("response")
        }
        Some(Scripted::Completion(content)) => {
            let completion = json!({
                "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(completion.to_string()))
                .expect("response")
        }
        None => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from("unscripted request"))
            .expect("response"),
    }
}

/// Call tools that record what they were asked.
#[derive(Default)]
struct Recorded(Mutex<Vec<(String, Value)>>);

impl ToolRunner for Recorded {
    fn specs(&self) -> Vec<ToolSpec> {
        call_tool_specs()
    }

    fn call<'a>(&'a self, name: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            self.0.lock().expect("lock").push((name.to_string(), args));
            match name {
                "book_appointment" => Ok(json!({"id": "apt_1", "status": "upcoming"})),
                "capture_lead" => Ok(json!({"id": "lead_1"})),
                other => Err(ToolError::Unknown(other.to_string())),
            }
        })
    }
}

fn config(base_url: &str, fallback: &str, first_token_ms: u64) -> Config {
    Config {
        llm_base_url: Some(base_url.to_string()),
        llm_api_key: Some("sk-test".into()),
        llm_model: Some("primary-model".into()),
        llm_fallback: fallback.into(),
        llm_first_token_timeout_ms: first_token_ms,
        llm_idle_timeout_ms: 10_000,
        ..Config::default()
    }
}

/// Long enough that a loaded machine never trips it where the test is not about timeouts.
const PATIENT_MS: u64 = 10_000;

fn handbook() -> String {
    // ~30,000 characters of policy text before the one line the caller asks about.
    let filler: String = (0..600)
        .map(|i| format!("Policy clause {i} covers routine paperwork. "))
        .collect();
    format!("{filler}\nValet parking costs twelve dollars on weekends.")
}

fn context(llm: AgentLlm) -> BrainContext {
    BrainContext {
        agent_name: "Sarah".into(),
        prompt: "You are the receptionist at Bright Smile Dental.".into(),
        greeting: None,
        knowledge: vec![
            KnowledgeDoc {
                title: "Opening hours".into(),
                text: "We are open Monday to Friday, 8 AM to 6 PM.\nOn Saturdays we open 9 AM to 1 PM.".into(),
            },
            KnowledgeDoc {
                title: "FAQ".into(),
                text: "Q: Do you take insurance?\nA: Yes, we accept most major dental insurance plans.".into(),
            },
            KnowledgeDoc {
                title: "Handbook".into(),
                text: handbook(),
            },
        ],
        caller_number: "+14155550123".into(),
        outbound_context: None,
        now: chrono::Utc
            .with_ymd_and_hms(2030, 3, 25, 9, 0, 0)
            .single()
            .expect("valid time"),
        llm,
    }
}

fn caller(text: &str) -> Vec<Message> {
    vec![
        Message {
            role: Role::Agent,
            text: "Bright Smile Dental, how can I help?".into(),
        },
        Message {
            role: Role::Caller,
            text: text.into(),
        },
    ]
}

/// Runs one reply to its end.
async fn reply(
    config: &Config,
    llm: AgentLlm,
    tools: Arc<Recorded>,
    history: &[Message],
) -> Vec<BrainEvent> {
    let brain = build_brain(config);
    let mut session = brain.start(context(llm), tools);
    let mut rx = session.reply(history);
    let mut events = Vec::new();
    let collect = async {
        while let Some(event) = rx.recv().await {
            let last = matches!(event, BrainEvent::Done | BrainEvent::Error(_));
            events.push(event);
            if last {
                break;
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, collect)
        .await
        .expect("the reply ends");
    events
}

fn spoken(events: &[BrainEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            BrainEvent::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn failures(events: &[BrainEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            BrainEvent::ProviderFailed {
                error, fallback, ..
            } => Some((error.clone(), fallback.clone())),
            _ => None,
        })
        .collect()
}

/// Text events after the first `ProviderFailed` (a second voice).
fn spoken_after_failure(events: &[BrainEvent]) -> String {
    let at = events
        .iter()
        .position(|e| matches!(e, BrainEvent::ProviderFailed { .. }))
        .unwrap_or(events.len());
    spoken(&events[at..])
}

fn system_texts(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter(|m| m["role"] == "system")
                .filter_map(|m| m["content"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn parallel_tool_calls_both_run_and_the_next_round_answers() {
    let interleaved = vec![
        chunk(json!({"role": "assistant", "content": null})),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_lead", "type": "function", "function": {"name": "capture_lead", "arguments": ""}}]}),
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_book", "type": "function", "function": {"name": "book_appointment", "arguments": ""}}]}),
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"name\": \"Ana"}}]})),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"title\": \"Cleaning\", \"start_time\": "}}]}),
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": " Ruiz\"}"}}]})),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"2030-03-29T10:00:00Z\", \"end_time\": \"2030-03-29T10:45:00Z\"}"}}]}),
        ),
        finish("tool_calls"),
    ];
    let (server, url) = Server::start(vec![
        Scripted::Stream(interleaved),
        says(&["You're booked, ", "Ana."]),
    ])
    .await;
    let tools = Arc::new(Recorded::default());
    let events = reply(
        &config(&url, "none", PATIENT_MS),
        AgentLlm::default(),
        tools.clone(),
        &caller("I'm Ana Ruiz, book me a cleaning friday at ten"),
    )
    .await;
    assert_eq!(spoken(&events), "You're booked, Ana.");
    assert_eq!(events.last(), Some(&BrainEvent::Done));
    let ran = tools.0.lock().expect("lock").clone();
    assert_eq!(
        ran,
        [
            ("capture_lead".to_string(), json!({"name": "Ana Ruiz"})),
            (
                "book_appointment".to_string(),
                json!({"title": "Cleaning", "start_time": "2030-03-29T10:00:00Z", "end_time": "2030-03-29T10:45:00Z"})
            ),
        ]
    );
    let called: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            BrainEvent::ToolCalled { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(called, ["capture_lead", "book_appointment"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let follow_up = requests[1]["messages"].as_array().expect("messages");
    let n = follow_up.len();
    assert_eq!(
        follow_up[n - 3]["tool_calls"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(follow_up[n - 2]["tool_call_id"], "call_lead");
    assert_eq!(follow_up[n - 1]["tool_call_id"], "call_book");
    assert!(
        follow_up[n - 1]["content"]
            .as_str()
            .is_some_and(|c| c.contains("apt_1"))
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let (server, url) = Server::start(vec![
        Scripted::Status(429, vec![("retry-after-ms", "50"), ("retry-after", "1")]),
        says(&["We open at 8."]),
    ])
    .await;
    let events = reply(
        &config(&url, "offline", PATIENT_MS),
        AgentLlm::default(),
        Arc::default(),
        &caller("when do you open"),
    )
    .await;
    assert_eq!(spoken(&events), "We open at 8.");
    let failed = failures(&events);
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(
        failed[0].0.contains("429") && failed[0].1 == "retry",
        "{failed:?}"
    );
    assert_eq!(events.last(), Some(&BrainEvent::Done));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn server_errors_fall_back_to_the_offline_brain() {
    let (server, url) = Server::start(vec![
        Scripted::Status(500, vec![]),
        Scripted::Status(502, vec![]),
        Scripted::Status(503, vec![]),
    ])
    .await;
    let tools = Arc::new(Recorded::default());
    let events = reply(
        &config(&url, "offline", PATIENT_MS),
        AgentLlm::default(),
        tools,
        &caller("are you open on saturdays"),
    )
    .await;
    // Two retries, then the offline brain answers from the knowledge base.
    let fallbacks: Vec<String> = failures(&events).into_iter().map(|f| f.1).collect();
    assert_eq!(fallbacks, ["retry", "retry", "offline"], "{events:?}");
    assert!(spoken(&events).contains("9 AM to 1 PM"), "{events:?}");
    assert_eq!(events.last(), Some(&BrainEvent::Done));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn the_offline_brain_answers_only_what_the_model_left_unanswered() {
    let (_server, url) = Server::start(vec![Scripted::Status(503, vec![])]).await;
    let config = Config {
        // One attempt's window: the 503 is not retried, so the test is about the fallback.
        llm_first_token_timeout_ms: 50,
        ..config(&url, "offline", PATIENT_MS)
    };
    let mut history = caller("are you open on saturdays");
    history.push(Message {
        role: Role::Agent,
        text: "Yes, from 9 to 1.".into(),
    });
    history.push(Message {
        role: Role::Caller,
        text: "do you take insurance".into(),
    });
    let events = reply(&config, AgentLlm::default(), Arc::default(), &history).await;
    let said = spoken(&events);
    assert!(said.contains("dental insurance plans"), "{events:?}");
    assert!(
        !said.contains("9 AM to 1 PM"),
        "answered the model's turn again: {said}"
    );
}

#[tokio::test]
async fn a_silent_stream_falls_back_once_the_first_token_is_late() {
    // The role-only chunk is not a token: the caller still hears nothing.
    let (server, url) = Server::start(vec![Scripted::Hang(vec![chunk(
        json!({"role": "assistant", "content": ""}),
    )])])
    .await;
    let events = reply(
        &config(&url, "offline", 300),
        AgentLlm::default(),
        Arc::default(),
        &caller("do you take insurance"),
    )
    .await;
    let failed = failures(&events);
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(
        failed[0].0.contains("first-token") && failed[0].1 == "offline",
        "{failed:?}"
    );
    assert!(
        spoken(&events).contains("we accept most major dental insurance plans"),
        "{events:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_garbage_chunk_before_any_text_falls_back() {
    let (server, url) = Server::start(vec![Scripted::Cut(vec![
        "{\"choices\": [{\"delta\": {\"content\": ".into(),
    ])])
    .await;
    let events = reply(
        &config(&url, "offline", PATIENT_MS),
        AgentLlm::default(),
        Arc::default(),
        &caller("are you open on saturdays"),
    )
    .await;
    let failed = failures(&events);
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(
        failed[0].0.contains("malformed") && failed[0].1 == "offline",
        "{failed:?}"
    );
    assert!(spoken(&events).contains("9 AM to 1 PM"), "{events:?}");
    // Garbage is not retried: the same server would send it again.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_cut_after_some_text_ends_the_reply_with_that_text() {
    let said = chunk(json!({"role": "assistant", "content": "We are open until six, "}));
    let (server, url) = Server::start(vec![Scripted::Cut(vec![said.to_string()])]).await;
    let events = reply(
        &config(&url, "offline", PATIENT_MS),
        AgentLlm::default(),
        Arc::default(),
        &caller("what are your opening hours"),
    )
    .await;
    assert_eq!(spoken(&events), "We are open until six, ");
    assert_eq!(
        spoken_after_failure(&events),
        "",
        "a second voice: {events:?}"
    );
    let failed = failures(&events);
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0].1, "none");
    assert_eq!(events.last(), Some(&BrainEvent::Done));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn garbage_after_some_text_ends_the_reply_with_that_text() {
    let (server, url) = Server::start(vec![Scripted::Stream(vec![
        chunk(json!({"content": "Let me check. "})),
        json!("not a chunk"),
    ])])
    .await;
    let events = reply(
        &config(&url, "offline", PATIENT_MS),
        AgentLlm::default(),
        Arc::default(),
        &caller("what are your opening hours"),
    )
    .await;
    assert_eq!(spoken(&events), "Let me check. ");
    assert_eq!(failures(&events).len(), 1, "{events:?}");
    assert_eq!(events.last(), Some(&BrainEvent::Done));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn the_agents_model_settings_are_sent_and_a_fallback_model_keeps_them() {
    let (server, url) = Server::start(vec![
        Scripted::Status(400, vec![]),
        says(&["Happy to help."]),
    ])
    .await;
    let llm = AgentLlm {
        model: Some("agent-model".into()),
        temperature: Some(0.3),
        max_tokens: Some(120),
    };
    let events = reply(
        &config(&url, "backup-model", PATIENT_MS),
        llm,
        Arc::default(),
        &caller("hello"),
    )
    .await;
    assert_eq!(spoken(&events), "Happy to help.");
    assert_eq!(
        failures(&events)
            .into_iter()
            .map(|f| f.1)
            .collect::<Vec<_>>(),
        ["backup-model"]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["model"], "agent-model");
    assert_eq!(requests[1]["model"], "backup-model");
    for request in &requests {
        assert_eq!(request["temperature"], json!(0.3));
        assert_eq!(request["max_tokens"], 120);
        assert_eq!(request["stream"], true);
    }
}

#[tokio::test]
async fn with_no_fallback_a_failure_is_an_error() {
    let (_server, url) = Server::start(vec![Scripted::Status(401, vec![])]).await;
    let events = reply(
        &config(&url, "none", PATIENT_MS),
        AgentLlm::default(),
        Arc::default(),
        &caller("hello"),
    )
    .await;
    assert_eq!(spoken(&events), "");
    assert_eq!(failures(&events).len(), 1);
    assert!(
        matches!(events.last(), Some(BrainEvent::Error(e)) if e.contains("401")),
        "{events:?}"
    );
}

#[tokio::test]
async fn retrieval_puts_the_passage_in_the_prompt_even_deep_in_a_long_document() {
    let (server, url) = Server::start(vec![says(&["Twelve dollars on weekends."])]).await;
    let events = reply(
        &config(&url, "none", PATIENT_MS),
        AgentLlm::default(),
        Arc::default(),
        &caller("how much is valet parking"),
    )
    .await;
    assert_eq!(spoken(&events), "Twelve dollars on weekends.");
    let request = &server.requests()[0];
    let knowledge: Vec<String> = system_texts(request)
        .into_iter()
        .filter(|s| s.contains("<knowledge>\n"))
        .collect();
    assert_eq!(knowledge.len(), 1, "{request}");
    assert!(
        knowledge[0].contains("[Handbook] Valet parking costs twelve dollars on weekends."),
        "{}",
        knowledge[0]
    );
    // The section sits right before the caller's question, and no document is pasted whole.
    let messages = request["messages"].as_array().expect("messages");
    assert!(
        messages[messages.len() - 2]["content"]
            .as_str()
            .is_some_and(|c| c.contains("<knowledge>"))
    );
    assert_eq!(messages[messages.len() - 1]["role"], "user");
    assert!(request.to_string().len() < handbook().len());
}

#[tokio::test]
async fn lookup_knowledge_is_answered_from_the_index() {
    let lookup = vec![
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_kb", "type": "function", "function": {"name": "lookup_knowledge", "arguments": "{\"query\": \"insurance plans\"}"}}]}),
        ),
        finish("tool_calls"),
    ];
    let (server, url) = Server::start(vec![
        Scripted::Stream(lookup),
        says(&["Yes, we take most plans."]),
    ])
    .await;
    let tools = Arc::new(Recorded::default());
    let events = reply(
        &config(&url, "none", PATIENT_MS),
        AgentLlm::default(),
        tools.clone(),
        &caller("hmm what about my coverage"),
    )
    .await;
    assert_eq!(spoken(&events), "Yes, we take most plans.");
    let looked_up = events.iter().find_map(|e| match e {
        BrainEvent::ToolCalled {
            name,
            arguments,
            result,
        } if name == "lookup_knowledge" => Some((arguments.clone(), result.clone())),
        _ => None,
    });
    let (arguments, result) = looked_up.expect("lookup_knowledge reported");
    assert_eq!(arguments, json!({"query": "insurance plans"}));
    assert!(
        result["passages"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("we accept most major dental insurance plans")),
        "{result}"
    );
    // Answered inside the brain: the call's tools never saw it.
    assert!(tools.0.lock().expect("lock").is_empty());
    let first = &server.requests()[0];
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(offered.contains(&"lookup_knowledge"), "{offered:?}");
    let second = server.requests()[1]["messages"].clone();
    let tool_message = second
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(tool_message["tool_call_id"], "call_kb");
    assert!(
        tool_message["content"]
            .as_str()
            .is_some_and(|c| c.contains("dental insurance"))
    );
}

// ---- post-call analysis ----

fn analyst(url: &str) -> LlmAnalyst {
    LlmAnalyst::new(
        Endpoint::new(url, "sk-test", "analysis-model", Duration::from_secs(2)),
        HANG_GUARD,
    )
}

const VALID: &str = r#"{"summary": "Ana Ruiz booked a cleaning for Friday at 10 AM.", "sentiment": "positive",
    "tags": ["appointment", "new-customer"],
    "outcome": {"result": "appointment-booked", "follow_up": null}}"#;

struct Call {
    lines: Vec<(Role, &'static str)>,
    tools: Vec<ToolCallRecord>,
}

impl Call {
    fn booking() -> Self {
        Call {
            lines: vec![
                (Role::Agent, "Bright Smile Dental, how can I help?"),
                (
                    Role::Caller,
                    "I'd like to book a cleaning on Friday, this is terrible timing but fine.",
                ),
                (Role::Agent, "You're booked for Friday at 10 AM."),
            ],
            tools: vec![ToolCallRecord {
                name: "book_appointment".into(),
                arguments: json!({"title": "Cleaning", "start_time": "2030-03-29T10:00:00Z"}),
                result: json!({"id": "apt_1", "status": "upcoming"}),
            }],
        }
    }

    fn facts<'a>(&'a self, lines: &'a [Line<'a>]) -> CallFacts<'a> {
        CallFacts {
            lines,
            tool_calls: &self.tools,
            local_start: None,
            business_hours: BusinessHours::default(),
        }
    }

    fn lines(&self) -> Vec<Line<'_>> {
        self.lines
            .iter()
            .map(|(role, text)| Line { role: *role, text })
            .collect()
    }
}

#[tokio::test]
async fn a_valid_llm_analysis_is_used() {
    let (server, url) = Server::start(vec![Scripted::Completion(VALID.into())]).await;
    let call = Call::booking();
    let lines = call.lines();
    let analysis = analyst(&url).analyze(&call.facts(&lines)).await;
    assert_eq!(
        analysis.summary,
        "Ana Ruiz booked a cleaning for Friday at 10 AM."
    );
    assert_eq!(analysis.sentiment.label, SentimentLabel::Positive);
    assert_eq!(analysis.tags, ["appointment", "new-customer"]);
    assert_eq!(
        analysis.outcome.map(|o| o.result),
        Some(Resolution::AppointmentBooked)
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0]["response_format"],
        json!({"type": "json_object"})
    );
    assert_eq!(requests[0]["model"], "analysis-model");
    let prompt = requests[0]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        prompt.contains("caller: I'd like to book a cleaning")
            && prompt.contains("Booked: Cleaning at 2030-03-29T10:00:00Z."),
        "{prompt}"
    );
}

#[tokio::test]
async fn an_invalid_llm_analysis_is_asked_again() {
    let invalid = r#"{"summary": "Booked.", "sentiment": "thrilled", "tags": ["Appointment"], "outcome": {"result": "appointment-booked"}}"#;
    let (server, url) = Server::start(vec![
        Scripted::Completion(invalid.into()),
        Scripted::Completion(VALID.into()),
    ])
    .await;
    let call = Call::booking();
    let lines = call.lines();
    let analysis = analyst(&url).analyze(&call.facts(&lines)).await;
    assert_eq!(
        analysis.summary,
        "Ana Ruiz booked a cleaning for Friday at 10 AM."
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let retry = requests[1]["messages"].as_array().expect("messages");
    assert_eq!(retry.len(), 3);
    assert_eq!(retry[1]["content"], invalid);
    assert!(
        retry[2]["content"]
            .as_str()
            .is_some_and(|c| c.contains("invalid")),
        "{retry:?}"
    );
}

#[tokio::test]
async fn two_failed_llm_analyses_fall_back_to_the_word_lists() {
    let (server, url) = Server::start(vec![
        Scripted::Completion("Sure! The caller booked a cleaning.".into()),
        Scripted::Status(500, vec![]),
    ])
    .await;
    let call = Call::booking();
    let lines = call.lines();
    let facts = call.facts(&lines);
    let analysis = analyst(&url).analyze(&facts).await;
    assert_eq!(analysis, analyze(&facts));
    assert_eq!(server.requests().len(), 2);
}
