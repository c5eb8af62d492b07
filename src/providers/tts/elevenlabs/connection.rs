//! The tokio side of one shared ElevenLabs socket: connects, runs the protocol core and routes
//! each context's events to the synthesis that opened it. The task ends when the socket does;
//! the pool then opens a new one for the next sentence.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::super::network::{Failure, RETRY_BACKOFF, excerpt, is_transient};
use super::protocol::{ContextEvent, ContextId, MultiContext};

/// TCP, TLS and the WebSocket upgrade together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where a voice's socket connects and how it authenticates.
pub struct Endpoint {
    /// `wss://…/v1/text-to-speech/{voice_id}/multi-stream-input?…`
    pub url: String,
    pub api_key: String,
}

enum Command {
    Open {
        context: ContextId,
        text: String,
        events: mpsc::UnboundedSender<ContextEvent>,
    },
    Cancel {
        context: ContextId,
    },
}

/// A pooled socket as synthesis tasks see it.
#[derive(Clone)]
pub struct Connection {
    commands: mpsc::UnboundedSender<Command>,
    /// Contexts reserved or open on the socket: what the pool balances on.
    load: Arc<AtomicUsize>,
}

impl Connection {
    /// Starts connecting; contexts opened meanwhile are sent once the socket is up.
    pub fn spawn(endpoint: Arc<Endpoint>) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let load = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(endpoint, receiver, load.clone()));
        Connection { commands, load }
    }

    /// The socket ended (or never came up): it takes no more contexts.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    pub fn load(&self) -> usize {
        self.load.load(Ordering::SeqCst)
    }

    /// Counts a context about to be opened, so concurrent callers spread over sockets.
    pub fn reserve(&self) {
        self.load.fetch_add(1, Ordering::SeqCst);
    }

    /// Opens a reserved context; its events go to `events`. `false` if the socket has ended.
    pub fn open(
        &self,
        context: ContextId,
        text: String,
        events: mpsc::UnboundedSender<ContextEvent>,
    ) -> bool {
        let sent = self.commands.send(Command::Open {
            context,
            text,
            events,
        });
        if sent.is_err() {
            self.load.fetch_sub(1, Ordering::SeqCst);
        }
        sent.is_ok()
    }

    pub fn cancel(&self, context: ContextId) {
        let _ = self.commands.send(Command::Cancel { context });
    }
}

struct Driver {
    core: MultiContext,
    routes: HashMap<ContextId, mpsc::UnboundedSender<ContextEvent>>,
    load: Arc<AtomicUsize>,
}

impl Driver {
    fn command(&mut self, command: Command) {
        match command {
            Command::Open {
                context,
                text,
                events,
            } => {
                self.routes.insert(context, events);
                self.core.open(context, &text);
            }
            Command::Cancel { context } => self.core.cancel(Instant::now(), context),
        }
    }

    fn message(&mut self, message: Option<Result<Message, WsError>>) {
        let now = Instant::now();
        match message {
            Some(Ok(Message::Text(text))) => self.core.handle_text(now, text.as_str()),
            Some(Ok(Message::Binary(bytes))) => self.core.handle_binary(now, bytes.len()),
            Some(Ok(Message::Close(frame))) => {
                self.core.handle_closed(now, closed_by_server(frame))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(e)) => self.core.handle_closed(now, lost(&e.to_string())),
            None => self.core.handle_closed(now, lost("end of stream")),
        }
    }

