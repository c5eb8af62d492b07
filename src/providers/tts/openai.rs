//! OpenAI speech (`POST {base}/audio/speech`, `response_format: "pcm"`): the response body
//! streams raw 24 kHz PCM16 as the model speaks. Each body chunk is resampled to 16 kHz and sent
//! on at once, so the first words play before the sentence is finished.

use std::time::Duration;

use media::resample::ChunkResampler;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};

use super::network::{Failure, RETRY_BACKOFF, excerpt, is_transient, retry_once};
use super::pcm::{OUTPUT_RATE, Pcm16Le};
use super::{TextToSpeech, TtsError, Voice};

/// The rate of OpenAI's `pcm` response format.
const SOURCE_RATE: u32 = 24_000;
const CHANNEL_DEPTH: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From sending the request to the first audio bytes.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two body chunks once audio flows.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Cloned into each synthesis task: the client shares its connection pool between clones.
#[derive(Clone)]
pub struct OpenAiTts {
    client: reqwest::Client,
    endpoint: String,
    api_key: String,
    model: String,
    first_byte_timeout: Duration,
    stall_timeout: Duration,
}

#[derive(Serialize)]
struct SpeechRequest<'a> {
    model: &'a str,
    input: &'a str,
    voice: &'a str,
    response_format: &'static str,
}

impl OpenAiTts {
    /// Speech from `{base_url}/audio/speech` with `model` (e.g. `gpt-4o-mini-tts`).
    pub fn new(base_url: &str, api_key: String, model: String) -> Result<Self, TtsError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| TtsError(format!("openai speech: HTTP client: {e}")))?;
        Ok(OpenAiTts {
            client,
            endpoint: format!("{}/audio/speech", base_url.trim_end_matches('/')),
            api_key,
            model,
            first_byte_timeout: FIRST_BYTE_TIMEOUT,
            stall_timeout: STALL_TIMEOUT,
        })
    }

    /// Replaces the defaults for how long to wait for the first audio byte and, after it,
    /// between body chunks.
    pub fn with_timeouts(mut self, first_byte: Duration, stall: Duration) -> Self {
        self.first_byte_timeout = first_byte;
        self.stall_timeout = stall;
        self
    }

    /// Speaks `text`, retrying once when the first attempt failed transiently before any audio
    /// went out (after that, a retry would repeat words the caller already heard).
    async fn speak(&self, text: &str, voice: &str, tx: &mpsc::Sender<Result<Vec<i16>, TtsError>>) {
        let mut sent_audio = false;
        let mut retried = false;
        loop {
            let failure = match self.attempt(text, voice, tx, &mut sent_audio).await {
                Ok(Ended::Complete | Ended::Cancelled) => return,
                Err(failure) => failure,
            };
            if !retry_once("openai", &failure, sent_audio, &mut retried).await {
                let _ = tx.send(Err(failure.into())).await;
                return;
            }
        }
    }

    async fn attempt(
        &self,
        text: &str,
        voice: &str,
        tx: &mpsc::Sender<Result<Vec<i16>, TtsError>>,
        sent_audio: &mut bool,
    ) -> Result<Ended, Failure> {
        let first_byte_deadline = Instant::now() + self.first_byte_timeout;
        let request = self
            .client
            .post(&self.endpoint)
            .bearer_auth(&self.api_key)
            .json(&SpeechRequest {
                model: &self.model,
                input: text,
                voice,
                response_format: "pcm",
            })
            .send();
        let no_audio = || {
            Failure::fatal(format!(
                "openai speech: no audio within {} ms",
                self.first_byte_timeout.as_millis()
            ))
        };
        let mut response = match timeout_at(first_byte_deadline, request).await {
            Err(_) => return Err(no_audio()),
            Ok(Err(e)) => return Err(request_failure(&self.endpoint, e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let body = timeout(self.stall_timeout, response.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let message = format!("openai speech: HTTP {status}: {}", error_message(&body));
            return Err(if is_transient(status.as_u16()) {
                Failure::retryable(message, RETRY_BACKOFF)
            } else {
                Failure::fatal(message)
            });
        }

        let mut decoder = Pcm16Le::default();
        let mut resampler = ChunkResampler::new(SOURCE_RATE, OUTPUT_RATE)
            .map_err(|e| Failure::fatal(format!("openai speech: resampler: {e}")))?;
        let mut pcm = Vec::new();
        let mut out = Vec::new();
        let mut got_bytes = false;
        loop {
            let chunk = if got_bytes {
                timeout(self.stall_timeout, response.chunk()).await
            } else {
                timeout_at(first_byte_deadline, response.chunk()).await
            };
            let chunk = match chunk {
                Err(_) if got_bytes => {
                    return Err(Failure::fatal(format!(
                        "openai speech: the audio stream stalled for {} ms",
                        self.stall_timeout.as_millis()
                    )));
                }
                Err(_) => return Err(no_audio()),
                Ok(Err(e)) => {
                    return Err(Failure::fatal(format!(
                        "openai speech: the audio stream broke off: {e}"
                    )));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            got_bytes = true;
            pcm.clear();
            decoder.push(&chunk, &mut pcm);
            resampler
                .push(&pcm, &mut out)
                .map_err(|e| Failure::fatal(format!("openai speech: resampling: {e}")))?;
            if !out.is_empty() {
                if tx.send(Ok(std::mem::take(&mut out))).await.is_err() {
                    return Ok(Ended::Cancelled);
                }
                *sent_audio = true;
            }
        }
        if decoder.has_partial_sample() {
            tracing::warn!("openai speech: the audio ended in the middle of a sample");
        }
        resampler
            .finish(&mut out)
            .map_err(|e| Failure::fatal(format!("openai speech: resampling: {e}")))?;
        if !out.is_empty() && tx.send(Ok(out)).await.is_err() {
            return Ok(Ended::Cancelled);
        }
        Ok(Ended::Complete)
    }
}

/// How one attempt ended, when it did not fail.
enum Ended {
    Complete,
    /// The receiver was dropped.
    Cancelled,
}

/// A request that got no response: only a connection that could not be made is retried.
fn request_failure(endpoint: &str, e: reqwest::Error) -> Failure {
    let message = format!("openai speech: cannot reach {endpoint}: {e}");
    if e.is_connect() {
        Failure::retryable(message, RETRY_BACKOFF)
    } else {
        Failure::fatal(message)
    }
}

/// The message of OpenAI's error body (`{"error": {"message": …}}`), else the body itself.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| excerpt(body, 200))
}

impl TextToSpeech for OpenAiTts {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn synthesize(
        &self,
        text: String,
        voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let this = self.clone();
        tokio::spawn(async move {
            let text = text.trim();
            if text.is_empty() {
                return;
            }
            // Dropping the receiver drops the request and with it the connection.
            tokio::select! {
                _ = tx.closed() => {}
                _ = this.speak(text, voice.openai, &tx) => {}
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openai_error_bodies() {
        let body =
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
        assert_eq!(error_message(body), "Incorrect API key provided");
        assert_eq!(error_message("upstream timeout\n"), "upstream timeout");
        assert_eq!(error_message(""), "");
    }

    #[test]
    fn endpoint_is_under_the_api_root() {
        let tts = OpenAiTts::new("http://127.0.0.1:9/v1/", "k".into(), "m".into()).unwrap();
        assert_eq!(tts.endpoint, "http://127.0.0.1:9/v1/audio/speech");
    }
}
