//! A real `boltcall serve` process with live calls — one over SIP (sipp), one over Twilio Media
//! Streams (a WebSocket client) — is stopped two ways:
//! - SIGTERM: new calls are refused, the live ones get the agent's goodbye, a BYE and a
//!   closed stream, and their rows are completed with their transcripts before the exit;
//! - `kill -9`, then a restart: the restarted engine finishes the calls the dead one left
//!   in progress, with the transcript journaled so far, a playable recording, billed
//!   minutes and `call.completed`.
//!
//! Runs on SQLite, and on PostgreSQL with `BOLTCALL_TEST_DATABASE_URL`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use boltcall::store::{CallRecord, NewAgent, PageRequest, Scope, Store};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const AGENT_PHONE: &str = "+15550200";
const GREETING: &str = "Hello, this is Ava.";

fn scope() -> Scope {
    Scope {
        workspace_id: "default".into(),
        live: true,
    }
}

struct Setup {
    dir: tempfile::TempDir,
    db: common::TestDb,
    store: Store,
    http_port: u16,
    sip_port: u16,
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let db = common::TestDb::create(dir.path()).await;
        let store = Store::connect(&db.url).await.unwrap();
        store
            .create_agent(
                &scope(),
                NewAgent {
                    name: "Ava".into(),
                    voice_id: "voice_sarah".into(),
                    greeting: Some(GREETING.into()),
                    prompt: None,
                    knowledge_base_id: None,
                    phone_number: Some(AGENT_PHONE.into()),
                    transfer_targets: Vec::new(),
                    llm: Default::default(),
                    tools: Vec::new(),
                },
            )
            .await
            .unwrap();
        // Two seconds of μ-law silence for sipp to loop.
        std::fs::write(dir.path().join("silence.ul"), vec![0xFFu8; 16_000]).unwrap();
        Setup {
            dir,
            db,
            store,
            http_port: common::free_port(),
            sip_port: common::free_port(),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Starts `boltcall serve` and waits until it answers HTTP (model loading included).
    async fn serve(&self, run: &str) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("serve-{run}.log"))).unwrap();
        let mut child = Command::new(common::binary())
            .arg("serve")
            .env(
                "BOLTCALL_HTTP_ADDR",
                format!("127.0.0.1:{}", self.http_port),
            )
            .env("BOLTCALL_SIP_ADDR", format!("127.0.0.1:{}", self.sip_port))
            .env("BOLTCALL_DATABASE_URL", &self.db.url)
            .env("BOLTCALL_DATA_DIR", self.dir.path().join("data"))
            .env("BOLTCALL_INSTANCE_ID", "node-under-test")
            .env("BOLTCALL_TTS", "espeak")
            .env("BOLTCALL_SHUTDOWN_GRACE_SECS", "1")
            .env("BOLTCALL_IDLE_REPROMPT_SECS", "120")
            .env("BOLTCALL_IDLE_HANGUP_SECS", "120")
            .env("BOLTCALL_TWILIO_ALLOW_UNSIGNED", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn boltcall serve");
        let http = reqwest::Client::new();
        for _ in 0..1200 {
            if http
                .get(format!("{}/v1/voices", self.base()))
                .send()
                .await
                .is_ok()
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("boltcall serve did not start:\n{}", self.log(run));
    }

    fn log(&self, run: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("serve-{run}.log")))
            .unwrap_or_default()
    }

    fn recording(&self, call_id: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/recordings")
            .join(format!("{call_id}.wav"))
    }

    async fn calls(&self) -> Vec<CallRecord> {
        self.store
            .list_calls(
                &scope(),
                &Default::default(),
                PageRequest { page: 1, limit: 10 },
            )
            .await
            .unwrap()
            .items
    }

    /// Waits until `n` calls are in progress, each with its greeting journaled and more
    /// than a second of recording on disk.
    async fn live_calls(&self, n: usize, run: &str) -> Vec<CallRecord> {
        for _ in 0..600 {
            let calls: Vec<CallRecord> = self
                .calls()
                .await
                .into_iter()
                .filter(|c| c.status == "in-progress")
                .collect();
            let mut ready = calls.len() == n;
            for call in &calls {
                let turns = self.store.journaled_turns(&call.id).await.unwrap();
                let audio = std::fs::metadata(self.recording(&call.id)).map_or(0, |m| m.len());
                ready &= !turns.is_empty() && audio > 44 + 64_000;
            }
            if ready {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{n} calls never became live:\n{}", self.log(run));
    }
}

/// sipp calls the agent and streams silence until the engine's BYE; `Ok` when it got one.
fn sip_call(setup: &Setup) -> tokio::process::Child {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip/uac_until_bye.xml");
    tokio::process::Command::new("sipp")
        .current_dir(setup.dir.path())
        .arg(format!("127.0.0.1:{}", setup.sip_port))
        .arg("-sf")
        .arg(scenario)
        .args(["-m", "1", "-l", "1", "-i", "127.0.0.1", "-nostdin"])
        .args(["-timeout", "90s", "-timeout_error"])
        .args(["-p", &common::free_port().to_string()])
        .args(["-mp", &common::free_port().to_string()])
        .args(["-s", AGENT_PHONE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (sip-tester)")
}

/// A Twilio Media Stream that sends silence until the engine closes it; returns whether the
/// engine closed it (rather than the socket failing) and how many agent frames it heard.
async fn twilio_call(base: String) -> (bool, usize) {
    let url = format!("{}/carrier/twilio/stream", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let text = |v: serde_json::Value| WsMessage::Text(v.to_string().into());
    ws.send(text(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
    ))
    .await
    .unwrap();
    ws.send(text(json!({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ0001",
        "start": {
            "accountSid": "AC0001", "streamSid": "MZ0001", "callSid": "CA0001",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"call_sid": "CA0001", "from": "+15550002000", "to": AGENT_PHONE}
        }
    })))
    .await
    .unwrap();
    let silence = BASE64.encode([0xFFu8; 160]);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut heard = 0;
    for n in 0.. {
        tokio::select! {
            _ = tick.tick() => {
                let media = json!({"event": "media", "streamSid": "MZ0001",
                    "media": {"track": "inbound", "chunk": n.to_string(),
                              "timestamp": (n * 20).to_string(), "payload": silence}});
                if ws.send(text(media)).await.is_err() {
                    return (false, heard);
                }
            }
            message = ws.next() => match message {
                Some(Ok(WsMessage::Text(_))) => heard += 1,
                Some(Ok(WsMessage::Close(_))) => return (true, heard),
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return (false, heard),
            },
        }
    }
    unreachable!()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("boltcall serve did not exit");
}

async fn completed_events(store: &Store) -> Vec<String> {
    store
        .recent_events(&scope(), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "call.completed")
        .map(|e| e.payload)
        .collect()
}

fn agent_lines(call: &CallRecord) -> Vec<&str> {
    call.transcript
        .0
        .iter()
        .filter(|t| t.role == "agent")
        .map(|t| t.text.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_says_goodbye_hangs_up_and_records_every_live_call() {
    let setup = Setup::new().await;
    let mut engine = setup.serve("term").await;
    let sipp = sip_call(&setup);
    let twilio = tokio::spawn(twilio_call(setup.base()));
    let live = setup.live_calls(2, "term").await;

    signal(&engine, "TERM");
    // Draining: new calls are refused while the live ones are closing.
    let http = reqwest::Client::new();
    let mut refused = false;
    for _ in 0..200 {
        let response = http
            .post(format!("{}/carrier/twilio/voice", setup.base()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([
                    ("CallSid", "CA0002"),
                    ("From", "+15550003000"),
                    ("To", AGENT_PHONE),
                ])
                .unwrap(),
            )
            .send()
            .await;
        match response.map(|r| r.status().as_u16()) {
            Ok(503) => {
                refused = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => break,
        }
    }
    assert!(refused, "a new call was never refused while draining");

    let sipp = sipp.wait_with_output().await.unwrap();
    assert!(
        sipp.status.success(),
        "sipp never got the BYE:\n{}",
        setup.log("term")
    );
    let (closed, heard) = twilio.await.unwrap();
    assert!(closed, "the Twilio stream was not closed by the engine");
    assert!(heard > 50, "the Twilio caller heard {heard} agent frames");
    let status = wait_exit(&mut engine).await;
    assert!(status.success(), "exit {status:?}:\n{}", setup.log("term"));

    let events = completed_events(&setup.store).await;
    for before in live {
        let call = setup
            .store
            .get_call(&scope(), &before.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(call.status, "completed", "{call:?}");
        assert_eq!(call.end_reason.as_deref(), Some("engine_shutdown"));
        assert!(call.ended_at.is_some() && call.duration_seconds.unwrap_or(0) >= 1);
        let said = agent_lines(&call);
        assert_eq!(said.first(), Some(&GREETING), "{said:?}");
        assert!(
            said.last().is_some_and(|l| l.contains("end the call now")),
            "{said:?}"
        );
        let wav = hound::WavReader::open(setup.recording(&call.id)).unwrap();
        assert!(wav.duration() > 16_000);
        assert!(
            events.iter().any(|e| e.contains(&call.id)),
            "no call.completed for {}",
            call.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_the_next_start_finishes_the_interrupted_calls() {
    let setup = Setup::new().await;
    let mut engine = setup.serve("crash").await;
    let sipp = sip_call(&setup);
    let twilio = tokio::spawn(twilio_call(setup.base()));
    let live = setup.live_calls(2, "crash").await;

    engine.kill().unwrap(); // SIGKILL: nothing runs after it
    engine.wait().unwrap();
    drop(sipp);
    twilio.abort();
    for call in &live {
        let row = setup
            .store
            .get_call(&scope(), &call.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.status, "in-progress",
            "nothing finished the call before the restart"
        );
    }

    let mut engine = setup.serve("restart").await;
    let events = completed_events(&setup.store).await;
    let mut billed_seconds = 0;
    for before in &live {
        let call = setup
            .store
            .get_call(&scope(), &before.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(call.status, "failed", "{call:?}");
        assert_eq!(call.end_reason.as_deref(), Some("engine_crashed"));
        assert!(call.ended_at.is_some());
        let duration = call.duration_seconds.unwrap_or(0);
        assert!(duration >= 1, "{call:?}");
        billed_seconds += duration;
        assert_eq!(agent_lines(&call).first(), Some(&GREETING));
        assert!(call.summary.is_some());
        let path = call.recording_path.clone().expect("recording kept");
        let wav = hound::WavReader::open(&path).unwrap();
        let bytes = std::fs::metadata(&path).unwrap().len();
        // The header now covers every whole frame on disk: it plays to the end.
        assert_eq!(u64::from(wav.duration()) * 4 + 44, bytes);
        assert!(wav.duration() > 16_000);
        assert!(
            events.iter().any(|e| e.contains(&call.id)),
            "no call.completed for {}",
            call.id
        );
    }
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (minutes, _, _) = setup.store.usage(&scope(), &day, &day).await.unwrap();
    assert!(
        minutes >= 2 && minutes * 60 >= billed_seconds,
        "{minutes} minutes billed"
    );

    signal(&engine, "TERM");
    assert!(wait_exit(&mut engine).await.success());
}