    /// Hands the core's events to their syntheses; an ended context frees its place.
    fn deliver(&mut self) {
        while let Some((context, event)) = self.core.poll_event() {
            let ended = !matches!(event, ContextEvent::Audio(_));
            if let Some(route) = self.routes.get(&context) {
                // A cancelled synthesis no longer listens.
                let _ = route.send(event);
            }
            if ended {
                self.routes.remove(&context);
                self.load.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

async fn run(
    endpoint: Arc<Endpoint>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    load: Arc<AtomicUsize>,
) {
    let mut driver = Driver {
        core: MultiContext::new(Instant::now()),
        routes: HashMap::new(),
        load,
    };
    let mut socket = match connect(&endpoint).await {
        Ok(socket) => socket,
        Err(failure) => {
            // Everything asked of this socket fails the way the connection did.
            commands.close();
            while let Some(command) = commands.recv().await {
                if let Command::Open { events, .. } = command {
                    let _ = events.send(ContextEvent::Failed(failure.clone()));
                    driver.load.fetch_sub(1, Ordering::SeqCst);
                }
            }
            return;
        }
    };
    loop {
        if let Err(e) = transmit(&mut driver.core, &mut socket).await {
            driver
                .core
                .handle_closed(Instant::now(), lost(&e.to_string()));
        }
        driver.deliver();
        if driver.core.is_closed() {
            break;
        }
        let deadline = driver.core.poll_timeout();
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => {
                    driver.command(command);
                    // Take everything queued, so a context cancelled while the socket was
                    // connecting is dropped before its frames leave.
                    while let Ok(command) = commands.try_recv() {
                        driver.command(command);
                    }
                }
                // The engine is gone.
                None => break,
            },
            message = socket.next() => driver.message(message),
            _ = sleep_until(deadline) => {
                driver.core.handle_timeout(Instant::now());
            }
        }
    }
    commands.close();
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(None)).await;
    // Contexts that arrived as the socket ended fail as retryable: another socket can take them.
    while let Some(command) = commands.recv().await {
        driver.command(command);
    }
    driver.deliver();
}

/// Writes every frame the core has queued, then flushes once: a context's three messages
/// leave together.
async fn transmit(core: &mut MultiContext, socket: &mut Socket) -> Result<(), WsError> {
    let mut wrote = false;
    while let Some(frame) = core.poll_transmit() {
        socket.feed(Message::text(frame)).await?;
        wrote = true;
    }
    if wrote {
        socket.flush().await?;
    }
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn connect(endpoint: &Endpoint) -> Result<Socket, Failure> {
    let mut request = endpoint
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| Failure::fatal(format!("elevenlabs: {}: {e}", endpoint.url)))?;
    let key = HeaderValue::from_str(&endpoint.api_key).map_err(|_| {
        Failure::fatal("elevenlabs: ELEVENLABS_API_KEY is not a valid header value")
    })?;
    request.headers_mut().insert("xi-api-key", key);
    let connecting =
        tokio_tungstenite::connect_async_with_config(request, None, /* nodelay */ true);
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(WsError::Http(response))) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let message = format!("elevenlabs: HTTP {status}: {}", error_detail(&body));
            Err(if is_transient(status.as_u16()) {
                Failure::retryable(message, RETRY_BACKOFF)
            } else {
                Failure::fatal(message)
            })
        }
        Ok(Err(e)) => Err(Failure::retryable(
            format!("elevenlabs: cannot connect to {}: {e}", endpoint.url),
            RETRY_BACKOFF,
        )),
        Err(_) => Err(Failure::retryable(
            format!(
                "elevenlabs: no connection to {} within {} s",
                endpoint.url,
                CONNECT_TIMEOUT.as_secs()
            ),
            Duration::ZERO,
        )),
    }
}

/// The message of an ElevenLabs HTTP error (`{"detail": {"message": …}}` or
/// `{"detail": "…"}`), else the body itself.
fn error_detail(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let detail = json.as_ref().map(|v| &v["detail"]);
    detail
        .and_then(|d| d["message"].as_str().or(d.as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| excerpt(body, 200))
}

/// The socket died without a close frame: whatever was not yet heard can go to a new socket.
fn lost(why: &str) -> Failure {
    Failure::retryable(
        format!("elevenlabs: connection lost: {why}"),
        Duration::ZERO,
    )
}

/// The server closed the socket: going away, restarting or overloaded may pass on another
/// socket; a policy violation (bad key, quota, too many contexts) will not.
fn closed_by_server(frame: Option<CloseFrame>) -> Failure {
    let Some(frame) = frame else {
        return lost("closed without a reason");
    };
    let code = u16::from(frame.code);
    let message = format!(
        "elevenlabs: the server closed the connection ({code}): {}",
        frame.reason.as_str()
    );
    match code {
        1000 | 1001 | 1011 | 1012 | 1013 => Failure::retryable(message, Duration::ZERO),
        _ => Failure::fatal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    #[test]
    fn reads_http_error_details() {
        let body = r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#;
        assert_eq!(error_detail(body), "Invalid API key");
        assert_eq!(error_detail(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_detail("Bad gateway"), "Bad gateway");
    }

    #[test]
    fn policy_closes_are_final_and_restarts_are_retried() {
        let close = |code: u16, reason: &str| {
            closed_by_server(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            }))
        };
        let quota = close(1008, "quota exceeded");
        assert_eq!(quota.retry_after, None);
        assert!(quota.message.contains("1008") && quota.message.contains("quota exceeded"));
        assert!(close(1012, "restart").retry_after.is_some());
        assert!(closed_by_server(None).retry_after.is_some());
    }
}
