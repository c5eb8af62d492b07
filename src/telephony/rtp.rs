//! RTP for SIP calls: ports, packets, DTMF events, and the bridge between an RTP socket and
//! a `CallLeg`.

pub mod bridge;
pub mod dtmf;
pub mod dtmf_out;
pub mod latch;
pub mod outbound;
pub mod playout;
pub mod ports;
pub mod send_queue;
pub mod stats;
pub mod voice;

pub use bridge::{BridgeControl, BridgeExit, run_bridge};
pub use ports::{PortPool, RtpSocket};
