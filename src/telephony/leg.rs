//! `CallLeg`: what every transport (Twilio Media Streams, SIP/RTP, …) hands the call session.
//!
//! The transport decodes and resamples with the media crate so the session only ever sees
//! 16 kHz 20 ms frames, whatever the wire carries. Pacing is the session's job: it sends
//! exactly one `LegCommand::Audio` per 20 ms.

use media::InternalFrame;
use tokio::sync::mpsc;

/// Which way the call was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What the transport knows about the call when it hands it over.
#[derive(Debug, Clone)]
pub struct LegInfo {
    /// `twilio`, `sip`, `simulated`, …
    pub transport: &'static str,
    /// The carrier's identifier (Twilio CallSid, SIP Call-ID).
    pub carrier_call_id: String,
    /// Caller number (E.164 where the carrier gives one).
    pub from: String,
    /// Called number: the agent's `phone_number` for inbound calls.
    pub to: String,
    pub direction: Direction,
    /// Extra parameters the carrier passed (Twilio `customParameters`, SIP headers).
    pub parameters: Vec<(String, String)>,
    /// The carrier runs answering-machine detection on this call and reports its verdict as
    /// `LegEvent::AnsweredBy`; otherwise a call that asked for detection runs the engine's own.
    pub carrier_detects_machine: bool,
    /// The transport sends `LegCommand::SendDtmf` out of band (RFC 4733 negotiated); otherwise
    /// the session plays digits in band, as tones in the agent's audio.
    pub dtmf_out_of_band: bool,
    /// The transport needs a frame from the session every 20 ms even while the agent is quiet
    /// (a browser). A media WebSocket carrier buffers what it gets and plays silence when it
    /// runs dry, and the SIP RTP bridge sends silence itself when no frame comes, so the session
    /// sends those the agent's speech only, ends each stretch with a mark, and rests between.
    pub continuous_audio: bool,
}

/// Who answered an outbound call, as answering-machine detection decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    Human,
    /// A machine whose greeting is still playing.
    Machine,
    /// A machine whose greeting has ended (beep or silence): a message can be left now.
    MachineGreetingEnded,
    Fax,
    /// Detection could not decide.
    Unknown,
}

impl AnsweredBy {
    /// The call record's `answered_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::Machine | AnsweredBy::MachineGreetingEnded => "machine",
            AnsweredBy::Fax => "fax",
            AnsweredBy::Unknown => "unknown",
        }
    }
}

/// Transport → session.
// Frames travel inline: boxing them would allocate once per 20 ms per call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum LegEvent {
    /// 20 ms of caller audio at 16 kHz, in media order (gaps already concealed).
    Audio(InternalFrame),
    /// A DTMF digit (`0-9`, `*`, `#`, `A-D`).
    Dtmf(char),
    /// The carrier confirmed it played everything up to the mark of this name.
    Mark(String),
    /// The carrier's answering-machine detection decided (`LegInfo::carrier_detects_machine`).
    AnsweredBy(AnsweredBy),
    /// The far end hung up or the transport died; no more events follow.
    Hangup(HangupReason),
}

/// A carrier's DTMF text as a `LegEvent::Dtmf` digit: exactly one of `0-9`, `*`, `#`, `A-D`.
pub fn dtmf_digit(text: &str) -> Option<char> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if matches!(c, '0'..='9' | '*' | '#' | 'A'..='D') => Some(c),
        _ => None,
    }
}

/// Session → transport.
// Frames travel inline: boxing them would allocate once per 20 ms per call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum LegCommand {
    /// 20 ms of agent audio at 16 kHz; sent at real-time pace by the session (while the agent
    /// speaks only, unless `LegInfo::continuous_audio`).
    Audio(InternalFrame),
    /// Ask the carrier to report back when audio sent so far has played.
    Mark(String),
    /// Drop whatever agent audio the carrier still buffers (barge-in).
    Clear,
    /// Transfer the caller to this target (SIP REFER, the carrier's REST API on streams).
    Transfer(String),
    /// Send these DTMF digits out of band (only when `LegInfo::dtmf_out_of_band`).
    SendDtmf(String),
    /// End the call from our side.
    Hangup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HangupReason {
    /// The caller (or callee) hung up.
    Remote,
    /// We hung up (end_call tool, idle timeout, max duration).
    Local,
    /// No media arrived for too long.
    MediaTimeout,
    /// The transport failed: the message says how.
    TransportError(String),
}

/// One call's two directions of media and control, as a pair of channels.
pub struct CallLeg {
    pub info: LegInfo,
    pub events: mpsc::Receiver<LegEvent>,
    pub commands: mpsc::Sender<LegCommand>,
    /// Where the session sends the call's words as they become known, for a transport that
    /// can show them live (WebRTC's data channel); `None` for the rest. Never waited on: a
    /// caption that does not fit is dropped.
    pub captions: Option<mpsc::Sender<Caption>>,
}

/// Words of the call as soon as they are known, for live captions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Caption {
    /// `caller` or `agent`.
    pub speaker: &'static str,
    pub text: String,
    /// Caller: `false` for the recogniser's partial (replaced by the next), `true` for its
    /// final words of a speech segment. Agent: always `true`, one sentence as its voice starts.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Call time in milliseconds.
    pub at_ms: u64,
}

/// The transport's end of a `CallLeg`.
pub struct LegEnd {
    pub events: mpsc::Sender<LegEvent>,
    pub commands: mpsc::Receiver<LegCommand>,
}

/// Makes a connected leg: the session takes the `CallLeg`, the transport keeps the `LegEnd`.
pub fn leg_pair(info: LegInfo) -> (CallLeg, LegEnd) {
    // Deep enough to ride out a scheduling hiccup of a second or two without dropping audio.
    let (event_tx, event_rx) = mpsc::channel(128);
    let (command_tx, command_rx) = mpsc::channel(128);
    (
        CallLeg {
            info,
            events: event_rx,
            commands: command_tx,
            captions: None,
        },
        LegEnd {
            events: event_tx,
            commands: command_rx,
        },
    )
}
