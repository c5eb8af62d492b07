//! baresip, a real SIP user agent, calls an agent of a spawned `boltcall serve` running the
//! offline speech stack (Whisper, Piper, the offline brain). baresip's microphone is a silent
//! WAV file (`aufile`) and its `sndfile` filter records what it hears; the test waits for the
//! agent's greeting in that recording, hangs up, and checks the call in `/v1/calls`.
//!
//! Needs the `baresip` and `sox` packages (CI installs them) and the offline models, which
//! install on first use like in the other speech tests.

mod common;
mod speech_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ServeProcess, TestDb, binary, run_cli};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

const AGENT_PHONE: &str = "+14155550100";
/// One sentence, so Piper speaks it without a pause a slow machine could stretch.
const GREETING: &str = "Thanks for calling Bright Smile Dental, how can I help you today?";
/// Generous bounds for a loaded 2-core CI machine; nothing here measures speed.
const START_DEADLINE: Duration = Duration::from_secs(900);
const CALL_DEADLINE: Duration = Duration::from_secs(120);
/// A frame above this RMS is speech; μ-law silence decodes to (near) zero.
const LOUD_RMS: f64 = 300.0;
/// Silence that ends the greeting (Piper's pauses inside one sentence are far shorter).
const GAP_FRAMES: usize = 50;

/// A UDP port free right now whose TCP twin is free too (the SIP service binds both).
fn free_sip_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn require(binary: &str) -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| Path::new(dir).join(binary))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("`{binary}` is required (Debian package `{binary}`)"))
}

struct Engine {
    process: ServeProcess,
    sip_port: u16,
    key: String,
    log: PathBuf,
    _db: TestDb,
}

impl Engine {
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.process.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("engine answers")
            .json()
            .await
            .expect("JSON")
    }
}

/// `boltcall serve` on free ports over a fresh database, with an agent on `AGENT_PHONE`.
async fn start_engine(dir: &Path) -> Engine {
    // Install the models here, shared with the speech tests, so `serve` starts quickly.
    let data_dir = speech_support::config().data_dir;
    boltcall::providers::models::ensure_installed(&data_dir)
        .await
        .expect("offline models install");
    let db = TestDb::create(dir).await;
    let data = data_dir.display().to_string();
    let env = [
        ("BOLTCALL_DATABASE_URL", db.url.as_str()),
        ("BOLTCALL_DATA_DIR", data.as_str()),
    ];
    let (ok, _, stderr) = run_cli(&["migrate"], &env);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = run_cli(
        &["keys", "create", "--plan", "pro", "--workspace", "acme"],
        &env,
    );
    assert!(ok, "{stderr}");
    let key = stdout.trim().to_string();

    let http_addr = format!("127.0.0.1:{}", common::free_port());
    let sip_port = free_sip_port();
    let log = dir.join("serve.log");
    let child = Command::new(binary())
        .arg("serve")
        .envs(env)
        .env("BOLTCALL_HTTP_ADDR", &http_addr)
        .env("BOLTCALL_SIP_ADDR", format!("127.0.0.1:{sip_port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn boltcall serve");
    let engine = Engine {
        process: ServeProcess {
            base: format!("http://{http_addr}"),
            child,
        },
        sip_port,
        key,
        log,
        _db: db,
    };
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("{}/v1/voices", engine.process.base))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < START_DEADLINE,
            "serve did not start:\n{}",
            engine.log_tail()
        );
        sleep(Duration::from_millis(200)).await;
    }
    let agent = http
        .post(format!("{}/v1/agents", engine.process.base))
        .bearer_auth(&engine.key)
        .json(&json!({
            "name": "Sarah",
            "voice_id": "voice_sarah",
            "greeting": GREETING,
            "phone_number": AGENT_PHONE,
        }))
        .send()
        .await
        .unwrap();
    assert!(agent.status().is_success(), "{:?}", agent.text().await);
    engine
}

/// baresip as the caller: no sound card, UDP SIP on loopback, `mic.wav` as the microphone,
/// decoded audio dumped into `dir` by `sndfile`.
fn baresip_config(dir: &Path, codec_module: &str) {
    let mic = dir.join("mic.wav");
    // Ninety seconds of silence: baresip hangs up when the file ends, a backstop for the test.
    let status = Command::new(require("sox"))
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&mic)
        .args(["trim", "0", "90"])
        .status()
        .unwrap();
    assert!(status.success(), "sox failed");
    let config = format!(
        "poll_method epoll\n\
         sip_listen 127.0.0.1:{sip}\n\
         audio_source aufile,{mic}\n\
         audio_player aubridge,speaker\n\
         audio_alert aubridge,speaker\n\
         ausrc_srate 8000\n\
         ausrc_channels 1\n\
         module_path /usr/lib/baresip/modules\n\
         module {codec_module}\n\
         module aufile.so\n\
         module aubridge.so\n\
         module sndfile.so\n\
         module_app account.so\n\
         module_app menu.so\n\
         snd_path {dir}\n",
        sip = free_sip_port(),
        mic = mic.display(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("accounts"), "<sip:caller@127.0.0.1>;regint=0\n").unwrap();
}

