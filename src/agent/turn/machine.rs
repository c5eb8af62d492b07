//! The turn-taking state machine: who holds the floor, when the caller has finished, when the
//! agent speaks, stops, or hangs up. Sans-IO: the session feeds `TurnInput`s with the call time
//! and carries out the `TurnAction`s it polls.

use std::collections::VecDeque;

use super::caller::{CallerTurn, non_backchannel_words};
use super::config::TurnConfig;
use super::heard::{PlayoutClock, SpokenPiece, heard_text};
use super::record::{EndReason, ToolCallRecord, TranscriptTurn, TurnLatency};
use super::sentences::SentenceSplitter;
use crate::agent::tools::arguments::SEND_DTMF;
use crate::providers::llm::{BrainEvent, Message, Role};

/// Names one reply of the agent (a brain reply, the greeting or a fixed line). Events of a
/// reply that is no longer live are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyId(pub u64);

/// Names one piece of text sent to TTS. It doubles as the pacer mark pushed after its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtteranceId(pub u64);

/// Session → machine. Every input comes with `now`, milliseconds since the call started.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnInput {
    /// The call is connected (inbound answered, outbound picked up): greet and start timers.
    Answered,
    /// The VAD heard the caller start speaking.
    SpeechStart,
    /// The VAD heard the caller stop speaking.
    SpeechEnd,
    SttPartial(String),
    SttFinal(String),
    /// The recogniser failed on the current segment; listening goes on.
    SttError(String),
    Dtmf(char),
    /// An event of the brain reply `reply`, as `BrainSession::reply` streamed it.
    Brain {
        reply: ReplyId,
        event: BrainEvent,
    },
    /// `samples` of synthesised audio for `utterance` were pushed into the pacer.
    TtsAudio {
        utterance: UtteranceId,
        samples: usize,
    },
    /// Synthesis of `utterance` finished.
    TtsDone {
        utterance: UtteranceId,
    },
    /// Synthesis of `utterance` failed; the machine skips it.
    TtsError {
        utterance: UtteranceId,
        message: String,
    },
    /// The pacer played everything queued before this mark (`TurnAction::MarkPlayout`).
    MarkPlayed(u64),
    /// Answer to `TurnAction::ClearPlayout`: how many queued samples the pacer dropped.
    PlayoutCleared {
        dropped_samples: usize,
    },
    /// The far end hung up or the transport died.
    Hangup,
    /// Time passes (the session ticks every 20 ms); timers fire here.
    Tick,
    /// The engine is shutting down: say goodbye and hang up.
    Shutdown,
    /// End the call from our side for `reason`: say `line` first (not interruptible), or hang
    /// up at once without one. Answering-machine detection leaves its message this way.
    EndWith {
        line: Option<String>,
        reason: EndReason,
    },
}

/// Machine → session, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnAction {
    /// Ask the brain for the next reply to `history`; tag its events with `reply`.
    StartReply {
        reply: ReplyId,
        history: Vec<Message>,
    },
    /// Drop the brain reply's receiver (its late events are ignored anyway).
    CancelReply { reply: ReplyId },
    /// Synthesise `text`; report its audio as `TtsAudio` and push that audio into the pacer,
    /// then report `TtsDone` or `TtsError`. One utterance is synthesised at a time, so audio
    /// reaches the pacer in speaking order.
    Synthesize {
        utterance: UtteranceId,
        text: String,
    },
    /// Drop the synthesis of `utterance` and push none of its remaining audio.
    CancelSynthesis { utterance: UtteranceId },
    /// Press DTMF `keys` (checked by the `send_dtmf` tool) now that everything said before
    /// them has played: as tones pushed into the pacer, or out of band
    /// (`LegCommand::SendDtmf`) with as long a silence pushed, so that what follows waits for
    /// the keys. Report what was pushed as `TtsAudio` of `utterance`, then `TtsDone` (or
    /// `TtsError`), as for speech.
    SendKeys {
        utterance: UtteranceId,
        keys: String,
    },
    /// Push pacer mark `mark` after the audio pushed so far; report it with `MarkPlayed`.
    MarkPlayout { mark: u64 },
    /// Clear the pacer, send `LegCommand::Clear` to the carrier, and answer with
    /// `PlayoutCleared` carrying the dropped sample count.
    ClearPlayout,
    /// Hang up (`LegCommand::Hangup`). The machine has ended.
    Hangup,
    /// Blind-transfer the caller (`LegCommand::Transfer`). The machine has ended.
    Transfer { target: String },
}

/// Who holds the floor, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnState {
    Listening,
    CallerSpeaking,
    /// A reply is under way but no audio of it has been played yet.
    Thinking,
    AgentSpeaking,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyKind {
    Greeting,
    Brain,
    /// A fixed line: reprompt, apology, goodbye.
    Line,
}

