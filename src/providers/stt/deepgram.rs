//! Deepgram live streaming speech-to-text: one WebSocket to `/v1/listen` per call, the
//! caller's 16 kHz linear16 audio streamed as it arrives, interim results as partials. The
//! protocol logic lives in the sans-IO `live` core; `driver` is its tokio edge.

mod driver;
mod live;
mod messages;
mod replay;

pub use live::Timing;

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::Instrument;
use url::Url;

use super::vocabulary::Vocabulary;
use super::{SpeechToText, SttStream};

/// Silence after the last word before Deepgram marks a result `speech_final`: what Deepgram
/// recommends for conversation (people pause mid-thought).
const ENDPOINTING_MS: u64 = 300;
/// Frames buffered between the session and the stream (4 s).
const INPUT_BUFFER: usize = 200;

#[derive(Debug, Clone)]
pub struct DeepgramSettings {
    pub api_key: String,
    /// `wss://api.deepgram.com` in production; `ws`, `http` and `https` are accepted too.
    pub base_url: String,
    pub model: String,
    pub timing: Timing,
}

#[derive(Debug, thiserror::Error)]
pub enum DeepgramError {
    #[error(
        "deepgram_base_url (BOLTCALL_DEEPGRAM_BASE_URL) {0:?} is not a ws://, wss://, http:// or https:// URL"
    )]
    BaseUrl(String),
}

/// Deepgram, shared by all calls.
pub struct DeepgramStt {
    connection: Arc<driver::Connection>,
    model: String,
    timing: Timing,
}

impl DeepgramStt {
    pub fn new(settings: DeepgramSettings) -> Result<Self, DeepgramError> {
        let url = listen_url(
            &settings.base_url,
            &settings.model,
            settings.timing.utterance_end_ms,
        )?;
        Ok(DeepgramStt {
            connection: Arc::new(driver::Connection {
                url,
                api_key: settings.api_key,
            }),
            model: settings.model,
            timing: settings.timing,
        })
    }
}

impl SpeechToText for DeepgramStt {
    fn name(&self) -> &'static str {
        "deepgram"
    }

    fn open(&self) -> SttStream {
        self.open_for(&Vocabulary::default())
    }

    fn open_for(&self, vocabulary: &Vocabulary) -> SttStream {
        let (input_tx, input_rx) = mpsc::channel(INPUT_BUFFER);
        let (events_tx, events_rx) = mpsc::channel(32);
        let core = live::LiveStream::new(self.timing.clone());
        let connection = if vocabulary.is_empty() {
            self.connection.clone()
        } else {
            Arc::new(driver::Connection {
                url: with_vocabulary(&self.connection.url, &self.model, vocabulary),
                api_key: self.connection.api_key.clone(),
            })
        };
        tokio::spawn(driver::run(connection, core, input_rx, events_tx).in_current_span());
        SttStream {
            input: input_tx,
            events: events_rx,
        }
    }
}

/// `{base}/v1/listen` with the stream's parameters; `http(s)` maps to `ws(s)`.
fn listen_url(base: &str, model: &str, utterance_end_ms: u64) -> Result<String, DeepgramError> {
    let bad = || DeepgramError::BaseUrl(base.to_string());
    let mut url = Url::parse(base).map_err(|_| bad())?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(bad()),
    };
    url.set_scheme(scheme).map_err(|()| bad())?;
    let path = format!("{}/v1/listen", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.query_pairs_mut()
        .clear()
        .append_pair("model", model)
        .append_pair("encoding", "linear16")
        .append_pair("sample_rate", "16000")
        .append_pair("channels", "1")
        .append_pair("interim_results", "true")
        .append_pair("punctuate", "true")
        .append_pair("smart_format", "true")
        .append_pair("endpointing", &ENDPOINTING_MS.to_string())
        .append_pair("utterance_end_ms", &utterance_end_ms.to_string())
        .append_pair("vad_events", "true");
    Ok(url.into())
}

/// The listen URL with the call's vocabulary: Nova-3 takes `keyterm`s, older models
/// `keywords`.
fn with_vocabulary(listen_url: &str, model: &str, vocabulary: &Vocabulary) -> String {
    let Ok(mut url) = Url::parse(listen_url) else {
        return listen_url.to_string();
    };
    let key = if model.starts_with("nova-3") {
        "keyterm"
    } else {
        "keywords"
    };
    url.query_pairs_mut()
        .extend_pairs(vocabulary.terms().iter().map(|term| (key, term)));
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_url_carries_the_stream_parameters() {
        let url = listen_url("wss://api.deepgram.com", "nova-3", 1000).unwrap();
        assert_eq!(
            url,
            "wss://api.deepgram.com/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000\
             &channels=1&interim_results=true&punctuate=true&smart_format=true&endpointing=300\
             &utterance_end_ms=1000&vad_events=true"
        );
    }

    #[test]
    fn the_vocabulary_goes_as_key_terms_or_keywords() {
        let vocabulary = Vocabulary::new(["Bright Smile".to_string(), "check-up".to_string()]);
        let url = listen_url("wss://api.deepgram.com", "nova-3", 1000).unwrap();
        assert!(
            with_vocabulary(&url, "nova-3", &vocabulary)
                .ends_with("&vad_events=true&keyterm=Bright+Smile&keyterm=check-up")
        );
        let url = listen_url("wss://api.deepgram.com", "nova-2", 1000).unwrap();
        assert!(
            with_vocabulary(&url, "nova-2", &vocabulary)
                .ends_with("&vad_events=true&keywords=Bright+Smile&keywords=check-up")
        );
    }

    #[test]
    fn http_bases_map_to_websockets_and_keep_their_path() {
        let url = listen_url("http://127.0.0.1:9000/proxy/", "nova-3", 1000).unwrap();
        assert!(
            url.starts_with("ws://127.0.0.1:9000/proxy/v1/listen?model=nova-3&"),
            "{url}"
        );
        let url = listen_url("https://dg.example", "nova-2", 1000).unwrap();
        assert!(
            url.starts_with("wss://dg.example/v1/listen?model=nova-2&"),
            "{url}"
        );
    }

    #[test]
    fn other_schemes_are_refused_naming_the_setting() {
        for base in ["ftp://x", "api.deepgram.com", ""] {
            let err = listen_url(base, "nova-3", 1000).unwrap_err().to_string();
            assert!(err.contains("BOLTCALL_DEEPGRAM_BASE_URL"), "{err}");
        }
    }
}
