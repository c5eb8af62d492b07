//! The running call: one task owns the turn machine, the pacer, VAD, recorder and the
//! provider streams, and moves events between them.

use std::sync::Arc;

use media::dtmf::tones::{DtmfTones, KeySequence};
use media::pacer::Pacer;
use media::vad::{VadConfig, VadEvent, VoiceDetector};
use media::{Frame, INTERNAL_RATE, InternalFrame};
use tokio::sync::mpsc;

use super::answering_machine::{MachineScreen, ScreenAction};
use super::clock::{Clock, Wake};
use super::failures::FailureLog;
use super::journal::{Registration, TurnJournal};
use super::recording::CallRecorder;
use super::stt_gate::SttGate;
use super::{CallReport, CallRoute, CallServices, SessionError, outcome};
use crate::agent::numerals::digits_for_numbers;
use crate::agent::phrases;
use crate::agent::tools::CallTools;
use crate::agent::tools::arguments::is_allowed_transfer;
use crate::agent::turn::{
    EndReason, ReplyId, TurnAction, TurnInput, TurnMachine, TurnState, UtteranceId,
};
use crate::agent::vocabulary::call_vocabulary;
use crate::messaging::Messaging;
use crate::providers::llm::{BrainContext, BrainEvent, BrainSession, KnowledgeDoc};
use crate::providers::stt::{SttEvent, SttInput, SttStream};
use crate::providers::tts::{TtsError, Voice};
use crate::store::{NewCall, new_id};
use crate::telephony::{CallLeg, Caption, HangupReason, LegCommand, LegEvent};

type Synthesis = mpsc::Receiver<Result<Vec<i16>, TtsError>>;

/// The mark ending each stretch of agent speech on a carrier that buffers audio.
const AGENT_AUDIO_END: &str = "agent-audio-end";

pub(super) struct Call {
    services: Arc<CallServices>,
    call_id: String,
    started_at: chrono::DateTime<chrono::Utc>,
    turn: TurnMachine,
    brain: Box<dyn BrainSession>,
    voice: &'static Voice,
    stt: SttStream,
    stt_open: bool,
    /// Holds silent frames back from an engine that does not need them.
    stt_gate: SttGate,
    /// Speech segments ended but not yet answered with a final: the call waits on the STT.
    finals_pending: u32,
    vad: VoiceDetector,
    pacer: Pacer,
    recorder: CallRecorder,
    clock: Clock,
    reply: Option<(ReplyId, mpsc::Receiver<BrainEvent>)>,
    synthesis: Option<(UtteranceId, Synthesis)>,
    hangup: Option<HangupReason>,
    /// The agent's configured transfer targets, checked again when a transfer is carried out.
    transfer_targets: Vec<String>,
    failures: FailureLog,
    /// Outbound answering-machine detection, while it holds the greeting back.
    screen: Option<MachineScreen>,
    /// Carries the call id into every log line of the call and of its providers' tasks.
    span: tracing::Span,
    /// Live captions, for a transport that shows them (`CallLeg::captions`).
    captions: Option<mpsc::Sender<Caption>>,
}

