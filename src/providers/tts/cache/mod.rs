//! The speech cache: every sentence is synthesised once per (engine, voice, text) and then
//! served from memory (bounded, least recently used first out) or from disk under the data
//! directory. Greetings, reprompts and goodbyes are the same for every call of an agent, so
//! without this each new call paid a full synthesis before the caller heard anything.
//!
//! Concurrent calls asking for a sentence that is being synthesised wait for that one
//! synthesis instead of starting their own (a burst of calls to one agent costs one greeting).

mod disk;
mod memory;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::{TextToSpeech, TtsError, Voice, sentences};
use disk::DiskTier;
use memory::{Audio, MemoryTier};

const CHANNEL_DEPTH: usize = 4;

/// Bounds of the two tiers; a zero capacity turns a tier off.
#[derive(Debug, Clone)]
pub struct SpeechCacheSettings {
    pub memory_bytes: usize,
    pub disk_bytes: u64,
    pub dir: PathBuf,
}

/// A synthesis in flight: its waiters see `Some` once it ends.
type Pending = watch::Receiver<Option<Result<Audio, TtsError>>>;

struct State {
    memory: MemoryTier,
    pending: HashMap<Arc<str>, Pending>,
}

struct Shared {
    inner: Arc<dyn TextToSpeech>,
    state: Mutex<State>,
    disk: Option<Mutex<DiskTier>>,
    hits: AtomicU64,
    syntheses: AtomicU64,
}

/// A `TextToSpeech` that remembers what the engine it wraps has said.
#[derive(Clone)]
pub struct CachedTts {
    shared: Arc<Shared>,
}

impl CachedTts {
    /// Wraps `inner`; a disk tier that cannot be opened is skipped with a warning.
    pub async fn new(inner: Arc<dyn TextToSpeech>, settings: SpeechCacheSettings) -> Self {
        let disk = if settings.disk_bytes == 0 {
            None
        } else {
            let dir = settings.dir.clone();
            let opened =
                tokio::task::spawn_blocking(move || DiskTier::open(&dir, settings.disk_bytes))
                    .await;
            match opened {
                Ok(Ok(tier)) => Some(Mutex::new(tier)),
                Ok(Err(e)) => {
                    tracing::warn!(dir = %settings.dir.display(), "speech cache stays in memory: {e}");
                    None
                }
                Err(e) => {
                    tracing::warn!("speech cache stays in memory: {e}");
                    None
                }
            }
        };
        CachedTts {
            shared: Arc::new(Shared {
                inner,
                state: Mutex::new(State {
                    memory: MemoryTier::new(settings.memory_bytes),
                    pending: HashMap::new(),
                }),
                disk,
                hits: AtomicU64::new(0),
                syntheses: AtomicU64::new(0),
            }),
        }
    }

    /// Sentences answered from memory or disk so far.
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::Relaxed)
    }

    /// Sentences the wrapped engine had to synthesise so far.
    pub fn syntheses(&self) -> u64 {
        self.shared.syntheses.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// The audio of one sentence: cached, joined to a synthesis in flight, or synthesised.
    async fn sentence(
        self: &Arc<Self>,
        text: String,
        voice: &'static Voice,
    ) -> Result<Audio, TtsError> {
        let key: Arc<str> = format!("{}\0{}\0{}", self.inner.name(), voice.id, text).into();
        loop {
            let mut waiting = {
                let mut state = self.state.lock().expect("speech cache lock");
                if let Some(audio) = state.memory.get(&key) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(audio);
                }
                match state.pending.get(&key) {
                    Some(pending) => pending.clone(),
                    None => {
                        let (done, pending) = watch::channel(None);
                        state.pending.insert(key.clone(), pending.clone());
                        tokio::spawn(self.clone().fill(key.clone(), text.clone(), voice, done));
                        pending
                    }
                }
            };
            match waiting.wait_for(Option::is_some).await {
                Ok(result) => return result.clone().expect("waited for Some"),
                Err(_) => {
                    // The filling task is gone (runtime shutting down): forget it, try again.
                    let mut state = self.state.lock().expect("speech cache lock");
                    if state
                        .pending
                        .get(&key)
                        .is_some_and(|p| p.has_changed().is_err())
                    {
                        state.pending.remove(&key);
                    }
                }
            }
        }
    }

    /// Finds `key` on disk or synthesises it, then publishes it to memory and the waiters.
    /// Runs detached from any call, so a caller hanging up does not fail the others waiting.
    async fn fill(
        self: Arc<Self>,
        key: Arc<str>,
        text: String,
        voice: &'static Voice,
        done: watch::Sender<Option<Result<Audio, TtsError>>>,
    ) {
        let from_disk = match &self.disk {
            Some(_) => {
                let (shared, k) = (self.clone(), key.clone());
                tokio::task::spawn_blocking(move || shared.disk_tier().get(&k))
                    .await
                    .ok()
                    .flatten()
            }
            None => None,
        };
        let result = match from_disk {
            Some(audio) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Ok(audio)
            }
            None => {
                self.syntheses.fetch_add(1, Ordering::Relaxed);
                let result = synthesize_whole(self.inner.as_ref(), text, voice).await;
                if let (Ok(audio), Some(_)) = (&result, &self.disk) {
                    let (shared, k, a) = (self.clone(), key.clone(), audio.clone());
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = shared.disk_tier().put(&k, &a) {
                            tracing::warn!("cannot write the speech cache: {e}");
                        }
                    });
                }
                result
            }
        };
        {
            let mut state = self.state.lock().expect("speech cache lock");
            if let Ok(audio) = &result {
                state.memory.insert(key.clone(), audio.clone());
            }
            state.pending.remove(&key);
        }
        let _ = done.send(Some(result));
    }

    fn disk_tier(&self) -> std::sync::MutexGuard<'_, DiskTier> {
        self.disk
            .as_ref()
            .expect("called only with a disk tier")
            .lock()
            .expect("speech cache disk lock")
    }
}

/// Runs the wrapped engine over one sentence and joins its chunks.
async fn synthesize_whole(
    engine: &dyn TextToSpeech,
    text: String,
    voice: &'static Voice,
) -> Result<Audio, TtsError> {
    let mut chunks = engine.synthesize(text, voice);
    let mut audio = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        audio.extend_from_slice(&chunk?);
    }
    Ok(audio.into())
}

impl TextToSpeech for CachedTts {
    fn name(&self) -> &'static str {
        self.shared.inner.name()
    }

    fn synthesize(
        &self,
        text: String,
        voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            for sentence in sentences(&text) {
                let result = shared.sentence(sentence, voice).await.map(|a| a.to_vec());
                let failed = result.is_err();
                if tx.send(result).await.is_err() || failed {
                    return;
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests;
