//! A fake of ElevenLabs' multi-context WebSocket
//! (`/v1/text-to-speech/{voice_id}/multi-stream-input`): checks the query and the `xi-api-key`
//! header at the upgrade, reads each context's messages (a single space with voice settings,
//! text with `flush`, `close_context`) and answers with base64 `pcm_16000` audio tagged with
//! `contextId`, then `{"isFinal": true, "contextId": …}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::le_bytes;

pub const API_KEY: &str = "xi-test-key";
/// Bytes of audio per message: odd, so samples straddle messages.
const CHUNK: usize = 333;

/// What the server says to a text: 10 ms of samples per character, a pattern that differs
/// between texts, so interleaved contexts cannot be mistaken for each other.
pub fn speech(text: &str) -> Vec<i16> {
    let n = text.trim().len() * 160;
    let seed = text.trim().len() * 1000;
    (0..n)
        .map(|i| ((i * 37 + seed) % 4000) as i16 - 2000)
        .collect()
}

#[derive(Clone)]
pub enum Behaviour {
    /// Speaks each closed context; waits until `batch` contexts are closed and interleaves
    /// their audio. With a gate, pauses after the first audio message until the gate opens.
    Speak {
        batch: usize,
        gate: Option<Arc<Notify>>,
    },
    /// Refuses the upgrade with this status and body.
    Reject(u16, &'static str),
    /// Holds the upgrade until the gate opens, then speaks.
    HoldUpgrade(Arc<Notify>),
    /// Answers the first context with a quota error message and a 1008 close.
    QuotaError,
    /// Sends two audio messages, then drops the TCP connection without a close frame.
    DropMidStream,
    /// Sends one audio message, then something that is not JSON.
    Garbage,
    /// Speaks one context, then closes the socket normally.
    CloseAfterOne,
    /// Streams audio for the first context without end until the client goes away.
    Endless,
}

/// What one connection attempt showed the server.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub uri: String,
    pub api_key: String,
    pub messages: Vec<Value>,
    /// The client closed the socket or the TCP connection.
    pub client_closed: bool,
}

#[derive(Clone, Default)]
struct Log {
    connections: Arc<Mutex<Vec<Connection>>>,
    closed: Arc<Notify>,
}

pub struct FakeElevenLabs {
    pub base_url: String,
    log: Log,
}