impl Call {
    /// Loads the agent and opens the providers; the call's record is for the journal to
    /// write (`Registration`), beside the call rather than before it.
    pub(super) async fn start(
        services: &Arc<CallServices>,
        leg: &CallLeg,
        route: &CallRoute,
    ) -> Result<(Self, Registration), SessionError> {
        let store = &services.store;
        let agent = store
            .get_agent(&route.scope, &route.agent_id)
            .await?
            .ok_or_else(|| SessionError::AgentNotFound(route.agent_id.clone()))?;
        // The record is written beside the call, not before it (`TurnJournal::open`); it says
        // this instance runs the call, and the heartbeat that it still does.
        let (call_id, registration) = match &route.call_id {
            Some(id) => (id.clone(), Registration::Existing),
            None => {
                let call = NewCall {
                    agent_id: agent.id.clone(),
                    direction: leg.info.direction.as_str().into(),
                    caller: leg.info.from.clone(),
                    to: leg.info.to.clone(),
                    carrier_call_id: Some(leg.info.carrier_call_id.clone()),
                    status: "in-progress".into(),
                    context: route.context.clone(),
                };
                let scope = route.scope.clone();
                (new_id("call_"), Registration::New { scope, call })
            }
        };
        let knowledge = match &agent.knowledge_base_id {
            Some(kb) => store
                .knowledge_documents(&route.scope, kb)
                .await?
                .into_iter()
                .map(|d| KnowledgeDoc {
                    title: d.title,
                    text: d.text,
                })
                .collect(),
            None => Vec::new(),
        };
        let vocabulary = call_vocabulary(
            &agent.name,
            agent.greeting.as_deref(),
            agent.prompt.as_deref(),
            &knowledge,
        );
        // The party on the other end: the caller inbound, the callee outbound.
        let other_party = match leg.info.direction {
            crate::telephony::Direction::Inbound => leg.info.from.clone(),
            crate::telephony::Direction::Outbound => leg.info.to.clone(),
        };
        let started_at = route.started_at.unwrap_or_else(chrono::Utc::now);
        let context = BrainContext {
            agent_name: agent.name.clone(),
            prompt: agent.prompt.clone().unwrap_or_default(),
            greeting: agent.greeting.clone(),
            knowledge,
            caller_number: other_party.clone(),
            outbound_context: route.context.clone(),
            now: started_at,
            llm: agent.llm.0.clone(),
        };
        let tools = CallTools::new(
            Messaging::new(store.clone(), services.config.clone()),
            route.scope.clone(),
            agent.id.clone(),
            call_id.clone(),
            other_party,
            started_at,
        )
        .with_transfer_targets(agent.transfer_targets.0.clone())
        .with_http_tools(
            agent.tools.0.clone(),
            services.config.webhook_allow_loopback,
        );
        let brain = services.brain.start(context, Arc::new(tools));
        let span = tracing::info_span!("call", %call_id);
        let voice = phrases::voice_of(&agent);
        let turn = TurnMachine::new(services.config.turn_config(phrases::greeting_of(&agent)));
        let recorder = CallRecorder::open(&services.config, &call_id, &leg.info);
        tracing::info!(%call_id, agent = %agent.id, from = %leg.info.from, to = %leg.info.to,
            transport = leg.info.transport, "call started");
        let call = Call {
            services: services.clone(),
            call_id,
            started_at,
            turn,
            brain,
            voice,
            stt: span.in_scope(|| services.stt.open_for(&vocabulary)),
            stt_open: true,
            stt_gate: SttGate::new(!services.stt.hears_silence()),
            finals_pending: 0,
            vad: VoiceDetector::new(VadConfig::default()),
            pacer: Pacer::new(),
            recorder,
            clock: Clock::new(route.pacing),
            reply: None,
            synthesis: None,
            hangup: None,
            transfer_targets: agent.transfer_targets.0,
            failures: FailureLog::default(),
            screen: MachineScreen::for_call(&route.machine_detection, &leg.info),
            span,
            captions: leg.captions.clone(),
        };
        Ok((call, registration))
    }

    pub(super) fn id(&self) -> &str {
        &self.call_id
    }

