//! Talking to an agent from the console in a real browser: Debian's chromium with a fake
//! microphone playing a recorded caller, over WebRTC to a real `boltcall serve` with the
//! offline speech stack. The agent's greeting and its answer arrive as audio (measured from the
//! page's WebRTC stats), both sides' words show as live captions, hanging up ends the call,
//! and the call is then in the console with its transcript and recording.
//!
//! `web_call_voice_to_voice_latency` (ignored: a benchmark, run it explicitly) measures end
//! of the caller's speech → first agent audio in the page over several calls.

mod common;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ServeProcess, TestDb, free_port, run_cli, spawn_binary};
use serde_json::{Value, json};
use webdriver::Browser;

const CALLER: &str = "fixtures/calls/opening_hours/caller.wav";

struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }
}

/// The engine and a signed-in link for it.
struct Engine {
    server: ServeProcess,
    api: Api,
    link: String,
    _db: TestDb,
    dir: tempfile::TempDir,
}

async fn engine() -> Engine {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(dir.path()).await;
    let data_dir = dir.path().join("data").display().to_string();
    let env = [
        ("BOLTCALL_DATABASE_URL", db.url.as_str()),
        ("BOLTCALL_DATA_DIR", data_dir.as_str()),
        ("BOLTCALL_RATE_LIMIT", "off"),
    ];
    let server = spawn_binary(&env).await;
    let mut console_env = env.to_vec();
    console_env.push(("BOLTCALL_PUBLIC_URL", server.base.as_str()));
    let (ok, stdout, stderr) = run_cli(&["console"], &console_env);
    assert!(ok, "{stderr}");
    let link = stdout.trim().to_string();
    let key = link
        .split_once("#key=")
        .unwrap_or_else(|| panic!("unexpected link {link:?}"))
        .1
        .to_string();
    let api = Api {
        base: server.base.clone(),
        key,
        http: reqwest::Client::new(),
    };
    Engine {
        server,
        api,
        link,
        _db: db,
        dir,
    }
}

/// A dental front desk whose knowledge base knows the opening hours.
async fn front_desk(api: &Api) -> String {
    let kb = api
        .send(
            reqwest::Method::POST,
            "/v1/knowledge_bases",
            Some(json!({"name": "Front desk"})),
        )
        .await;
    let kb_id = kb["id"].as_str().unwrap_or_else(|| panic!("{kb}"));
    let doc = api
        .send(
            reqwest::Method::POST,
            &format!("/v1/knowledge_bases/{kb_id}/documents"),
            Some(json!({"title": "Opening hours",
                        "text": "We are open Monday to Friday, 8 AM to 6 PM. On Saturdays we open 9 AM to 1 PM. We are closed on Sundays."})),
        )
        .await;
    assert!(doc["id"].is_string(), "{doc}");
    let agent = api
        .send(
            reqwest::Method::POST,
            "/v1/agents",
            Some(json!({"name": "Front desk", "voice_id": "voice_sarah",
                        "greeting": "Hello, thanks for calling Bright Dental. How can I help?",
                        "knowledge_base_id": kb_id})),
        )
        .await;
    agent["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{agent}"))
        .to_string()
}

/// The fake microphone's file: chromium wants 16-bit PCM WAV; the fixture resampled to 48 kHz,
/// from its start to `until` seconds, then silence long enough that the file never loops
/// during the call.
fn microphone(dir: &Path, until: f64) -> PathBuf {
    let wav = dir.join("caller-48k.wav");
    let status = std::process::Command::new("sox")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(CALLER))
        .args(["-r", "48000", "-b", "16", "-c", "1"])
        .arg(&wav)
        .args(["trim", "0", &until.to_string(), "pad", "0", "120"])
        .status()
        .expect("sox must be installed");
    assert!(status.success());
    wav
}

async fn browser_with_microphone(wav: &Path) -> Browser {
    Browser::start(
        free_port(),
        &[
            "--use-fake-ui-for-media-stream".to_string(),
            "--use-fake-device-for-media-stream".to_string(),
            format!("--use-file-for-fake-audio-capture={}", wav.display()),
        ],
    )
    .await
}

/// The agent's audio received so far by the page: `totalAudioEnergy` of the inbound RTP
/// audio stream (the sum of squared levels over seconds, 0 for silence).
const RECEIVED_ENERGY: &str = "return (async () => {
    if (!talk) return 0;
    const stats = await talk.pc.getStats();
    let energy = 0;
    stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') energy = s.totalAudioEnergy || 0; });
    return energy;
})()";

