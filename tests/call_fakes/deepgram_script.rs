//! A Deepgram live-streaming stand-in that "hears" the next scripted line in each utterance
//! (speech found by level, so any real voice works): interim `Results` while the caller
//! speaks, a final with `speech_final` after 500 ms of silence, and an answer to `Finalize`.
//! Speech resuming within a second of a final continues the same utterance (a pause between
//! words), heard as no further words.

use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// 20 ms at 16 kHz.
const FRAME: usize = 320;
/// RMS above which a frame is speech (the fixtures' line noise sits near 20).
const SPEECH_RMS: f64 = 200.0;
const SILENCE_FRAMES_TO_END: usize = 25;
/// Speech this soon after a final belongs to the same utterance.
const CONTINUATION_FRAMES: usize = 50;

pub struct ScriptedDeepgram {
    /// `http://…`; the provider maps it to `ws://`.
    pub base_url: String,
    /// Each connection's request path and query, and its `Authorization` header.
    pub connections: Arc<Mutex<Vec<(String, String)>>>,
}

impl ScriptedDeepgram {
    pub async fn start(lines: &[&str]) -> ScriptedDeepgram {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(
            lines.iter().rev().map(|l| l.to_string()).collect(),
        ));
        let log = connections.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, log.clone(), script.clone()));
            }
        });
        ScriptedDeepgram {
            base_url,
            connections,
        }
    }
}

#[derive(Default)]
struct Hearing {
    pending: Vec<i16>,
    speech_frames: usize,
    silence_frames: usize,
    /// The line being spoken, taken from the script when speech starts.
    line: Option<String>,
    interim_sent: bool,
    seconds: f64,
    frames: usize,
    settled_at: Option<usize>,
}

async fn serve(
    tcp: tokio::net::TcpStream,
    log: Arc<Mutex<Vec<(String, String)>>>,
    script: Arc<Mutex<Vec<String>>>,
) {
    // tungstenite's handshake callback returns its `ErrorResponse` unboxed.
    #[allow(clippy::result_large_err)]
    let callback = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                    response| {
        let auth = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        log.lock().unwrap().push((path, auth));
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let mut hearing = Hearing::default();
    while let Some(Ok(message)) = ws.next().await {
        let replies = match message {
            Message::Binary(bytes) => hearing.audio(&bytes, &script),
            Message::Text(text) => {
                let control: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match control["type"].as_str() {
                    Some("Finalize") => vec![hearing.finalize()],
                    Some("CloseStream") => {
                        let _ = ws.close(None).await;
                        return;
                    }
                    _ => Vec::new(),
                }
            }
            Message::Close(_) => return,
            _ => Vec::new(),
        };
        for reply in replies {
            if ws.send(Message::text(reply.to_string())).await.is_err() {
                return;
            }
        }
    }
}

impl Hearing {
    fn audio(&mut self, bytes: &[u8], script: &Mutex<Vec<String>>) -> Vec<Value> {
        self.pending.extend(
            bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
        let mut out = Vec::new();
        while self.pending.len() >= FRAME {
            let frame: Vec<i16> = self.pending.drain(..FRAME).collect();
            self.seconds += 0.02;
            self.frames += 1;
            let rms =
                (frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / FRAME as f64).sqrt();
            if rms > SPEECH_RMS {
                self.silence_frames = 0;
                self.speech_frames += 1;
                if self.line.is_none() {
                    let continues = self
                        .settled_at
                        .is_some_and(|at| self.frames - at < CONTINUATION_FRAMES);
                    self.line = Some(if continues {
                        String::new()
                    } else {
                        script.lock().unwrap().pop().unwrap_or_default()
                    });
                }
                if self.speech_frames >= 10 && !self.interim_sent {
                    self.interim_sent = true;
                    let first_word = self
                        .line
                        .as_deref()
                        .and_then(|l| l.split_whitespace().next())
                        .unwrap_or_default()
                        .to_string();
                    out.push(self.results(&first_word, false, false, false));
                }
            } else if self.line.is_some() {
                self.silence_frames += 1;
                if self.silence_frames >= SILENCE_FRAMES_TO_END {
                    out.push(self.settle(false));
                }
            }
        }
        out
    }

    /// The line so far as a final (empty when nothing was being said).
    fn settle(&mut self, from_finalize: bool) -> Value {
        let text = self.line.take().unwrap_or_default();
        self.settled_at = Some(self.frames);
        self.speech_frames = 0;
        self.silence_frames = 0;
        self.interim_sent = false;
        self.results(&text, true, !from_finalize, from_finalize)
    }

    fn finalize(&mut self) -> Value {
        self.settle(true)
    }

    fn results(
        &self,
        text: &str,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
    ) -> Value {
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": 0.02,
            "start": self.seconds,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{
                "transcript": text,
                "confidence": 0.98,
                "words": text.split_whitespace().map(|w| json!({
                    "word": w.to_lowercase(), "start": self.seconds, "end": self.seconds,
                    "confidence": 0.98, "punctuated_word": w
                })).collect::<Vec<_>>()
            }]},
            "metadata": {"request_id": "fake", "model_info": {"name": "nova-3"}},
        })
    }
}
