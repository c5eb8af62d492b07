//! ElevenLabs text-to-speech over the multi-context WebSocket (`/multi-stream-input`).
//!
//! A TLS and WebSocket handshake per sentence would cost a round trip or two before each
//! sentence, so sockets are pooled per voice and shared across sentences and calls: each
//! synthesis is its own context on a socket with room (ElevenLabs allows five), and a new socket
//! is opened only when none has room or the last one died. Audio comes as `pcm_16000`, the
//! engine's own rate.

mod connection;
mod protocol;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::network::{Failure, retry_once};
use super::{TextToSpeech, TtsError, Voice};
use connection::{Connection, Endpoint};
use protocol::{ContextEvent, INACTIVITY_TIMEOUT_SECS, MAX_CONTEXTS};

const CHANNEL_DEPTH: usize = 4;

pub struct ElevenLabsTts {
    shared: Arc<Shared>,
}

struct Shared {
    /// `{scheme}://{host}{path}` of the API root, scheme already `ws` or `wss`.
    root: url::Url,
    api_key: String,
    model: String,
    /// Sockets by ElevenLabs voice id.
    pool: Mutex<HashMap<&'static str, Vec<Connection>>>,
    next_context: AtomicU64,
}

impl ElevenLabsTts {
    /// Speech from `base_url` (`wss://api.elevenlabs.io`; `ws`, `http` and `https` also do)
    /// with `model` (e.g. `eleven_flash_v2_5`).
    pub fn new(base_url: &str, api_key: String, model: String) -> Result<Self, TtsError> {
        let mut root = url::Url::parse(base_url)
            .map_err(|e| TtsError(format!("elevenlabs base URL {base_url:?}: {e}")))?;
        let scheme = match root.scheme() {
            "wss" | "https" => "wss",
            "ws" | "http" => "ws",
            other => {
                return Err(TtsError(format!(
                    "elevenlabs base URL {base_url:?}: expected ws://, wss://, http:// or https://, not {other}://"
                )));
            }
        };
        root.set_scheme(scheme)
            .map_err(|()| TtsError(format!("elevenlabs base URL {base_url:?}: bad scheme")))?;
        root.set_query(None);
        Ok(ElevenLabsTts {
            shared: Arc::new(Shared {
                root,
                api_key,
                model,
                pool: Mutex::new(HashMap::new()),
                next_context: AtomicU64::new(1),
            }),
        })
    }
}

impl Shared {
    /// `{root}/v1/text-to-speech/{voice_id}/multi-stream-input?…`
    fn stream_url(&self, voice_id: &str) -> String {
        let mut url = self.root.clone();
        let path = format!(
            "{}/v1/text-to-speech/{voice_id}/multi-stream-input",
            url.path().trim_end_matches('/')
        );
        url.set_path(&path);
        url.query_pairs_mut()
            .append_pair("model_id", &self.model)
            .append_pair("output_format", "pcm_16000")
            .append_pair("inactivity_timeout", &INACTIVITY_TIMEOUT_SECS.to_string())
            // Whole sentences arrive flushed: generate at once instead of buffering text.
            .append_pair("auto_mode", "true");
        url.into()
    }

    /// A live socket for `voice` with room for one more context, reserved for the caller.
    fn acquire(&self, voice: &'static Voice) -> Connection {
        let mut pool = self.pool.lock().expect("elevenlabs pool lock");
        let sockets = pool.entry(voice.elevenlabs).or_default();
        sockets.retain(|c| !c.is_closed());
        let connection = match sockets.iter().find(|c| c.load() < MAX_CONTEXTS) {
            Some(connection) => connection.clone(),
            None => {
                let connection = Connection::spawn(Arc::new(Endpoint {
                    url: self.stream_url(voice.elevenlabs),
                    api_key: self.api_key.clone(),
                }));
                sockets.push(connection.clone());
                connection
            }
        };
        connection.reserve();
        connection
    }

    /// Speaks `text`, retrying once on another socket when the first attempt failed
    /// transiently before any audio went out (after that, a retry would repeat words the
    /// caller already heard).
    async fn speak(
        &self,
        text: &str,
        voice: &'static Voice,
        tx: &mpsc::Sender<Result<Vec<i16>, TtsError>>,
    ) {
        let mut sent_audio = false;
        let mut retried = false;
        loop {
            let Some(failure) = self.attempt(text, voice, tx, &mut sent_audio).await else {
                return;
            };
            if !retry_once("elevenlabs", &failure, sent_audio, &mut retried).await {
                let _ = tx.send(Err(failure.into())).await;
                return;
            }
        }
    }

    /// One context on a pooled socket; `None` once it finished or its receiver went away.
    async fn attempt(
        &self,
        text: &str,
        voice: &'static Voice,
        tx: &mpsc::Sender<Result<Vec<i16>, TtsError>>,
        sent_audio: &mut bool,
    ) -> Option<Failure> {
        let connection = self.acquire(voice);
        let context = self.next_context.fetch_add(1, Ordering::Relaxed);
        let (events_tx, mut events) = mpsc::unbounded_channel();
        if !connection.open(context, text.to_string(), events_tx) {
            return Some(Failure::retryable(
                "elevenlabs: the connection closed before the text was sent",
                std::time::Duration::ZERO,
            ));
        }
        loop {
            let event = tokio::select! {
                _ = tx.closed() => {
                    connection.cancel(context);
                    return None;
                }
                event = events.recv() => event,
            };
            match event {
                Some(ContextEvent::Audio(pcm)) => {
                    if tx.send(Ok(pcm)).await.is_err() {
                        connection.cancel(context);
                        return None;
                    }
                    *sent_audio = true;
                }
                Some(ContextEvent::Finished) => return None,
                Some(ContextEvent::Failed(failure)) => return Some(failure),
                None => {
                    return Some(Failure::fatal(
                        "elevenlabs: the connection task ended without finishing the sentence",
                    ));
                }
            }
        }
    }
}

impl TextToSpeech for ElevenLabsTts {
    fn name(&self) -> &'static str {
        "elevenlabs"
    }

    fn synthesize(
        &self,
        text: String,
        voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let text = text.trim();
            if !text.is_empty() {
                shared.speak(text, voice, &tx).await;
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str) -> Result<String, TtsError> {
        let tts = ElevenLabsTts::new(base, "k".into(), "eleven_flash_v2_5".into())?;
        Ok(tts.shared.stream_url("VOICE"))
    }

    #[test]
    fn builds_the_multi_context_url_from_any_scheme() {
        let query = "model_id=eleven_flash_v2_5&output_format=pcm_16000&inactivity_timeout=180&auto_mode=true";
        assert_eq!(
            url("wss://api.elevenlabs.io").unwrap(),
            format!("wss://api.elevenlabs.io/v1/text-to-speech/VOICE/multi-stream-input?{query}")
        );
        assert_eq!(
            url("https://api.elevenlabs.io/").unwrap(),
            format!("wss://api.elevenlabs.io/v1/text-to-speech/VOICE/multi-stream-input?{query}")
        );
        assert_eq!(
            url("http://127.0.0.1:9000/proxy").unwrap(),
            format!("ws://127.0.0.1:9000/proxy/v1/text-to-speech/VOICE/multi-stream-input?{query}")
        );
        assert!(url("ftp://example.com").unwrap_err().0.contains("ftp"));
        assert!(url("not a url").is_err());
    }
}
