//! A local server speaking Deepgram's live-streaming protocol: the `/v1/listen` WebSocket
//! upgrade with `Authorization: Token …`, binary linear16 audio in, `Results` (interim, final,
//! `speech_final`, `from_finalize`), `UtteranceEnd` and `Metadata` out, and the `KeepAlive`,
//! `Finalize` and `CloseStream` control messages. It hears the toy code of `words`.

use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::words::{FRAME, Listener, RATE};

#[derive(Clone, Default)]
pub struct Behaviour {
    /// Refuse every upgrade with this status.
    pub refuse: Option<u16>,
    /// Drop the first connection (no close frame) once it has received this many frames.
    pub drop_first_after_frames: Option<usize>,
    /// Send `speech_final` after 300 ms of silence and `UtteranceEnd` after 1 s.
    pub endpointing: bool,
    /// Open each connection with garbage, an unknown type and events clients ignore.
    pub noise: bool,
}

/// What one connection saw.
#[derive(Default, Clone, Debug)]
pub struct Connection {
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub audio: Vec<i16>,
    pub controls: Vec<String>,
}

pub struct FakeDeepgram {
    /// `http://…`: the provider maps it to `ws://`.
    pub base_url: String,
    pub connections: Arc<Mutex<Vec<Connection>>>,
}

impl FakeDeepgram {
    pub async fn start(behaviour: Behaviour) -> FakeDeepgram {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(Mutex::new(Vec::new()));
        let log = connections.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(Connection::default());
                    log.len() - 1
                };
                tokio::spawn(serve(tcp, index, log.clone(), behaviour.clone()));
            }
        });
        FakeDeepgram {
            base_url,
            connections,
        }
    }

    pub fn connections(&self) -> Vec<Connection> {
        self.connections.lock().unwrap().clone()
    }
}

async fn serve(
    tcp: TcpStream,
    index: usize,
    log: Arc<Mutex<Vec<Connection>>>,
    behaviour: Behaviour,
) {
    let handshake_log = log.clone();
    let refuse = behaviour.refuse;
    // tungstenite's handshake callback returns its `ErrorResponse` unboxed.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, response: Response| {
        let mut log = handshake_log.lock().unwrap();
        let seen = &mut log[index];
        seen.path_and_query = request.uri().to_string();
        seen.authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match refuse {
            Some(status) => {
                let body = json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."});
                let mut refusal = ErrorResponse::new(Some(body.to_string()));
                *refusal.status_mut() = StatusCode::from_u16(status).unwrap();
                Err(refusal)
            }
            None => Ok(response),
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    if behaviour.noise {
        for text in [
            "garbage".to_string(),
            json!({"type": "Mystery", "is_final": true}).to_string(),
            json!({"type": "Metadata", "request_id": "r-1", "channels": 1}).to_string(),
            json!({"type": "SpeechStarted", "channel": [0], "timestamp": 0.0}).to_string(),
        ] {
            ws.send(Message::text(text)).await.unwrap();
        }
    }
    let mut recogniser = Recogniser::default();
    while let Some(Ok(message)) = ws.next().await {
        let replies = match message {
            Message::Binary(bytes) => {
                let pcm: Vec<i16> = bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                log.lock().unwrap()[index].audio.extend(&pcm);
                let received = log.lock().unwrap()[index].audio.len() / FRAME;
                if index == 0
                    && behaviour
                        .drop_first_after_frames
                        .is_some_and(|n| received >= n)
                {
                    // Vanish without a closing handshake, as a broken network does.
                    return;
                }
                recogniser.audio(&pcm, behaviour.endpointing)
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<serde_json::Value>(&text).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string();
                log.lock().unwrap()[index].controls.push(kind.clone());
                match kind.as_str() {
                    "Finalize" => recogniser.finalize(true).into_iter().collect(),
                    "CloseStream" => {
                        let mut last: Vec<_> = recogniser.finalize(false).into_iter().collect();
                        last.push(json!({"type": "Metadata", "request_id": "r-1"}));
                        for reply in last {
                            ws.send(Message::text(reply.to_string())).await.unwrap();
                        }
                        let _ = ws.close(None).await;
                        return;
                    }
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        for reply in replies {
            if ws.send(Message::text(reply.to_string())).await.is_err() {
                return;
            }
        }
    }
}

/// Turns the toy code into Deepgram results, with Deepgram's timing rules.
#[derive(Default)]
struct Recogniser {
    listener: Listener,
    /// Frame where the unsettled span starts.
    settled_at: usize,
    partial_frame: usize,
    leftover: Vec<i16>,
    utterance_open: bool,
}

impl Recogniser {
    fn audio(&mut self, pcm: &[i16], endpointing: bool) -> Vec<serde_json::Value> {
        self.leftover.extend_from_slice(pcm);
        let whole = self.leftover.len() / FRAME * FRAME;
        let frames: Vec<i16> = self.leftover.drain(..whole).step_by(FRAME).collect();
        let mut out = Vec::new();
        for value in frames {
            self.listener.frame(value);
            let hypothesis = self.listener.hypothesis();
            if self.listener.frames - self.partial_frame >= 10 && !hypothesis.is_empty() {
                self.partial_frame = self.listener.frames;
                out.push(self.results(&hypothesis, false, false, false));
            }
            if !endpointing {
                continue;
            }
            if self.listener.silent_frames == 15 && !hypothesis.is_empty() {
                self.listener.close_run();
                let text = self.listener.words.join(" ");
                out.push(self.results(&text, true, true, false));
                self.settle();
                self.utterance_open = true;
            }
            if self.utterance_open && self.listener.frames - self.listener.last_word_end >= 50 {
                self.utterance_open = false;
                let end = self.listener.last_word_end as f64 * FRAME as f64 / RATE as f64;
                out.push(json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": end}));
            }
        }
        out
    }

    /// Settles everything heard; `None` when there is nothing new (Deepgram does not answer
    /// a `Finalize` of nothing).
    fn finalize(&mut self, from_finalize: bool) -> Option<serde_json::Value> {
        if self.listener.frames == self.settled_at {
            return None;
        }
        self.listener.close_run();
        let text = self.listener.words.join(" ");
        let reply = self.results(&text, true, false, from_finalize);
        self.settle();
        Some(reply)
    }

    fn settle(&mut self) {
        self.settled_at = self.listener.frames;
        self.listener.words.clear();
    }

    fn results(
        &self,
        text: &str,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
    ) -> serde_json::Value {
        let seconds = |frames: usize| frames as f64 * FRAME as f64 / RATE as f64;
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "start": seconds(self.settled_at),
            "duration": seconds(self.listener.frames - self.settled_at),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.98, "words": []}]},
            "metadata": {"request_id": "r-1", "model_info": {"name": "fake", "version": "1", "arch": "fake"}},
        })
    }
}
