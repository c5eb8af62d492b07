//! Offline speech recognition with Whisper base through whisper.cpp (`whisper-rs`).
//!
//! One model context is shared by every call; each decode gets its own state on a blocking
//! thread, and a semaphore keeps decodes to what the cores can run at once so CPU-bound
//! decoding never starves the async runtime. Speech is decoded per VAD segment: the growing
//! tail of the segment is re-decoded about every second for partials; long speech is cut at
//! pauses into chunks decoded for good while the caller talks, so at the end of the turn only
//! the last few seconds remain to decode.

mod cleanup;
mod segmenter;

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperTokenId,
};

use super::vocabulary::Vocabulary;
use super::{SpeechToText, SttEvent, SttInput, SttStream};
use segmenter::{Job, Segmenter};

const RATE: usize = 16_000;
/// whisper.cpp ignores input shorter than one second: shorter segments are padded with silence.
const MIN_SAMPLES: usize = RATE * 5 / 4;
/// Encoder positions per second of audio (1500 for 30 s).
const CTX_PER_SECOND: usize = 50;
/// Extra encoder positions past the audio: a little context helps short utterances.
const CTX_MARGIN: usize = 64;
const MAX_AUDIO_CTX: usize = 1500;
/// Tokens allowed per second of audio (speech runs at about four): greedy decoding without
/// temperature fallback can loop on a phrase, and this bounds what such a loop costs.
const TOKENS_PER_SECOND: usize = 8;
/// Frames buffered between the session and the recogniser (4 s).
const INPUT_BUFFER: usize = 200;
/// Prompt tokens of a call's vocabulary: Whisper reads up to 224, but the more it reads the
/// more it leans on the prompt and the longer every decode takes.
const PROMPT_TOKENS: usize = 96;

/// Tokens of the words already settled in the segment that a decode continues: Whisper hears a
/// piece cut from the middle of a sentence better knowing how the sentence began.
const CONTEXT_TOKENS: usize = 48;

/// A decode's prompt as Whisper tokens: the call's vocabulary, then the segment's words so far.
type Prompt = Arc<[WhisperTokenId]>;

#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    #[error("cannot load the Whisper model {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("whisper decode failed: {0}")]
    Decode(String),
}

/// Whisper base, shared by all calls.
pub struct WhisperStt {
    engine: Arc<Engine>,
}

struct Engine {
    ctx: WhisperContext,
    /// Concurrent decodes allowed.
    permits: Semaphore,
    /// Threads per decode.
    threads: usize,
}

impl WhisperStt {
    pub fn load(model: &Path) -> Result<Self, WhisperError> {
        // Route whisper.cpp's logging away from stderr.
        whisper_rs::install_logging_hooks();
        let ctx = WhisperContext::new_with_params(model, WhisperContextParameters::default())
            .map_err(|e| WhisperError::Load {
                path: model.display().to_string(),
                reason: e.to_string(),
            })?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.min(4);
        Ok(WhisperStt {
            engine: Arc::new(Engine {
                ctx,
                permits: Semaphore::new((cores / threads).max(1)),
                threads,
            }),
        })
    }

    /// Transcribes one utterance of 16 kHz audio (the benchmark and tests use this directly).
    pub async fn transcribe(&self, samples: Vec<i16>) -> Result<String, WhisperError> {
        self.engine
            .clone()
            .transcribe(samples, Prompt::default())
            .await
    }
}

