//! A stand-in for Vonage in tests. The REST side is an axum server speaking the Voice API
//! (`POST /v1/calls`, `PUT /v1/calls/{uuid}`, `PUT /v1/calls/{uuid}/dtmf`): it verifies the
//! engine's RS256 token with the application's public key, records every request and answers
//! with Vonage-shaped JSON and errors. The call side does what Vonage does around a call:
//! HS256-signed webhooks (answer, events) and the audio WebSocket (binary 16-bit PCM).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use boltcall::telephony::vonage::signature;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub const APPLICATION_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
pub const SIGNATURE_SECRET: &str = "vonage-signature-secret";

/// An RSA key pair for the Vonage application, generated for the test run.
pub struct AppKey {
    /// PKCS#8 PEM, what Vonage's dashboard downloads.
    pub pem: String,
    /// DER RSAPublicKey: what Vonage keeps to check the engine's tokens.
    pub public: Vec<u8>,
}

impl AppKey {
    pub fn generate() -> AppKey {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa key");
        let der = key.as_der().expect("pkcs8");
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        AppKey {
            pem: format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            ),
            public: key.public_key().as_ref().to_vec(),
        }
    }
}

/// One request the engine made to the REST API.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Value,
    /// The bearer token verified: RS256 under the application's key, its id, a jti, unexpired.
    pub authorized: bool,
}

/// How the fake answers `POST /v1/calls`.
#[derive(Debug, Clone)]
pub enum CreateReply {
    Created,
    Refused { status: u16, body: Value },
}

struct FakeState {
    public_key: Vec<u8>,
    requests: Mutex<Vec<Request>>,
    create: Mutex<CreateReply>,
    calls: Mutex<u32>,
}

pub struct FakeVonage {
    pub base: String,
    state: Arc<FakeState>,
}

impl FakeVonage {
    pub async fn start(public_key: Vec<u8>) -> FakeVonage {
        let state = Arc::new(FakeState {
            public_key,
            requests: Mutex::new(Vec::new()),
            create: Mutex::new(CreateReply::Created),
            calls: Mutex::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeVonage { base, state }
    }

    pub fn reply_to_create(&self, reply: CreateReply) {
        *self.state.create.lock().unwrap() = reply;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits for the `n`-th (from 1) request matching `method` and `path_prefix`.
    pub async fn wait_for(&self, method: &str, path_prefix: &str, n: usize) -> Request {
        for _ in 0..400 {
            let matching: Vec<Request> = self
                .requests()
                .into_iter()
                .filter(|r| r.method == method && r.path.starts_with(path_prefix))
                .collect();
            if matching.len() >= n {
                return matching[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "no {method} {path_prefix} #{n}; requests: {:?}",
            self.requests()
        );
    }
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token_is_valid(&state.public_key, token));
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    state.requests.lock().unwrap().push(Request {
        method: method.to_string(),
        path: path.clone(),
        body: body.clone(),
        authorized,
    });
    if !authorized {
        let error = json!({"type": "https://developer.vonage.com/api-errors#unauthorized",
            "title": "Unauthorized", "detail": "You did not provide correct credentials."});
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/calls") => {
            let reply = state.create.lock().unwrap().clone();
            match reply {
                CreateReply::Created => {
                    let n = {
                        let mut calls = state.calls.lock().unwrap();
                        *calls += 1;
                        *calls
                    };
                    let uuid = format!("63f61863-4a51-4f6b-86e1-{n:012}");
                    let created = json!({"uuid": uuid, "status": "started",
                        "direction": "outbound", "conversation_uuid": format!("CON-{uuid}")});
                    (StatusCode::CREATED, Json(created)).into_response()
                }
                CreateReply::Refused { status, body } => {
                    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
                }
            }
        }
        ("PUT", p) if p.starts_with("/v1/calls/") && p.ends_with("/dtmf") => {
            let uuid = p.trim_start_matches("/v1/calls/").trim_end_matches("/dtmf");
            Json(json!({"message": "DTMF sent", "uuid": uuid})).into_response()
        }
        ("PUT", p) if p.starts_with("/v1/calls/") => StatusCode::NO_CONTENT.into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"title": "Not Found", "detail": "no such resource"})),
        )
            .into_response(),
    }
}

/// RS256 under the application's key, for this application, with a jti, not expired.
fn token_is_valid(public_key: &[u8], token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let &[header, claims, sig] = parts.as_slice() else {
        return false;
    };
    let decode = |part: &str| B64.decode(part).ok();
    let (Some(header), Some(claims), Some(sig)) = (decode(header), decode(claims), decode(sig))
    else {
        return false;
    };
    let (Ok(header), Ok(claims)) = (
        serde_json::from_slice::<Value>(&header),
        serde_json::from_slice::<Value>(&claims),
    ) else {
        return false;
    };
    let signed = &token[..token.len() - parts[2].len() - 1];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    header["alg"] == "RS256"
        && UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
            .verify(signed.as_bytes(), &sig)
            .is_ok()
        && claims["application_id"] == APPLICATION_ID
        && claims["jti"].as_str().is_some_and(|j| !j.is_empty())
        && claims["exp"].as_u64().is_some_and(|exp| exp > now)
        && claims["iat"].as_u64().is_some_and(|iat| iat <= now + 5)
}

