//! A stand-in for Telnyx: its Call Control REST API on a local socket (checks the bearer key,
//! records every dial and command, answers with Telnyx-shaped JSON and errors), its signed
//! webhooks (Ed25519, a key pair made per test), and the media stream it opens to the engine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub const API_KEY: &str = "KEY_test_0123456789";

/// What `POST /v2/calls` answers.
#[derive(Clone, Debug)]
pub enum DialAnswer {
    /// 200 with a new call control id.
    Accept,
    /// An API error: status and Telnyx's `errors` body.
    Refuse(u16, Value),
}

/// One command the engine sent on a call.
#[derive(Clone, Debug)]
pub struct Command {
    pub call_control_id: String,
    pub action: String,
    pub body: Value,
}

struct Shared {
    signer: Ed25519KeyPair,
    dial_answer: Mutex<DialAnswer>,
    dials: Mutex<Vec<Value>>,
    commands: Mutex<Vec<Command>>,
    unauthorized: Mutex<usize>,
}

#[derive(Clone)]
pub struct FakeTelnyx {
    pub api_base: String,
    shared: Arc<Shared>,
}

impl FakeTelnyx {
    pub async fn start() -> FakeTelnyx {
        let shared = Arc::new(Shared {
            signer: Ed25519KeyPair::generate().unwrap(),
            dial_answer: Mutex::new(DialAnswer::Accept),
            dials: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
            unauthorized: Mutex::new(0),
        });
        let app = Router::new()
            .route("/v2/calls", post(dial))
            .route("/v2/calls/{id}/actions/{action}", post(command))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeTelnyx {
            api_base: format!("http://{addr}"),
            shared,
        }
    }

    /// The account's public key as the portal shows it (`BOLTCALL_TELNYX_PUBLIC_KEY`).
    pub fn public_key(&self) -> String {
        BASE64.encode(self.shared.signer.public_key().as_ref())
    }

    pub fn answer_dials_with(&self, answer: DialAnswer) {
        *self.shared.dial_answer.lock().unwrap() = answer;
    }

    pub fn dials(&self) -> Vec<Value> {
        self.shared.dials.lock().unwrap().clone()
    }

    pub fn commands(&self) -> Vec<Command> {
        self.shared.commands.lock().unwrap().clone()
    }

    pub fn unauthorized(&self) -> usize {
        *self.shared.unauthorized.lock().unwrap()
    }

