//! An OpenAI-compatible `/v1/chat/completions` stand-in: each request gets the next scripted
//! reply, streamed as server-sent events — text deltas, or tool-call deltas split mid-argument
//! the way real streams split them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::Response;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub enum Reply {
    /// Text pieces, each sent `gap` after the one before.
    Says(Vec<&'static str>, Duration),
    /// Tool calls `(name, arguments)` in one response.
    Calls(Vec<(&'static str, Value)>),
    /// An error status with OpenAI's error body.
    Fail(u16),
    /// A whole (not streamed) completion whose content is this JSON, as JSON mode answers.
    Json(Value),
}

type Responder = dyn Fn(&Value) -> Option<Reply> + Send + Sync;

/// When one streamed reply was asked for, began and ended (for benchmarks).
#[derive(Debug, Clone, Copy)]
pub struct StreamTiming {
    pub requested: Instant,
    pub first_content: Option<Instant>,
    pub done: Instant,
}

#[derive(Clone)]
pub struct FakeChat {
    /// `http://…/v1`
    pub base_url: String,
    responder: Arc<Responder>,
    /// Request bodies, oldest first.
    pub requests: Arc<Mutex<Vec<Value>>>,
    pub timings: Arc<Mutex<Vec<StreamTiming>>>,
}

impl FakeChat {
    /// Answers the n-th request with `script[n]`.
    pub async fn start(script: Vec<Reply>) -> FakeChat {
        let script = Mutex::new(VecDeque::from(script));
        Self::start_with(move |_| script.lock().unwrap().pop_front()).await
    }

    /// Answers each request with what `responder` makes of its body.
    pub async fn start_with(
        responder: impl Fn(&Value) -> Option<Reply> + Send + Sync + 'static,
    ) -> FakeChat {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeChat {
            base_url: format!("http://{}/v1", listener.local_addr().unwrap()),
            responder: Arc::new(responder),
            requests: Arc::default(),
            timings: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }
}

fn event(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {chunk}\n\n")
}

async fn completions(State(fake): State<FakeChat>, body: String) -> Response<Body> {
    let requested = Instant::now();
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let reply = (fake.responder)(&request);
    fake.requests.lock().unwrap().push(request);
    if let Some(Reply::Fail(status)) = reply {
        let error =
            json!({"error": {"message": "The server had an error", "type": "server_error"}});
        return Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(error.to_string()))
            .unwrap();
    }
    if let Some(Reply::Json(content)) = reply {
        let completion = json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content.to_string()}}]
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(completion.to_string()))
            .unwrap();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(64);
    tokio::spawn(async move {
        let mut events = vec![event(json!({"role": "assistant", "content": ""}), None)];
        let mut gap = Duration::ZERO;
        let mut first_content = None;
        let finish = match reply {
            Some(Reply::Says(pieces, between)) => {
                gap = between;
                events.extend(pieces.iter().map(|p| event(json!({"content": p}), None)));
                "stop"
            }
            Some(Reply::Calls(calls)) => {
                for (i, (name, arguments)) in calls.iter().enumerate() {
                    let arguments = arguments.to_string();
                    let (head, tail) = arguments.split_at(arguments.len() / 2);
                    events.push(event(
                        json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                                               "function": {"name": name, "arguments": head}}]}),
                        None,
                    ));
                    events.push(event(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": tail}}]}),
                        None,
                    ));
                }
                "tool_calls"
            }
            Some(Reply::Json(_) | Reply::Fail(_)) | None => {
                events.push(event(
                    json!({"content": "I have nothing more to say."}),
                    None,
                ));
                "stop"
            }
        };
        events.push(event(json!({}), Some(finish)));
        events.push("data: [DONE]\n\n".into());
        let last_content = events.len() - 3;
        for (n, e) in events.into_iter().enumerate() {
            if (2..=last_content).contains(&n) && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
            if n == 1 {
                first_content = Some(Instant::now());
            }
        }
        fake.timings.lock().unwrap().push(StreamTiming {
            requested,
            first_content,
            done: Instant::now(),
        });
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(tokio_stream_from(rx)))
        .unwrap()
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
