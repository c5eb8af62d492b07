//! A local server speaking OpenAI's `POST /v1/audio/transcriptions`: a multipart form with
//! the WAV `file`, `model`, `response_format` and `stream`, Bearer auth, and answers that are
//! JSON, server-sent `transcript.text.delta`/`transcript.text.done` events, or the error
//! envelope with a scripted status. It hears the toy code of `words`.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::words::recognise;

/// How to answer one request; requests past the script are answered normally.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    Status(u16),
    Transcript,
}

/// What one request carried.
#[derive(Clone, Debug)]
pub struct Seen {
    pub authorization: Option<String>,
    pub fields: HashMap<String, String>,
    pub file_name: Option<String>,
    pub file_type: Option<String>,
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub samples: Vec<i16>,
}

#[derive(Clone)]
struct Fake {
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub struct FakeOpenAi {
    /// `http://…/v1`.
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeOpenAi {
    pub async fn start(script: Vec<Reply>) -> FakeOpenAi {
        let fake = Fake {
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::default(),
        };
        let seen = fake.seen.clone();
        let app = Router::new()
            .route("/v1/audio/transcriptions", post(transcriptions))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeOpenAi { base_url, seen }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn transcriptions(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .map(str::to_string)
    else {
        return error(400, "expected multipart/form-data");
    };
    let parts = parse_multipart(&body, &boundary);
    let mut fields = HashMap::new();
    let mut file = None;
    for part in parts {
        match (part.name.as_str(), part.file_name) {
            ("file", Some(name)) => file = Some((name, part.content_type, part.data)),
            (name, _) => {
                fields.insert(
                    name.to_string(),
                    String::from_utf8_lossy(&part.data).into_owned(),
                );
            }
        }
    }
    let Some((file_name, file_type, wav)) = file else {
        return error(400, "you must provide a file");
    };
    let Ok(mut reader) = hound::WavReader::new(Cursor::new(wav)) else {
        return error(400, "Invalid file format.");
    };
    let spec = reader.spec();
    let samples: Vec<i16> = reader.samples().map(Result::unwrap).collect();
    let text = recognise(&samples);
    let stream = fields.get("stream").is_some_and(|v| v == "true");
    fake.seen.lock().unwrap().push(Seen {
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        fields,
        file_name: Some(file_name),
        file_type,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits: spec.bits_per_sample,
        samples,
    });
    let reply = fake
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Transcript);
    match reply {
        Reply::Status(status) => error(status, "scripted failure"),
        Reply::Transcript if stream => {
            // One event per word, as deltas with their leading spaces, then the whole text.
            let mut events = String::new();
            for (i, word) in text.split(' ').enumerate() {
                let delta = if i == 0 {
                    word.to_string()
                } else {
                    format!(" {word}")
                };
                let event = json!({"type": "transcript.text.delta", "delta": delta});
                events.push_str(&format!("data: {event}\n\n"));
            }
            let done = json!({"type": "transcript.text.done", "text": text,
                "usage": {"type": "tokens", "input_tokens": 10, "output_tokens": 3, "total_tokens": 13}});
            events.push_str(&format!("data: {done}\n\n"));
            // Sent in small pieces so events straddle reads.
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = events
                .into_bytes()
                .chunks(7)
                .map(|c| Ok(c.to_vec()))
                .collect();
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
        Reply::Transcript => axum::Json(json!({"text": text})).into_response(),
    }
}

fn error(status: u16, message: &str) -> Response {
    let body =
        json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

struct Part {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

/// RFC 7578 multipart/form-data, enough for the fields a client sends.
fn parse_multipart(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, &delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest_after_crlf = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let Some(end) = find(rest_after_crlf, &delimiter) else {
            break;
        };
        // The part, without the CRLF that precedes the next delimiter.
        let part = &rest_after_crlf[..end.saturating_sub(2)];
        let Some(split) = find(part, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&part[..split]);
        let mut name = String::new();
        let mut file_name = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                name = attribute(line, "name").unwrap_or_default();
                file_name = attribute(line, "filename");
            } else if lower.starts_with("content-type:") {
                content_type = Some(line["content-type:".len()..].trim().to_string());
            }
        }
        parts.push(Part {
            name,
            file_name,
            content_type,
            data: part[split + 4..].to_vec(),
        });
        rest = rest_after_crlf;
    }
    parts
}

/// `key="value"` from a header line (the `name=` match skips `filename=`).
fn attribute(line: &str, key: &str) -> Option<String> {
    line.split(';').map(str::trim).find_map(|kv| {
        kv.strip_prefix(&format!("{key}=\""))
            .and_then(|v| v.strip_suffix('"'))
            .map(str::to_string)
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
