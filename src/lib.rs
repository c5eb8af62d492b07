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

/// Makes aws-lc-rs the process's TLS crypto provider. WebRTC's DTLS turns on rustls' `ring`
/// feature beside the `aws_lc_rs` the rest of the engine uses; with both on, rustls cannot
/// choose by itself and panics on first use. Call before any TLS or DTLS; calling again is
/// harmless.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is all that is needed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
