//! Turn-taking: the sans-IO state machine that decides who holds the floor on a call.
//!
//! The session drives it: it feeds VAD, recogniser, brain, TTS, pacer and carrier events as
//! `TurnInput`s with the call time, ticks it every 20 ms, and carries out the `TurnAction`s it
//! polls (brain replies, synthesis, pacer marks and clears, hang-up, transfer). The machine
//! keeps the conversation history (only words the caller heard), the transcript with per-turn
//! times and the latency breakdown of every reply.
//!
//! ```text
//! listening ──speech──> caller speaking ──silence ≥ endpointing + final──> thinking
//!     ^                                                                      │ first audio
//!     └────────── reply played / barge-in (clear, cancel, truncate) ── agent speaking
//! ```

mod caller;
mod config;
mod heard;
mod machine;
mod record;
mod sentences;
#[cfg(test)]
mod tests;

pub use caller::non_backchannel_words;
pub use config::{DEFAULT_BACKCHANNELS, SentenceConfig, TurnConfig};
pub use heard::{PlayoutClock, SpokenPiece, heard_text};
pub use machine::{ReplyId, TurnAction, TurnInput, TurnMachine, TurnState, UtteranceId};
pub use record::{EndReason, ToolCallRecord, TranscriptTurn, TurnLatency, latency_report};
pub use sentences::SentenceSplitter;
