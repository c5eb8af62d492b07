//! A stand-in for Deepgram's live-streaming service, for soaks of a real `boltcall serve` with
//! speech in every call (`bench/soak.sh` with `STT=deepgram`): the offline recogniser decodes
//! about one utterance at a time on two cores, so 100,000 calls that each say something need a
//! recogniser elsewhere, and Deepgram cannot be reached from the lab.
//!
//! It speaks Deepgram's wire protocol (the `/v1/listen` WebSocket, binary linear16 audio in,
//! `Results` with `is_final`, `speech_final` and `from_finalize` out, the `Finalize`,
//! `KeepAlive` and `CloseStream` controls) and "recognises" by level alone: every stretch of
//! sound becomes `--transcript`. The engine's Deepgram client, VAD, turn machine, brain and
//! voice all run as in production.
//!
//! ```text
//! deepgram-stand-in --listen 127.0.0.1:18190 --transcript "Hello, can you hear me?"
//! BOLTCALL_STT=deepgram BOLTCALL_DEEPGRAM_API_KEY=any \
//!     BOLTCALL_DEEPGRAM_BASE_URL=http://127.0.0.1:18190 boltcall serve
//! ```

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(about = "Deepgram live-streaming stand-in that hears any sound as one fixed sentence")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18190")]
    listen: String,
    /// What every stretch of sound is heard as.
    #[arg(long, default_value = "Hello, can you hear me?")]
    transcript: String,
}

/// The stream's rate: the engine asks for `sample_rate=16000`.
const RATE: f64 = 16_000.0;
/// Samples per 20 ms frame.
const FRAME: usize = 320;
/// A frame is sound above this RMS (about -42 dBFS: line noise stays under it).
const SOUND_RMS: f64 = 260.0;
/// Deepgram's `endpointing=300`: silence after sound that makes a result `speech_final`.
const ENDPOINTING_FRAMES: usize = 15;
/// Interim results while sound goes on, every half second.
const INTERIM_FRAMES: usize = 25;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "deepgram stand-in listening on ws://{}/v1/listen",
        args.listen
    );
    let transcript: Arc<str> = args.transcript.into();
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve(tcp, transcript.clone()));
    }
}

async fn serve(tcp: TcpStream, transcript: Arc<str>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let mut ear = Ear::default();
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            Message::Binary(bytes) => ear.audio(&bytes),
            Message::Text(text) if text.contains("\"Finalize\"") => ear.finalize(true),
            Message::Text(text) if text.contains("\"CloseStream\"") => {
                if let Some(last) = ear.finalize(false) {
                    let _ = ws.send(Message::text(last.render(&transcript))).await;
                }
                let _ = ws
                    .send(Message::text(
                        r#"{"type":"Metadata","request_id":"stand-in"}"#,
                    ))
                    .await;
                let _ = ws.close(None).await;
                return;
            }
            // KeepAlive, and anything else: nothing to say.
            _ => None,
        };
        if let Some(result) = reply
            && ws
                .send(Message::text(result.render(&transcript)))
                .await
                .is_err()
        {
            return;
        }
    }
}

/// One connection's listening state, in frames since its first audio.
#[derive(Default)]
struct Ear {
    frames: usize,
    /// Samples of the frame being gathered.
    partial: Vec<i16>,
    /// Where the words not yet final begin.
    settled_at: usize,
    /// Sound heard since `settled_at`, and the frame after the last sounding one.
    heard: bool,
    sound_until: usize,
    interim_at: usize,
}

/// A `Results` message to send.
struct Heard {
    start: usize,
    end: usize,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
}

impl Heard {
    fn render(&self, transcript: &str) -> String {
        let seconds = |frames: usize| frames as f64 * FRAME as f64 / RATE;
        serde_json::json!({
            "type": "Results",
            "channel_index": [0, 1],
            "start": seconds(self.start),
            "duration": seconds(self.end - self.start),
            "is_final": self.is_final,
            "speech_final": self.speech_final,
            "from_finalize": self.from_finalize,
            "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.99, "words": []}]},
            "metadata": {"request_id": "stand-in"},
        })
        .to_string()
    }
}

