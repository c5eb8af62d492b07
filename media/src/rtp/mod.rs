//! RTP for the SIP path: packet parsing and writing, wrap-around sequence and timestamp
//! arithmetic, and minimal RTCP reports.

pub mod packet;
pub mod rtcp;
pub mod seq;

pub use packet::{HEADER_LEN, Packetizer, RtpError, RtpView, parse};
pub use seq::{SeqUnwrapper, TimestampUnwrapper, seq_delta, ts_delta};
