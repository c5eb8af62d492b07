//! Answering-machine screening of an outbound call that asked for it (`machine_detection`):
//! the agent does not greet until it knows who answered. The verdict is the carrier's when
//! the leg's carrier detects (`LegEvent::AnsweredBy`), the engine's `MachineDetector`
//! otherwise, and the engine's (or "unknown") when a carrier stays silent too long, so a
//! call never waits forever.
//!
//! A human (or an undecided line) is greeted as usual. A machine is hung up on at once, or,
//! for `leave_message`, waited out until its greeting ends and left the message. A fax is
//! hung up on. Sans-IO like the detector: call time goes in, actions come out.

use std::collections::VecDeque;

use media::Frame;

use crate::agent::turn::EndReason;
use crate::telephony::machine_detector::{MachineDetector, MachineDetectorConfig};
use crate::telephony::{AnsweredBy, Direction, LegInfo, MachineDetection};

/// How long a carrier that detects may take to say who answered before the engine's own
/// verdict is used (carriers decide within a few seconds of answer).
pub(super) const CARRIER_VERDICT_WAIT_MS: u64 = 8_000;

/// What the session does about the screening.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ScreenAction {
    /// Write `answered_by` on the call record.
    Record(AnsweredBy),
    /// A person (or nobody knows who): the agent greets as on any answered call.
    Greet,
    /// The machine's greeting is over: say this and hang up.
    LeaveMessage(String),
    /// Hang up without a word, for this reason.
    HangUp(EndReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingVerdict,
    AwaitingGreetingEnd,
    Done,
}

pub(super) struct MachineScreen {
    on_machine: MachineDetection,
    carrier_detects: bool,
    detector: MachineDetector,
    /// The engine's verdict while the carrier's is awaited.
    engine_verdict: Option<AnsweredBy>,
    state: State,
    started_at: Option<u64>,
    /// However the greeting end is (not) heard, the message goes out this long after answer.
    greeting_cap_ms: u64,
    recorded: Option<&'static str>,
    actions: VecDeque<ScreenAction>,
}

impl MachineScreen {
    /// The screen of an outbound call that asked for detection; `None` otherwise.
    pub(super) fn for_call(detection: &MachineDetection, leg: &LegInfo) -> Option<Self> {
        if !detection.is_on() || leg.direction != Direction::Outbound {
            return None;
        }
        Some(Self::new(
            detection.clone(),
            leg.carrier_detects_machine,
            MachineDetectorConfig::default(),
        ))
    }

    pub(super) fn new(
        on_machine: MachineDetection,
        carrier_detects: bool,
        config: MachineDetectorConfig,
    ) -> Self {
        MachineScreen {
            on_machine,
            carrier_detects,
            detector: MachineDetector::new(config),
            engine_verdict: None,
            state: State::AwaitingVerdict,
            started_at: None,
            greeting_cap_ms: config.greeting_cap_ms,
            recorded: None,
            actions: VecDeque::with_capacity(4),
        }
    }

    /// Whether the call is still held back (the callee's audio is not the conversation yet).
    pub(super) fn is_screening(&self) -> bool {
        self.state != State::Done
    }

    /// The callee's audio at call time `now`.
    pub(super) fn on_frame(&mut self, now: u64, frame: &Frame) {
        if self.state == State::Done {
            return;
        }
        self.started_at.get_or_insert(now);
        if let Some(verdict) = self.detector.process(now, frame) {
            self.on_engine(now, verdict);
        }
    }

    /// The carrier's verdict.
    pub(super) fn on_carrier(&mut self, now: u64, verdict: AnsweredBy) {
        if !self.carrier_detects {
            tracing::warn!(
                ?verdict,
                "a verdict from a carrier that was not detecting; ignored"
            );
            return;
        }
        self.started_at.get_or_insert(now);
        self.apply(now, verdict);
    }

    /// Time passes: the deadlines of a silent line or a silent carrier.
    pub(super) fn on_tick(&mut self, now: u64) {
        if self.state == State::Done {
            return;
        }
        let started = *self.started_at.get_or_insert(now);
        if let Some(verdict) = self.detector.tick(now) {
            self.on_engine(now, verdict);
        }
        if self.state == State::AwaitingGreetingEnd && now >= started + self.greeting_cap_ms {
            self.greeting_over();
            return;
        }
        if self.carrier_detects
            && self.state == State::AwaitingVerdict
            && now >= started + CARRIER_VERDICT_WAIT_MS
        {
            let verdict = self.engine_verdict.take().unwrap_or(AnsweredBy::Unknown);
            tracing::warn!(
                ?verdict,
                "the carrier said nothing of who answered; the engine's verdict stands"
            );
            self.apply(now, verdict);
        }
    }

