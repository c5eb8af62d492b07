//! OpenAI speech-to-text (`/audio/transcriptions`), segment by segment: the audio between our
//! VAD's start and end of speech is posted as a WAV at the end of speech. Models that stream
//! (the gpt-4o transcribers) send their text as it is decoded, which becomes partials.

mod request;
mod segment;
mod sse;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::{SpeechToText, SttEvent, SttInput, SttStream};
use request::Transcriber;
use segment::{Job, Segmenter};

/// Frames buffered between the session and the stream (4 s).
const INPUT_BUFFER: usize = 200;
/// The API refuses audio shorter than 0.1 s: such a segment holds no words.
const MIN_SAMPLES: usize = 1_600;
/// Longest piece sent at once; longer speech goes in pieces of this length.
const SEGMENT_LIMIT_SECS: usize = 30;

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    pub api_key: String,
    /// `https://api.openai.com/v1` in production.
    pub base_url: String,
    pub model: String,
    /// Pause before the one retry of an overloaded or failed request.
    pub retry_delay: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    #[error("openai_base_url (BOLTCALL_OPENAI_BASE_URL) {0:?} is not an http:// or https:// URL")]
    BaseUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// OpenAI transcription, shared by all calls.
pub struct OpenAiStt {
    transcriber: Arc<Transcriber>,
}

impl OpenAiStt {
    pub fn new(settings: OpenAiSettings) -> Result<Self, OpenAiError> {
        let base = settings.base_url.trim_end_matches('/');
        let valid = url::Url::parse(base).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !valid {
            return Err(OpenAiError::BaseUrl(settings.base_url));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(OpenAiStt {
            transcriber: Arc::new(Transcriber {
                client,
                url: format!("{base}/audio/transcriptions"),
                api_key: settings.api_key,
                // whisper-1 ignores `stream`; the gpt-4o-*-transcribe models stream.
                stream: settings.model.contains("transcribe"),
                model: settings.model,
                retry_delay: settings.retry_delay,
            }),
        })
    }
}

impl SpeechToText for OpenAiStt {
    fn hears_silence(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        "openai"
    }

    fn open(&self) -> SttStream {
        let (input_tx, input_rx) = mpsc::channel(INPUT_BUFFER);
        let (events_tx, events_rx) = mpsc::channel(32);
        tokio::spawn(run_stream(self.transcriber.clone(), input_rx, events_tx).in_current_span());
        SttStream {
            input: input_tx,
            events: events_rx,
        }
    }
}

/// Reads the session's input without ever waiting on a request; a worker transcribes the
/// segments one after another, in order.
async fn run_stream(
    transcriber: Arc<Transcriber>,
    mut input: mpsc::Receiver<SttInput>,
    events: mpsc::Sender<SttEvent>,
) {
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    let worker = tokio::spawn(transcribe_jobs(transcriber, jobs_rx, events).in_current_span());
    let mut segmenter = Segmenter::new(SEGMENT_LIMIT_SECS);
    while let Some(msg) = input.recv().await {
        if let Some(job) = segmenter.push(msg) {
            // Fails only once the session stopped listening: then nobody wants the words.
            let _ = jobs_tx.send(job);
        }
    }
    // The session hung up: finish what was asked, then stop.
    drop(jobs_tx);
    let _ = worker.await;
}

async fn transcribe_jobs(
    transcriber: Arc<Transcriber>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    events: mpsc::Sender<SttEvent>,
) {
    // Words of the current segment's pieces already transcribed.
    let mut pieces = String::new();
    while let Some(job) = jobs.recv().await {
        let (audio, is_final) = match job {
            Job::Piece(audio) => (audio, false),
            Job::Final(audio) => (audio, true),
        };
        let result = if audio.len() < MIN_SAMPLES {
            Ok(String::new())
        } else {
            let mut last = String::new();
            transcriber
                .transcribe(&audio, |text| {
                    let text = joined(&pieces, text);
                    if text != last {
                        // Partials are hints: one dropped on a full channel is not missed.
                        let _ = events.try_send(SttEvent::Partial { text: text.clone() });
                        last = text;
                    }
                })
                .await
        };
        let event = match (is_final, result) {
            (false, Ok(text)) => {
                pieces = joined(&pieces, &text);
                continue;
            }
            (false, Err(message)) => {
                tracing::warn!(error = %message, "transcription failed; the words of this piece are lost");
                continue;
            }
            (true, Ok(text)) => SttEvent::Final {
                text: joined(&std::mem::take(&mut pieces), &text),
            },
            (true, Err(message)) => {
                pieces.clear();
                SttEvent::Error { message }
            }
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

fn joined(first: &str, second: &str) -> String {
    match (first.is_empty(), second.is_empty()) {
        (true, _) => second.to_string(),
        (_, true) => first.to_string(),
        _ => format!("{first} {second}"),
    }
}
