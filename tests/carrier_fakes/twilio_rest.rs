//! A stand-in for Twilio's Voice API and for the phone network behind it. As the REST API it
//! checks Basic auth, creates calls (`POST …/Calls.json`) and updates them (`POST
//! …/Calls/{Sid}.json`), answering with Twilio-shaped JSON and errors. As the network it then
//! does what Twilio does with a created call: posts signed status callbacks, and when the
//! callee answers opens the Media Streams WebSocket named by the call's TwiML, with its
//! `<Parameter>`s, and plays the callee (tests/common/twilio_caller.rs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use boltcall::telephony::twilio::signature;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::twilio_caller::{Caller, connect};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "fake-twilio-auth-token";

/// What the callee of the next created call does.
#[derive(Debug, Clone)]
pub enum Callee {
    /// Picks up after ringing. With answering-machine detection asked for, Twilio then
    /// reports `answered_by`. The callee says `says` (8 kHz μ-law) after a moment, listens
    /// until the call is ended for it, or hangs up itself after `hangs_up_after`.
    Answers {
        answered_by: Option<&'static str>,
        hangs_up_after: Option<Duration>,
        says: Option<Vec<u8>>,
    },
    /// Rings, then the line is busy.
    Busy,
    /// Rings until Twilio gives up.
    NeverAnswers,
    /// Twilio refuses to create the call.
    Refused {
        status: u16,
        code: u32,
        message: &'static str,
    },
}

/// What the fake saw and did.
#[derive(Debug, Default, Clone)]
pub struct Log {
    /// The form of each create request.
    pub creates: Vec<Vec<(String, String)>>,
    /// `(CallSid, form)` of each update request.
    pub updates: Vec<(String, Vec<(String, String)>)>,
    /// `(CallStatus or AnsweredBy, the engine's HTTP answer)` of each callback posted.
    pub callbacks: Vec<(String, u16)>,
    /// Agent audio frames with sound the callee heard.
    pub heard_sound_frames: usize,
    /// The callee's stream ended.
    pub stream_ended: bool,
    /// Requests refused for bad credentials.
    pub unauthorized: usize,
}

impl Log {
    /// The value of `name` in a form.
    pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    callee: Callee,
    log: Mutex<Log>,
    /// Per live CallSid: woken when an update ends the call's stream (hang-up or new TwiML).
    live: Mutex<HashMap<String, Arc<Notify>>>,
    /// Woken whenever a call's story is over (final status posted).
    done: Notify,
    http: reqwest::Client,
}

