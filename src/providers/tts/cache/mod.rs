//! The speech cache: every sentence is synthesised once per (engine, voice, text) and then
//! served from memory (bounded, least recently used first out) or from disk under the data
//! directory. Greetings, reprompts and goodbyes are the same for every call of an agent, so
//! without this each new call paid a full synthesis before the caller heard anything.
//!
//! Concurrent calls asking for a sentence that is being synthesised follow that one synthesis
//! instead of starting their own (a burst of calls to one agent costs one greeting). A miss
//! streams: each caller gets the engine's audio as it arrives, so a network voice's first
//! chunk plays before the sentence is finished.

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

/// A synthesis in flight: the audio so far, and how it ended once it has.
#[derive(Default)]
struct Progress {
    audio: Vec<i16>,
    end: Option<Result<(), TtsError>>,
}

type Pending = watch::Receiver<Progress>;

/// Where a sentence's audio comes from.
enum Source {
    Cached(Audio),
    InFlight(Pending),
}

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
    /// The audio of one sentence: cached, or a synthesis in flight (started if none is).
    fn sentence(self: &Arc<Self>, text: String, voice: &'static Voice) -> Source {
        let key: Arc<str> = format!("{}\0{}\0{}", self.inner.name(), voice.id, text).into();
        let mut state = self.state.lock().expect("speech cache lock");
        if let Some(audio) = state.memory.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Source::Cached(audio);
        }
        if let Some(pending) = state.pending.get(&key) {
            return Source::InFlight(pending.clone());
        }
        let (progress, pending) = watch::channel(Progress::default());
        state.pending.insert(key.clone(), pending.clone());
        tokio::spawn(self.clone().fill(key, text, voice, progress));
        Source::InFlight(pending)
    }

    /// Finds `key` on disk or synthesises it, publishing the audio to the followers as it
    /// arrives and to memory (and disk) once whole. Runs detached from any call, so a caller
    /// hanging up does not fail the others following it.
    async fn fill(
        self: Arc<Self>,
        key: Arc<str>,
        text: String,
        voice: &'static Voice,
        progress: watch::Sender<Progress>,
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
        let synthesised = from_disk.is_none();
        let end = match from_disk {
            Some(audio) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                progress.send_modify(|p| p.audio.extend_from_slice(&audio));
                Ok(())
            }
            None => {
                self.syntheses.fetch_add(1, Ordering::Relaxed);
                let mut chunks = self.inner.synthesize(text, voice);
                loop {
                    match chunks.recv().await {
                        Some(Ok(chunk)) => {
                            progress.send_modify(|p| p.audio.extend_from_slice(&chunk));
                        }
                        Some(Err(e)) => break Err(e),
                        None => break Ok(()),
                    }
                }
            }
        };
        let audio: Audio = progress.borrow().audio.as_slice().into();
        if synthesised && end.is_ok() && self.disk.is_some() {
            let (shared, k, a) = (self.clone(), key.clone(), audio.clone());
            tokio::task::spawn_blocking(move || {
                if let Err(e) = shared.disk_tier().put(&k, &a) {
                    tracing::warn!("cannot write the speech cache: {e}");
                }
            });
        }
        {
            let mut state = self.state.lock().expect("speech cache lock");
            if end.is_ok() {
                state.memory.insert(key.clone(), audio);
            }
            state.pending.remove(&key);
        }
        progress.send_modify(|p| p.end = Some(end));
    }

    fn disk_tier(&self) -> std::sync::MutexGuard<'_, DiskTier> {
        self.disk
            .as_ref()
            .expect("called only with a disk tier")
            .lock()
            .expect("speech cache disk lock")
    }
}

/// Sends what `pending` publishes, as it arrives, until its synthesis ends; `false` when the
/// sentence failed or the receiver is gone.
async fn follow(mut pending: Pending, tx: &mpsc::Sender<Result<Vec<i16>, TtsError>>) -> bool {
    let mut sent = 0;
    loop {
        let (chunk, end) = match pending
            .wait_for(|p| p.audio.len() > sent || p.end.is_some())
            .await
        {
            Ok(progress) => (progress.audio[sent..].to_vec(), progress.end.clone()),
            // The filling task is gone: only when the runtime shuts down.
            Err(_) => (
                Vec::new(),
                Some(Err(TtsError("the synthesis was abandoned".into()))),
            ),
        };
        sent += chunk.len();
        if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
            return false;
        }
        match end {
            None => {}
            Some(Ok(())) => return true,
            Some(Err(e)) => {
                let _ = tx.send(Err(e)).await;
                return false;
            }
        }
    }
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
                let spoken = match shared.sentence(sentence, voice) {
                    Source::Cached(audio) => tx.send(Ok(audio.to_vec())).await.is_ok(),
                    Source::InFlight(pending) => follow(pending, &tx).await,
                };
                if !spoken {
                    return;
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests;
