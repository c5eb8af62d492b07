//! ElevenLabs' multi-context stream-input protocol for one WebSocket, without IO: the driver
//! feeds it what the server sent and the time, and sends the frames it asks for.
//!
//! Every synthesis is a context on the shared socket. Opening one queues three messages: the
//! context's first message (a single space and the voice settings), the text with `flush` so
//! generation starts at once, and `close_context`, after which the server streams the rest of
//! the audio and ends the context with `{"isFinal": true, "contextId": …}`. Audio arrives as
//! base64 PCM16 (`pcm_16000`, already the engine's rate), tagged with its `contextId`.
//!
//! ElevenLabs cannot stop generating flushed text, so cancelling a context that was already
//! sent only drops its remaining audio here; the context still counts against the socket's
//! limit until its `isFinal`. A context cancelled before its messages left is never sent.
//!
//! A socket without contexts is closed after [`IDLE_CLOSE`], before the server's own
//! inactivity timeout ([`INACTIVITY_TIMEOUT_SECS`], sent as a query parameter) would close it
//! under a context just being opened: the protocol has no keep-alive that needs no context.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::Value;

use super::super::network::{Failure, excerpt};
use super::super::pcm::Pcm16Le;

/// The server's inactivity timeout, the longest it allows.
pub const INACTIVITY_TIMEOUT_SECS: u64 = 180;
/// How long a socket without contexts stays open for the next sentence or call.
pub const IDLE_CLOSE: Duration = Duration::from_secs(150);
/// Contexts ElevenLabs allows at once on one socket.
pub const MAX_CONTEXTS: usize = 5;

/// Identifies a synthesis; unique per engine, so also per socket.
pub type ContextId = u64;

/// What happened to one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextEvent {
    /// 16 kHz PCM, in order.
    Audio(Vec<i16>),
    /// All audio was delivered (or, for a cancelled context, discarded); the context is gone.
    Finished,
    /// The context is gone without all of its audio.
    Failed(Failure),
}

/// Voice settings sent with each context. Speaker boost is off: it costs latency and is
/// inaudible at telephone bandwidth.
#[derive(Serialize)]
struct VoiceSettings {
    stability: f32,
    similarity_boost: f32,
    use_speaker_boost: bool,
}

const VOICE_SETTINGS: VoiceSettings = VoiceSettings {
    stability: 0.5,
    similarity_boost: 0.75,
    use_speaker_boost: false,
};

#[derive(Serialize)]
#[serde(untagged)]
enum ClientMessage<'a> {
    Start {
        text: &'static str,
        context_id: &'a str,
        voice_settings: &'static VoiceSettings,
    },
    Text {
        text: &'a str,
        context_id: &'a str,
        flush: bool,
    },
    Close {
        context_id: &'a str,
        close_context: bool,
    },
}

fn wire_id(context: ContextId) -> String {
    format!("ctx-{context}")
}

fn parse_wire_id(id: &str) -> Option<ContextId> {
    id.strip_prefix("ctx-")?.parse().ok()
}

struct Context {
    /// The receiver is gone: audio is dropped until the server ends the context.
    cancelled: bool,
    pcm: Pcm16Le,
}

/// The protocol state of one socket.
pub struct MultiContext {
    contexts: HashMap<ContextId, Context>,
    /// Frames not yet sent, with the context each belongs to.
    outbox: VecDeque<(ContextId, String)>,
    events: VecDeque<(ContextId, ContextEvent)>,
    /// Since when the socket has had no context.
    idle_since: Option<Instant>,
    closed: bool,
}

impl MultiContext {
    pub fn new(now: Instant) -> Self {
        MultiContext {
            contexts: HashMap::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            idle_since: Some(now),
            closed: false,
        }
    }

    /// Starts synthesising `text` as `context`.
    pub fn open(&mut self, context: ContextId, text: &str) {
        if self.closed {
            self.events.push_back((
                context,
                ContextEvent::Failed(Failure::retryable(
                    "elevenlabs: the connection closed before the text was sent",
                    Duration::ZERO,
                )),
            ));
            return;
        }
        let id = wire_id(context);
        // Text must end with a space; the server joins the pieces of a context as they come.
        let text = format!("{} ", text.trim());
        let frames = [
            ClientMessage::Start {
                text: " ",
                context_id: &id,
                voice_settings: &VOICE_SETTINGS,
            },
            ClientMessage::Text {
                text: &text,
                context_id: &id,
                flush: true,
            },
            ClientMessage::Close {
                context_id: &id,
                close_context: true,
            },
        ];
        for frame in frames {
            let json = serde_json::to_string(&frame).expect("client messages serialise");
            self.outbox.push_back((context, json));
        }
        self.contexts.insert(
            context,
            Context {
                cancelled: false,
                pcm: Pcm16Le::default(),
            },
        );
        self.idle_since = None;
    }

