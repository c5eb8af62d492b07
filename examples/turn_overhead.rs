//! What the engine adds to a turn when its providers answer at once. Starts local stand-ins for
//! Deepgram, an OpenAI-compatible LLM and ElevenLabs (their real wire protocols), runs the real
//! `boltcall serve` against them, and places Twilio Media Streams calls in which the caller asks
//! several questions. Reports, per turn:
//! - engine overhead: end of turn decided → first agent audio handed to the pacer
//!   (`first_media_out_ms` of the call record), with instant providers;
//! - overlap: how long the LLM was still generating after the caller heard the reply's first
//!   audio (the first sentence is spoken while the rest is written).
//!
//! `cargo build --release --bin boltcall --example turn_overhead && target/release/examples/turn_overhead --calls 10 --turns 3`

#[allow(dead_code)]
#[path = "../tests/call_fakes/mod.rs"]
mod call_fakes;
#[allow(dead_code)]
#[path = "../tests/tts_fakes/mod.rs"]
mod tts_fakes;
#[allow(dead_code)]
#[path = "../tests/common/twilio_caller.rs"]
mod twilio_caller;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use call_fakes::chat::{FakeChat, Reply};
use call_fakes::deepgram_script::ScriptedDeepgram;
use serde_json::{Value, json};
use tts_fakes::elevenlabs::{self, Behaviour, FakeElevenLabs};
use twilio_caller::{Caller, caller_question};

const AGENT_PHONE: &str = "+14155550100";
const CALLER_PHONE: &str = "+14155550199";
const HTTP_ADDR: &str = "127.0.0.1:18282";
/// The reply's sentences arrive this far apart: about 40 tokens/s for 12-token sentences.
const SENTENCE_GAP: Duration = Duration::from_millis(300);