/// What happens once a reply has been spoken.
#[derive(Debug, Clone, PartialEq)]
enum After {
    Listen,
    Hangup(EndReason),
    Transfer(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceState {
    Pending,
    Synthesizing,
    /// Synthesised and its mark pushed: waiting to be played out.
    Marked,
    Played,
}

#[derive(Debug, Clone)]
struct Piece {
    id: UtteranceId,
    /// The words, or for keys how the transcript shows them (`[DTMF:1#]`).
    text: String,
    /// DTMF keys rather than words: in the transcript, not in the brain's history.
    keys: Option<String>,
    state: PieceState,
    samples: usize,
    /// Synthesis failed: its audio (if any) plays, its words are not claimed.
    failed: bool,
}

/// A reply in progress.
#[derive(Debug, Clone)]
struct Reply {
    id: ReplyId,
    kind: ReplyKind,
    interruptible: bool,
    /// The brain is still streaming.
    brain_live: bool,
    started_at: u64,
    first_text_at: Option<u64>,
    splitter: SentenceSplitter,
    pieces: Vec<Piece>,
    after: After,
    last_progress: u64,
    first_sent_at: Option<u64>,
    first_audio_at: Option<u64>,
    last_played_at: Option<u64>,
    clock: PlayoutClock,
    /// Latency being measured (brain replies only), with the caller's speech end.
    latency: Option<(TurnLatency, Option<u64>)>,
    /// The caller's words this reply answers, to hand back if nothing of it was heard.
    prompt: Option<(String, u64)>,
    /// Playout stopped because the caller started talking over it: their words decide
    /// whether the reply is dropped (an interruption) or resumed (a backchannel, a cough).
    paused: Option<Pause>,
    /// Times the reply went on after a pause.
    resumed: u32,
}

/// A reply resumes at most this many times: echo of the agent's own voice or a noisy line must
/// not restart it forever. After that only words, or speech too long for a backchannel, stop it.
const MAX_RESUMES: u32 = 3;

/// A reply held while the caller talks over it.
#[derive(Debug, Clone, Copy)]
struct Pause {
    at: u64,
    /// Samples of the unmarked pieces that were played before the pacer was cleared, once
    /// the pacer has said how much it dropped.
    played_unmarked: Option<usize>,
}

/// What the caller's speech over the agent amounts to so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FloorClaim {
    None,
    /// Long enough to be a voice rather than a click: stop the audio, keep the reply.
    Pause,
    /// Words, or speech too long for a backchannel: the caller has the floor.
    Take,
}

/// A reply cut off mid-playout, waiting for the pacer to say how much it dropped.
#[derive(Debug, Clone)]
struct Cut {
    reply: Reply,
    at: u64,
}

/// The turn-taking state machine of one call.
#[derive(Debug)]
pub struct TurnMachine {
    config: TurnConfig,
    splitter_template: SentenceSplitter,
    now: u64,
    answered_at: Option<u64>,
    ended: Option<EndReason>,
    actions: VecDeque<TurnAction>,
    history: Vec<Message>,
    transcript: Vec<TranscriptTurn>,
    latencies: Vec<TurnLatency>,
    tool_calls: Vec<ToolCallRecord>,
    next_id: u64,
    caller: CallerTurn,
    reply: Option<Reply>,
    cut: Option<Cut>,
    /// Caller words whose reply was cancelled before a word of it was heard: they open the
    /// next caller turn.
    carry: Option<(String, u64)>,
    /// The last backchannel-only words said over the agent (text, start, end): if the agent's
    /// reply ends with a question, that "yeah" was the answer.
    ack: Option<(String, u64, u64)>,
    /// Nobody has spoken since this time (idle timers).
    quiet_since: u64,
    reprompted: bool,
    closing: bool,
    caller_turns: usize,
}

impl TurnMachine {
    pub fn new(config: TurnConfig) -> Self {
        TurnMachine {
            splitter_template: SentenceSplitter::new(config.sentences.clone()),
            config,
            now: 0,
            answered_at: None,
            ended: None,
            actions: VecDeque::new(),
            history: Vec::new(),
            transcript: Vec::new(),
            latencies: Vec::new(),
            tool_calls: Vec::new(),
            next_id: 1,
            caller: CallerTurn::default(),
            reply: None,
            cut: None,
            carry: None,
            ack: None,
            quiet_since: 0,
            reprompted: false,
            closing: false,
            caller_turns: 0,
        }
    }

