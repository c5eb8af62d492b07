//! The agent presses keys (`send_dtmf`) on a whole call: an OpenAI-compatible LLM (a local
//! server speaking the chat-completions wire protocol) calls the tool, the production session
//! plays the keys after the agent's words, and the far end hears them — over SIP as RFC 4733
//! telephone-events in the call's RTP stream (decoded with the engine's own `DtmfReceiver`),
//! over a Twilio Media Stream as tones in the audio (decoded by Goertzel detection).

#[allow(dead_code)]
mod call_fakes;
#[allow(dead_code)]
#[path = "common/scripted_stt.rs"]
mod scripted_stt;
#[path = "sip/support.rs"]
mod sip_support;
#[allow(dead_code)]
#[path = "common/twilio_caller.rs"]
mod twilio_caller;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use boltcall::agent::admission::Admission;
use boltcall::agent::session::{CallServices, run_call};
use boltcall::config::Config;
use boltcall::providers::llm::build_brain;
use boltcall::providers::tts::{TextToSpeech, TtsError, Voice};
use boltcall::store::{CallRecord, NewAgent, Scope, Store};
use boltcall::telephony::rtp::dtmf::DtmfReceiver;
use boltcall::telephony::sip::routing::StoreRouting;
use boltcall::telephony::sip::service::SipService;
use call_fakes::chat::{FakeChat, Reply};
use futures::{FutureExt, SinkExt, StreamExt};
use media::Frame;
use media::dtmf::ToneDetector;
use scripted_stt::ScriptedStt;
use serde_json::{Value, json};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use twilio_caller::{Caller, caller_question, finished_call};

const AGENT_PHONE: &str = "+15550100";
const CALLER_PHONE: &str = "+15550001";
const GREETING: &str = "Hello.";
const MENU: &str = "For sales press one then pound";
const KEYS: &str = "1#";
const WAIT: Duration = Duration::from_secs(20);

/// Speaks a quiet 300 Hz hum, 60 ms per character: audible, and never a DTMF pair.
struct HumTts;

impl TextToSpeech for HumTts {
    fn name(&self) -> &'static str {
        "hum"
    }
    fn synthesize(
        &self,
        text: String,
        _voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(1);
        let pcm: Vec<i16> = (0..text.chars().count() * 960)
            .map(|i| (3000.0 * (std::f32::consts::TAU * 300.0 * i as f32 / 16_000.0).sin()) as i16)
            .collect();
        tokio::spawn(async move {
            let _ = tx.send(Ok(pcm)).await;
        });
        rx
    }
}

/// The LLM: the caller's menu is answered by pressing `KEYS`, then by saying nothing more;
/// the post-call analysis gets its JSON.
async fn chat() -> FakeChat {
    let script = Mutex::new(VecDeque::from([
        Reply::Calls(vec![("send_dtmf", json!({ "digits": KEYS }))]),
        Reply::Says(Vec::new(), Duration::ZERO),
    ]));
    FakeChat::start_with(move |request: &Value| {
        if request.get("response_format").is_some() {
            return Some(Reply::Json(json!({
                "summary": "The agent chose sales in the phone menu.",
                "sentiment": "neutral",
                "tags": [],
                "outcome": {"result": "navigated-menu", "follow_up": null}
            })));
        }
        script.lock().unwrap().pop_front()
    })
    .await
}