    pub(super) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    pub(super) fn started_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.started_at
    }

    /// Drives the call until the machine ends it, journaling its transcript as it grows,
    /// then writes the record. Fails, with the call left for `run_call` to hang up, when the
    /// call's record cannot be written.
    pub(super) async fn run(
        mut self,
        mut leg: CallLeg,
        mut journal: TurnJournal,
    ) -> Result<CallReport, SessionError> {
        let drain = self.services.drain.clone();
        // One subscription for the whole call: a fresh `closing()` per loop turn would join
        // and leave the watch's waiter list (one lock shared by every call) on every frame.
        let close_asked = drain.closing();
        tokio::pin!(close_asked);
        let mut closing = false;
        if self.screen.is_none() {
            self.turn.handle(0, TurnInput::Answered);
        }
        self.carry_out(&leg).await;
        while self.turn.state() != TurnState::Ended {
            let busy = self.is_busy();
            let live = self.clock.is_live();
            let resting = self.can_rest(&leg);
            let deadline = if resting {
                self.turn.next_deadline()
            } else {
                None
            };
            tokio::select! {
                () = &mut close_asked, if !closing => {
                    closing = true;
                    self.turn.handle(self.clock.now(), TurnInput::Shutdown);
                }
                wake = self.clock.next(busy, resting, deadline) => match wake {
                    Wake::Tick { after_rest } => {
                        if !live {
                            self.take_replayed_frame(&mut leg).await;
                        }
                        if after_rest {
                            self.recorder.agent_resumes_at(self.clock.now());
                        }
                        self.on_tick(&leg);
                    }
                    Wake::Deadline => self.turn.handle(self.clock.now(), TurnInput::Tick),
                },
                registered = journal.registered(), if journal.registering() => {
                    if let Err(e) = registered {
                        return Err(self.abandon(e));
                    }
                }
                event = leg.events.recv(), if live => self.on_leg_event(event).await,
                event = self.stt.events.recv(), if self.stt_open => self.on_stt(event),
                event = next_of(&mut self.reply) => self.on_brain(event),
                chunk = next_of(&mut self.synthesis) => self.on_tts(chunk),
            }
            self.follow_screen().await;
            // Journaled before and after the actions: what was said is kept even when carrying
            // them out fails.
            journal.sync(self.turn.transcript());
            self.carry_out(&leg).await;
            journal.sync(self.turn.transcript());
        }
        if let Err(e) = journal.registered().await {
            return Err(self.abandon(e));
        }
        let ended = outcome::Ended {
            duration_ms: self.clock.now(),
            turn: &self.turn,
            hangup: self.hangup.as_ref(),
            recording_path: self.recorder.finish(),
            provider_failures: self.failures.as_slice(),
        };
        Ok(outcome::finish(&self.services, &self.call_id, self.started_at, ended).await)
    }

    /// A call whose record could not be written ends without one: its recording is removed.
    fn abandon(self, error: SessionError) -> SessionError {
        self.recorder.discard();
        error
    }

    /// Whether the call can skip its ticks: live, on a transport that needs no steady stream
    /// from the session (`LegInfo::continuous_audio`), with nothing to play and no screen
    /// listening. Caller audio and the turn machine's deadlines still wake it; the
    /// recording's agent side is silence meanwhile.
    fn can_rest(&self, leg: &CallLeg) -> bool {
        self.clock.is_live()
            && !leg.info.continuous_audio
            && self.pacer.is_idle()
            && self.turn.state() != TurnState::AgentSpeaking
            && self.screen.as_ref().is_none_or(|s| !s.is_screening())
    }

    /// Whether the call is waiting on a provider (a replay then runs in wall time).
    fn is_busy(&self) -> bool {
        self.finals_pending > 0 || self.reply.is_some() || self.synthesis.is_some()
    }

    fn on_tick(&mut self, leg: &CallLeg) {
        let now = self.clock.now();
        let sounding = !self.pacer.is_empty();
        let (frame, marks) = self.pacer.next_frame();
        let stretch_ended = sounding && self.pacer.is_empty();
        self.recorder.agent(&frame);
        // Never wait on the transport from the tick: a late frame is worse than a lost one.
        // (The pacer plays internal-rate frames, which always fit.)
        if (sounding || leg.info.continuous_audio)
            && let Some(frame) = frame.convert()
            && let Err(mpsc::error::TrySendError::Full(_)) =
                leg.commands.try_send(LegCommand::Audio(frame))
        {
            tracing::warn!(call_id = %self.call_id, "transport behind; agent frame dropped");
        }
        // The transport learns where the agent's speech ended, right after its last frame (a
        // carrier that buffers echoes the mark once it has played it; the RTP bridge fills in
        // silence from its next tick), instead of getting silence frames from the session.
        if stretch_ended && !leg.info.continuous_audio {
            let _ = leg
                .commands
                .try_send(LegCommand::Mark(AGENT_AUDIO_END.to_owned()));
        }
        for &mark in marks.as_slice() {
            self.turn.handle(now, TurnInput::MarkPlayed(mark));
        }
        self.turn.handle(now, TurnInput::Tick);
    }

    /// Replay: each tick consumes the caller's frame for that tick (and any DTMF before it).
    async fn take_replayed_frame(&mut self, leg: &mut CallLeg) {
        loop {
            let event = leg.events.recv().await;
            let is_audio = matches!(event, Some(LegEvent::Audio(_)));
            let ends = matches!(event, None | Some(LegEvent::Hangup(_)));
            self.on_leg_event(event).await;
            if is_audio || ends {
                return;
            }
        }
    }

    async fn on_leg_event(&mut self, event: Option<LegEvent>) {
        let now = self.clock.now();
        match event {
            Some(LegEvent::Audio(frame)) => self.on_caller_audio(now, frame).await,
            Some(LegEvent::Dtmf(digit)) => self.turn.handle(now, TurnInput::Dtmf(digit)),
            // Playout is tracked by the pacer's own marks; carrier marks are informational.
            Some(LegEvent::Mark(name)) => tracing::trace!(%name, "carrier mark"),
            Some(LegEvent::AnsweredBy(answered_by)) => {
                tracing::info!(call_id = %self.call_id, ?answered_by, "answering-machine detection");
                if let Some(screen) = self.screen.as_mut() {
                    screen.on_carrier(now, answered_by);
                }
            }
            Some(LegEvent::Hangup(reason)) => {
                self.hangup = Some(reason);
                self.turn.handle(now, TurnInput::Hangup);
            }
            None => {
                self.hangup = Some(HangupReason::TransportError("leg closed".into()));
                self.turn.handle(now, TurnInput::Hangup);
            }
        }
    }

    async fn on_caller_audio(&mut self, now: u64, internal: InternalFrame) {
        let frame = Frame::from(internal);
        self.recorder.caller(&frame);
        if let Some(screen) = self.screen.as_mut().filter(|s| s.is_screening()) {
            // Until it is known who answered, the callee's sounds are not the conversation.
            screen.on_frame(now, &frame);
            self.vad.process(&frame);
            self.send_stt(SttInput::Audio(internal)).await;
            return;
        }
        let vad = self.vad.process(&frame);
        let started = vad == Some(VadEvent::SpeechStart);
        let in_speech = self.vad.is_speaking() || vad == Some(VadEvent::SpeechEnd);
        if let Some(frame) = self.stt_gate.admit(internal, in_speech, started) {
            self.send_stt(SttInput::Audio(frame)).await;
        }
        if started {
            while let Some(frame) = self.stt_gate.release() {
                self.send_stt(SttInput::Audio(frame)).await;
            }
        }
        if let Some(event) = vad {
            tracing::debug!(call_id = %self.call_id, at_ms = now, ?event, "caller voice");
        }
        match vad {
            Some(VadEvent::SpeechStart) => {
                self.send_stt(SttInput::SpeechStart).await;
                self.turn.handle(now, TurnInput::SpeechStart);
            }
            Some(VadEvent::SpeechEnd) => {
                if self.send_stt(SttInput::SpeechEnd).await {
                    self.finals_pending += 1;
                }
                self.turn.handle(now, TurnInput::SpeechEnd);
            }
            None => {}
        }
    }

    /// Feeds the recogniser; `false` when the input was not taken. A live call never waits
    /// on it (a stalled recogniser must not stall playout); a replay does, since it runs
    /// ahead of the clock and every frame must be heard.
    async fn send_stt(&mut self, input: SttInput) -> bool {
        if !self.stt_open {
            return false;
        }
        if !self.clock.is_live() {
            return self.stt.input.send(input).await.is_ok();
        }
        match self.stt.input.try_send(input) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, "recogniser not keeping up: {e}");
                false
            }
        }
    }

    fn on_stt(&mut self, event: Option<SttEvent>) {
        let now = self.clock.now();
        tracing::debug!(call_id = %self.call_id, at_ms = now, ?event, "recogniser");
        match event {
            // Numbers in digits, whichever way the recogniser wrote them: what the brain and
            // the transcript read best.
            Some(SttEvent::Partial { text }) => {
                self.caption("caller", &text, false);
                self.turn
                    .handle(now, TurnInput::SttPartial(digits_for_numbers(&text)));
            }
            Some(SttEvent::Final { text }) => {
                self.caption("caller", &text, true);
                self.finals_pending = self.finals_pending.saturating_sub(1);
                self.turn
                    .handle(now, TurnInput::SttFinal(digits_for_numbers(&text)));
            }
            Some(SttEvent::Error { message }) => {
                self.failures.push(
                    &self.call_id,
                    now,
                    format!("stt:{}", self.services.stt.name()),
                    message.clone(),
                    "nothing: the agent went on without these words",
                );
                self.finals_pending = self.finals_pending.saturating_sub(1);
                self.turn.handle(now, TurnInput::SttError(message));
            }
            None => {
                tracing::error!(call_id = %self.call_id, "recogniser stopped");
                self.stt_open = false;
                self.finals_pending = 0;
                self.turn
                    .handle(now, TurnInput::SttError("recogniser stopped".into()));
            }
        }
    }

    fn on_brain(&mut self, event: (ReplyId, Option<BrainEvent>)) {
        let now = self.clock.now();
        let (reply, event) = event;
        let event = match event {
            Some(event) => event,
            // A brain that drops its sender without `Done` has failed.
            None => BrainEvent::Error("the brain stopped mid-reply".into()),
        };
        match &event {
            BrainEvent::ProviderFailed {
                provider,
                error,
                fallback,
            } => self.failures.push(
                &self.call_id,
                now,
                format!("llm:{provider}"),
                error.clone(),
                &format!("the answer of {fallback}"),
            ),
            BrainEvent::Error(error) => self.failures.push(
                &self.call_id,
                now,
                format!("llm:{}", self.services.brain.name()),
                error.clone(),
                "what the agent had said of this reply, or an apology",
            ),
            _ => {}
        }
        if matches!(event, BrainEvent::Done | BrainEvent::Error(_)) {
            self.reply = None;
        }
        self.turn.handle(now, TurnInput::Brain { reply, event });
    }

    fn on_tts(&mut self, chunk: (UtteranceId, Option<Result<Vec<i16>, TtsError>>)) {
        let now = self.clock.now();
        let (utterance, chunk) = chunk;
        match chunk {
            Some(Ok(pcm)) => {
                // Reported as pushed either way: the machine's playout clock must advance
                // past audio the pacer refused, or it would wait for it forever.
                if let Err(e) = self.pacer.push(&pcm) {
                    tracing::warn!(call_id = %self.call_id, "agent audio dropped: {e}");
                }
                let samples = pcm.len();
                self.turn
                    .handle(now, TurnInput::TtsAudio { utterance, samples });
            }
            Some(Err(e)) => {
                self.failures.push(
                    &self.call_id,
                    now,
                    format!("tts:{}", self.services.tts.name()),
                    e.0.clone(),
                    "silence for the rest of this sentence",
                );
                self.synthesis = None;
                self.turn.handle(
                    now,
                    TurnInput::TtsError {
                        utterance,
                        message: e.0,
                    },
                );
            }
            None => {
                self.synthesis = None;
                self.turn.handle(now, TurnInput::TtsDone { utterance });
            }
        }
    }

    /// Acts on answering-machine detection: records who answered, then lets the agent greet,
    /// leave its message or hang up.
    async fn follow_screen(&mut self) {
        let now = self.clock.now();
        let Some(screen) = self.screen.as_mut() else {
            return;
        };
        screen.on_tick(now);
        while let Some(action) = self.screen.as_mut().and_then(MachineScreen::poll) {
            tracing::info!(call_id = %self.call_id, at_ms = now, ?action, "answering-machine screen");
            match action {
                ScreenAction::Record(answered_by) => {
                    let store = &self.services.store;
                    if let Err(e) = store
                        .set_call_answered_by(&self.call_id, answered_by.as_str())
                        .await
                    {
                        tracing::error!(call_id = %self.call_id, "cannot record who answered: {e}");
                    }
                }
                ScreenAction::Greet => {
                    // Speech already under way (an undecided line) opens the caller's turn.
                    if self.vad.is_speaking() {
                        self.send_stt(SttInput::SpeechStart).await;
                        self.turn.handle(now, TurnInput::SpeechStart);
                    }
                    self.turn.handle(now, TurnInput::Answered);
                }
                ScreenAction::LeaveMessage(message) => {
                    let input = TurnInput::EndWith {
                        line: Some(message),
                        reason: EndReason::VoicemailLeft,
                    };
                    self.turn.handle(now, input);
                }
                ScreenAction::HangUp(reason) => {
                    let input = TurnInput::EndWith { line: None, reason };
                    self.turn.handle(now, input);
                }
            }
        }
    }

    /// Carries out what the machine asked for, until it asks for nothing more.
    async fn carry_out(&mut self, leg: &CallLeg) {
        while let Some(action) = self.turn.poll_action() {
            let now = self.clock.now();
            match action {
                TurnAction::StartReply { reply, history } => {
                    self.reply = Some((reply, self.brain.reply(&history)));
                }
                TurnAction::CancelReply { reply } => {
                    if self.reply.as_ref().is_some_and(|(id, _)| *id == reply) {
                        self.reply = None;
                    }
                }
                TurnAction::Synthesize { utterance, text } => {
                    self.caption("agent", &text, true);
                    let audio = self.services.tts.synthesize(text, self.voice);
                    self.synthesis = Some((utterance, audio));
                }
                TurnAction::CancelSynthesis { utterance } => {
                    if self
                        .synthesis
                        .as_ref()
                        .is_some_and(|(id, _)| *id == utterance)
                    {
                        self.synthesis = None;
                    }
                }
                TurnAction::SendKeys { utterance, keys } => {
                    self.press_keys(leg, utterance, &keys).await;
                }
                TurnAction::MarkPlayout { mark } => {
                    if let Err(e) = self.pacer.mark(mark) {
                        // The machine also tracks playout by time; a lost mark only delays it.
                        tracing::warn!(call_id = %self.call_id, "playout mark lost: {e}");
                    }
                }
                TurnAction::ClearPlayout => {
                    let cleared = self.pacer.clear();
                    let _ = leg.commands.send(LegCommand::Clear).await;
                    let dropped_samples = cleared.dropped_samples;
                    self.turn
                        .handle(now, TurnInput::PlayoutCleared { dropped_samples });
                }
                TurnAction::Hangup => {
                    let _ = leg.commands.send(LegCommand::Hangup).await;
                }
                TurnAction::Transfer { target } => {
                    // Whatever the brain says, a caller goes only where the operator allows.
                    let command = if is_allowed_transfer(&self.transfer_targets, &target) {
                        let store = &self.services.store;
                        if let Err(e) = store.set_call_transferred_to(&self.call_id, &target).await
                        {
                            tracing::error!(call_id = %self.call_id, "cannot record the transfer: {e}");
                        }
                        LegCommand::Transfer(target)
                    } else {
                        tracing::warn!(call_id = %self.call_id, %target, "transfer to an unconfigured target refused; hanging up");
                        LegCommand::Hangup
                    };
                    let _ = leg.commands.send(command).await;
                }
            }
        }
    }
}

