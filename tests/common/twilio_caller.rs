//! The caller's side of a Twilio Media Stream for call tests, and reading the finished call.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use boltcall::store::{CallRecord, Scope, Store};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The caller's side of a Media Stream: sends 20 ms μ-law frames in real time and collects
/// everything the engine sends back.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the engine's stream WebSocket, with `X-Twilio-Signature` when given.
pub async fn connect(
    base: &str,
    signature: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = stream_ws_url(base).into_client_request().unwrap();
    if let Some(sig) = signature {
        request
            .headers_mut()
            .insert("x-twilio-signature", sig.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

pub fn stream_ws_url(base: &str) -> String {
    format!("{}/carrier/twilio/stream", base.replace("http://", "ws://"))
}

pub struct Caller {
    pub ws: Ws,
    pub started: Instant,
    /// Agent `media` messages and whether each carried sound.
    pub media: Vec<bool>,
    /// When each message with sound arrived.
    pub sound_at: Vec<Instant>,
    pub clears: usize,
    /// Marks the engine sent (it ends each stretch of its speech with one).
    pub marks: usize,
    pub closed: bool,
}

impl Caller {
    /// Connects to the engine at `base` as a call from `from` to `to`.
    pub async fn dial(base: &str, from: &str, to: &str) -> Caller {
        let ws = connect(base, None).await.unwrap();
        let params = json!({"agent_id": "x", "call_sid": "CA0001", "from": from, "to": to});
        Caller::start(ws, "CA0001", params).await
    }

    /// Sends `connected` and `start` for `call_sid` with `params` as its custom parameters.
    pub async fn start(mut ws: Ws, call_sid: &str, params: Value) -> Caller {
        let send = |v: Value| WsMessage::Text(v.to_string().into());
        ws.send(send(
            json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        ))
        .await
        .unwrap();
        ws.send(send(json!({
            "event": "start", "sequenceNumber": "1", "streamSid": "MZ0001",
            "start": {
                "accountSid": "AC0001", "streamSid": "MZ0001", "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": params
            }
        })))
        .await
        .unwrap();
        Caller {
            ws,
            started: Instant::now(),
            media: Vec::new(),
            sound_at: Vec::new(),
            clears: 0,
            marks: 0,
            closed: false,
        }
    }

    /// Plays `mulaw` (8 kHz) in real time, 20 ms per message, reading what comes back.
    pub async fn play(&mut self, mulaw: &[u8]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (n, chunk) in mulaw.chunks(160).enumerate() {
            tick.tick().await;
            let msg = json!({"event": "media", "sequenceNumber": n.to_string(), "streamSid": "MZ0001",
                "media": {"track": "inbound", "chunk": n.to_string(), "timestamp": (n * 20).to_string(),
                          "payload": BASE64.encode(chunk)}});
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

    pub fn record(&mut self, text: &str) {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["streamSid"], "MZ0001", "{v}");
        match v["event"].as_str() {
            Some("media") => {
                let payload = BASE64
                    .decode(v["media"]["payload"].as_str().unwrap())
                    .unwrap();
                assert_eq!(payload.len(), 160, "20 ms of 8 kHz μ-law per message");
                // μ-law 0xFF/0x7F is zero; a few codes either side are the filters' dither.
                let loud = payload.iter().any(|&b| (b & 0x7F) < 0x60);
                self.media.push(loud);
                if loud {
                    self.sound_at.push(Instant::now());
                }
            }
            Some("clear") => self.clears += 1,
            Some("mark") => self.marks += 1,
            other => panic!("unexpected message {other:?}"),
        }
    }

    pub fn sound_frames(&self) -> usize {
        self.media.iter().filter(|&&loud| loud).count()
    }

    /// Sends `stop` and reads until the engine closes the socket.
    pub async fn hang_up(mut self) -> Caller {
        let stop = json!({"event": "stop", "sequenceNumber": "999", "streamSid": "MZ0001",
                          "stop": {"accountSid": "AC0001", "callSid": "CA0001"}});
        let _ = self.ws.send(WsMessage::Text(stop.to_string().into())).await;
        self.read_until_closed().await
    }

    pub async fn read_until_closed(mut self) -> Caller {
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

/// The first utterance of the opening-hours fixture, as μ-law.
pub fn caller_question() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/calls/opening_hours/caller.wav"
    );
    let mut reader = hound::WavReader::open(path).unwrap();
    assert_eq!(reader.spec().sample_rate, 8000);
    let pcm: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    // 6.5 s – 9.5 s holds "Hi, what are your opening hours?" and nothing else.
    let pcm = &pcm[6_500 * 8..9_500 * 8];
    let mut mulaw = vec![0u8; pcm.len()];
    media::g711::encode_ulaw(pcm, &mut mulaw).unwrap();
    mulaw
}

/// The call's record once the session has written its end.
pub async fn finished_call(store: &Store) -> CallRecord {
    let scope = Scope {
        workspace_id: "default".into(),
        live: true,
    };
    for _ in 0..200 {
        let page = store
            .list_calls(
                &scope,
                &Default::default(),
                boltcall::store::PageRequest { page: 1, limit: 10 },
            )
            .await
            .unwrap();
        if let Some(call) = page.items.into_iter().find(|c| c.ended_at.is_some()) {
            return call;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the call was never finished");
}
