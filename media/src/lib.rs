//! Boltcall's realtime media core: everything that touches audio frames.
//!
//! Sans-IO: no sockets, no clock (time is passed in), no tokio, and no heap allocation per
//! frame once a call is running.

/// Opus, L16 and loss concealment for codecs without their own.
pub mod codec;
/// RFC 4733 telephone-events and in-band (Goertzel) DTMF detection.
pub mod dtmf;
/// The 20 ms PCM16 frame every stage passes around.
pub mod frame;
/// G.711 μ-law and A-law.
pub mod g711;
/// Adaptive jitter buffer for inbound RTP.
pub mod jitter;
/// Playout queue paced one frame per 20 ms tick, with marks and barge-in clear.
pub mod pacer;
/// Stereo call recording (caller left, agent right), written as the call runs.
pub mod recorder;
/// Sample-rate conversion per frame and per arbitrary chunk.
pub mod resample;
/// RTP packets, sequence/timestamp wrap-around and RTCP reports.
pub mod rtp;
/// Steady single-tone detection: answering-machine beeps, fax answer tones.
pub mod tone;
/// Voice activity detection with speech start/end events.
pub mod vad;
/// The recorder's streaming stereo WAV writer.
mod wav_out;
/// Fixing the header of a WAV file whose writer was killed.
pub mod wav_repair;

pub use frame::{FRAME_MS, Frame, INTERNAL_RATE, InternalFrame};