    /// The next thing to do, in order.
    pub(super) fn poll(&mut self) -> Option<ScreenAction> {
        self.actions.pop_front()
    }

    fn on_engine(&mut self, now: u64, verdict: AnsweredBy) {
        let greeting_end = verdict == AnsweredBy::MachineGreetingEnded;
        if !self.carrier_detects || (greeting_end && self.state == State::AwaitingGreetingEnd) {
            self.apply(now, verdict);
        } else if self.state == State::AwaitingVerdict {
            // Held until the carrier speaks or its time is up; a later greeting end wins.
            self.engine_verdict = Some(verdict);
        }
    }

    fn apply(&mut self, now: u64, verdict: AnsweredBy) {
        match (self.state, verdict) {
            (State::Done, _) => {}
            (State::AwaitingVerdict, AnsweredBy::Human | AnsweredBy::Unknown) => {
                self.record(verdict);
                self.actions.push_back(ScreenAction::Greet);
                self.state = State::Done;
            }
            (State::AwaitingVerdict | State::AwaitingGreetingEnd, AnsweredBy::Fax) => {
                self.record(verdict);
                self.actions
                    .push_back(ScreenAction::HangUp(EndReason::FaxDetected));
                self.state = State::Done;
            }
            (State::AwaitingVerdict, AnsweredBy::Machine) => {
                self.record(verdict);
                if self.on_machine == MachineDetection::HangUp {
                    self.actions
                        .push_back(ScreenAction::HangUp(EndReason::MachineDetected));
                    self.state = State::Done;
                } else {
                    self.detector.assume_machine(now);
                    self.state = State::AwaitingGreetingEnd;
                    // The engine may already have heard the end (a carrier verdict that came
                    // late): act on it now.
                    if self.engine_verdict.take() == Some(AnsweredBy::MachineGreetingEnded)
                        || self.detector.greeting_is_over()
                    {
                        self.greeting_over();
                    }
                }
            }
            (_, AnsweredBy::MachineGreetingEnded) => {
                self.record(verdict);
                self.greeting_over();
            }
            (State::AwaitingGreetingEnd, other) => {
                tracing::info!(verdict = ?other, "a machine was already detected; later verdict ignored");
            }
        }
    }

    fn greeting_over(&mut self) {
        let action = match &self.on_machine {
            MachineDetection::LeaveMessage(message) => ScreenAction::LeaveMessage(message.clone()),
            MachineDetection::HangUp | MachineDetection::Off => {
                ScreenAction::HangUp(EndReason::MachineDetected)
            }
        };
        self.actions.push_back(action);
        self.state = State::Done;
    }

    fn record(&mut self, verdict: AnsweredBy) {
        let answered_by = verdict.as_str();
        if self.recorded != Some(answered_by) {
            self.recorded = Some(answered_by);
            self.actions.push_back(ScreenAction::Record(verdict));
        }
    }
}

#[cfg(test)]
mod tests {
    use media::{INTERNAL_RATE, InternalFrame};

    use super::*;
    use crate::agent::turn::{TurnAction, TurnConfig, TurnInput, TurnMachine, TurnState};

    fn leave() -> MachineDetection {
        MachineDetection::LeaveMessage("Hi, this is Ava. Please call us back.".into())
    }

    fn screen(on_machine: MachineDetection, carrier: bool) -> MachineScreen {
        MachineScreen::new(on_machine, carrier, MachineDetectorConfig::default())
    }

    fn silence() -> Frame {
        Frame::from(InternalFrame::silence(INTERNAL_RATE))
    }

    /// 20 ms of a 1 kHz beep (whole periods, so frames join seamlessly).
    fn beep() -> Frame {
        let pcm: Vec<i16> = (0..320)
            .map(|i| (9000.0 * (2.0 * std::f32::consts::PI * i as f32 / 16.0).sin()) as i16)
            .collect();
        Frame::from_slice(INTERNAL_RATE, &pcm).unwrap()
    }

