//! Turn-taking: the sans-IO state machine that decides who holds the floor on a call.
//!
//! The session drives it: it feeds VAD, recogniser, brain, TTS, pacer and carrier events as
//! `TurnInput`s with the call time, ticks it every 20 ms, and carries out the `TurnAction`s it
//! polls (brain replies, synthesis, pacer marks and clears, hang-up, transfer). The machine
//! keeps the conversation history (only words the caller heard), the transcript with per-turn
//! times and the latency breakdown of every reply.
//!
//! Driving it (the session's loop, every input stamped with ms since the call started):
//!
//! ```text
//! Answered                      once the call is connected (speaks the greeting)
//! SpeechStart / SpeechEnd       from the VAD;  SttPartial / SttFinal / SttError from STT
//! Brain { reply, event }        every BrainEvent of the reply started by StartReply
//! TtsAudio { utterance, n }     after pushing n samples of that utterance into the pacer
//! TtsDone / TtsError            when its synthesis ends
//! MarkPlayed(id)                when the pacer fires a mark pushed for MarkPlayout
//! PlayoutCleared { dropped }    right after carrying out ClearPlayout
//! Tick                          once per 20 ms pacer frame (timers, playout model)
//! Hangup                        the far end hung up
//! then: while let Some(action) = machine.poll_action() { carry it out }
//! ```
//!
//! ```text
//! listening ──speech──> caller speaking ──silence ≥ endpointing + final──> thinking
//!     ^                                                                      │ first audio
//!     └────────── reply played / barge-in (clear, cancel, truncate) ── agent speaking
//!                                                   resume ^  │ caller's voice
//!                                  (backchannel, noise)    │  v
//!                                                         paused (audio cleared)
//! ```
//!
//! The silence that ends a turn depends on the words: a finished question or answer ends it
//! after `endpointing_complete_ms`, words cut mid-sentence wait `endpointing_incomplete_ms`.

mod caller;
mod completeness;
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