impl Engine {
    /// The vocabulary as a prompt of at most `PROMPT_TOKENS` tokens: the terms in priority
    /// order, as many as fit whole. Set as tokens rather than text, as whisper-rs leaks the
    /// text of an initial prompt on every decode.
    fn prompt(&self, vocabulary: &Vocabulary) -> Prompt {
        let terms = vocabulary.terms();
        for n in (1..=terms.len()).rev() {
            let text = format!("{}.", terms[..n].join(", "));
            match self.ctx.tokenize(&text, PROMPT_TOKENS * 4) {
                Ok(tokens) if tokens.len() <= PROMPT_TOKENS => return tokens.into(),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the vocabulary cannot be tokenised; decoding without it");
                    break;
                }
            }
        }
        Prompt::default()
    }

    /// `vocabulary` followed by the last `CONTEXT_TOKENS` tokens of `context`.
    fn with_context(&self, vocabulary: &Prompt, context: &str) -> Prompt {
        if context.is_empty() {
            return vocabulary.clone();
        }
        match self.ctx.tokenize(&format!(" {context}"), context.len() + 8) {
            Ok(tokens) => {
                let tail = &tokens[tokens.len().saturating_sub(CONTEXT_TOKENS)..];
                vocabulary.iter().chain(tail).copied().collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, "the words so far cannot be tokenised; decoding without them");
                vocabulary.clone()
            }
        }
    }

    async fn transcribe(
        self: Arc<Self>,
        samples: Vec<i16>,
        prompt: Prompt,
    ) -> Result<String, WhisperError> {
        let voiced = cleanup::voiced_frames(&samples);
        if voiced < cleanup::MIN_VOICED_FRAMES {
            return Ok(String::new());
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| WhisperError::Decode(e.to_string()))?;
        let engine = self.clone();
        let text = tokio::task::spawn_blocking(move || engine.decode(&samples, &prompt))
            .await
            .map_err(|e| WhisperError::Decode(e.to_string()))??;
        Ok(cleanup::clean(&text, voiced))
    }

    /// Greedy, English, no timestamps, no context from earlier decodes but the call's
    /// vocabulary, and an encoder window sized to the utterance (a 30 s window would cost four
    /// times as much).
    fn decode(&self, samples: &[i16], prompt: &[WhisperTokenId]) -> Result<String, WhisperError> {
        let mut audio: Vec<f32> = samples.iter().map(|s| f32::from(*s) / 32768.0).collect();
        if audio.len() < MIN_SAMPLES {
            audio.resize(MIN_SAMPLES, 0.0);
        }
        let audio_ctx = (audio.len() * CTX_PER_SECOND).div_ceil(RATE) + CTX_MARGIN;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_language(Some("en"));
        params.set_translate(false);
        params.set_no_context(true);
        if !prompt.is_empty() {
            params.set_tokens(prompt);
        }
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        params.set_audio_ctx(audio_ctx.min(MAX_AUDIO_CTX) as i32);
        params.set_max_tokens((audio.len() * TOKENS_PER_SECOND / RATE + TOKENS_PER_SECOND) as i32);
        params.set_n_threads(self.threads as i32);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        let err = |e: whisper_rs::WhisperError| WhisperError::Decode(e.to_string());
        let mut state = self.ctx.create_state().map_err(err)?;
        state.full(params, &audio).map_err(err)?;
        let mut text = String::new();
        for segment in state.as_iter() {
            if segment.no_speech_probability() > cleanup::NO_SPEECH_PROB {
                continue;
            }
            text.push_str(&segment.to_str_lossy().map_err(err)?);
        }
        Ok(text.trim().to_string())
    }
}

impl SpeechToText for WhisperStt {
    fn hears_silence(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        "whisper"
    }

    fn open(&self) -> SttStream {
        self.open_for(&Vocabulary::default())
    }

    fn open_for(&self, vocabulary: &Vocabulary) -> SttStream {
        let (input_tx, input_rx) = mpsc::channel(INPUT_BUFFER);
        let (events_tx, events_rx) = mpsc::channel(32);
        let prompt = self.engine.prompt(vocabulary);
        tokio::spawn(
            run_stream(self.engine.clone(), prompt, input_rx, events_tx).in_current_span(),
        );
        SttStream {
            input: input_tx,
            events: events_rx,
        }
    }
}

enum Kind {
    Partial,
    Commit,
    Final { redo_last: bool },
}

/// Words of the current segment's chunks already decoded for good, one entry per chunk.
#[derive(Default)]
struct Committed(Vec<String>);

impl Committed {
    /// The settled words, with `tail` after them.
    fn joined(&self, tail: &str) -> String {
        let mut words: Vec<&str> = self.0.iter().map(String::as_str).collect();
        words.push(tail);
        words.retain(|w| !w.is_empty());
        words.join(" ")
    }

