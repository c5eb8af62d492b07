//! Network providers a whole call can run against: a Deepgram live stream that hears scripted
//! lines in whatever speech it is sent, and an OpenAI-compatible chat endpoint that answers
//! with scripted streamed replies and tool calls. Both speak the real wire protocols.

pub mod chat;
pub mod deepgram_script;