    /// Waits (up to 10 s) for the engine's `action` command on `call_control_id`.
    pub async fn command_for(&self, call_control_id: &str, action: &str) -> Command {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(c) = self
                .commands()
                .into_iter()
                .find(|c| c.call_control_id == call_control_id && c.action == action)
            {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "no {action} for {call_control_id}; got {:?}",
                self.commands()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to 10 s) for the `n`th (from 1) `POST /v2/calls`.
    pub async fn dial_number(&self, n: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(d) = self.dials().get(n - 1) {
                return d.clone();
            }
            assert!(Instant::now() < deadline, "no dial #{n}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A webhook body like Telnyx's.
    pub fn event(event_type: &str, payload: Value) -> String {
        json!({
            "data": {"record_type": "event", "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
                     "event_type": event_type, "occurred_at": "2026-12-07T01:00:00.000000Z",
                     "payload": payload},
            "meta": {"attempt": 1, "delivered_to": "engine"}
        })
        .to_string()
    }

    /// Signs `body` as sent at `timestamp`.
    pub fn sign(&self, timestamp: u64, body: &str) -> String {
        let signed = format!("{timestamp}|{body}");
        BASE64.encode(self.shared.signer.sign(signed.as_bytes()).as_ref())
    }

    /// Posts a webhook to the engine signed now; the engine's status code.
    pub async fn send_webhook(&self, engine: &str, event_type: &str, payload: Value) -> u16 {
        let body = Self::event(event_type, payload);
        let now = unix_now();
        let signature = self.sign(now, &body);
        post_webhook(engine, &body, Some((now, signature))).await
    }
}

/// Posts `body` to the engine's webhook with these `telnyx-timestamp` and signature headers.
pub async fn post_webhook(engine: &str, body: &str, signed: Option<(u64, String)>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{engine}/carrier/telnyx/webhook"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some((timestamp, signature)) = signed {
        request = request
            .header("telnyx-timestamp", timestamp.to_string())
            .header("telnyx-signature-ed25519", signature);
    }
    request.send().await.unwrap().status().as_u16()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn authorised(shared: &Shared, headers: &HeaderMap) -> bool {
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {API_KEY}"));
    if !ok {
        *shared.unauthorized.lock().unwrap() += 1;
    }
    ok
}

fn unauthorised() -> Response {
    let body = json!({"errors": [{"code": "10009", "title": "Authentication failed",
        "detail": "The API key is not valid."}]});
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

async fn dial(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    if !authorised(&shared, &headers) {
        return unauthorised();
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let n = {
        let mut dials = shared.dials.lock().unwrap();
        dials.push(body);
        dials.len()
    };
    match shared.dial_answer.lock().unwrap().clone() {
        DialAnswer::Accept => axum::Json(json!({"data": {
            "call_control_id": format!("v3:out-{n}"), "call_leg_id": format!("leg-{n}"),
            "call_session_id": format!("session-{n}"), "is_alive": false, "record_type": "call"
        }}))
        .into_response(),
        DialAnswer::Refuse(status, errors) => {
            (StatusCode::from_u16(status).unwrap(), axum::Json(errors)).into_response()
        }
    }
}

async fn command(
    State(shared): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorised(&shared, &headers) {
        return unauthorised();
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    shared.commands.lock().unwrap().push(Command {
        call_control_id: id,
        action,
        body,
    });
    axum::Json(json!({"data": {"result": "ok"}})).into_response()
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Telnyx's side of a media stream: sends 20 ms PCMU frames in real time and collects what
/// the engine sends back.
pub struct StreamCall {
    pub ws: Ws,
    pub stream_id: String,
    pub started: Instant,
    /// Agent `media` messages and whether each carried sound.
    pub media: Vec<bool>,
    pub clears: usize,
    pub marks: usize,
    pub closed: bool,
}

/// What the `start` frame says about the call.
pub struct StartInfo<'a> {
    pub call_control_id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub client_state: Option<&'a str>,
}

impl StreamCall {
    /// Opens `stream_url` (as given in `answer` or `POST /v2/calls`) and sends `connected` and
    /// `start`.
    pub async fn open(stream_url: &str, start: StartInfo<'_>) -> StreamCall {
        let (mut ws, _) = tokio_tungstenite::connect_async(stream_url).await.unwrap();
        let stream_id = "32de0dea-53cb-4b21-89a4-9e1819c043bc".to_string();
        let send = |v: Value| WsMessage::Text(v.to_string().into());
        ws.send(send(json!({"event": "connected", "version": "1.0.0"})))
            .await
            .unwrap();
        ws.send(send(json!({
            "event": "start", "sequence_number": "1", "stream_id": stream_id,
            "start": {
                "user_id": "3e6f995f-85f7-4705-9741-53b116d28237",
                "call_control_id": start.call_control_id,
                "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f",
                "from": start.from, "to": start.to, "tags": [],
                "client_state": start.client_state, "custom_parameters": {},
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}
            }
        })))
        .await
        .unwrap();
        StreamCall {
            ws,
            stream_id,
            started: Instant::now(),
            media: Vec::new(),
            clears: 0,
            marks: 0,
            closed: false,
        }
    }

    /// Plays 8 kHz μ-law in real time, 20 ms per message, reading what comes back.
    pub async fn play(&mut self, mulaw: &[u8]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (n, chunk) in mulaw.chunks(160).enumerate() {
            tick.tick().await;
            let msg = json!({"event": "media", "sequence_number": (n + 2).to_string(),
                "stream_id": self.stream_id,
                "media": {"track": "inbound", "chunk": (n + 1).to_string(),
                          "timestamp": (n * 20).to_string(), "payload": BASE64.encode(chunk)}});
            if self
                .ws
                .send(WsMessage::Text(msg.to_string().into()))
                .await
                .is_err()
            {
                self.closed = true;
                return;
            }
            self.drain().await;
        }
    }

    pub async fn silence(&mut self, seconds: f64) {
        self.play(&vec![0xFF; (seconds * 8000.0) as usize]).await;
    }

    pub async fn send_raw(&mut self, message: WsMessage) {
        self.ws.send(message).await.unwrap();
    }

    /// Reads whatever has arrived without waiting.
    pub async fn drain(&mut self) {
        while let Some(next) = futures::FutureExt::now_or_never(self.ws.next()) {
            match next {
                Some(Ok(WsMessage::Text(text))) => self.record(&text),
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => {
                    self.closed = true;
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    }

    fn record(&mut self, text: &str) {
        let v: Value = serde_json::from_str(text).unwrap();
        match v["event"].as_str() {
            Some("media") => {
                let payload = BASE64
                    .decode(v["media"]["payload"].as_str().unwrap())
                    .unwrap();
                assert_eq!(payload.len(), 160, "20 ms of 8 kHz PCMU per message");
                // μ-law 0xFF/0x7F is zero; a few codes either side are the filters' dither.
                self.media.push(payload.iter().any(|&b| (b & 0x7F) < 0x60));
            }
            Some("clear") => self.clears += 1,
            Some("mark") => {
                assert!(v["mark"]["name"].is_string(), "{v}");
                self.marks += 1;
            }
            other => panic!("unexpected message {other:?}: {v}"),
        }
    }

    pub fn sound_frames(&self) -> usize {
        self.media.iter().filter(|&&loud| loud).count()
    }

    /// Sends `stop` (the far end hung up) and reads until the engine closes the socket.
    pub async fn hang_up(mut self) -> StreamCall {
        let stop = json!({"event": "stop", "sequence_number": "999", "stream_id": self.stream_id,
                          "stop": {"user_id": "3e6f995f", "call_control_id": "x"}});
        let _ = self.ws.send(WsMessage::Text(stop.to_string().into())).await;
        self.read_until_closed().await
    }

    pub async fn read_until_closed(mut self) -> StreamCall {
        while let Ok(Some(next)) =
            tokio::time::timeout(Duration::from_secs(10), self.ws.next()).await
        {
            match next {
                Ok(WsMessage::Text(text)) => self.record(&text),
                Ok(WsMessage::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.closed = true;
        self
    }
}