/// The services a production engine runs calls with, the LLM brain on `chat`.
async fn services(chat: &FakeChat, configure: impl FnOnce(&mut Config)) -> Arc<CallServices> {
    let data_dir = std::env::temp_dir().join(boltcall::store::new_id("dtmf-out-"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut config = Config {
        database_url: format!("sqlite://{}", data_dir.join("db.sqlite").display()),
        data_dir,
        llm_base_url: Some(chat.base_url.clone()),
        llm_api_key: Some("sk-test".into()),
        ..Config::default()
    };
    configure(&mut config);
    let store = Store::connect(&config.database_url)
        .await
        .unwrap()
        .with_public_url(&config.public_url());
    let scope = Scope {
        workspace_id: "default".into(),
        live: true,
    };
    store
        .create_agent(
            &scope,
            NewAgent {
                name: "Ava".into(),
                voice_id: "voice_sarah".into(),
                greeting: Some(GREETING.into()),
                prompt: Some("You call businesses and get through their phone menus.".into()),
                knowledge_base_id: None,
                phone_number: Some(AGENT_PHONE.into()),
                transfer_targets: Vec::new(),
                llm: Default::default(),
                tools: Vec::new(),
            },
        )
        .await
        .unwrap();
    Arc::new(CallServices {
        admission: Admission::from_config(&config),
        stt: Arc::new(ScriptedStt(MENU)),
        tts: Arc::new(HumTts),
        brain: build_brain(&config),
        config: Arc::new(config),
        store,
        drain: Default::default(),
    })
}

/// The finished call's turns as `(role, text)`.
fn turns(call: &CallRecord) -> Vec<(String, String)> {
    call.transcript
        .iter()
        .map(|t| (t.role.clone(), t.text.clone()))
        .collect()
}

/// What the LLM was told its tool did.
fn tool_result(chat: &FakeChat) -> String {
    let requests = chat.requests.lock().unwrap().clone();
    let offered: Vec<String> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(offered.iter().any(|n| n == "send_dtmf"), "{offered:?}");
    requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn assert_keys_recorded(call: &CallRecord, chat: &FakeChat) {
    let turns = turns(call);
    assert_eq!(
        turns[0],
        ("agent".to_string(), GREETING.to_string()),
        "{turns:?}"
    );
    assert_eq!(
        turns[1],
        ("caller".to_string(), MENU.to_string()),
        "{turns:?}"
    );
    assert_eq!(
        turns[2],
        ("agent".to_string(), format!("[DTMF:{KEYS}]")),
        "{turns:?}"
    );
    let result = tool_result(chat);
    assert!(result.contains("\"digits\":\"1#\""), "{result}");
    assert!(result.contains("queued"), "{result}");
}

// ---- Twilio Media Streams: keys in band ----

/// Plays `mulaw` to the engine in real time and decodes the agent's audio as it arrives.
async fn exchange(caller: &mut Caller, mulaw: &[u8], heard: &mut Vec<i16>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (n, chunk) in mulaw.chunks(160).enumerate() {
        tick.tick().await;
        let msg = json!({"event": "media", "sequenceNumber": n.to_string(), "streamSid": "MZ0001",
            "media": {"track": "inbound", "chunk": n.to_string(), "timestamp": (n * 20).to_string(),
                      "payload": BASE64.encode(chunk)}});
        caller
            .ws
            .send(WsMessage::Text(msg.to_string().into()))
            .await
            .unwrap();
        while let Some(Some(Ok(WsMessage::Text(text)))) = caller.ws.next().now_or_never() {
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["event"] == "media" {
                let bytes = BASE64
                    .decode(v["media"]["payload"].as_str().unwrap())
                    .unwrap();
                let mut pcm = vec![0i16; bytes.len()];
                media::g711::decode_ulaw(&bytes, &mut pcm).unwrap();
                heard.extend_from_slice(&pcm);
            }
        }
    }
}

/// The keys a Goertzel detector hears in 8 kHz audio.
fn keys_in(pcm: &[i16]) -> String {
    let mut detector = ToneDetector::new(8_000);
    pcm.chunks_exact(160)
        .filter_map(|c| detector.process(&Frame::from_slice(8_000, c).unwrap()))
        .collect()
}

#[tokio::test]
async fn over_a_media_stream_the_keys_are_tones_after_the_agents_words() {
    let chat = chat().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let services = services(&chat, |config| {
        config.public_url = Some(format!("http://{addr}"));
        config.twilio_allow_unsigned = true;
    })
    .await;
    let store = services.store.clone();
    let router = boltcall::telephony::twilio::router(services);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut caller = Caller::dial(&format!("http://{addr}"), CALLER_PHONE, AGENT_PHONE).await;
    let mut heard = Vec::new();
    exchange(&mut caller, &[0xFF; 8_000], &mut heard).await;
    let before_menu = heard.len();
    exchange(&mut caller, &caller_question(), &mut heard).await;
    // Endpointing, the LLM's two rounds, the keys: well within four seconds.
    exchange(&mut caller, &[0xFF; 32_000], &mut heard).await;
    caller.hang_up().await;

    assert!(before_menu > 0, "the greeting was heard");
    assert_eq!(keys_in(&heard[..before_menu]), "");
    assert_eq!(keys_in(&heard), KEYS, "the keys are heard in the audio");
    assert_keys_recorded(&finished_call(&store).await, &chat);
}

// ---- SIP: keys as RFC 4733 telephone-events ----

/// A SIP caller on a UDP socket, offering PCMU and telephone-event/8000 (payload type 101).
struct SipCaller {
    socket: UdpSocket,
    engine: SocketAddr,
    call_id: String,
    tag: String,
    cseq: u32,
}

impl SipCaller {
    async fn new(engine: SocketAddr) -> Self {
        SipCaller {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            engine,
            call_id: format!("dtmf-{:x}", rand::random::<u64>()),
            tag: format!("{:x}", rand::random::<u32>()),
            cseq: 0,
        }
    }

    fn request(&mut self, method: &str, to: &str, body: &str) -> String {
        if method != "ACK" {
            self.cseq += 1;
        }
        let local = self.socket.local_addr().unwrap();
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:{AGENT_PHONE}@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch:x}\r\n\
             From: <sip:{CALLER_PHONE}@{local}>;tag={tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:caller@{local}>\r\nMax-Forwards: 70\r\n\
             {content_type}Content-Length: {len}\r\n\r\n{body}",
            engine = self.engine,
            branch = rand::random::<u64>(),
            tag = self.tag,
            call_id = self.call_id,
            cseq = self.cseq,
            len = body.len(),
        )
    }

    async fn send(&self, text: &str) {
        self.socket
            .send_to(text.as_bytes(), self.engine)
            .await
            .unwrap();
    }

    async fn final_response(&self, method: &str) -> String {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, _) = timeout(WAIT, self.socket.recv_from(&mut buf))
                .await
                .expect("the engine answered")
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let code: u16 = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|rest| rest.get(..3))
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            if code >= 200 && text.contains(&format!("{} {method}", self.cseq)) {
                return text;
            }
        }
    }

    /// Calls the agent offering media at `media`; returns the engine's To and RTP address.
    async fn call(&mut self, media: SocketAddr) -> (String, SocketAddr) {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
            port = media.port()
        );
        let to = format!("<sip:{AGENT_PHONE}@{}>", self.engine);
        let invite = self.request("INVITE", &to, &sdp);
        self.send(&invite).await;
        let ok = self.final_response("INVITE").await;
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
        let line = |prefix: &str| {
            ok.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {ok}"))
                .trim()
                .to_string()
        };
        let to = line("To:");
        assert!(ok.contains("telephone-event/8000"), "{ok}");
        let port = line("m=audio ");
        let port = port.split(' ').next().unwrap();
        let engine_media = format!("{}:{port}", line("c=IN IP4 ")).parse().unwrap();
        let ack = self.request("ACK", &to, "");
        self.send(&ack).await;
        (to, engine_media)
    }

    async fn bye(&mut self, to: &str) {
        let bye = self.request("BYE", to, "");
        self.send(&bye).await;
        let ok = self.final_response("BYE").await;
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    }
}