impl Ear {
    /// Linear16 little-endian audio; at most one result per message (the engine sends 20 ms).
    fn audio(&mut self, bytes: &[u8]) -> Option<Heard> {
        let mut reply = None;
        for pair in bytes.chunks_exact(2) {
            self.partial.push(i16::from_le_bytes([pair[0], pair[1]]));
            if self.partial.len() == FRAME {
                reply = self.frame().or(reply);
            }
        }
        reply
    }

    /// Hears the frame gathered in `partial` and empties it (keeping its buffer).
    fn frame(&mut self) -> Option<Heard> {
        let energy: f64 = self.partial.iter().map(|&s| f64::from(s).powi(2)).sum();
        let rms = (energy / FRAME as f64).sqrt();
        self.partial.clear();
        self.frames += 1;
        if rms > SOUND_RMS {
            if !self.heard {
                self.interim_at = self.frames;
            }
            self.heard = true;
            self.sound_until = self.frames;
        }
        if !self.heard {
            // Silence alone is settled as it goes: nothing to say about it.
            self.settled_at = self.frames;
            return None;
        }
        if self.frames - self.sound_until >= ENDPOINTING_FRAMES {
            return self.settle(true, false);
        }
        if self.frames - self.interim_at >= INTERIM_FRAMES {
            self.interim_at = self.frames;
            return Some(self.result(false, false, false));
        }
        None
    }

    /// The answer to `Finalize` (or the last words before closing): nothing when nothing was
    /// heard since the last final, as Deepgram sends nothing for a finalize of silence.
    fn finalize(&mut self, from_finalize: bool) -> Option<Heard> {
        if !self.heard {
            return None;
        }
        self.settle(false, from_finalize)
    }

    fn settle(&mut self, speech_final: bool, from_finalize: bool) -> Option<Heard> {
        let heard = self.result(true, speech_final, from_finalize);
        self.heard = false;
        self.settled_at = self.frames;
        Some(heard)
    }

    fn result(&self, is_final: bool, speech_final: bool, from_finalize: bool) -> Heard {
        Heard {
            start: self.settled_at,
            end: self.frames,
            is_final,
            speech_final,
            from_finalize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(amplitude: i16) -> Vec<u8> {
        (0..FRAME)
            .flat_map(|i| {
                let s = if i % 2 == 0 { amplitude } else { -amplitude };
                s.to_le_bytes()
            })
            .collect()
    }

    #[test]
    fn sound_gives_interims_then_a_speech_final_after_300_ms_of_silence() {
        let mut ear = Ear::default();
        assert!(ear.audio(&frame(10)).is_none(), "line noise is not speech");
        let interims = (0..60).filter_map(|_| ear.audio(&frame(3000))).count();
        assert_eq!(interims, 2);
        let mut finals = Vec::new();
        for _ in 0..20 {
            if let Some(heard) = ear.audio(&frame(0)) {
                finals.push(heard);
            }
        }
        assert_eq!(finals.len(), 1);
        let last = &finals[0];
        assert!(last.is_final && last.speech_final && !last.from_finalize);
        assert_eq!((last.start, last.end), (1, 76));
        assert!(ear.finalize(true).is_none(), "nothing new to finalise");
    }

    #[test]
    fn finalize_settles_what_was_heard_and_renders_deepgram_results() {
        let mut ear = Ear::default();
        for _ in 0..10 {
            ear.audio(&frame(3000));
        }
        let heard = ear.finalize(true).expect("sound was heard");
        let text = heard.render("Hello, can you hear me?");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "Results");
        assert_eq!(v["from_finalize"], true);
        assert_eq!(v["is_final"], true);
        assert_eq!(v["duration"], 0.2);
        assert_eq!(
            v["channel"]["alternatives"][0]["transcript"],
            "Hello, can you hear me?"
        );
    }
}
