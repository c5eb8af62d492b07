//! Boltcall's realtime media core: everything that touches audio frames.
//!
//! Sans-IO: no sockets, no clock (time is passed in), no tokio, and no heap allocation per
//! frame once a call is running.

pub mod frame;

pub use frame::{FRAME_MS, Frame, INTERNAL_RATE};
pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod pacer;
pub mod recorder;
pub mod resample;
pub mod rtp;
pub mod vad;
