//! Boltcall: a self-hosted realtime voice-agent telephony engine.

pub mod agent;
pub mod analysis;
pub mod api;
pub mod cli;
pub mod config;
pub mod console;
pub mod events;
pub mod http_serve;
pub mod messaging;
pub mod net;
pub mod providers;
pub mod replay;
pub mod server;
pub mod store;
pub mod telephony;
