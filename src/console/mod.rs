//! `/console`: the operator console. A plain page and script over the `/v1` API, built into
//! the binary (no separate server, no CDN, no build step); it signs in with an API key.

mod assets;
pub mod cli;

pub use assets::router;