/// `Authorization: Bearer …` as Vonage signs a webhook: HS256 under `secret`, with the body's
/// hash when there is one.
pub fn webhook_authorization(secret: &str, body: Option<&[u8]>, iat_offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({
        "iat": now + iat_offset, "jti": format!("{:x}", rand::random::<u64>()),
        "iss": "Vonage", "api_key": "abc123", "application_id": APPLICATION_ID,
    });
    if let Some(body) = body {
        claims["payload_hash"] = Value::String(signature::payload_hash(body));
    }
    format!("Bearer {}", signature::sign(secret, &claims))
}

/// Posts an event as Vonage does (signed with the test secret); returns the status.
pub async fn post_event(url: &str, event: &Value) -> u16 {
    let body = event.to_string();
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(
            "authorization",
            webhook_authorization(SIGNATURE_SECRET, Some(body.as_bytes()), 0),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asks the answer webhook with a GET, as Vonage does by default; `(status, NCCO)`.
pub async fn get_answer(
    base: &str,
    to: &str,
    from: &str,
    uuid: &str,
    auth: Option<String>,
) -> (u16, Value) {
    let query = serde_urlencoded::to_string([
        ("to", to),
        ("from", from),
        ("uuid", uuid),
        ("conversation_uuid", &format!("CON-{uuid}")),
    ])
    .unwrap();
    let mut request = reqwest::Client::new().get(format!("{base}/carrier/vonage/answer?{query}"));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Vonage's side of the audio WebSocket: sends 20 ms binary frames in real time and collects
/// what the engine sends back.
pub struct VonageSocket {
    pub ws: Ws,
    /// Bytes per 20 ms frame: 640 at 16 kHz, 320 at 8 kHz.
    pub frame_bytes: usize,
    /// Agent audio frames received and how many carried sound.
    pub frames: usize,
    pub sound_frames: usize,
    pub first_sound_at: Option<Instant>,
    /// Text messages from the engine (`clear`, `notify`, …).
    pub texts: Vec<Value>,
    pub closed: bool,
}

impl VonageSocket {
    /// Opens `uri` (the NCCO's) and sends `websocket:connected` with the NCCO's `headers` at
    /// the top level, at `rate` Hz.
    pub async fn connect(uri: &str, headers: &Value, rate: u32) -> Result<VonageSocket, String> {
        let (mut ws, _) = tokio_tungstenite::connect_async(uri)
            .await
            .map_err(|e| e.to_string())?;
        let mut first = json!({"event": "websocket:connected",
            "content-type": format!("audio/l16;rate={rate}")});
        if let Some(headers) = headers.as_object() {
            for (k, v) in headers {
                first[k] = v.clone();
            }
        }
        ws.send(WsMessage::Text(first.to_string().into()))
            .await
            .map_err(|e| e.to_string())?;
        Ok(VonageSocket {
            ws,
            frame_bytes: (rate / 50 * 2) as usize,
            frames: 0,
            sound_frames: 0,
            first_sound_at: None,
            texts: Vec::new(),
            closed: false,
        })
    }

    /// Plays `pcm` (at the socket's rate) in real time, one frame per 20 ms.
    pub async fn play(&mut self, pcm: &[i16]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for chunk in pcm.chunks(self.frame_bytes / 2) {
            tick.tick().await;
            let mut bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
            bytes.resize(self.frame_bytes, 0);
            if self.ws.send(WsMessage::Binary(bytes.into())).await.is_err() {
                self.closed = true;
                return;
            }
            self.drain().await;
        }
    }

    pub async fn silence(&mut self, seconds: f64) {
        let samples = (seconds * (self.frame_bytes as f64 / 2.0) * 50.0) as usize;
        self.play(&vec![0; samples]).await;
    }

    pub async fn send_text(&mut self, value: Value) {
        let _ = self
            .ws
            .send(WsMessage::Text(value.to_string().into()))
            .await;
    }

    /// Reads whatever has arrived without waiting.
    pub async fn drain(&mut self) {
        while let Some(next) = futures::FutureExt::now_or_never(self.ws.next()) {
            match next {
                Some(Ok(message)) if !matches!(message, WsMessage::Close(_)) => {
                    self.record(message)
                }
                _ => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    fn record(&mut self, message: WsMessage) {
        match message {
            WsMessage::Binary(bytes) => {
                assert_eq!(bytes.len(), self.frame_bytes, "20 ms per binary message");
                self.frames += 1;
                let loud = bytes
                    .chunks_exact(2)
                    .any(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs() > 500);
                if loud {
                    self.sound_frames += 1;
                    self.first_sound_at.get_or_insert_with(Instant::now);
                }
            }
            WsMessage::Text(text) => self.texts.push(serde_json::from_str(&text).unwrap()),
            _ => {}
        }
    }

    /// Reads until the engine closes the socket (or 10 s of quiet).
    pub async fn read_until_closed(mut self) -> VonageSocket {
        while let Ok(Some(next)) =
            tokio::time::timeout(Duration::from_secs(10), self.ws.next()).await
        {
            match next {
                Ok(WsMessage::Close(_)) | Err(_) => break,
                Ok(message) => self.record(message),
            }
        }
        self.closed = true;
        self
    }

    /// Hangs up from Vonage's side: closes the socket and waits for the engine to let go.
    pub async fn hang_up(mut self) -> VonageSocket {
        let _ = self.ws.close(None).await;
        self.read_until_closed().await
    }
}
