//! Offline neural speech with a Piper voice (VITS exported to ONNX) run through ONNX Runtime.
//!
//! Text is split into sentences; each is phonemised by espeak-ng, synthesised on a blocking
//! thread and sent as soon as it is ready, so the first sentence plays while the next is made.
//! Every voice in the library is spoken with the installed Piper voice (`en_US-joe-medium`):
//! it is the one packaged model, and a neural voice beats the espeak fallback for all of them.

mod phonemes;

pub(super) use phonemes::run_espeak;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{TextToSpeech, TtsError, Voice, pcm};
use crate::providers::models::ModelPaths;
use phonemes::PhonemeIds;

/// Chunks in flight to the session before synthesis waits for it.
const CHANNEL_DEPTH: usize = 4;

/// The parts of the voice's `.onnx.json` we use.
#[derive(Deserialize)]
struct VoiceConfig {
    audio: AudioConfig,
    espeak: EspeakConfig,
    inference: InferenceConfig,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Deserialize)]
struct EspeakConfig {
    voice: String,
}

#[derive(Deserialize)]
struct InferenceConfig {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

pub struct PiperTts {
    voice: Arc<PiperVoice>,
}

struct PiperVoice {
    session: Mutex<Session>,
    ids: PhonemeIds,
    espeak_voice: String,
    sample_rate: u32,
    scales: [f32; 3],
    active: AtomicUsize,
    sentences: AtomicU64,
}

/// What the engine has been doing, for monitoring (and to see that cancelled work stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiperStats {
    /// Syntheses whose task is still running.
    pub active: usize,
    /// Sentences synthesised since the engine was loaded.
    pub sentences: u64,
}

/// Counts a synthesis task as active for as long as it lives.
struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// ONNX Runtime is loaded once per process, from the installed shared library.
static ORT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn init_ort(library: &Path) -> Result<&'static ort::environment::Environment, TtsError> {
    ORT.get_or_init(|| {
        ort::init_from(library)
            .map_err(|e| e.to_string())?
            .with_name("boltcall")
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| {
        TtsError(format!(
            "cannot load ONNX Runtime from {}: {e}",
            library.display()
        ))
    })
}

impl PiperTts {
    pub fn load(paths: &ModelPaths) -> Result<Self, TtsError> {
        let env = init_ort(&paths.onnxruntime)?;
        let config = std::fs::read(&paths.piper_config)
            .map_err(|e| TtsError(format!("{}: {e}", paths.piper_config.display())))?;
        let config: VoiceConfig = serde_json::from_slice(&config)
            .map_err(|e| TtsError(format!("{}: {e}", paths.piper_config.display())))?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let session = Session::builder(env)
            .and_then(|b| Ok(b.with_intra_threads(threads)?))
            .and_then(|mut b| b.commit_from_file(&paths.piper_model))
            .map_err(|e| TtsError(format!("{}: {e}", paths.piper_model.display())))?;
        let i = &config.inference;
        Ok(PiperTts {
            voice: Arc::new(PiperVoice {
                session: Mutex::new(session),
                ids: PhonemeIds::new(config.phoneme_id_map)?,
                espeak_voice: config.espeak.voice,
                sample_rate: config.audio.sample_rate,
                scales: [i.noise_scale, i.length_scale, i.noise_w],
                active: AtomicUsize::new(0),
                sentences: AtomicU64::new(0),
            }),
        })
    }

    pub fn stats(&self) -> PiperStats {
        PiperStats {
            active: self.voice.active.load(Ordering::SeqCst),
            sentences: self.voice.sentences.load(Ordering::SeqCst),
        }
    }
}

impl PiperVoice {
    /// Runs the model on one sentence's phoneme ids; returns 16 kHz PCM.
    fn infer(&self, ids: Vec<i64>) -> Result<Vec<i16>, TtsError> {
        let err = |e: ort::Error| TtsError(format!("piper inference: {e}"));
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids)).map_err(err)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let scales = Tensor::from_array(([3usize], self.scales.to_vec())).map_err(err)?;
        let audio: Vec<f32> = {
            let mut session = self
                .session
                .lock()
                .map_err(|_| TtsError("piper session poisoned".into()))?;
            let outputs = session
                .run(ort::inputs![
                    "input" => input,
                    "input_lengths" => lengths,
                    "scales" => scales,
                ])
                .map_err(err)?;
            let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
            audio.to_vec()
        };
        pcm::to_internal_rate(&audio, self.sample_rate)
    }

    async fn synthesize(
        self: Arc<Self>,
        text: String,
        tx: mpsc::Sender<Result<Vec<i16>, TtsError>>,
    ) {
        let _active = ActiveGuard(&self.active);
        for sentence in super::sentences(&text) {
            if tx.is_closed() {
                return;
            }
            let result = async {
                let ipa = phonemes::ipa(&sentence, &self.espeak_voice).await?;
                let ids = self.ids.ids(&ipa);
                let voice = self.clone();
                tokio::task::spawn_blocking(move || voice.infer(ids))
                    .await
                    .map_err(|e| TtsError(format!("piper task: {e}")))?
            }
            .await;
            self.sentences.fetch_add(1, Ordering::SeqCst);
            let failed = result.is_err();
            if tx.send(result).await.is_err() || failed {
                return;
            }
        }
    }
}

impl TextToSpeech for PiperTts {
    fn name(&self) -> &'static str {
        "piper"
    }

    fn synthesize(
        &self,
        text: String,
        voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        if voice.piper.is_none() {
            tracing::debug!(
                voice = voice.id,
                "voice has no Piper model; speaking it with joe"
            );
        }
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        // Counted before the task starts so a caller never sees a running synthesis as idle.
        self.voice.active.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(self.voice.clone().synthesize(text, tx));
        rx
    }
}
