//! The tokio edge of one Deepgram stream: opens the WebSocket, moves frames between it, the
//! session and the `LiveStream` core, and keeps the core's clock.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Response, header};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::live::{Action, ConnectFailure, LiveStream, Outgoing};
use crate::providers::stt::{SttEvent, SttInput};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A handshake that takes longer than this is retried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and as whom to connect.
pub struct Connection {
    pub url: String,
    pub api_key: String,
}

pub async fn run(
    connection: Arc<Connection>,
    mut core: LiveStream,
    mut input: mpsc::Receiver<SttInput>,
    events: mpsc::Sender<SttEvent>,
) {
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let mut socket: Option<Socket> = None;
    let mut connecting = None;
    let mut input_open = true;
    loop {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Connect => {
                    connecting = Some(Box::pin(connect(connection.clone())));
                }
                Action::Send(frame) => {
                    let Some(ws) = socket.as_mut() else {
                        continue;
                    };
                    let message = match frame {
                        Outgoing::Audio(pcm) => Message::Binary(pcm.into()),
                        Outgoing::Control(text) => Message::Text(Utf8Bytes::from_static(text)),
                    };
                    if let Err(e) = ws.send(message).await {
                        socket = None;
                        core.disconnected(now(), &e.to_string());
                    }
                }
                Action::Close => {
                    if let Some(mut ws) = socket.take() {
                        // Best effort: the server may already be gone.
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    }
                }
                // Partials are hints: one dropped on a full channel is not missed, and never
                // waiting for them keeps a busy session from stalling the stream.
                Action::Emit(event @ SttEvent::Partial { .. }) => {
                    let _ = events.try_send(event);
                }
                // A session that stopped listening hangs up soon; its input closing ends us.
                Action::Emit(event) => {
                    let _ = events.send(event).await;
                }
                Action::Finish => return,
            }
        }
        let deadline = core
            .next_deadline()
            .map(|ms| start + Duration::from_millis(ms));
        tokio::select! {
            msg = input.recv(), if input_open => match msg {
                Some(SttInput::Audio(frame)) => {
                    // The session sends 16 kHz; anything else is not ours to resample.
                    if frame.rate() == 16_000 {
                        core.audio(now(), frame.samples());
                    }
                }
                // Deepgram hears every frame; only the end of speech needs an answer.
                Some(SttInput::SpeechStart) => {}
                Some(SttInput::SpeechEnd) => core.speech_end(now()),
                None => {
                    input_open = false;
                    core.input_closed(now());
                }
            },
            result = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                connecting = None;
                match result {
                    Ok(ws) => {
                        socket = Some(ws);
                        core.connected(now());
                    }
                    Err(failure) => {
                        tracing::warn!(?failure, "Deepgram connection failed");
                        core.connect_failed(now(), failure);
                    }
                }
            }
            msg = async { socket.as_mut().expect("guarded").next().await }, if socket.is_some() => match msg {
                Some(Ok(Message::Text(text))) => core.server_text(&text),
                Some(Ok(Message::Close(frame))) => {
                    socket = None;
                    let reason = frame.map_or_else(String::new, |f| format!("{} {}", f.code, f.reason));
                    core.disconnected(now(), &format!("closed by Deepgram {reason}"));
                }
                // Pings are answered by tungstenite; Deepgram sends no binary frames.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    socket = None;
                    core.disconnected(now(), &e.to_string());
                }
                None => {
                    socket = None;
                    core.disconnected(now(), "connection closed");
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => core.handle_timeout(now()),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(at).await;
    }
}

async fn connect(connection: Arc<Connection>) -> Result<Socket, ConnectFailure> {
    let mut request = connection
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectFailure::Fatal(format!("bad Deepgram URL: {e}")))?;
    let token = HeaderValue::from_str(&format!("Token {}", connection.api_key)).map_err(|_| {
        ConnectFailure::Fatal("DEEPGRAM_API_KEY holds characters a header cannot carry".into())
    })?;
    request.headers_mut().insert(header::AUTHORIZATION, token);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(response))) => Err(refusal(&response)),
        Ok(Err(e)) => Err(ConnectFailure::Retry(e.to_string())),
        Err(_) => Err(ConnectFailure::Retry("handshake timed out".into())),
    }
}

/// What an HTTP answer to the upgrade request means.
fn refusal(response: &Response<Option<Vec<u8>>>) -> ConnectFailure {
    let status = response.status();
    let body = response
        .body()
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let detail: String = body.trim().chars().take(300).collect();
    match status.as_u16() {
        401 | 403 => ConnectFailure::Fatal(format!(
            "Deepgram refused the API key (HTTP {status}); check DEEPGRAM_API_KEY. {detail}"
        )),
        408 | 429 | 500..=599 => {
            ConnectFailure::Retry(format!("Deepgram answered HTTP {status}. {detail}"))
        }
        _ => ConnectFailure::Fatal(format!(
            "Deepgram refused the stream (HTTP {status}). {detail}"
        )),
    }
}