    /// The receiver of `context` went away.
    pub fn cancel(&mut self, now: Instant, context: ContextId) {
        let unsent = self.outbox.iter().any(|(c, _)| *c == context);
        if unsent {
            self.outbox.retain(|(c, _)| *c != context);
            self.end(now, context, ContextEvent::Finished);
        } else if let Some(ctx) = self.contexts.get_mut(&context) {
            ctx.cancelled = true;
        }
    }

    /// A text frame from the server.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        let message = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(message)) => message,
            _ => {
                return self.fail_all(
                    now,
                    Failure::fatal(format!(
                        "elevenlabs: unreadable message from the server: {}",
                        excerpt(text, 120)
                    )),
                );
            }
        };
        let context = message
            .get("contextId")
            .or_else(|| message.get("context_id"))
            .and_then(Value::as_str)
            .and_then(parse_wire_id);
        let audio = message.get("audio").and_then(Value::as_str);
        let is_final = message.get("isFinal").and_then(Value::as_bool) == Some(true);

        if audio.is_none() && (message.contains_key("error") || message.contains_key("message")) {
            let failure = Failure::fatal(error_text(&message));
            return match context.filter(|c| self.contexts.contains_key(c)) {
                Some(context) => self.end(now, context, ContextEvent::Failed(failure)),
                None => self.fail_all(now, failure),
            };
        }
        let Some(context) = context.filter(|c| self.contexts.contains_key(c)) else {
            // Audio of a context this socket no longer knows, or a message about none.
            return;
        };
        if let Some(audio) = audio.filter(|a| !a.is_empty()) {
            let bytes = match B64.decode(audio) {
                Ok(bytes) => bytes,
                Err(e) => {
                    let failure =
                        Failure::fatal(format!("elevenlabs: audio that is not base64: {e}"));
                    return self.end(now, context, ContextEvent::Failed(failure));
                }
            };
            let ctx = self.contexts.get_mut(&context).expect("checked above");
            let mut pcm = Vec::with_capacity(bytes.len() / 2 + 1);
            ctx.pcm.push(&bytes, &mut pcm);
            if !ctx.cancelled && !pcm.is_empty() {
                self.events.push_back((context, ContextEvent::Audio(pcm)));
            }
        }
        if is_final {
            self.end(now, context, ContextEvent::Finished);
        }
    }

    /// A binary frame: the protocol only sends JSON text.
    pub fn handle_binary(&mut self, now: Instant, len: usize) {
        self.fail_all(
            now,
            Failure::fatal(format!(
                "elevenlabs: unexpected binary frame of {len} bytes"
            )),
        );
    }

    /// The socket is gone: every context still open fails with `failure`.
    pub fn handle_closed(&mut self, now: Instant, failure: Failure) {
        self.fail_all(now, failure);
    }

    /// When the driver should call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.closed, self.idle_since) {
            (false, Some(since)) => Some(since + IDLE_CLOSE),
            _ => None,
        }
    }

    /// Closes a socket idle for [`IDLE_CLOSE`]; returns whether it did.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.poll_timeout().is_some_and(|at| now >= at) {
            self.closed = true;
        }
        self.closed
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.outbox.pop_front().map(|(_, frame)| frame)
    }

    pub fn poll_event(&mut self) -> Option<(ContextId, ContextEvent)> {
        self.events.pop_front()
    }

    /// No more contexts can be opened: the socket must be closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn end(&mut self, now: Instant, context: ContextId, event: ContextEvent) {
        if let Some(ctx) = self.contexts.remove(&context) {
            if ctx.pcm.has_partial_sample() && event == ContextEvent::Finished && !ctx.cancelled {
                tracing::warn!(
                    context,
                    "elevenlabs: the audio ended in the middle of a sample"
                );
            }
            self.outbox.retain(|(c, _)| *c != context);
            self.events.push_back((context, event));
        }
        if self.contexts.is_empty() && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    fn fail_all(&mut self, now: Instant, failure: Failure) {
        self.closed = true;
        let mut open: Vec<ContextId> = self.contexts.keys().copied().collect();
        open.sort_unstable();
        for context in open {
            self.end(now, context, ContextEvent::Failed(failure.clone()));
        }
    }
}

/// `elevenlabs: <error>: <message>` from an error message such as
/// `{"message": "…", "error": "quota_exceeded", "code": 1008}`.
fn error_text(message: &serde_json::Map<String, Value>) -> String {
    let field = |key: &str| match message.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    match (field("error"), field("message")) {
        (Some(error), Some(message)) => format!("elevenlabs: {error}: {message}"),
        (Some(text), None) | (None, Some(text)) => format!("elevenlabs: {text}"),
        (None, None) => "elevenlabs: error".to_string(),
    }
}

#[cfg(test)]
mod tests;