pub struct FakeTwilio {
    pub base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeTwilio {
    pub async fn start(callee: Callee) -> FakeTwilio {
        let shared = Arc::new(Shared {
            callee,
            log: Mutex::new(Log::default()),
            live: Mutex::new(HashMap::new()),
            done: Notify::new(),
            http: reqwest::Client::new(),
        });
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/Calls.json", post(create))
            .route("/2010-04-01/Accounts/{account}/Calls/{sid}", post(update))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTwilio {
            base_url,
            shared,
            task,
        }
    }

    pub fn log(&self) -> Log {
        self.shared.log.lock().unwrap().clone()
    }

    /// Waits until a call's final status callback has been answered.
    pub async fn call_over(&self) -> Log {
        for _ in 0..600 {
            let log = self.log();
            let over = log.callbacks.iter().any(|(status, _)| {
                ["completed", "busy", "no-answer", "failed", "canceled"].contains(&status.as_str())
            });
            if over {
                return log;
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(100), self.shared.done.notified()).await;
        }
        panic!("the call never ended: {:?}", self.log());
    }
}

fn error(status: u16, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Basic auth with the account SID and auth token, on the account's own URL.
fn authorized(shared: &Shared, account: &str, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let ok = account == ACCOUNT_SID
        && headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected);
    if !ok {
        shared.log.lock().unwrap().unauthorized += 1;
    }
    ok
}

fn call_json(sid: &str, form: &[(String, String)], status: &str) -> Value {
    json!({
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "to": Log::field(form, "To"),
        "from": Log::field(form, "From"),
        "status": status,
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"),
    })
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&shared, &account, &headers) {
        return error(401, 20003, "Authenticate");
    }
    let Ok(form) = serde_urlencoded::from_str::<Vec<(String, String)>>(&body) else {
        return error(400, 20001, "Could not parse the request body");
    };
    shared.log.lock().unwrap().creates.push(form.clone());
    if let Callee::Refused {
        status,
        code,
        message,
    } = shared.callee
    {
        return error(status, code, message);
    }
    for required in ["To", "From", "Twiml", "StatusCallback"] {
        if Log::field(&form, required).is_none() {
            return error(
                400,
                21201,
                &format!("Missing required parameter {required}."),
            );
        }
    }
    let sid = format!(
        "CA{}",
        boltcall::store::new_id("").to_lowercase().replace('_', "")
    );
    let notify = Arc::new(Notify::new());
    shared
        .live
        .lock()
        .unwrap()
        .insert(sid.clone(), notify.clone());
    tokio::spawn(run_call(shared.clone(), sid.clone(), form.clone(), notify));
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        call_json(&sid, &form, "queued").to_string(),
    )
        .into_response()
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&shared, &account, &headers) {
        return error(401, 20003, "Authenticate");
    }
    let Some(sid) = sid.strip_suffix(".json") else {
        return error(404, 20404, "The requested resource was not found");
    };
    let Ok(form) = serde_urlencoded::from_str::<Vec<(String, String)>>(&body) else {
        return error(400, 20001, "Could not parse the request body");
    };
    shared
        .log
        .lock()
        .unwrap()
        .updates
        .push((sid.to_string(), form.clone()));
    let Some(notify) = shared.live.lock().unwrap().get(sid).cloned() else {
        return error(
            404,
            20404,
            &format!("The requested resource /Calls/{sid}.json was not found"),
        );
    };
    if Log::field(&form, "Status").is_none() && Log::field(&form, "Twiml").is_none() {
        return error(400, 21220, "Call is not in-progress. Cannot redirect.");
    }
    // Hang-up or new TwiML: either way the stream ends.
    notify.notify_one();
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        call_json(sid, &form, "in-progress").to_string(),
    )
        .into_response()
}

/// Posts a signed form to the engine, as Twilio posts its callbacks; logs the answer.
async fn callback(shared: &Shared, url: &str, params: Vec<(String, String)>, what: &str) -> u16 {
    let signature = signature::compute(AUTH_TOKEN, url, &params);
    let status = shared
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(serde_urlencoded::to_string(&params).unwrap())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    shared
        .log
        .lock()
        .unwrap()
        .callbacks
        .push((what.to_string(), status));
    status
}

fn status_params(sid: &str, form: &[(String, String)], status: &str) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("AccountSid", ACCOUNT_SID),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", sid),
        ("CallStatus", status),
        ("Direction", "outbound-api"),
        ("From", Log::field(form, "From").unwrap_or("")),
        ("To", Log::field(form, "To").unwrap_or("")),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let event = match status {
        "in-progress" => "answered",
        "completed" | "busy" | "no-answer" | "failed" | "canceled" => "completed",
        other => other,
    };
    params.push(("CallbackSource".into(), "call-progress-events".into()));
    params.push(("StatusCallbackEvent".into(), event.into()));
    params
}