    /// Plays `frames` from call time `from` (one per 20 ms, ticking too); returns the actions
    /// with the time they came out.
    fn play(
        s: &mut MachineScreen,
        from: u64,
        frames: impl IntoIterator<Item = Frame>,
    ) -> Vec<(u64, ScreenAction)> {
        let mut out = Vec::new();
        for (i, frame) in frames.into_iter().enumerate() {
            let now = from + i as u64 * 20;
            s.on_frame(now, &frame);
            s.on_tick(now);
            while let Some(action) = s.poll() {
                out.push((now, action));
            }
        }
        out
    }

    fn actions(timed: &[(u64, ScreenAction)]) -> Vec<ScreenAction> {
        timed.iter().map(|(_, a)| a.clone()).collect()
    }

    #[test]
    fn only_outbound_calls_that_ask_are_screened() {
        let mut leg = LegInfo {
            transport: "simulated",
            carrier_call_id: "c".into(),
            from: "+15550001".into(),
            to: "+15550002".into(),
            direction: Direction::Outbound,
            parameters: Vec::new(),
            carrier_detects_machine: false,
            dtmf_out_of_band: false,
            continuous_audio: true,
        };
        assert!(MachineScreen::for_call(&MachineDetection::Off, &leg).is_none());
        assert!(MachineScreen::for_call(&MachineDetection::HangUp, &leg).is_some());
        leg.direction = Direction::Inbound;
        assert!(MachineScreen::for_call(&MachineDetection::HangUp, &leg).is_none());
    }

    #[test]
    fn a_silent_line_is_unknown_and_greeted_after_five_seconds() {
        let mut s = screen(leave(), false);
        let timed = play(&mut s, 0, std::iter::repeat_n(silence(), 300));
        assert_eq!(
            timed,
            vec![
                (5_000, ScreenAction::Record(AnsweredBy::Unknown)),
                (5_000, ScreenAction::Greet),
            ]
        );
        assert!(!s.is_screening());
    }

    #[test]
    fn the_engine_leaves_the_message_once_the_beep_stops() {
        let mut s = screen(leave(), false);
        let frames = std::iter::repeat_n(silence(), 10)
            .chain(std::iter::repeat_n(beep(), 20))
            .chain(std::iter::repeat_n(silence(), 10));
        let timed = play(&mut s, 0, frames);
        assert_eq!(
            actions(&timed),
            vec![
                ScreenAction::Record(AnsweredBy::Machine),
                ScreenAction::LeaveMessage("Hi, this is Ava. Please call us back.".into()),
            ]
        );
        assert_eq!(timed[1].0, 600, "the message waits for the end of the beep");
    }

    #[test]
    fn hang_up_leaves_a_machine_at_once() {
        let mut s = screen(MachineDetection::HangUp, false);
        let frames = std::iter::repeat_n(silence(), 10).chain(std::iter::repeat_n(beep(), 20));
        let timed = play(&mut s, 0, frames);
        assert_eq!(
            timed,
            vec![
                (280, ScreenAction::Record(AnsweredBy::Machine)),
                (280, ScreenAction::HangUp(EndReason::MachineDetected)),
            ]
        );
    }

    #[test]
    fn the_carrier_decides_when_it_detects() {
        // Human: greeted at once, though the line is silent.
        let mut s = screen(leave(), true);
        play(&mut s, 0, std::iter::repeat_n(silence(), 50));
        s.on_carrier(1_000, AnsweredBy::Human);
        assert_eq!(s.poll(), Some(ScreenAction::Record(AnsweredBy::Human)));
        assert_eq!(s.poll(), Some(ScreenAction::Greet));
        assert_eq!(s.poll(), None);

        // Machine, then the end of its greeting, both from the carrier.
        let mut s = screen(leave(), true);
        s.on_carrier(0, AnsweredBy::Machine);
        assert_eq!(s.poll(), Some(ScreenAction::Record(AnsweredBy::Machine)));
        assert_eq!(s.poll(), None);
        s.on_carrier(4_000, AnsweredBy::MachineGreetingEnded);
        assert!(matches!(s.poll(), Some(ScreenAction::LeaveMessage(_))));
        assert!(!s.is_screening());

        // Fax.
        let mut s = screen(leave(), true);
        s.on_carrier(0, AnsweredBy::Fax);
        assert_eq!(s.poll(), Some(ScreenAction::Record(AnsweredBy::Fax)));
        assert_eq!(s.poll(), Some(ScreenAction::HangUp(EndReason::FaxDetected)));

        // A verdict from a carrier that does not detect is not trusted.
        let mut s = screen(leave(), false);
        s.on_carrier(0, AnsweredBy::Human);
        assert_eq!(s.poll(), None);
        assert!(s.is_screening());
    }