impl FakeElevenLabs {
    /// The n-th connection behaves as `script[n]` (the last entry repeats).
    pub async fn start(script: Vec<Behaviour>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Log::default();
        let server_log = log.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let (stream, _) = listener.accept().await.unwrap();
                let behaviour = script[n.min(script.len() - 1)].clone();
                tokio::spawn(serve(stream, behaviour, server_log.clone()));
            }
        });
        FakeElevenLabs {
            base_url: format!("ws://{addr}"),
            log,
        }
    }

    pub fn connections(&self) -> Vec<Connection> {
        self.log.connections.lock().unwrap().clone()
    }

    /// Waits (bounded) until the connections seen so far satisfy `done`.
    pub async fn wait_until(&self, done: impl Fn(&[Connection]) -> bool) {
        let wait = async {
            while !done(&self.connections()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(super::HANG, wait)
            .await
            .expect("the server never saw what the test waits for");
    }

    /// Waits (bounded) until the client has closed some connection.
    pub async fn client_closed(&self) {
        let wait = async {
            loop {
                let notified = self.log.closed.notified();
                if self.connections().iter().any(|c| c.client_closed) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(super::HANG, wait)
            .await
            .expect("the client never closed the connection");
    }
}

async fn serve(stream: TcpStream, behaviour: Behaviour, log: Log) {
    if let Behaviour::HoldUpgrade(gate) = &behaviour {
        gate.notified().await;
    }
    let index = {
        let mut connections = log.connections.lock().unwrap();
        connections.push(Connection::default());
        connections.len() - 1
    };
    let record = |f: &dyn Fn(&mut Connection)| f(&mut log.connections.lock().unwrap()[index]);
    let reject = match &behaviour {
        Behaviour::Reject(status, body) => Some((*status, *body)),
        _ => None,
    };
    // The refusal type is tungstenite's, large as it is.
    #[allow(clippy::result_large_err)]
    let upgrade = |request: &Request, response: Response| {
        record(&|c| {
            c.uri = request.uri().to_string();
            c.api_key = request
                .headers()
                .get("xi-api-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
        });
        match reject {
            Some((status, body)) => {
                let mut refusal = ErrorResponse::new(Some(body.to_string()));
                *refusal.status_mut() = status.try_into().unwrap();
                Err(refusal)
            }
            None => Ok(response),
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, upgrade).await else {
        return;
    };
    let mut texts: HashMap<String, String> = HashMap::new();
    let mut ready: Vec<String> = Vec::new();
    let mut spoken = 0;
    loop {
        let message = match ws.next().await {
            Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(text.as_str()).unwrap(),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        record(&|c| c.messages.push(message.clone()));
        let context = message["context_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if message["flush"] == true {
            texts.insert(
                context.clone(),
                message["text"].as_str().unwrap().to_string(),
            );
        }
        if message["close_context"] != true {
            continue;
        }
        ready.push(context);
        let pcm = le_bytes(&speech(&texts[&ready[0]]));
        match &behaviour {
            Behaviour::Speak { batch, .. } if ready.len() < *batch => continue,
            Behaviour::QuotaError => {
                let error = json!({"message": "Unusual activity detected", "error": "quota_exceeded", "code": 1008});
                let _ = ws.send(Message::text(error.to_string())).await;
                let _ = ws
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Policy,
                        reason: "quota exceeded".into(),
                    })))
                    .await;
                return;
            }
            Behaviour::DropMidStream => {
                for chunk in pcm.chunks(CHUNK).take(2) {
                    let _ = ws.send(audio(&ready[0], chunk)).await;
                }
                return; // drops the TCP stream without a close frame
            }
            Behaviour::Garbage => {
                let _ = ws.send(audio(&ready[0], &pcm[..CHUNK])).await;
                let _ = ws.send(Message::text("<html>502 Bad Gateway</html>")).await;
                return;
            }
            Behaviour::Endless => {
                for chunk in pcm.chunks(CHUNK).cycle() {
                    if ws.send(audio(&ready[0], chunk)).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                break;
            }
            _ => {}
        }
        let gate = match &behaviour {
            Behaviour::Speak { gate, .. } => gate.clone(),
            _ => None,
        };
        if speak(&mut ws, &texts, std::mem::take(&mut ready), gate)
            .await
            .is_err()
        {
            break;
        }
        spoken += 1;
        if matches!(behaviour, Behaviour::CloseAfterOne) && spoken == 1 {
            let _ = ws.close(None).await;
            return;
        }
    }
    record(&|c| c.client_closed = true);
    log.closed.notify_waiters();
}

fn audio(context: &str, bytes: &[u8]) -> Message {
    let message = json!({"audio": B64.encode(bytes), "isFinal": false, "normalizedAlignment": null, "contextId": context});
    Message::text(message.to_string())
}

/// Streams the contexts' audio round-robin, then ends each with `isFinal`.
async fn speak(
    ws: &mut WebSocketStream<TcpStream>,
    texts: &HashMap<String, String>,
    contexts: Vec<String>,
    mut gate: Option<Arc<Notify>>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let pcm: Vec<Vec<u8>> = contexts
        .iter()
        .map(|c| le_bytes(&speech(&texts[c])))
        .collect();
    let mut offsets = vec![0; contexts.len()];
    loop {
        let mut sent_any = false;
        for (i, context) in contexts.iter().enumerate() {
            if offsets[i] >= pcm[i].len() {
                continue;
            }
            let end = (offsets[i] + CHUNK).min(pcm[i].len());
            ws.send(audio(context, &pcm[i][offsets[i]..end])).await?;
            offsets[i] = end;
            sent_any = true;
            if let Some(gate) = gate.take() {
                gate.notified().await;
            }
        }
        if !sent_any {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for context in &contexts {
        let end = json!({"isFinal": true, "contextId": context});
        ws.send(Message::text(end.to_string())).await?;
    }
    Ok(())
}
