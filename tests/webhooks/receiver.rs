//! A webhook receiver on a real local socket: records every request and answers as told.
#![allow(dead_code)] // each test binary uses a different part of this helper

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How the receiver answers.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// 500 to the first `n` requests of each event id, then 204.
    FailFirst(usize),
    /// Never answers (a receiver stuck mid-request).
    Hold,
    /// 307 to `/elsewhere`.
    Redirect,
}

#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub event_id: String,
    pub signature: String,
    pub user_agent: String,
    pub content_type: String,
    pub body: String,
    /// The status answered; `None` while held.
    pub answered: Option<u16>,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            hits: Arc::default(),
            mode: Arc::new(Mutex::new(mode)),
        };
        let app = Router::new().fallback(handle).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.answered.is_some_and(|s| (200..300).contains(&s)))
            .collect()
    }

    /// Waits (up to a generous minute) until `done` holds for the hits so far.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Hit]) -> bool) {
        for _ in 0..1200 {
            if done(&self.hits()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("receiver never saw {what}; hits: {:#?}", self.hits());
    }
}

async fn handle(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut hit = Hit {
        path: uri.path().to_string(),
        event_id: header("boltcall-event-id"),
        signature: header("boltcall-signature"),
        user_agent: header("user-agent"),
        content_type: header("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
        answered: None,
    };
    let mode = *r.mode.lock().unwrap();
    let status = match mode {
        Mode::Hold => {
            r.hits.lock().unwrap().push(hit);
            return std::future::pending().await;
        }
        Mode::Redirect => StatusCode::TEMPORARY_REDIRECT,
        Mode::FailFirst(n) => {
            let seen = r
                .hits
                .lock()
                .unwrap()
                .iter()
                .filter(|h| h.event_id == hit.event_id && h.answered.is_some())
                .count();
            if seen < n {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
    };
    hit.answered = Some(status.as_u16());
    r.hits.lock().unwrap().push(hit);
    if matches!(mode, Mode::Redirect) {
        (status, [("location", "/elsewhere")]).into_response()
    } else {
        status.into_response()
    }
}

/// Checks `Boltcall-Signature` over `body` with an HMAC computed here, independently of the
/// engine's signing code.
pub fn verify_signature(secret: &str, header: &str, body: &str) -> bool {
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    if t.parse::<i64>().is_err() {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}