/// One packet the engine sent.
struct Received {
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

/// Sends `mulaw` as 20 ms PCMU packets in real time, keeping every packet the engine sends.
async fn talk(
    socket: &UdpSocket,
    engine: SocketAddr,
    mulaw: &[u8],
    sequence: &mut u16,
    received: &mut Vec<Received>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut buf = [0u8; 2048];
    for chunk in mulaw.chunks(160) {
        tick.tick().await;
        let mut packet = vec![0x80, 0];
        packet.extend_from_slice(&sequence.to_be_bytes());
        packet.extend_from_slice(&(u32::from(*sequence) * 160).to_be_bytes());
        packet.extend_from_slice(&0x5eed_u32.to_be_bytes());
        packet.extend_from_slice(chunk);
        *sequence = sequence.wrapping_add(1);
        socket.send_to(&packet, engine).await.unwrap();
        while let Ok((n, _)) = socket.try_recv_from(&mut buf) {
            let view = media::rtp::parse(&buf[..n]).expect("the engine sends valid RTP");
            received.push(Received {
                payload_type: view.payload_type,
                marker: view.marker,
                sequence: view.sequence_number,
                timestamp: view.timestamp,
                ssrc: view.ssrc,
                payload: view.payload.to_vec(),
            });
        }
    }
}

#[tokio::test]
async fn over_sip_the_keys_are_rfc_4733_events_in_the_calls_rtp_stream() {
    let chat = chat().await;
    let services = services(&chat, |_| {}).await;
    let store = services.store.clone();
    let run_services = services.clone();
    let routing = StoreRouting {
        store: services.store.clone(),
        admission: services.admission.clone(),
        run: Arc::new(move |leg, route| {
            tokio::spawn(run_call(run_services.clone(), leg, route));
        }),
    };
    let sip = SipService::start(sip_support::settings(), Arc::new(routing))
        .await
        .unwrap();

    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut caller = SipCaller::new(sip.local_addr()).await;
    let (to, engine_media) = caller.call(media.local_addr().unwrap()).await;
    let mut received = Vec::new();
    let mut sequence = 1u16;
    talk(
        &media,
        engine_media,
        &[0xFF; 8_000],
        &mut sequence,
        &mut received,
    )
    .await;
    let before_menu = received.len();
    talk(
        &media,
        engine_media,
        &caller_question(),
        &mut sequence,
        &mut received,
    )
    .await;
    talk(
        &media,
        engine_media,
        &[0xFF; 32_000],
        &mut sequence,
        &mut received,
    )
    .await;
    caller.bye(&to).await;

    // The stream is steady all call long: the session sends the agent's speech and keys, and
    // the bridge fills the quiet periods between with silence.
    let periods = (8_000 + caller_question().len() + 32_000) / 160;
    assert!(
        received.len() * 10 >= periods * 9,
        "{} packets over {periods} frame periods",
        received.len()
    );
    let events: Vec<&Received> = received.iter().filter(|p| p.payload_type == 101).collect();
    let mut receiver = DtmfReceiver::default();
    let keys: String = events
        .iter()
        .filter_map(|p| receiver.receive(p.timestamp, &p.payload))
        .collect();
    assert_eq!(keys, KEYS, "the keys arrive as telephone-events");
    assert!(before_menu > 0, "the greeting was heard");
    assert!(
        received[..before_menu].iter().all(|p| p.payload_type == 0),
        "no key before the caller spoke"
    );
    // Two keys of 4 updates and 3 end packets each, in the call's own stream: its SSRC, its
    // sequence numbers running on without a gap.
    assert_eq!(events.len(), 14);
    assert!(received.iter().all(|p| p.ssrc == received[0].ssrc));
    for pair in received.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
    }
    for key in events.chunks(7) {
        assert!(key[0].marker && key[1..].iter().all(|p| !p.marker));
        assert!(key.iter().all(|p| p.timestamp == key[0].timestamp));
        let durations: Vec<u16> = key
            .iter()
            .map(|p| u16::from_be_bytes([p.payload[2], p.payload[3]]))
            .collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = key.iter().map(|p| p.payload[1] & 0x80 != 0).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
    }
    assert_eq!(
        events[7].timestamp.wrapping_sub(events[0].timestamp),
        1_600,
        "one key every 200 ms"
    );

    let call = finished_call(&store).await;
    assert_eq!(call.end_reason.as_deref(), Some("caller_hangup"));
    assert_keys_recorded(&call, &chat);
}
