//! Speech and language providers: one trait each, an embedded offline default, and network
//! providers beside it.

pub mod llm;
pub mod models;
pub mod stt;
pub mod tts;
