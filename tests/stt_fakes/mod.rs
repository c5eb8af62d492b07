//! Local stand-ins for the network speech-to-text services, speaking their real protocols.
#![allow(dead_code)] // not every test uses every field

pub mod deepgram;
pub mod openai;
pub mod words;