/// What Twilio and the callee do with a created call.
async fn run_call(
    shared: Arc<Shared>,
    sid: String,
    form: Vec<(String, String)>,
    ended: Arc<Notify>,
) {
    let status_url = Log::field(&form, "StatusCallback").unwrap().to_string();
    let post_status = |status: &'static str, extra: Vec<(String, String)>| {
        let shared = shared.clone();
        let (url, sid, form) = (status_url.clone(), sid.clone(), form.clone());
        async move {
            let mut params = status_params(&sid, &form, status);
            params.extend(extra);
            callback(&shared, &url, params, status).await
        }
    };
    post_status("initiated", Vec::new()).await;
    post_status("ringing", Vec::new()).await;
    let (answered_by, hangs_up_after, says) = match shared.callee.clone() {
        Callee::Answers {
            answered_by,
            hangs_up_after,
            says,
        } => (answered_by, hangs_up_after, says),
        Callee::Busy => {
            finish(&shared, &sid, post_status("busy", sip(486)).await);
            return;
        }
        Callee::NeverAnswers => {
            finish(&shared, &sid, post_status("no-answer", sip(487)).await);
            return;
        }
        Callee::Refused { .. } => unreachable!("refused calls are never created"),
    };
    post_status("in-progress", Vec::new()).await;
    let twiml = Log::field(&form, "Twiml").unwrap().to_string();
    let (url, parameters) = stream_of(&twiml);
    let answered_at = std::time::Instant::now();
    let handshake = signature::compute(AUTH_TOKEN, &url, &[]);
    let base = url
        .trim_end_matches("/carrier/twilio/stream")
        .replace("ws://", "http://");
    let ws = connect(&base, Some(&handshake))
        .await
        .expect("the engine accepts Twilio's stream handshake");
    let mut caller = Caller::start(ws, &sid, parameters).await;
    if let (Some(verdict), Some(amd_url)) =
        (answered_by, Log::field(&form, "AsyncAmdStatusCallback"))
    {
        let params: Vec<(String, String)> = [
            ("AccountSid", ACCOUNT_SID),
            ("CallSid", sid.as_str()),
            ("AnsweredBy", verdict),
            ("MachineDetectionDuration", "4200"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        callback(&shared, amd_url, params, verdict).await;
    }
    if let Some(words) = says {
        caller.silence(1.5).await;
        caller.play(&words).await;
    }
    // The callee listens until the engine ends the call (REST update or closed socket), or
    // hangs up itself.
    let deadline = hangs_up_after.unwrap_or(Duration::from_secs(60));
    loop {
        let ended_for_us = tokio::select! {
            () = ended.notified() => true,
            () = caller.silence(0.2) => false,
        };
        if caller.closed {
            break;
        }
        // Twilio ends the stream for an update (`stop`, then close); a callee who is done
        // hangs up the same way.
        if ended_for_us || answered_at.elapsed() >= deadline {
            caller = caller.hang_up().await;
            break;
        }
    }
    {
        let mut log = shared.log.lock().unwrap();
        log.heard_sound_frames = caller.sound_frames();
        log.stream_ended = true;
    }
    let duration = answered_at.elapsed().as_secs().max(1).to_string();
    let status = post_status("completed", vec![("CallDuration".into(), duration)]).await;
    finish(&shared, &sid, status);
}

fn sip(code: u16) -> Vec<(String, String)> {
    vec![("SipResponseCode".into(), code.to_string())]
}

fn finish(shared: &Shared, sid: &str, _status: u16) {
    shared.live.lock().unwrap().remove(sid);
    shared.done.notify_waiters();
}

/// The stream URL and `<Parameter>`s of `<Connect><Stream>` TwiML.
pub fn stream_of(twiml: &str) -> (String, Value) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let marker = format!(r#"{name}=""#);
        let start = tag.find(&marker)? + marker.len();
        let len = tag[start..].find('"')?;
        Some(unescape(&tag[start..start + len]))
    };
    let stream_tag = twiml
        .split('<')
        .find(|t| t.starts_with("Stream "))
        .unwrap_or_else(|| panic!("no <Stream> in {twiml}"));
    let url = attr(stream_tag, "url").expect("Stream url");
    let mut parameters = serde_json::Map::new();
    for tag in twiml.split('<').filter(|t| t.starts_with("Parameter ")) {
        let name = attr(tag, "name").expect("Parameter name");
        let value = attr(tag, "value").unwrap_or_default();
        parameters.insert(name, Value::String(value));
    }
    (url, Value::Object(parameters))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
