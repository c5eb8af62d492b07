//! Transports: each turns a carrier's protocol into a `CallLeg`.

pub mod dialer;
pub mod engine_dialer;
pub mod frame_grid;
pub mod leg;
pub mod machine_detector;
pub(crate) mod media_socket;
pub mod rtp;
pub mod simulated;
pub mod sip;
pub mod stream_codec;
pub mod telnyx;
pub mod twilio;
pub mod vonage;
pub mod webrtc;

pub use dialer::{Dialer, MachineDetection, OutboundCall};
pub use leg::{
    AnsweredBy, CallLeg, Caption, Direction, HangupReason, LegCommand, LegEnd, LegEvent, LegInfo,
    leg_pair,
};