async fn received_energy(browser: &Browser) -> f64 {
    browser
        .eval(RECEIVED_ENERGY, vec![])
        .await
        .as_f64()
        .unwrap_or(0.0)
}

/// Waits until the page has received more than `above` of agent audio energy.
async fn wait_for_energy(browser: &Browser, what: &str, above: f64) -> f64 {
    for _ in 0..600 {
        let energy = received_energy(browser).await;
        if energy > above {
            return energy;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no {what}: the page received audio energy {} (needed more than {above})",
        received_energy(browser).await
    );
}

/// Waits until the agent's audio has stopped growing for a second: the reply heard to its end
/// (a caller who hangs up at its first syllable has heard no words of it).
async fn wait_for_quiet(browser: &Browser) {
    let mut last = received_energy(browser).await;
    let mut quiet_polls = 0;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let energy = received_energy(browser).await;
        quiet_polls = if energy - last < 1e-4 {
            quiet_polls + 1
        } else {
            0
        };
        last = energy;
        if quiet_polls >= 10 {
            return;
        }
    }
    panic!("the agent's audio never paused");
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn wait_for_call_end(api: &Api, call_id: &str) -> Value {
    for _ in 0..240 {
        let call = api
            .send(reqwest::Method::GET, &format!("/v1/calls/{call_id}"), None)
            .await;
        if call["ended_at"].is_string() && call["recording_url"].is_string() {
            return call;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("call {call_id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talking_to_an_agent_in_the_browser_is_a_call_with_captions_and_a_recording() {
    let engine = engine().await;
    let api = &engine.api;
    let agent_id = front_desk(api).await;
    // The greeting plays while the caller is silent; the question starts 7 s in.
    let wav = microphone(engine.dir.path(), 10.0);
    let browser = browser_with_microphone(&wav).await;
    // Signed in through the form this time (the link is `console_browser`'s subject).
    browser
        .goto(&format!(
            "{}/console#/agents/{agent_id}",
            engine.server.base
        ))
        .await;
    let key = browser.find("#api-key").await;
    browser.clear(&key).await;
    browser.type_text(&key, &api.key).await;
    let sign_in = browser.find("#sign-in button[type=submit]").await;
    browser.click(&sign_in).await;
    let talk = browser.find("#talk").await;
    browser.click(&talk).await;
    browser
        .wait_for(
            "the connected call",
            "return document.getElementById('talk-state').textContent.startsWith('Connected')",
        )
        .await;

    // The greeting arrives as sound, and as the agent's caption.
    let greeted = wait_for_energy(&browser, "greeting audio", 0.01).await;
    browser
        .wait_for(
            "the greeting's caption",
            "const a = document.querySelector('#captions li.agent'); return a && a.textContent.includes('Bright Dental')",
        )
        .await;
    // The caller's question shows as their caption, then the agent answers it aloud.
    let question = browser
        .wait_for(
            "the caller's caption",
            "const c = [...document.querySelectorAll('#captions li.caller')].pop(); return c && !c.classList.contains('partial') && c.textContent",
        )
        .await;
    assert!(
        question.as_str().unwrap().to_lowercase().contains("hours"),
        "{question}"
    );
    // What the offline brain makes of the question is its own tests' business; here the
    // agent answers after the caller spoke, in words and in sound.
    browser
        .wait_for(
            "the agent's answer caption",
            "const c = [...document.querySelectorAll('#captions li')]; const q = c.findIndex((l) => l.classList.contains('caller')); return q >= 0 && c.slice(q).some((l) => l.classList.contains('agent'))",
        )
        .await;
    wait_for_energy(&browser, "answer audio", greeted + 0.01).await;
    wait_for_quiet(&browser).await;
    let shot = screenshots().join("talk.png");
    std::fs::write(&shot, browser.screenshot().await).unwrap();
    eprintln!("screenshot: {}", shot.display());

    // Hanging up ends the call; the page links to it.
    let call_id = browser
        .eval(
            "return document.getElementById('talk-audio').dataset.callId",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    let hang_up = browser.find("#hang-up").await;
    browser.click(&hang_up).await;
    let link = browser.find("#talk-call").await;
    let call = wait_for_call_end(api, &call_id).await;
    assert_eq!(call["direction"], "inbound", "{call}");
    assert_eq!(call["caller"], "web", "{call}");
    assert_eq!(call["status"], "completed", "{call}");
    let transcript = call["transcript"].as_array().unwrap();
    let said = |role: &str| {
        transcript
            .iter()
            .filter(|t| t["role"] == role)
            .map(|t| t["text"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(!said("caller").trim().is_empty(), "{call}");
    assert!(
        transcript.iter().filter(|t| t["role"] == "agent").count() >= 2,
        "{call}"
    );
    // The engine has nothing of the call left to hang up.
    let gone = engine
        .api
        .http
        .delete(format!("{}/v1/web-calls/{call_id}", engine.server.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // The call in the console: transcript and the stereo recording, playable.
    browser.click(&link).await;
    browser
        .wait_for(
            "the decoded stereo recording",
            "const c = document.querySelector('canvas.wave'); return c && c.dataset.channels === '2'",
        )
        .await;
    let turns = browser
        .eval(
            "return document.querySelectorAll('#transcript li').length",
            vec![],
        )
        .await;
    assert_eq!(turns, json!(transcript.len()));
    let src = browser
        .eval("return document.getElementById('recording').src", vec![])
        .await;
    assert!(src.as_str().unwrap().starts_with("blob:"), "{src}");
}

/// Samples the caller's microphone and the agent's voice in the page every 10 ms (WebAudio
/// analysers) and notes when each caller utterance ends and when agent audio starts.
const PROBE: &str = "
    const ctx = new AudioContext();
    const level = (stream) => {
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 512;
        ctx.createMediaStreamSource(stream).connect(analyser);
        const data = new Float32Array(analyser.fftSize);
        return () => { analyser.getFloatTimeDomainData(data); let s = 0; for (const v of data) s += v * v; return Math.sqrt(s / data.length); };
    };
    const mic = level(talk.mic);
    const voice = level(document.getElementById('talk-audio').srcObject);
    const probe = { speechEnds: [], agentStarts: [] };
    let spoke = null, agentLoud = null;
    setInterval(() => {
        const now = performance.now();
        if (mic() > 0.02) spoke = now;
        else if (spoke !== null && now - spoke > 600) { probe.speechEnds.push(spoke); spoke = null; }
        if (voice() > 0.01) {
            if (agentLoud === null || now - agentLoud > 300) probe.agentStarts.push(now);
            agentLoud = now;
        }
    }, 10);
    window.__probe = probe;
    return true;";

/// Benchmark, not a test: voice-to-voice latency of browser calls. Run with
/// `cargo test --release --workspace --test web_call_browser -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn web_call_voice_to_voice_latency() {
    let calls: usize = std::env::var("BOLTCALL_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4);
    let engine = engine().await;
    let agent_id = front_desk(&engine.api).await;
    // The whole fixture: a question, another, and goodbye.
    let wav = microphone(engine.dir.path(), 40.0);
    let mut latencies = Vec::new();
    for _ in 0..calls {
        let browser = browser_with_microphone(&wav).await;
        browser.goto(&engine.link).await;
        browser
            .wait_for("sign-in", "return !document.getElementById('nav').hidden")
            .await;
        browser
            .goto(&format!(
                "{}/console#/agents/{agent_id}",
                engine.server.base
            ))
            .await;
        let talk = browser.find("#talk").await;
        browser.click(&talk).await;
        browser
            .wait_for(
                "the agent's voice",
                "const a = document.getElementById('talk-audio'); return a.srcObject && talk && talk.mic",
            )
            .await;
        browser.eval(PROBE, vec![]).await;
        // The fixture's three utterances and their answers take under 45 s.
        tokio::time::sleep(Duration::from_secs(45)).await;
        let probe = browser.eval("return window.__probe", vec![]).await;
        let ends: Vec<f64> = serde_json::from_value(probe["speechEnds"].clone()).unwrap();
        let starts: Vec<f64> = serde_json::from_value(probe["agentStarts"].clone()).unwrap();
        for end in ends {
            if let Some(start) = starts.iter().find(|&&s| s > end) {
                latencies.push(start - end);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    assert!(!latencies.is_empty(), "no caller turn was answered");
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    eprintln!(
        "voice-to-voice over {} answered turns ({calls} calls): p50 {:.0} ms, p95 {:.0} ms, all {:?}",
        latencies.len(),
        at(0.5),
        at(0.95),
        latencies
            .iter()
            .map(|l| l.round() as i64)
            .collect::<Vec<_>>()
    );
}