struct Args {
    calls: usize,
    turns: usize,
    bin_dir: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        calls: 10,
        turns: 3,
        // Examples live in `target/<profile>/examples/`, the engine in `target/<profile>/`.
        bin_dir: std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .context("no parent directory")?
            .to_path_buf(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--calls" => args.calls = value.parse()?,
            "--turns" => args.turns = value.parse()?,
            "--bin-dir" => args.bin_dir = value.into(),
            other => anyhow::bail!("unknown flag {other} (--calls N --turns N --bin-dir DIR)"),
        }
    }
    Ok(args)
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let lines: Vec<String> = (0..args.calls * args.turns)
        .map(|n| format!("Question number {n}, what are your opening hours?"))
        .collect();
    let line_refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let deepgram = ScriptedDeepgram::start(&line_refs).await;
    let elevenlabs = FakeElevenLabs::start(vec![Behaviour::Speak {
        batch: 1,
        gate: None,
    }])
    .await;
    let chat = FakeChat::start_with(|request| {
        Some(if request["response_format"]["type"] == "json_object" {
            Reply::Json(json!({"summary": "Caller asked about opening hours.",
                               "sentiment": "neutral", "tags": ["hours"],
                               "outcome": {"result": "question-answered", "follow_up": null}}))
        } else {
            Reply::Says(
                vec![
                    "We're open eight to six on weekdays. ",
                    "On Saturdays we open from nine to one. ",
                    "Is there anything else I can help you with?",
                ],
                SENTENCE_GAP,
            )
        })
    })
    .await;

    let work = tempfile::tempdir()?;
    let env: Vec<(&str, String)> = vec![
        (
            "BOLTCALL_DATABASE_URL",
            format!("sqlite://{}/bench.db", work.path().display()),
        ),
        (
            "BOLTCALL_DATA_DIR",
            work.path().join("data").display().to_string(),
        ),
        ("BOLTCALL_HTTP_ADDR", HTTP_ADDR.into()),
        ("BOLTCALL_SIP_ADDR", "127.0.0.1:15262".into()),
        ("BOLTCALL_RATE_LIMIT", "off".into()),
        ("BOLTCALL_TWILIO_ALLOW_UNSIGNED", "1".into()),
        ("BOLTCALL_STT", "deepgram".into()),
        ("DEEPGRAM_API_KEY", "dg-bench".into()),
        ("BOLTCALL_DEEPGRAM_BASE_URL", deepgram.base_url.clone()),
        ("BOLTCALL_TTS", "elevenlabs".into()),
        ("ELEVENLABS_API_KEY", elevenlabs::API_KEY.into()),
        ("BOLTCALL_ELEVENLABS_BASE_URL", elevenlabs.base_url.clone()),
        ("BOLTCALL_LLM_BASE_URL", chat.base_url.clone()),
        ("BOLTCALL_LLM_API_KEY", "sk-bench".into()),
    ];
    let engine = args.bin_dir.join("boltcall");
    let created = Command::new(&engine)
        .args(["keys", "create", "--plan", "elite"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .with_context(|| format!("running {}", engine.display()))?;
    let key = String::from_utf8_lossy(&created.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("sk_live_"))
        .context("`boltcall keys create` printed no key")?
        .to_string();
    let _serve = Serve(
        Command::new(&engine)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://{HTTP_ADDR}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("{base}/v1/voices"))
        .bearer_auth(&key)
        .send()
        .await
        .is_err()
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let agent: Value = http
        .post(format!("{base}/v1/agents"))
        .bearer_auth(&key)
        .json(&json!({"name": "Front desk", "voice_id": "voice_james",
                      "phone_number": AGENT_PHONE, "greeting": "Thanks for calling."}))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(agent["id"].is_string(), "agent not created: {agent}");

    let question = caller_question();
    let mut heard_first_audio = Vec::new();
    for _ in 0..args.calls {
        let mut caller = Caller::dial(&base, CALLER_PHONE, AGENT_PHONE).await;
        caller.silence(1.5).await;
        for _ in 0..args.turns {
            caller.play(&question).await;
            let before = caller.sound_at.len();
            caller.silence(2.5).await;
            heard_first_audio.push(caller.sound_at.get(before).copied());
        }
        caller.hang_up().await;
    }
    // The record is written when the session ends, just after the hang-up.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let calls: Value = http
        .get(format!("{base}/v1/calls?limit=100"))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    let mut overhead: Vec<f64> = Vec::new();
    let mut voice_to_voice: Vec<f64> = Vec::new();
    for call in calls["data"].as_array().into_iter().flatten() {
        let id = call["id"].as_str().unwrap_or_default();
        let detail: Value = http
            .get(format!("{base}/v1/calls/{id}"))
            .bearer_auth(&key)
            .send()
            .await?
            .json()
            .await?;
        for turn in detail["latency"]["turns"].as_array().into_iter().flatten() {
            if let Some(ms) = turn["first_media_out_ms"].as_f64() {
                overhead.push(ms);
            }
            if let Some(ms) = turn["voice_to_voice_ms"].as_f64() {
                voice_to_voice.push(ms);
            }
        }
    }
    // Streams are answered in order, one reply per caller turn (the analyses are not streams).
    let streams: Vec<_> = chat
        .timings
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| t.first_content.is_some())
        .collect();
    let mut overlap: Vec<f64> = Vec::new();
    let mut generation: Vec<f64> = Vec::new();
    for (stream, heard) in streams.iter().zip(&heard_first_audio) {
        if let (Some(heard), Some(first)) = (heard, stream.first_content) {
            overlap.push(signed_ms(stream.done, *heard));
            generation.push(signed_ms(stream.done, first));
        }
    }
    println!(
        "{} calls × {} turns through `boltcall serve` ({} turns measured)",
        args.calls,
        args.turns,
        overhead.len()
    );
    report(
        "engine overhead, end of turn → first media out (ms)",
        &mut overhead,
    );
    report(
        "voice to voice, caller's speech end → first agent audio (ms)",
        &mut voice_to_voice,
    );
    report("LLM generation, first token → last (ms)", &mut generation);
    report(
        "LLM still generating after the caller heard the first audio (ms)",
        &mut overlap,
    );
    Ok(())
}

/// `a - b` in ms, negative when `a` is earlier.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        (a - b).as_secs_f64() * 1000.0
    } else {
        -((b - a).as_secs_f64() * 1000.0)
    }
}

fn report(what: &str, values: &mut [f64]) {
    if values.is_empty() {
        println!("{what}: no samples");
        return;
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    println!(
        "{what}: p50 {:.0}, p99 {:.0}, max {:.0} (n = {})",
        at(0.5),
        at(0.99),
        values[values.len() - 1],
        values.len()
    );
}
