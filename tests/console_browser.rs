//! The operator console in a real browser: Debian's chromium, driven over WebDriver
//! (chromedriver), against a real `boltcall serve` with the offline speech stack. Signing in
//! from the link `boltcall console` prints, agents, and a finished call's transcript, tool
//! calls and stereo recording. Screenshots of the main pages land in the target directory's
//! `console-screenshots/` (not committed).

mod common;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use common::{TestDb, free_port, run_cli, spawn_binary};
use serde_json::{Value, json};
use webdriver::Browser;

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

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn save_screenshot(browser: &Browser, name: &str) {
    let path = screenshots().join(format!("{name}.png"));
    std::fs::write(&path, browser.screenshot().await).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// A test-mode outbound call against the simulated callee, waited for until it is finished.
async fn finished_call(api: &Api, agent_id: &str) -> Value {
    let call = api
        .send(
            reqwest::Method::POST,
            "/v1/calls/outbound",
            Some(json!({"agent_id": agent_id, "to": "+14155550123"})),
        )
        .await;
    let id = call["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{call}"))
        .to_string();
    for _ in 0..240 {
        let call = api
            .send(reqwest::Method::GET, &format!("/v1/calls/{id}"), None)
            .await;
        if call["ended_at"].is_string() {
            return call;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("call {id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_from_its_link_edits_agents_and_plays_back_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(dir.path()).await;
    let data_dir = dir.path().join("data").display().to_string();
    let env = [
        ("BOLTCALL_DATABASE_URL", db.url.as_str()),
        ("BOLTCALL_DATA_DIR", data_dir.as_str()),
        // The test polls the call while it runs; the console's own requests must not be
        // turned away for that.
        ("BOLTCALL_RATE_LIMIT", "off"),
    ];
    let server = spawn_binary(&env).await;

    // The link `boltcall console` prints carries a fresh test key in its fragment.
    let mut console_env = env.to_vec();
    console_env.push(("BOLTCALL_PUBLIC_URL", server.base.as_str()));
    let (ok, stdout, stderr) = run_cli(&["console"], &console_env);
    assert!(ok, "{stderr}");
    let link = stdout.trim().to_string();
    let key = link
        .strip_prefix(&format!("{}/console#key=", server.base))
        .unwrap_or_else(|| panic!("unexpected link {link:?}"))
        .to_string();
    assert!(key.starts_with("sk_test_"), "{key}");
    let api = Api {
        base: server.base.clone(),
        key: key.clone(),
        http: reqwest::Client::new(),
    };
    let agent = api
        .send(
            reqwest::Method::POST,
            "/v1/agents",
            Some(json!({"name": "Front desk", "voice_id": "voice_sarah",
                        "greeting": "Hello, thanks for calling Bright Dental. How can I help?"})),
        )
        .await;
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let call = finished_call(&api, &agent_id).await;
    let transcript = call["transcript"].as_array().unwrap().clone();
    assert!(!transcript.is_empty(), "{call}");
    assert!(call["recording_url"].is_string(), "{call}");

    let browser = Browser::start(free_port(), &[]).await;

    // Signing in from the link: the key leaves the address bar and stays in the tab only.
    browser.goto(&link).await;
    browser
        .wait_for(
            "the signed-in navigation",
            "return !document.getElementById('nav').hidden && document.querySelector('.stats') !== null",
        )
        .await;
    let href = browser.eval("return location.href", vec![]).await;
    assert!(!href.as_str().unwrap().contains("key="), "{href}");
    let stored = browser
        .eval("return sessionStorage.getItem('boltcall.key')", vec![])
        .await;
    assert_eq!(stored, json!(key));
    let stats = browser
        .eval("return document.querySelector('.stats').innerText", vec![])
        .await;
    assert!(stats.as_str().unwrap().contains("calls"), "{stats}");
    save_screenshot(&browser, "overview").await;

    // Agents: the list, then a new agent through the form, refused then accepted.
    browser
        .goto(&format!("{}/console#/agents", server.base))
        .await;
    browser
        .wait_for(
            "the agent list",
            "const t = document.getElementById('agents'); return t && t.innerText.includes('Front desk')",
        )
        .await;
    save_screenshot(&browser, "agents").await;
    browser
        .goto(&format!("{}/console#/agents/new", server.base))
        .await;
    let name = browser.find("#agent-name").await;
    browser.type_text(&name, "Night line").await;
    let greeting = browser.find("#agent-greeting").await;
    browser
        .type_text(&greeting, "Good evening, this is the night line.")
        .await;
    let phone = browser.find("#agent-phone_number").await;
    browser.type_text(&phone, "12345").await;
    let submit = browser.find("#agent-form button[type=submit]").await;
    browser.click(&submit).await;
    let error = browser
        .wait_for(
            "the refusal of a bad number",
            "const s = document.getElementById('status'); return s.className === 'error' && s.textContent",
        )
        .await;
    assert!(error.as_str().unwrap().contains("phone_number"), "{error}");
    browser.clear(&phone).await;
    browser.type_text(&phone, "+14155550199").await;
    browser.click(&submit).await;
    browser
        .wait_for(
            "the saved agent's page",
            "return location.hash.startsWith('#/agents/agent_')",
        )
        .await;
    let agents = api.send(reqwest::Method::GET, "/v1/agents", None).await;
    let night = agents["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Night line")
        .unwrap_or_else(|| panic!("{agents}"));
    assert_eq!(night["greeting"], "Good evening, this is the night line.");
    assert_eq!(night["phone_number"], "+14155550199");

    // Calls: the list, then the call with its transcript and its stereo recording.
    browser
        .goto(&format!("{}/console#/calls", server.base))
        .await;
    let row = browser.find("#calls tr.link").await;
    save_screenshot(&browser, "calls").await;
    browser.click(&row).await;
    browser
        .wait_for(
            "the decoded stereo recording",
            "const c = document.querySelector('canvas.wave'); return c && c.dataset.channels === '2'",
        )
        .await;
    let shown = browser
        .eval(
            "return [...document.querySelectorAll('#transcript li')].map(li => li.dataset.startMs)",
            vec![],
        )
        .await;
    let expected: Vec<Value> = transcript
        .iter()
        .map(|t| json!(t["start_ms"].to_string()))
        .collect();
    assert_eq!(shown, Value::Array(expected));
    let src = browser
        .eval("return document.getElementById('recording').src", vec![])
        .await;
    assert!(src.as_str().unwrap().starts_with("blob:"), "{src}");
    save_screenshot(&browser, "call").await;

    // Clicking a turn plays the recording from that turn.
    let last = transcript.last().unwrap();
    let start = last["start_ms"].as_u64().unwrap() as f64 / 1000.0;
    let turns = browser.find("#transcript li:last-child").await;
    browser.click(&turns).await;
    let position = browser
        .wait_for(
            "the player at the clicked turn",
            "const a = document.getElementById('recording'); return a.currentTime > 0 && a.currentTime",
        )
        .await;
    let position = position.as_f64().unwrap();
    assert!(
        position >= start - 0.05 && position < start + 5.0,
        "clicked the turn at {start} s, the player is at {position} s"
    );

    // A link with a key the engine refuses brings the sign-in form back with the reason.
    browser
        .goto(&format!("{}/console#key=sk_test_notakey", server.base))
        .await;
    let refused = browser
        .wait_for(
            "the refusal of a bad key",
            "const s = document.getElementById('status'); return document.getElementById('sign-in') && s.textContent",
        )
        .await;
    assert!(refused.as_str().unwrap().contains("refused"), "{refused}");
    drop(db);
}