    #[test]
    fn a_silent_carrier_hands_over_to_the_engine_and_never_hangs_the_call() {
        // The engine heard nothing: unknown once the carrier's time is up, and greeted.
        let mut s = screen(leave(), true);
        let timed = play(&mut s, 0, std::iter::repeat_n(silence(), 500));
        assert_eq!(
            timed,
            vec![
                (
                    CARRIER_VERDICT_WAIT_MS,
                    ScreenAction::Record(AnsweredBy::Unknown)
                ),
                (CARRIER_VERDICT_WAIT_MS, ScreenAction::Greet),
            ]
        );

        // The carrier named a machine but never its greeting end: the engine hears the beep.
        let mut s = screen(leave(), true);
        s.on_carrier(0, AnsweredBy::Machine);
        let _ = s.poll();
        let frames = std::iter::repeat_n(silence(), 10)
            .chain(std::iter::repeat_n(beep(), 20))
            .chain(std::iter::repeat_n(silence(), 5));
        let timed = play(&mut s, 0, frames);
        assert_eq!(timed.len(), 1, "{timed:?}");
        assert!(matches!(timed[0], (600, ScreenAction::LeaveMessage(_))));

        // …and with no sound at all, the cap sends the message.
        let mut s = screen(leave(), true);
        s.on_carrier(0, AnsweredBy::Machine);
        let _ = s.poll();
        for now in (0..30_000).step_by(20) {
            s.on_tick(now);
            assert_eq!(s.poll(), None, "{now}");
        }
        s.on_tick(30_000);
        assert!(matches!(s.poll(), Some(ScreenAction::LeaveMessage(_))));
    }

    #[test]
    fn the_turn_machine_speaks_the_message_then_hangs_up_or_hangs_up_at_once() {
        let config = TurnConfig {
            greeting: Some("Hello from Bright Smile.".into()),
            ..TurnConfig::default()
        };
        // Leave a message: the greeting is not spoken, the message is, then the hang-up.
        let mut turn = TurnMachine::new(config.clone());
        turn.handle(
            7_000,
            TurnInput::EndWith {
                line: Some("Please call us back.".into()),
                reason: EndReason::VoicemailLeft,
            },
        );
        let Some(TurnAction::Synthesize { utterance, text }) = turn.poll_action() else {
            panic!("the message is synthesised")
        };
        assert_eq!(text, "Please call us back.");
        turn.handle(
            7_010,
            TurnInput::TtsAudio {
                utterance,
                samples: 16_000,
            },
        );
        turn.handle(7_020, TurnInput::TtsDone { utterance });
        assert_eq!(
            turn.poll_action(),
            Some(TurnAction::MarkPlayout { mark: utterance.0 })
        );
        // A voicemail's "speech" does not interrupt the message.
        turn.handle(7_100, TurnInput::SpeechStart);
        turn.handle(7_500, TurnInput::SttFinal("recording".into()));
        for now in (7_040..=8_040).step_by(20) {
            turn.handle(now, TurnInput::Tick);
        }
        turn.handle(8_040, TurnInput::MarkPlayed(utterance.0));
        assert_eq!(turn.poll_action(), Some(TurnAction::Hangup));
        assert_eq!(turn.state(), TurnState::Ended);
        assert_eq!(turn.end_reason(), Some(EndReason::VoicemailLeft));
        let said = &turn.transcript()[0];
        assert_eq!(said.text, "Please call us back.");
        assert!(said.start_ms >= 7_000);

        // Hang up: nothing said.
        let mut turn = TurnMachine::new(config);
        turn.handle(
            3_000,
            TurnInput::EndWith {
                line: None,
                reason: EndReason::MachineDetected,
            },
        );
        assert_eq!(turn.poll_action(), Some(TurnAction::Hangup));
        assert_eq!(turn.poll_action(), None);
        assert_eq!(turn.end_reason(), Some(EndReason::MachineDetected));
        assert!(turn.transcript().is_empty());
    }
}
