//! Transports: each turns a carrier's protocol into a `CallLeg`.

pub mod dialer;
pub mod leg;
pub mod rtp;
pub mod simulated;
pub mod sip;
pub mod twilio;
pub mod unplaced_dialer;

pub use dialer::{Dialer, OutboundCall};
pub use leg::{CallLeg, Direction, HangupReason, LegCommand, LegEnd, LegEvent, LegInfo, leg_pair};
