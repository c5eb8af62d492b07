//! Text-to-speech: streams 16 kHz audio of one piece of text as synthesis proceeds.

pub mod cache;
pub mod elevenlabs;
pub mod espeak;
mod network;
pub mod openai;
mod pcm;
pub mod piper;
pub mod voices;

use tokio::sync::mpsc;

pub use voices::{VOICES, Voice, find_voice};

use crate::agent::turn::{SentenceConfig, SentenceSplitter};

/// The sentences of `text`, synthesised one at a time so the first plays while the next is made.
fn sentences(text: &str) -> Vec<String> {
    SentenceSplitter::new(SentenceConfig::default()).split_all(text)
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TtsError(pub String);

/// A text-to-speech engine shared by all calls.
pub trait TextToSpeech: Send + Sync {
    /// Short name for logs, the call record and the speech cache's key (`piper`, `openai`, …).
    fn name(&self) -> &'static str;
    /// Synthesises `text` with `voice`, sending 16 kHz mono PCM chunks as they are ready.
    /// Dropping the receiver cancels the synthesis. Must not block.
    fn synthesize(
        &self,
        text: String,
        voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>>;
}