impl Call {
    /// Presses the brain's DTMF keys (everything said before them has played): out of band
    /// when the transport sends them itself (RFC 4733), with as long a silence queued so that
    /// nothing is said over them; otherwise in band, as Q.23 tones in the agent's audio.
    async fn press_keys(&mut self, leg: &CallLeg, utterance: UtteranceId, keys: &str) {
        let now = self.clock.now();
        let keys = match KeySequence::parse(keys) {
            Ok(keys) => keys,
            Err(e) => {
                let message = format!("DTMF keys {keys:?} not sent: {e}");
                tracing::warn!(call_id = %self.call_id, "{message}");
                self.turn
                    .handle(now, TurnInput::TtsError { utterance, message });
                return;
            }
        };
        let out_of_band = leg.info.dtmf_out_of_band;
        let mut audio = vec![0i16; keys.samples(INTERNAL_RATE)];
        if out_of_band {
            let command = LegCommand::SendDtmf(keys.as_str().to_string());
            if leg.commands.send(command).await.is_err() {
                return; // the leg is gone; its hang-up ends the call
            }
        } else {
            DtmfTones::new(keys, INTERNAL_RATE).fill(&mut audio);
        }
        tracing::info!(call_id = %self.call_id, keys = keys.as_str(), out_of_band, "DTMF keys pressed");
        if let Err(e) = self.pacer.push(&audio) {
            tracing::warn!(call_id = %self.call_id, "DTMF audio dropped: {e}");
        }
        let samples = audio.len();
        self.turn
            .handle(now, TurnInput::TtsAudio { utterance, samples });
        self.turn.handle(now, TurnInput::TtsDone { utterance });
    }
}

impl Call {
    /// Shows `text` as a live caption when the transport asked for captions. Never waits: a
    /// caption the transport has no room for is dropped.
    fn caption(&self, speaker: &'static str, text: &str, is_final: bool) {
        if let Some(captions) = &self.captions {
            let caption = Caption {
                speaker,
                text: text.to_string(),
                is_final,
                at_ms: self.clock.now(),
            };
            let _ = captions.try_send(caption);
        }
    }
}

/// The next item of an optional tagged stream; pending forever when there is none.
async fn next_of<I: Copy, T>(slot: &mut Option<(I, mpsc::Receiver<T>)>) -> (I, Option<T>) {
    match slot {
        Some((id, rx)) => (*id, rx.recv().await),
        None => std::future::pending().await,
    }
}