fn dial(dir: &Path, engine: &Engine) -> Child {
    Command::new(require("baresip"))
        .arg("-f")
        .arg(dir)
        .arg("-e")
        .arg(format!(
            "/dial sip:{AGENT_PHONE}@127.0.0.1:{}",
            engine.sip_port
        ))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("baresip.log")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip")
}

/// The mono samples and rate of a WAV that may still be growing (header sizes not final).
fn read_growing_wav(path: &Path) -> Option<(u32, Vec<i16>)> {
    let bytes = std::fs::read(path).ok()?;
    let mut at = 12;
    let (mut rate, mut channels) = (0u32, 1usize);
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        if id == b"fmt " && body + 8 <= bytes.len() {
            channels = u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]).max(1) as usize;
            rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into().ok()?);
        } else if id == b"data" {
            let samples = bytes[body..]
                .chunks_exact(2 * channels)
                .map(|frame| i16::from_le_bytes([frame[0], frame[1]]))
                .collect();
            return (rate > 0).then_some((rate, samples));
        }
        at = body + len + len % 2;
    }
    None
}

/// Frame loudness of what baresip heard so far: one flag per 20 ms.
fn loud_frames(dir: &Path) -> Vec<bool> {
    let dump = std::fs::read_dir(dir).ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
    });
    let Some((rate, samples)) = dump.and_then(|p| read_growing_wav(&p)) else {
        return Vec::new();
    };
    samples
        .chunks_exact(rate as usize / 50)
        .map(|frame| {
            let energy: f64 = frame.iter().map(|&s| f64::from(s).powi(2)).sum();
            (energy / frame.len() as f64).sqrt() > LOUD_RMS
        })
        .collect()
}

/// The first stretch of sound, in frames, once a second of silence has closed it.
fn greeting_frames(loud: &[bool]) -> Option<usize> {
    let start = loud.iter().position(|&l| l)?;
    let mut quiet = 0;
    for (i, &l) in loud.iter().enumerate().skip(start) {
        quiet = if l { 0 } else { quiet + 1 };
        if quiet == GAP_FRAMES {
            return Some(i + 1 - GAP_FRAMES - start);
        }
    }
    None
}

fn hang_up(baresip: &mut Child) {
    // SIGTERM: baresip sends BYE and exits once the call has ended.
    let _ = Command::new("kill")
        .args(["-TERM", &baresip.id().to_string()])
        .status();
}

/// One call from baresip with `codec_module` loaded; `decoder` is the codec baresip must
/// report having agreed on (`PCMU`, `opus`).
async fn call_through_baresip(codec_module: &str, decoder: &str) {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(dir.path()).await;
    let phone = dir.path().join("baresip");
    std::fs::create_dir_all(&phone).unwrap();
    baresip_config(&phone, codec_module);
    let mut baresip = dial(&phone, &engine);
    let baresip_log = || std::fs::read_to_string(phone.join("baresip.log")).unwrap_or_default();

    let started = Instant::now();
    let greeting = loop {
        if let Some(frames) = greeting_frames(&loud_frames(&phone)) {
            break frames;
        }
        if started.elapsed() > CALL_DEADLINE || baresip.try_wait().unwrap().is_some() {
            let _ = baresip.kill();
            panic!(
                "no greeting heard\nbaresip:\n{}\nserve:\n{}",
                baresip_log(),
                engine.log_tail()
            );
        }
        sleep(Duration::from_millis(250)).await;
    };
    hang_up(&mut baresip);
    let started = Instant::now();
    while baresip.try_wait().unwrap().is_none() {
        if started.elapsed() > CALL_DEADLINE {
            let _ = baresip.kill();
            panic!("baresip did not hang up:\n{}", baresip_log());
        }
        sleep(Duration::from_millis(100)).await;
    }
    let log = baresip_log();
    assert!(
        log.contains(&format!("Set audio decoder: {decoder} ")),
        "{log}"
    );
    // Piper speaks the sentence in about three seconds at normal rate.
    let seconds = greeting as f64 / 50.0;
    assert!(
        (1.5..=15.0).contains(&seconds),
        "greeting lasted {seconds} s"
    );

    let started = Instant::now();
    let call = loop {
        let calls = engine.get("/v1/calls").await;
        let done = calls["data"].as_array().and_then(|calls| {
            calls
                .iter()
                .find(|c| c["to"] == AGENT_PHONE && c["status"] == "completed")
                .cloned()
        });
        if let Some(call) = done {
            break call;
        }
        assert!(
            started.elapsed() < CALL_DEADLINE,
            "the call did not complete: {calls}\n{}",
            engine.log_tail()
        );
        sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(call["direction"], "inbound", "{call}");
    assert_eq!(call["caller"], "caller", "{call}");
    let transcript = call["transcript"].as_array().expect("transcript");
    println!("greeting heard for {seconds:.1} s; transcript {transcript:?}");
    let first = &transcript.first().expect("a transcript entry")["text"];
    assert_eq!(first, GREETING, "{call}");
    assert_eq!(transcript[0]["role"], "agent", "{call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_hears_the_greeting_and_the_call_is_recorded() {
    call_through_baresip("g711.so", "PCMU").await;
}

/// baresip offers opus/48000/2 first: the call runs on Opus end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_over_opus_hears_the_greeting() {
    call_through_baresip("opus.so", "opus").await;
}
