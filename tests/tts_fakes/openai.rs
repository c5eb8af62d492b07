//! A fake of OpenAI's `POST /v1/audio/speech`: Bearer auth, a JSON request, and a body of raw
//! 24 kHz PCM16 streamed in odd-sized chunks with pauses between them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::{Notify, mpsc};

use super::{le_bytes, tone};

/// The tone every successful reply speaks: one second of 440 Hz at 24 kHz.
pub const TONE_HZ: f32 = 440.0;
pub const TONE_SAMPLES: usize = 24_000;

/// Body chunk sizes, cycled: odd, so samples straddle chunks.
const CHUNK_SIZES: [usize; 4] = [1001, 777, 2049, 333];
/// Bytes sent before a gated reply waits for the test's go.
const BEFORE_GATE: usize = 6000;

#[derive(Clone)]
pub enum Reply {
    /// The tone; with a gate, the body stops after its first part until the gate opens.
    Tone { gate: Option<Arc<Notify>> },
    /// An error status with this body.
    Error(u16, &'static str),
    /// The first `n` bytes of the tone, then the connection breaks.
    CutAfter(usize),
    /// Audio without end, a chunk every few milliseconds, until the client goes away.
    Endless,
    /// Never answers.
    Silent,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub authorization: String,
    pub json: serde_json::Value,
}

#[derive(Clone)]
struct FakeState {
    script: Arc<Vec<Reply>>,
    requests: Arc<Mutex<Vec<Request>>>,
    client_gone: Arc<Notify>,
}

pub struct FakeOpenAi {
    pub base_url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    /// Notified when a body stream finds its client gone.
    pub client_gone: Arc<Notify>,
}

impl FakeOpenAi {
    /// Answers the n-th request with `script[n]` (the last entry repeats).
    pub async fn start(script: Vec<Reply>) -> Self {
        let state = FakeState {
            script: Arc::new(script),
            requests: Arc::default(),
            client_gone: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/v1/audio/speech", post(speech))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeOpenAi {
            base_url: format!("http://{addr}/v1"),
            requests: state.requests,
            client_gone: state.client_gone,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn speech(State(state): State<FakeState>, headers: HeaderMap, body: String) -> Response {
    let n = {
        let mut requests = state.requests.lock().unwrap();
        requests.push(Request {
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            json: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        });
        requests.len() - 1
    };
    let reply = state.script[n.min(state.script.len() - 1)].clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let pcm = le_bytes(&tone(24_000, TONE_HZ, TONE_SAMPLES));
    match reply {
        Reply::Error(status, message) => {
            return (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                message,
            )
                .into_response();
        }
        Reply::Silent => std::future::pending::<()>().await,
        Reply::Tone { gate } => {
            tokio::spawn(async move {
                let mut sent = 0;
                let mut gate = gate;
                for (i, size) in CHUNK_SIZES.iter().cycle().enumerate() {
                    if sent >= pcm.len() {
                        break;
                    }
                    if sent >= BEFORE_GATE
                        && let Some(gate) = gate.take()
                    {
                        gate.notified().await;
                    }
                    let end = (sent + size).min(pcm.len());
                    let chunk = Bytes::copy_from_slice(&pcm[sent..end]);
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                    sent = end;
                    if i % 4 == 3 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            });
        }
        Reply::CutAfter(n) => {
            tokio::spawn(async move {
                for chunk in pcm[..n].chunks(1001) {
                    if tx.send(Ok(Bytes::copy_from_slice(chunk))).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send(Err(std::io::Error::other("cut"))).await;
            });
        }
        Reply::Endless => {
            let gone = state.client_gone.clone();
            tokio::spawn(async move {
                for chunk in pcm.chunks(999).cycle() {
                    if tx.send(Ok(Bytes::copy_from_slice(chunk))).await.is_err() {
                        gone.notify_one();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        }
    }
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [("content-type", "application/octet-stream")],
        Body::from_stream(body),
    )
        .into_response()
}