    /// Feeds one input at call time `now` (ms). Time never runs backwards: an older `now` is
    /// taken as the latest seen.
    pub fn handle(&mut self, now: u64, input: TurnInput) {
        let now = now.max(self.now);
        self.now = now;
        if self.ended.is_some() {
            return;
        }
        match input {
            TurnInput::Answered => self.on_answered(now),
            TurnInput::SpeechStart => {
                let floor = self.reply.is_some();
                self.caller.speech_start(now, floor);
                self.caller_active(now);
            }
            TurnInput::SpeechEnd => {
                self.caller.speech_end(now);
                self.caller_active(now);
            }
            TurnInput::SttPartial(text) => {
                self.caller.partial(now, &text);
                self.caller_active(now);
            }
            TurnInput::SttFinal(text) => {
                self.caller.final_text(now, &text);
                self.caller_active(now);
            }
            TurnInput::SttError(_) => self.caller.stt_error(),
            TurnInput::Dtmf(digit) => {
                let floor = self.reply.is_some();
                self.caller.digit(now, digit, floor);
                self.caller_active(now);
            }
            TurnInput::Brain { reply, event } => self.on_brain(now, reply, event),
            TurnInput::TtsAudio { utterance, samples } => self.on_audio(now, utterance, samples),
            TurnInput::TtsDone { utterance } => self.on_synthesis_end(now, utterance, false),
            TurnInput::TtsError { utterance, .. } => self.on_synthesis_end(now, utterance, true),
            TurnInput::MarkPlayed(mark) => self.on_mark(now, mark),
            TurnInput::PlayoutCleared { dropped_samples } => {
                if let Some(cut) = self.cut.take() {
                    let unmarked = unmarked_samples(&cut.reply);
                    self.settle(
                        cut.reply,
                        unmarked.saturating_sub(dropped_samples),
                        cut.at,
                        true,
                    );
                } else if let Some(reply) = self.reply.as_mut() {
                    let unmarked = unmarked_samples(reply);
                    if let Some(pause) = reply.paused.as_mut() {
                        pause.played_unmarked = Some(unmarked.saturating_sub(dropped_samples));
                    }
                }
            }
            TurnInput::Hangup => {
                self.end_remote(now);
                return;
            }
            TurnInput::Tick => self.on_tick(now),
            TurnInput::EndWith { line, reason } => {
                if !self.closing {
                    self.end_with(now, line, reason);
                }
                return;
            }
            TurnInput::Shutdown => {
                if !self.closing {
                    let line = self.config.shutdown_goodbye.clone();
                    self.close(now, &line, EndReason::Shutdown);
                    return;
                }
            }
        }
        self.advance(now);
    }

    /// The next action for the session to carry out, in order.
    pub fn poll_action(&mut self) -> Option<TurnAction> {
        self.actions.pop_front()
    }