    /// The settled words a decode continues: without the last chunk when it is decoded again.
    fn context(&self, redo_last: bool) -> String {
        let keep = self.0.len() - usize::from(redo_last && !self.0.is_empty());
        Committed(self.0[..keep].to_vec()).joined("")
    }
}

fn decode(
    engine: &Arc<Engine>,
    prompt: Prompt,
    kind: Kind,
    audio: Vec<i16>,
) -> impl Future<Output = (Kind, Result<String, WhisperError>)> + use<> {
    let transcription = engine.clone().transcribe(audio, prompt);
    async move { (kind, transcription.await) }
}

/// Drives one call's recognition: reads inputs without waiting on decodes, decodes settled
/// chunks of long speech as they are cut, runs at most one partial decode at a time, and
/// handles results in the order the decodes were started.
async fn run_stream(
    engine: Arc<Engine>,
    prompt: Prompt,
    mut input: mpsc::Receiver<SttInput>,
    events: mpsc::Sender<SttEvent>,
) {
    let mut segmenter = Segmenter::default();
    let mut pending = FuturesOrdered::new();
    let mut committed = Committed::default();
    // Commits being decoded: until they are back, `committed` lacks their words.
    let mut commits_pending = 0usize;
    let mut last_partial = String::new();
    let mut input_open = true;
    loop {
        if pending.is_empty() && segmenter.partial_due() {
            let prompt = engine.with_context(&prompt, &committed.context(false));
            pending.push_back(decode(
                &engine,
                prompt,
                Kind::Partial,
                segmenter.take_partial(),
            ));
        }
        if !input_open && pending.is_empty() {
            return;
        }
        tokio::select! {
            msg = input.recv(), if input_open => match msg {
                Some(msg) => {
                    let (kind, audio) = match segmenter.push(msg) {
                        Some(Job::Commit(audio)) => (Kind::Commit, audio),
                        Some(Job::Final { audio, redo_last }) => (Kind::Final { redo_last }, audio),
                        None => continue,
                    };
                    // Chunks still being decoded cannot lend their words; the vocabulary
                    // alone then primes the decode.
                    let prompt = if commits_pending == 0 {
                        let redo_last = matches!(kind, Kind::Final { redo_last: true });
                        engine.with_context(&prompt, &committed.context(redo_last))
                    } else {
                        prompt.clone()
                    };
                    commits_pending += usize::from(matches!(kind, Kind::Commit));
                    pending.push_back(decode(&engine, prompt, kind, audio));
                }
                // The session hung up: finish what was asked, then stop.
                None => input_open = false,
            },
            Some((kind, result)) = pending.next(), if !pending.is_empty() => {
                commits_pending -= usize::from(matches!(kind, Kind::Commit));
                let event = match (kind, result) {
                    (Kind::Partial, Ok(text)) => {
                        let text = committed.joined(&text);
                        if text.is_empty() || text == last_partial {
                            continue;
                        }
                        last_partial.clone_from(&text);
                        SttEvent::Partial { text }
                    }
                    (Kind::Commit, Ok(text)) => {
                        committed.0.push(text);
                        continue;
                    }
                    (Kind::Final { redo_last }, Ok(text)) => {
                        if redo_last {
                            committed.0.pop();
                        }
                        let text = std::mem::take(&mut committed).joined(&text);
                        last_partial.clear();
                        SttEvent::Final { text }
                    }
                    (Kind::Commit, Err(e)) => {
                        // An empty entry keeps the chunks and their entries in step.
                        committed.0.push(String::new());
                        tracing::warn!(error = %e, "decode failed; the words of this stretch are lost");
                        continue;
                    }
                    (Kind::Partial, Err(e)) => {
                        tracing::warn!(error = %e, "decode failed; the words of this stretch are lost");
                        continue;
                    }
                    (Kind::Final { .. }, Err(e)) => {
                        committed = Committed::default();
                        last_partial.clear();
                        SttEvent::Error { message: e.to_string() }
                    }
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}
