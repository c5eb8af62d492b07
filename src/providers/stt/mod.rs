//! Speech-to-text: one streaming session per call.

pub mod deepgram;
pub mod openai;
pub mod vocabulary;
pub mod whisper;

use media::InternalFrame;
use tokio::sync::mpsc;
use vocabulary::Vocabulary;

/// Session → recogniser.
// Frames travel inline: boxing them would allocate once per 20 ms per call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SttInput {
    /// 20 ms of caller audio at 16 kHz. Sent for every frame, speech or not, to an engine that
    /// `hears_silence`; to the others only the speech and the few hundred ms before it.
    Audio(InternalFrame),
    /// The VAD heard speech begin (the frames just before are already sent).
    SpeechStart,
    /// The VAD heard speech end: finish this segment and send its `Final` promptly.
    SpeechEnd,
}

/// Recogniser → session.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// An unstable hypothesis of the words so far in the current segment.
    Partial { text: String },
    /// The settled words of one segment (may be empty when the segment held no words).
    Final { text: String },
    /// The recogniser failed; the session carries on without this segment.
    Error { message: String },
}

/// The session's handle on one recognition stream. Dropping `input` ends the stream.
pub struct SttStream {
    pub input: mpsc::Sender<SttInput>,
    pub events: mpsc::Receiver<SttEvent>,
}

/// A speech-to-text engine shared by all calls.
pub trait SpeechToText: Send + Sync {
    /// Short name for logs and the call record (`whisper`, `deepgram`, …).
    fn name(&self) -> &'static str;
    /// Opens a recognition stream for one call. Must not block.
    fn open(&self) -> SttStream;
    /// Opens a stream primed with the words this call is likely to hold (the agent's names,
    /// services, titles). Engines that cannot be primed open a plain stream.
    fn open_for(&self, _vocabulary: &Vocabulary) -> SttStream {
        self.open()
    }
    /// Whether the engine needs the caller's audio between speech segments too (a live
    /// streaming service does; one that decodes VAD segments only needs 300 ms before each).
    fn hears_silence(&self) -> bool {
        true
    }
}