    /// The earliest call time at which a `Tick` would change something, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.ended.is_some() {
            return None;
        }
        let c = &self.config;
        // Asked on every wake of a resting call: a running minimum, not a list.
        let mut earliest: Option<u64> = None;
        let mut deadline = |at: u64| earliest = Some(earliest.map_or(at, |e| e.min(at)));
        if let (Some(answered), false) = (self.answered_at, self.closing) {
            deadline(answered + c.max_call_ms);
        }
        match &self.reply {
            Some(reply) => {
                if reply.brain_live && reply.first_text_at.is_none() {
                    deadline(reply.started_at + c.brain_first_token_ms);
                }
                deadline(self.stall_deadline(reply));
                if let (true, Some(since)) = (reply.interruptible, self.caller.speaking_since) {
                    if reply.paused.is_none() && reply.resumed < MAX_RESUMES {
                        deadline(since + c.barge_in_speech_ms);
                    }
                    deadline(since + c.backchannel_max_ms);
                }
                if let Some(at) = self.caller.end_of_turn_at(c) {
                    deadline(at);
                }
            }
            None => {
                if let Some(at) = self.caller.end_of_turn_at(c) {
                    deadline(at);
                } else if self.answered_at.is_some() && self.caller_is_silent() {
                    let wait = if self.reprompted {
                        c.idle_hangup_ms
                    } else {
                        c.idle_reprompt_ms
                    };
                    deadline(self.quiet_since + wait);
                }
            }
        }
        earliest
    }

    pub fn state(&self) -> TurnState {
        if self.ended.is_some() {
            return TurnState::Ended;
        }
        match &self.reply {
            Some(reply) if reply.first_audio_at.is_some() => TurnState::AgentSpeaking,
            Some(_) => TurnState::Thinking,
            None if self.caller.speaking_since.is_some() => TurnState::CallerSpeaking,
            None => TurnState::Listening,
        }
    }

    /// Why the call ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.ended
    }

    /// The conversation as the brain sees it: agent messages hold only what was heard.
    pub fn history(&self) -> &[Message] {
        &self.history
    }

    /// The transcript for the call record, with call-relative times.
    pub fn transcript(&self) -> &[TranscriptTurn] {
        &self.transcript
    }

    /// Latency breakdown of every brain reply so far.
    pub fn latencies(&self) -> &[TurnLatency] {
        &self.latencies
    }

    /// Tools the brain ran, in order.
    pub fn tool_calls(&self) -> &[ToolCallRecord] {
        &self.tool_calls
    }

    pub fn config(&self) -> &TurnConfig {
        &self.config
    }

    /// Whether the agent's reply is held while the caller talks over it.
    #[cfg(test)]
    pub fn is_paused(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.paused.is_some())
    }

    // ---- inputs ----

    fn on_answered(&mut self, now: u64) {
        if self.answered_at.is_some() {
            return;
        }
        self.answered_at = Some(now);
        self.quiet_since = now;
        if let Some(greeting) = self.config.greeting.clone() {
            let interruptible = self.config.greeting_interruptible;
            self.speak_line(
                now,
                &greeting,
                ReplyKind::Greeting,
                interruptible,
                After::Listen,
            );
        }
    }

    fn caller_active(&mut self, now: u64) {
        self.quiet_since = now;
        self.reprompted = false;
    }

    fn on_brain(&mut self, now: u64, id: ReplyId, event: BrainEvent) {
        if let BrainEvent::ToolCalled {
            name,
            arguments,
            result,
        } = &event
        {
            // A tool that ran has had its effect even if its reply was since cancelled.
            self.tool_calls.push(ToolCallRecord {
                name: name.clone(),
                arguments: arguments.clone(),
                result: result.clone(),
            });
        }
        let Some(reply) = self.reply.as_mut().filter(|r| r.id == id && r.brain_live) else {
            return;
        };
        reply.last_progress = now;
        match event {
            BrainEvent::Text(text) => {
                if reply.first_text_at.is_none() && !text.trim().is_empty() {
                    reply.first_text_at = Some(now);
                    if let Some((latency, _)) = reply.latency.as_mut() {
                        latency.first_token_ms = Some(now - reply.started_at);
                    }
                }
                let pieces = reply.splitter.push(&text);
                self.add_pieces(pieces);
            }
            BrainEvent::ToolCalled { name, result, .. } => {
                let keys = result
                    .get("digits")
                    .and_then(serde_json::Value::as_str)
                    .filter(|_| name == SEND_DTMF && result.get("error").is_none());
                if let Some(keys) = keys {
                    // The keys go after what was said before them, even half a sentence, and
                    // count as the reply's first output.
                    reply.first_text_at.get_or_insert(now);
                    let pieces = reply.splitter.finish();
                    self.add_pieces(pieces);
                    self.add_keys(keys);
                }
            }
            BrainEvent::ProviderFailed { .. } => {}
            BrainEvent::EndCall => reply.after = After::Hangup(EndReason::AgentHangup),
            BrainEvent::Transfer { target } => reply.after = After::Transfer(target),
            BrainEvent::Done => {
                reply.brain_live = false;
                let pieces = reply.splitter.finish();
                self.add_pieces(pieces);
            }
            BrainEvent::Error(_) => self.brain_failed(),
        }
        self.pump(now);
    }

    /// The brain failed (or went silent): keep what it already said, or apologise when it
    /// said nothing, and carry on listening.
    fn brain_failed(&mut self) {
        let line = self.config.brain_error_line.clone();
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        reply.brain_live = false;
        reply.splitter.reset();
        if reply.pieces.is_empty() {
            let pieces = self.splitter_template.clone().split_all(&line);
            self.add_pieces(pieces);
        }
    }

    fn on_audio(&mut self, now: u64, utterance: UtteranceId, samples: usize) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        let Some(piece) = reply
            .pieces
            .iter_mut()
            .find(|p| p.id == utterance && p.state == PieceState::Synthesizing)
        else {
            return;
        };
        if samples == 0 {
            return;
        }
        piece.samples += samples;
        reply.clock.push(samples);
        reply.last_progress = now;
        if reply.first_audio_at.is_none() {
            reply.first_audio_at = Some(now);
            if let Some((latency, speech_end)) = reply.latency.as_mut() {
                latency.tts_first_audio_ms = reply.first_sent_at.map(|at| now - at);
                latency.first_media_out_ms = Some(now - reply.started_at);
                latency.voice_to_voice_ms = speech_end.map(|end| now.saturating_sub(end));
            }
        }
    }

    fn on_synthesis_end(&mut self, now: u64, utterance: UtteranceId, failed: bool) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        let Some(piece) = reply
            .pieces
            .iter_mut()
            .find(|p| p.id == utterance && p.state == PieceState::Synthesizing)
        else {
            return;
        };
        piece.failed |= failed;
        reply.last_progress = now;
        if piece.samples > 0 {
            piece.state = PieceState::Marked;
            self.actions
                .push_back(TurnAction::MarkPlayout { mark: utterance.0 });
        } else {
            // Nothing to play: nothing heard.
            piece.failed = true;
            piece.state = PieceState::Played;
        }
        self.pump(now);
    }

    fn on_mark(&mut self, now: u64, mark: u64) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        if let Some(piece) = reply
            .pieces
            .iter_mut()
            .find(|p| p.id.0 == mark && p.state == PieceState::Marked)
        {
            piece.state = PieceState::Played;
            reply.last_played_at = Some(now);
            reply.last_progress = now;
        }
        // Keys waiting for this piece to play can go now.
        self.pump(now);
    }

    // ---- time ----

    /// The pacer played one frame: while audio is queued the reply is making progress.
    fn on_tick(&mut self, now: u64) {
        let frame = (self.config.sample_rate / 50) as usize;
        if let Some(reply) = self.reply.as_mut()
            && reply.clock.queued() > 0
        {
            reply.clock.tick(frame);
            reply.last_progress = now;
        }
    }

    fn advance(&mut self, now: u64) {
        if self.ended.is_some() {
            return;
        }
        if let Some(answered) = self.answered_at
            && !self.closing
            && now >= answered + self.config.max_call_ms
        {
            let line = self.config.max_duration_goodbye.clone();
            self.close(now, &line, EndReason::MaxDuration);
            return;
        }
        if self.reply.is_some() {
            self.advance_reply(now);
        }
        if self.reply.is_none() && self.ended.is_none() {
            self.advance_listening(now);
        }
    }

    fn advance_reply(&mut self, now: u64) {
        let paused = self.reply.as_ref().is_some_and(|r| r.paused.is_some());
        // A blip over the agent that turned out to be only "uh-huh" (or no words at all) is
        // dropped, and a reply it paused goes on.
        if (self.caller.over_agent || paused)
            && self
                .caller
                .end_of_turn_at(&self.config)
                .is_some_and(|at| at <= now)
            && self.caller.meaningful_words(&self.config) == 0
        {
            let started = self.caller.started_at.unwrap_or(now);
            let end = self.caller.last_speech_end.unwrap_or(now);
            let text = self.caller.take();
            let text = text.trim();
            if !text.is_empty() {
                self.ack = Some((text.to_string(), started, end));
            }
        }
        if paused && self.caller.is_empty() {
            self.resume(now);
        }
        let Some(reply) = self.reply.as_ref() else {
            return;
        };
        // Keys already sounding are never cut half-way: the far end would get a wrong number.
        if reply.interruptible && !keys_sounding(reply) {
            match self.floor_claim(now) {
                FloorClaim::Take => {
                    self.stop_reply(now);
                    return;
                }
                FloorClaim::Pause if reply.paused.is_none() && reply.resumed < MAX_RESUMES => {
                    self.pause(now)
                }
                FloorClaim::Pause | FloorClaim::None => {}
            }
        }
        let Some(reply) = self.reply.as_ref() else {
            return;
        };
        if reply.brain_live
            && reply.first_text_at.is_none()
            && now >= reply.started_at + self.config.brain_first_token_ms
        {
            let id = reply.id;
            self.actions
                .push_back(TurnAction::CancelReply { reply: id });
            self.brain_failed();
            self.pump(now);
        }
        let Some(reply) = self.reply.as_ref() else {
            return;
        };
        if now >= self.stall_deadline(reply) {
            self.abandon(now);
            return;
        }
        let done = !reply.brain_live && reply.pieces.iter().all(|p| p.state == PieceState::Played);
        if done {
            self.complete(now);
        }
    }

    fn advance_listening(&mut self, now: u64) {
        if let Some(at) = self.caller.end_of_turn_at(&self.config) {
            if now >= at {
                self.end_turn(now);
            }
            return;
        }
        if self.answered_at.is_none() || !self.caller_is_silent() {
            return;
        }
        if !self.reprompted && now >= self.quiet_since + self.config.idle_reprompt_ms {
            self.reprompted = true;
            let line = self.config.idle_reprompt.clone();
            self.speak_line(now, &line, ReplyKind::Line, true, After::Listen);
        } else if self.reprompted && now >= self.quiet_since + self.config.idle_hangup_ms {
            let line = self.config.idle_goodbye.clone();
            self.close(now, &line, EndReason::IdleTimeout);
        }
    }

    fn caller_is_silent(&self) -> bool {
        self.caller.is_empty() && self.caller.speaking_since.is_none()
    }

    /// Barge-in rule, while the agent holds the floor:
    /// - recognised words that are not backchannels (or a DTMF digit) take the floor at once;
    /// - speech the VAD has heard for `barge_in_speech_ms` pauses the agent: the caller
    ///   should not have to talk over it while the recogniser catches up;
    /// - speech longer than `backchannel_max_ms` takes the floor whatever its words.
    ///
    /// A paused reply resumes if the caller's words turn out to be only backchannels or none.
    fn floor_claim(&self, now: u64) -> FloorClaim {
        if self.caller.is_empty() {
            return FloorClaim::None;
        }
        if self.caller.meaningful_words(&self.config) >= self.config.barge_in_words.max(1) {
            return FloorClaim::Take;
        }
        match self.caller.speaking_since {
            Some(since) if now >= since + self.config.backchannel_max_ms => FloorClaim::Take,
            Some(since) if now >= since + self.config.barge_in_speech_ms => FloorClaim::Pause,
            _ => FloorClaim::None,
        }
    }

    fn stall_deadline(&self, reply: &Reply) -> u64 {
        reply.last_progress + self.config.stall_ms
    }

    // ---- turns ----

    fn end_turn(&mut self, now: u64) {
        self.settle_pending_cut();
        self.ack = None;
        let over_agent = self.caller.over_agent;
        let started = self.caller.started_at.unwrap_or(now);
        let speech_end = self.caller.last_speech_end;
        let final_at = self.caller.last_final_at;
        let text = self.caller.take();
        self.quiet_since = now;
        let heard_words = non_backchannel_words(&text, &self.config);
        let (text, started) = match self.carry.take() {
            Some((before, at)) if text.trim().is_empty() || (over_agent && heard_words == 0) => {
                (before, at)
            }
            Some((before, at)) => (format!("{before} {}", text.trim()), at),
            None if text.trim().is_empty() || (over_agent && heard_words == 0) => return,
            None => (text.trim().to_string(), started),
        };
        self.answer(now, text, started, speech_end, final_at);
    }

    /// Records the caller's turn and starts the brain's reply to it.
    fn answer(
        &mut self,
        now: u64,
        text: String,
        started: u64,
        speech_end: Option<u64>,
        final_at: Option<u64>,
    ) {
        self.caller_turns += 1;
        let end = speech_end.unwrap_or(now).max(started);
        self.history.push(Message {
            role: Role::Caller,
            text: text.clone(),
        });
        self.transcript.push(TranscriptTurn {
            role: Role::Caller,
            text: text.clone(),
            start_ms: started,
            end_ms: end,
            interrupted: false,
        });
        let latency = TurnLatency {
            turn: self.caller_turns,
            endpointing_ms: speech_end.map(|e| now.saturating_sub(e)),
            stt_final_ms: final_at
                .zip(speech_end)
                .filter(|(f, e)| f >= e)
                .map(|(f, e)| f - e),
            ..TurnLatency::default()
        };
        let id = ReplyId(self.take_id());
        self.actions.push_back(TurnAction::StartReply {
            reply: id,
            history: self.history.clone(),
        });
        let mut reply = self.new_reply(now, id, ReplyKind::Brain, true, After::Listen);
        reply.brain_live = true;
        reply.latency = Some((latency, speech_end));
        reply.prompt = Some((text, started));
        self.reply = Some(reply);
    }

    fn speak_line(
        &mut self,
        now: u64,
        text: &str,
        kind: ReplyKind,
        interruptible: bool,
        after: After,
    ) {
        let id = ReplyId(self.take_id());
        self.reply = Some(self.new_reply(now, id, kind, interruptible, after));
        let pieces = self.splitter_template.clone().split_all(text);
        self.add_pieces(pieces);
        self.pump(now);
        // An empty line completes on the next advance.
    }

    fn new_reply(
        &self,
        now: u64,
        id: ReplyId,
        kind: ReplyKind,
        interruptible: bool,
        after: After,
    ) -> Reply {
        Reply {
            id,
            kind,
            interruptible,
            brain_live: false,
            started_at: now,
            first_text_at: None,
            splitter: self.splitter_template.clone(),
            pieces: Vec::new(),
            after,
            last_progress: now,
            first_sent_at: None,
            first_audio_at: None,
            last_played_at: None,
            clock: PlayoutClock::default(),
            latency: None,
            prompt: None,
            paused: None,
            resumed: 0,
        }
    }

    fn add_pieces(&mut self, texts: Vec<String>) {
        for text in texts {
            let id = UtteranceId(self.take_id());
            if let Some(reply) = self.reply.as_mut() {
                reply.pieces.push(Piece {
                    id,
                    text,
                    keys: None,
                    state: PieceState::Pending,
                    samples: 0,
                    failed: false,
                });
            }
        }
    }

    /// DTMF keys pressed by the brain (`send_dtmf`), after the pieces so far.
    fn add_keys(&mut self, keys: &str) {
        let id = UtteranceId(self.take_id());
        if let Some(reply) = self.reply.as_mut() {
            reply.pieces.push(Piece {
                id,
                text: format!("[DTMF:{keys}]"),
                keys: Some(keys.to_string()),
                state: PieceState::Pending,
                samples: 0,
                failed: false,
            });
        }
    }

    /// Starts the next piece when none is in progress: synthesis of words at once, keys only
    /// once everything before them has played.
    fn pump(&mut self, now: u64) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        if reply.paused.is_some()
            || reply
                .pieces
                .iter()
                .any(|p| p.state == PieceState::Synthesizing)
        {
            return;
        }
        let Some(next) = reply
            .pieces
            .iter()
            .position(|p| p.state == PieceState::Pending)
        else {
            return;
        };
        let before_played = reply.pieces[..next]
            .iter()
            .all(|p| p.state == PieceState::Played);
        let piece = &mut reply.pieces[next];
        let action = match &piece.keys {
            Some(_) if !before_played => return,
            Some(keys) => TurnAction::SendKeys {
                utterance: piece.id,
                keys: keys.clone(),
            },
            None => TurnAction::Synthesize {
                utterance: piece.id,
                text: piece.text.clone(),
            },
        };
        piece.state = PieceState::Synthesizing;
        reply.first_sent_at.get_or_insert(now);
        self.actions.push_back(action);
    }

    /// The reply was spoken to the end.
    fn complete(&mut self, now: u64) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        self.settle_pending_cut();
        let heard = |with_keys: bool| {
            reply
                .pieces
                .iter()
                .filter(|p| !p.failed && (with_keys || p.keys.is_none()))
                .map(|p| p.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (heard, said) = (heard(true), heard(false));
        let end = reply.last_played_at.unwrap_or(now);
        let asked = said.trim_end().ends_with('?');
        self.commit_agent(&reply, heard, said, end, false);
        self.quiet_since = now;
        let ack = self.ack.take();
        if let (After::Listen, true, true, Some((text, started, end))) =
            (&reply.after, asked, self.caller.is_empty(), ack)
        {
            self.answer(now, text, started, Some(end), None);
            return;
        }
        self.follow_up(reply.after);
    }

    /// Stops the reply's audio at once (within the pacer's current frame) while the caller's
    /// words are still unknown; the brain goes on writing.
    fn pause(&mut self, now: u64) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        if let Some(piece) = reply
            .pieces
            .iter()
            .find(|p| p.state == PieceState::Synthesizing)
        {
            self.actions.push_back(TurnAction::CancelSynthesis {
                utterance: piece.id,
            });
        }
        let queued = unmarked_samples(reply) > 0;
        reply.paused = Some(Pause {
            at: now,
            played_unmarked: (!queued).then_some(0),
        });
        reply.last_progress = now;
        if queued {
            self.actions.push_back(TurnAction::ClearPlayout);
        }
    }

    /// The caller's speech was not an interruption: the reply goes on from the start of the
    /// sentence it was cut in, so no words are lost.
    fn resume(&mut self, now: u64) {
        let Some(mut reply) = self.reply.take() else {
            return;
        };
        reply.paused = None;
        reply.resumed += 1;
        reply.last_progress = now;
        reply.clock = PlayoutClock::default();
        // Fresh ids: a late event of the cancelled synthesis must not count for the retake.
        for piece in reply.pieces.iter_mut() {
            if piece.state != PieceState::Played {
                piece.id = UtteranceId(self.next_id);
                self.next_id += 1;
                piece.state = PieceState::Pending;
                piece.samples = 0;
                piece.failed = false;
            }
        }
        self.reply = Some(reply);
        self.pump(now);
    }

    /// The reply made no progress for `stall_ms`: drop it, but still hang up or transfer
    /// if that was its purpose.
    fn abandon(&mut self, now: u64) {
        let after = self.reply.as_ref().map(|r| r.after.clone());
        self.stop_reply(now);
        self.quiet_since = now;
        if let Some(after) = after {
            self.settle_pending_cut();
            self.follow_up(after);
        }
    }

    /// Cancels the live reply: brain, synthesis and queued audio; what was heard is settled
    /// when the pacer reports what it dropped.
    fn stop_reply(&mut self, now: u64) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        self.ack = None;
        if reply.brain_live {
            self.actions
                .push_back(TurnAction::CancelReply { reply: reply.id });
        }
        self.settle_pending_cut();
        if let Some(pause) = reply.paused {
            // Synthesis and playout already stopped when the reply was paused.
            match pause.played_unmarked {
                Some(played) => self.settle(reply, played, pause.at, true),
                None => {
                    self.cut = Some(Cut {
                        reply,
                        at: pause.at,
                    })
                }
            }
            return;
        }
        if let Some(piece) = reply
            .pieces
            .iter()
            .find(|p| p.state == PieceState::Synthesizing)
        {
            self.actions.push_back(TurnAction::CancelSynthesis {
                utterance: piece.id,
            });
        }
        if unmarked_samples(&reply) > 0 {
            self.actions.push_back(TurnAction::ClearPlayout);
            self.cut = Some(Cut { reply, at: now });
        } else {
            self.settle(reply, 0, now, true);
        }
    }

    /// Settles a cut the pacer has not reported on, from the playout model.
    fn settle_pending_cut(&mut self) {
        if let Some(cut) = self.cut.take() {
            let queued = cut.reply.clock.queued();
            let played = unmarked_samples(&cut.reply).saturating_sub(queued);
            self.settle(cut.reply, played, cut.at, true);
        }
    }

    /// Records what was heard of a reply cut off at `at`, given the samples of its unmarked
    /// pieces that were played.
    fn settle(&mut self, reply: Reply, played_unmarked: usize, at: u64, interrupted: bool) {
        let heard = |with_keys: bool| {
            let pieces: Vec<SpokenPiece<'_>> = reply
                .pieces
                .iter()
                .map(|p| SpokenPiece {
                    text: (!p.failed && (with_keys || p.keys.is_none())).then_some(p.text.as_str()),
                    samples: p.samples,
                    played: p.state == PieceState::Played,
                })
                .collect();
            heard_text(&pieces, played_unmarked)
        };
        let (heard, said) = (heard(true), heard(false));
        if heard.is_empty() && reply.kind == ReplyKind::Brain {
            // Not a word was heard: the caller's question is still open and joins what they
            // say next.
            if let Some((text, started)) = reply.prompt.clone()
                && self.history.last().is_some_and(|m| m.role == Role::Caller)
            {
                self.history.pop();
                self.transcript.pop();
                self.caller_turns = self.caller_turns.saturating_sub(1);
                self.carry = Some((text, started));
                return;
            }
        }
        self.commit_agent(&reply, heard, said, at, interrupted);
    }

    /// Records what the far end heard of a reply: `heard` in the transcript (keys shown),
    /// `said` (its words only) in the brain's history.
    fn commit_agent(
        &mut self,
        reply: &Reply,
        heard: String,
        said: String,
        end: u64,
        interrupted: bool,
    ) {
        if let Some((mut latency, _)) = reply.latency.clone() {
            latency.interrupted = interrupted;
            self.latencies.push(latency);
        }
        if heard.is_empty() {
            return;
        }
        let start = reply.first_audio_at.unwrap_or(end).min(end);
        if !said.is_empty() {
            self.history.push(Message {
                role: Role::Agent,
                text: said,
            });
        }
        self.transcript.push(TranscriptTurn {
            role: Role::Agent,
            text: heard,
            start_ms: start,
            end_ms: end,
            interrupted,
        });
    }

    fn follow_up(&mut self, after: After) {
        match after {
            After::Listen => {}
            After::Hangup(reason) => {
                self.actions.push_back(TurnAction::Hangup);
                self.finish(reason);
            }
            After::Transfer(target) => {
                self.actions.push_back(TurnAction::Transfer { target });
                self.finish(EndReason::Transferred);
            }
        }
    }

    /// Ends the call from our side after saying `line`.
    fn close(&mut self, now: u64, line: &str, reason: EndReason) {
        self.closing = true;
        self.stop_reply(now);
        self.speak_line(now, line, ReplyKind::Line, false, After::Hangup(reason));
        self.advance_reply(now);
    }

    /// Ends the call from our side, with a last line or at once (`TurnInput::EndWith`).
    fn end_with(&mut self, now: u64, line: Option<String>, reason: EndReason) {
        match line {
            Some(line) => self.close(now, &line, reason),
            None => {
                self.closing = true;
                self.stop_reply(now);
                self.actions.push_back(TurnAction::Hangup);
                self.finish(reason);
            }
        }
    }

    /// The far end hung up: record what was heard up to now.
    fn end_remote(&mut self, now: u64) {
        self.settle_pending_cut();
        if let Some(reply) = self.reply.take() {
            let (played, at) = match reply.paused {
                Some(Pause {
                    at,
                    played_unmarked: Some(played),
                }) => (played, at),
                _ => {
                    let queued = reply.clock.queued();
                    (unmarked_samples(&reply).saturating_sub(queued), now)
                }
            };
            let cut_short =
                reply.brain_live || reply.pieces.iter().any(|p| p.state != PieceState::Played);
            self.settle(reply, played, at, cut_short);
        }
        self.finish(EndReason::CallerHangup);
    }

    /// Marks the call ended, keeping any last caller words in the transcript.
    fn finish(&mut self, reason: EndReason) {
        self.settle_pending_cut();
        let started = self.caller.started_at;
        let end = self.caller.last_speech_end;
        let text = self.caller.take();
        let (text, started) = match self.carry.take() {
            Some((before, at)) => (format!("{before} {text}").trim().to_string(), Some(at)),
            None => (text.trim().to_string(), started),
        };
        if let (false, Some(start)) = (text.is_empty(), started) {
            self.history.push(Message {
                role: Role::Caller,
                text: text.clone(),
            });
            self.transcript.push(TranscriptTurn {
                role: Role::Caller,
                text,
                start_ms: start,
                end_ms: end.unwrap_or(self.now).max(start),
                interrupted: false,
            });
        }
        self.ended = Some(reason);
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

/// Whether DTMF keys of the reply are being played right now.
fn keys_sounding(reply: &Reply) -> bool {
    reply.pieces.iter().any(|p| {
        p.keys.is_some() && matches!(p.state, PieceState::Synthesizing | PieceState::Marked)
    })
}

/// Samples pushed for pieces whose marks have not fired.
fn unmarked_samples(reply: &Reply) -> usize {
    reply
        .pieces
        .iter()
        .filter(|p| p.state != PieceState::Played)
        .map(|p| p.samples)
        .sum()
}
