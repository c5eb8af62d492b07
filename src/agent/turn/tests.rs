//! Behaviour of the machine driven by a faithful simulated session: a pacer playing 20 ms per
//! tick with marks and clears, a synthesiser faster than real time, and a scripted brain.

use std::collections::VecDeque;

use super::*;
use crate::providers::llm::{BrainEvent, Message, Role};

const RATE: usize = 16_000;
const FRAME: usize = RATE / 50;

enum Queued {
    Audio(usize, UtteranceId),
    Mark(u64),
}

type Script = Box<dyn FnMut(&[Message]) -> Vec<BrainEvent>>;

/// The session side, in virtual time.
struct Sim {
    machine: TurnMachine,
    now: u64,
    pacer: VecDeque<Queued>,
    /// Utterance being synthesised: id, samples still to produce, first audio due at.
    synth: Option<(UtteranceId, usize, u64)>,
    /// Live brain reply: id and events due at times.
    brain: Option<(ReplyId, VecDeque<(u64, BrainEvent)>)>,
    script: Script,
    /// Every action the machine issued, in order.
    actions: Vec<TurnAction>,
    /// Texts synthesised, by utterance.
    synthesised: Vec<(UtteranceId, String)>,
    /// Agent samples that left the pacer.
    played_samples: usize,
    /// Per utterance in speaking order: text, samples pushed, samples played.
    spoken: Vec<(UtteranceId, String, usize, usize)>,
    ended: bool,
    /// Utterances that must fail in TTS.
    tts_failures: Vec<String>,
    brain_first_token_ms: u64,
    /// DTMF keys pressed: when, which, and how many agent samples had played by then.
    keys_sent: Vec<(u64, String, usize)>,
}

impl Sim {
    fn new(config: TurnConfig, script: Script) -> Sim {
        Sim {
            machine: TurnMachine::new(config),
            now: 0,
            pacer: VecDeque::new(),
            synth: None,
            brain: None,
            script,
            actions: Vec::new(),
            synthesised: Vec::new(),
            played_samples: 0,
            spoken: Vec::new(),
            ended: false,
            tts_failures: Vec::new(),
            brain_first_token_ms: 300,
            keys_sent: Vec::new(),
        }
    }

    /// A brain that answers every caller turn with `reply`.
    fn replying(config: TurnConfig, reply: &'static str) -> Sim {
        Sim::new(config, Box::new(move |_: &[Message]| stream(reply)))
    }

    fn input(&mut self, input: TurnInput) {
        self.machine.handle(self.now, input);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            assert!(!self.ended, "{action:?} after the call ended");
            self.actions.push(action.clone());
            match action {
                TurnAction::StartReply { reply, history } => {
                    assert!(self.brain.is_none(), "two live brain replies");
                    let events = (self.script)(&history);
                    let first = self.now + self.brain_first_token_ms;
                    let timed = events
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| (first + 40 * i as u64, e))
                        .collect();
                    self.brain = Some((reply, timed));
                }
                TurnAction::CancelReply { reply } => {
                    if self.brain.as_ref().is_some_and(|(id, _)| *id == reply) {
                        self.brain = None;
                    }
                }
                TurnAction::Synthesize { utterance, text } => {
                    assert!(self.synth.is_none(), "one synthesis at a time");
                    // 60 ms of audio per character, ready 80 ms after the request.
                    let samples = text.len() * RATE * 60 / 1000;
                    self.synthesised.push((utterance, text.clone()));
                    self.spoken.push((utterance, text.clone(), 0, 0));
                    if self.tts_failures.contains(&text) {
                        self.machine.handle(
                            self.now,
                            TurnInput::TtsError {
                                utterance,
                                message: "voice model crashed".into(),
                            },
                        );
                    } else {
                        self.synth = Some((utterance, samples, self.now + 80));
                    }
                }
                TurnAction::CancelSynthesis { utterance } => {
                    if self.synth.is_some_and(|(id, _, _)| id == utterance) {
                        self.synth = None;
                    }
                }
                TurnAction::SendKeys { utterance, keys } => {
                    // The keys' audio (tones or silence) is pushed at once, as the session does.
                    let samples = media::dtmf::tones::KeySequence::parse(&keys)
                        .expect("keys checked by the tool")
                        .samples(RATE as u32);
                    self.keys_sent
                        .push((self.now, keys.clone(), self.played_samples));
                    self.spoken
                        .push((utterance, format!("keys {keys}"), samples, 0));
                    self.pacer.push_back(Queued::Audio(samples, utterance));
                    self.machine
                        .handle(self.now, TurnInput::TtsAudio { utterance, samples });
                    self.machine
                        .handle(self.now, TurnInput::TtsDone { utterance });
                }
                TurnAction::MarkPlayout { mark } => self.pacer.push_back(Queued::Mark(mark)),
                TurnAction::ClearPlayout => {
                    let dropped = self
                        .pacer
                        .drain(..)
                        .map(|q| match q {
                            Queued::Audio(n, _) => n,
                            Queued::Mark(_) => 0,
                        })
                        .sum();
                    self.machine.handle(
                        self.now,
                        TurnInput::PlayoutCleared {
                            dropped_samples: dropped,
                        },
                    );
                }
                TurnAction::Hangup | TurnAction::Transfer { .. } => self.ended = true,
            }
        }
    }

    /// One 20 ms tick of the session: pacer, synthesiser, brain, then the machine's timers.
    fn tick(&mut self) {
        self.now += 20;
        let mut budget = FRAME;
        let mut fired = Vec::new();
        while let Some(front) = self.pacer.front_mut() {
            match front {
                Queued::Mark(id) => {
                    fired.push(*id);
                    self.pacer.pop_front();
                }
                Queued::Audio(n, utterance) if budget > 0 => {
                    let take = (*n).min(budget);
                    *n -= take;
                    budget -= take;
                    self.played_samples += take;
                    let id = *utterance;
                    if let Some(s) = self.spoken.iter_mut().find(|s| s.0 == id) {
                        s.3 += take;
                    }
                    if *n == 0 {
                        self.pacer.pop_front();
                    }
                }
                Queued::Audio(..) => break,
            }
        }
        for mark in fired {
            self.input(TurnInput::MarkPlayed(mark));
        }
        // The session ticks the machine right after the pacer's frame; synthesis and brain
        // events arrive between ticks.
        self.input(TurnInput::Tick);
        if let Some((utterance, remaining, due)) = self.synth
            && self.now >= due
        {
            // Four times faster than real time.
            let chunk = remaining.min(4 * FRAME);
            self.pacer.push_back(Queued::Audio(chunk, utterance));
            if let Some(s) = self.spoken.iter_mut().find(|s| s.0 == utterance) {
                s.2 += chunk;
            }
            let remaining = remaining - chunk;
            self.synth = (remaining > 0).then_some((utterance, remaining, due));
            self.input(TurnInput::TtsAudio {
                utterance,
                samples: chunk,
            });
            if remaining == 0 {
                self.input(TurnInput::TtsDone { utterance });
            }
        }
        while let Some((reply, due)) = self
            .brain
            .as_ref()
            .and_then(|(id, events)| events.front().map(|(due, _)| (*id, *due)))
        {
            if due > self.now {
                break;
            }
            let event = self
                .brain
                .as_mut()
                .and_then(|(_, events)| events.pop_front())
                .map(|(_, e)| e)
                .expect("front exists");
            if matches!(event, BrainEvent::Done | BrainEvent::Error(_)) {
                self.brain = None;
            }
            self.input(TurnInput::Brain { reply, event });
        }
    }

    fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        while self.now < until {
            self.tick();
        }
    }

    fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&Sim) -> bool) {
        let until = self.now + limit_ms;
        while !done(self) {
            assert!(self.now < until, "condition not reached by {until} ms");
            self.tick();
        }
    }

    /// The caller says `words`: speech for `ms`, partials along the way, the final 200 ms
    /// after speech end.
    fn say(&mut self, words: &str, ms: u64) {
        self.input(TurnInput::SpeechStart);
        let mut spoken = Vec::new();
        let all: Vec<&str> = words.split_whitespace().collect();
        let step = (ms / all.len().max(1) as u64).max(20);
        for word in &all {
            self.run_for(step);
            spoken.push(*word);
            self.input(TurnInput::SttPartial(spoken.join(" ")));
        }
        self.input(TurnInput::SpeechEnd);
        self.run_for(200);
        self.input(TurnInput::SttFinal(words.into()));
    }

    /// Waits for the end of the caller's turn, then for the reply to be spoken.
    fn after_turn(&mut self) {
        self.run_for(400);
        self.run_until(30_000, Sim::idle);
    }

    fn count(&self, pred: impl Fn(&TurnAction) -> bool) -> usize {
        self.actions.iter().filter(|a| pred(a)).count()
    }

    fn idle(&self) -> bool {
        self.machine.state() == TurnState::Listening
    }
}

/// A brain reply streamed a few words per event.
fn stream(text: &str) -> Vec<BrainEvent> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let mut events: Vec<BrainEvent> = words
        .chunks(3)
        .map(|c| BrainEvent::Text(c.concat()))
        .collect();
    events.push(BrainEvent::Done);
    events
}

fn agent_texts(machine: &TurnMachine) -> Vec<String> {
    machine
        .history()
        .iter()
        .filter(|m| m.role == Role::Agent)
        .map(|m| m.text.clone())
        .collect()
}

fn greeting(text: &str) -> TurnConfig {
    TurnConfig {
        greeting: Some(text.into()),
        ..TurnConfig::default()
    }
}

#[test]
fn greets_answers_and_records_the_turn() {
    let mut sim = Sim::replying(
        greeting("Thanks for calling Bright Dental. How can I help?"),
        "Sure. We have an opening on Friday at 10.30 with Dr. Patel. Does that work for you?",
    );
    sim.input(TurnInput::Answered);
    sim.run_until(10_000, Sim::idle);
    assert_eq!(
        agent_texts(&sim.machine),
        vec!["Thanks for calling Bright Dental. How can I help?"]
    );
    sim.run_for(500);
    sim.say("I'd like to book a cleaning", 1200);
    sim.run_until(20_000, |s| {
        s.count(|a| matches!(a, TurnAction::StartReply { .. })) == 1
    });
    let history_sent = sim.actions.iter().find_map(|a| match a {
        TurnAction::StartReply { history, .. } => Some(history.clone()),
        _ => None,
    });
    assert_eq!(
        history_sent.and_then(|h| h.last().cloned()),
        Some(Message {
            role: Role::Caller,
            text: "I'd like to book a cleaning".into()
        })
    );
    // The first sentence goes to TTS while the brain is still streaming.
    sim.run_until(5_000, |s| s.synthesised.len() == 3);
    assert_eq!(sim.synthesised[2].1, "Sure.");
    sim.run_until(30_000, Sim::idle);
    let texts = agent_texts(&sim.machine);
    assert_eq!(
        texts[1],
        "Sure. We have an opening on Friday at 10.30 with Dr. Patel. Does that work for you?"
    );
    let transcript = sim.machine.transcript();
    assert_eq!(transcript.len(), 3);
    assert_eq!(transcript[1].role, Role::Caller);
    assert!(transcript[1].start_ms < transcript[1].end_ms);
    assert!(transcript[1].end_ms <= transcript[2].start_ms);
    let latency = &sim.machine.latencies()[0];
    assert_eq!(latency.turn, 1);
    assert_eq!(latency.stt_final_ms, Some(200));
    assert_eq!(latency.endpointing_ms, Some(500));
    assert_eq!(latency.first_token_ms, Some(300));
    assert!(latency.tts_first_audio_ms.is_some_and(|ms| ms >= 80));
    let v2v = latency.voice_to_voice_ms.expect("audio played");
    assert_eq!(
        v2v,
        latency.endpointing_ms.unwrap_or(0) + latency.first_media_out_ms.unwrap_or(0)
    );
}

#[test]
fn barge_in_stops_playout_and_keeps_only_heard_words() {
    let mut sim = Sim::replying(
        TurnConfig::default(),
        "Our opening hours are nine to five on weekdays and ten to two on Saturdays, \
         and we are closed on Sundays and public holidays. Is there anything else?",
    );
    sim.input(TurnInput::Answered);
    sim.say("When are you open", 800);
    sim.run_until(5_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    sim.run_for(1500);
    sim.input(TurnInput::SpeechStart);
    sim.run_for(200);
    sim.input(TurnInput::SttPartial("actually wait".into()));
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 1);
    assert!(
        sim.count(|a| matches!(a, TurnAction::CancelReply { .. }))
            + sim.count(|a| matches!(a, TurnAction::CancelSynthesis { .. }))
            >= 1
    );
    let heard = agent_texts(&sim.machine).pop().expect("agent was heard");
    let full = "Our opening hours are nine to five on weekdays and ten to two on Saturdays,";
    assert!(
        full.starts_with(&heard),
        "{heard:?} is a prefix of what was said"
    );
    assert!(heard.split_whitespace().count() < full.split_whitespace().count());
    // Words heard are in proportion to audio played (60 ms per character here).
    let chars_played = sim.played_samples / (60 * 16);
    assert!(
        heard.len() <= chars_played + 10,
        "{heard:?} vs {chars_played} chars"
    );
    let last = sim
        .machine
        .transcript()
        .last()
        .cloned()
        .expect("agent turn");
    assert!(last.interrupted);
    assert!(sim.machine.latencies()[0].interrupted);
    // The interruption becomes the next caller turn.
    sim.input(TurnInput::SpeechEnd);
    sim.run_for(100);
    sim.input(TurnInput::SttFinal(
        "actually wait what about Saturday".into(),
    ));
    sim.run_until(3_000, |s| {
        s.count(|a| matches!(a, TurnAction::StartReply { .. })) == 2
    });
    let caller_turns: Vec<&str> = sim
        .machine
        .history()
        .iter()
        .filter(|m| m.role == Role::Caller)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(
        caller_turns,
        vec!["When are you open", "actually wait what about Saturday"]
    );
}

#[test]
fn backchannels_pause_the_agent_then_it_goes_on_without_losing_a_word() {
    let reply = "Let me explain how the cleaning works. First we take x-rays. \
                 Then the hygienist cleans your teeth.";
    let mut sim = Sim::replying(TurnConfig::default(), reply);
    sim.input(TurnInput::Answered);
    sim.say("How does it work", 700);
    sim.run_until(5_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    sim.run_for(600);
    sim.say("uh-huh", 400);
    sim.run_until(3_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    sim.run_for(400);
    sim.say("Mm-hmm, okay", 900);
    sim.run_until(30_000, Sim::idle);
    // Each backchannel stopped the audio while it was being recognised...
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 2);
    // ...and the reply went on: the caller heard all of it, as one turn, never cut.
    assert_eq!(agent_texts(&sim.machine), vec![reply]);
    assert_eq!(sim.count(|a| matches!(a, TurnAction::StartReply { .. })), 1);
    assert_eq!(
        sim.machine.transcript().len(),
        2,
        "backchannels are not turns"
    );
    assert!(!sim.machine.transcript()[1].interrupted);
    // The sentence cut by the first "uh-huh" was said again from its start.
    let first = "Let me explain how the cleaning works.";
    let times = sim.synthesised.iter().filter(|(_, t)| t == first).count();
    assert!(times >= 2, "{:?}", sim.synthesised);
}

#[test]
fn speech_over_the_agent_stops_its_audio_within_a_frame_of_the_threshold() {
    let mut sim = Sim::replying(
        TurnConfig::default(),
        "This is a long explanation that goes on and on about many things you did not ask.",
    );
    sim.input(TurnInput::Answered);
    sim.say("Tell me", 400);
    sim.run_until(5_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    let played_before = sim.played_samples;
    sim.input(TurnInput::SpeechStart);
    sim.run_for(140);
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 0);
    sim.run_for(20);
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 1);
    // Nothing more is played while the caller talks.
    let played_at_pause = sim.played_samples;
    assert!(played_at_pause - played_before <= 9 * FRAME);
    sim.run_for(900);
    assert_eq!(sim.played_samples, played_at_pause);
    assert_eq!(sim.machine.state(), TurnState::AgentSpeaking, "held");
    // Speech too long for a backchannel takes the floor even before any word is known.
    sim.run_for(200);
    assert_eq!(sim.machine.state(), TurnState::CallerSpeaking);
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 1);
    assert!(sim.machine.transcript().last().expect("agent").interrupted);
}

#[test]
fn noise_over_the_agent_resumes_the_cut_sentence() {
    let reply = "One moment while I check the calendar for you please. Friday is free.";
    let mut sim = Sim::replying(TurnConfig::default(), reply);
    sim.input(TurnInput::Answered);
    sim.say("Check Friday", 400);
    sim.run_until(5_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    sim.run_for(300);
    sim.input(TurnInput::SpeechStart);
    sim.run_for(300);
    sim.input(TurnInput::SpeechEnd);
    sim.run_for(100);
    sim.input(TurnInput::SttFinal(String::new()));
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 1);
    sim.run_until(30_000, Sim::idle);
    assert_eq!(agent_texts(&sim.machine), vec![reply]);
    assert_eq!(sim.machine.history().len(), 2, "noise is no turn");
    let cut = "One moment while I check the calendar for you please.";
    assert_eq!(sim.synthesised.iter().filter(|(_, t)| t == cut).count(), 2);
}

#[test]
fn a_late_final_is_replaced_by_the_partial_after_the_cap() {
    let mut sim = Sim::replying(TurnConfig::default(), "Okay.");
    sim.input(TurnInput::Answered);
    sim.input(TurnInput::SpeechStart);
    sim.run_for(600);
    sim.input(TurnInput::SttPartial("I need a plumber".into()));
    sim.input(TurnInput::SpeechEnd);
    let ended_speech = sim.now;
    sim.run_until(3_000, |s| {
        s.count(|a| matches!(a, TurnAction::StartReply { .. })) == 1
    });
    assert_eq!(sim.now - ended_speech, 1500);
    // The final arriving late is not taken as a new turn.
    sim.input(TurnInput::SttFinal("I need a plumber today".into()));
    sim.run_until(10_000, Sim::idle);
    sim.run_for(2000);
    assert_eq!(sim.count(|a| matches!(a, TurnAction::StartReply { .. })), 1);
    assert_eq!(sim.machine.history()[0].text, "I need a plumber");
}

#[test]
fn noise_without_words_returns_to_listening() {
    let mut sim = Sim::replying(TurnConfig::default(), "Hello?");
    sim.input(TurnInput::Answered);
    sim.input(TurnInput::SpeechStart);
    sim.run_for(300);
    sim.input(TurnInput::SpeechEnd);
    sim.run_for(100);
    sim.input(TurnInput::SttFinal("".into()));
    sim.run_for(1000);
    assert!(sim.idle());
    assert!(sim.actions.is_empty());
    assert!(sim.machine.history().is_empty());
}

#[test]
fn silence_gets_a_reprompt_then_a_polite_hangup() {
    let mut sim = Sim::replying(TurnConfig::default(), "unused");
    sim.input(TurnInput::Answered);
    sim.run_for(7_980);
    assert!(sim.synthesised.is_empty());
    sim.run_for(20);
    assert_eq!(sim.synthesised[0].1, "Are you still there?");
    sim.run_until(60_000, |s| s.machine.state() == TurnState::Ended);
    assert_eq!(sim.machine.end_reason(), Some(EndReason::IdleTimeout));
    assert_eq!(sim.actions.last(), Some(&TurnAction::Hangup));
    let texts = agent_texts(&sim.machine);
    assert_eq!(texts.len(), 2);
    assert!(texts[1].contains("Goodbye"));
    // About 8 s + reprompt + 20 s + goodbye.
    assert!((29_000..36_000).contains(&sim.now), "ended at {}", sim.now);
}

#[test]
fn caller_speech_resets_the_idle_timer() {
    let mut sim = Sim::replying(TurnConfig::default(), "Sure.");
    sim.input(TurnInput::Answered);
    sim.run_for(6_000);
    sim.say("hello", 300);
    sim.after_turn();
    sim.run_for(7_000);
    assert!(
        !sim.synthesised
            .iter()
            .any(|(_, t)| t == "Are you still there?")
    );
}

#[test]
fn max_duration_ends_the_call_politely_even_mid_reply() {
    let config = TurnConfig {
        max_call_ms: 5_000,
        ..TurnConfig::default()
    };
    let mut sim = Sim::replying(
        config,
        "Here is a very long answer that keeps going for quite some time without stopping at all.",
    );
    sim.input(TurnInput::Answered);
    sim.say("Tell me everything", 600);
    sim.run_until(20_000, |s| s.machine.state() == TurnState::Ended);
    assert_eq!(sim.machine.end_reason(), Some(EndReason::MaxDuration));
    assert!(sim.count(|a| *a == TurnAction::ClearPlayout) <= 1);
    let texts = agent_texts(&sim.machine);
    assert!(texts.last().is_some_and(|t| t.contains("time limit")));
}

#[test]
fn shutdown_says_goodbye_mid_reply_then_hangs_up() {
    let mut sim = Sim::replying(
        TurnConfig::default(),
        "Here is a very long answer that keeps going for quite some time without stopping at all.",
    );
    sim.input(TurnInput::Answered);
    sim.say("Tell me everything", 600);
    sim.run_until(3_000, |s| !s.synthesised.is_empty());
    sim.input(TurnInput::Shutdown);
    sim.input(TurnInput::Shutdown);
    sim.run_until(20_000, |s| s.machine.state() == TurnState::Ended);
    assert_eq!(sim.machine.end_reason(), Some(EndReason::Shutdown));
    assert_eq!(sim.count(|a| *a == TurnAction::Hangup), 1);
    let texts = agent_texts(&sim.machine);
    assert!(
        texts.last().is_some_and(|t| t.contains("end the call now")),
        "{texts:?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("end the call now"))
            .count(),
        1
    );
}

#[test]
fn end_call_hangs_up_after_the_goodbye_is_played() {
    let script: Script = Box::new(|_: &[Message]| {
        vec![
            BrainEvent::Text("You're welcome, goodbye!".into()),
            BrainEvent::EndCall,
            BrainEvent::Done,
        ]
    });
    let mut sim = Sim::new(TurnConfig::default(), script);
    sim.input(TurnInput::Answered);
    sim.say("That's all, thanks", 800);
    sim.run_until(10_000, |s| s.machine.state() == TurnState::Ended);
    assert_eq!(sim.machine.end_reason(), Some(EndReason::AgentHangup));
    assert!(sim.pacer.is_empty(), "hung up only after playout");
    assert_eq!(agent_texts(&sim.machine), vec!["You're welcome, goodbye!"]);
    // Nothing after the hang-up.
    let len = sim.actions.len();
    sim.say("hello?", 500);
    sim.run_for(20_000);
    assert_eq!(sim.actions.len(), len);
}

#[test]
fn transfer_happens_after_the_reply() {
    let script: Script = Box::new(|_: &[Message]| {
        vec![
            BrainEvent::Text("Connecting you to billing now.".into()),
            BrainEvent::Transfer {
                target: "+15550001111".into(),
            },
            BrainEvent::Done,
        ]
    });
    let mut sim = Sim::new(TurnConfig::default(), script);
    sim.input(TurnInput::Answered);
    sim.say("Billing please", 600);
    sim.run_until(10_000, |s| s.machine.state() == TurnState::Ended);
    assert_eq!(
        sim.actions.last(),
        Some(&TurnAction::Transfer {
            target: "+15550001111".into()
        })
    );
    assert_eq!(sim.machine.end_reason(), Some(EndReason::Transferred));
}

#[test]
fn brain_errors_and_silence_get_an_apology() {
    let script: Script = Box::new(|_: &[Message]| vec![BrainEvent::Error("model crashed".into())]);
    let mut sim = Sim::new(TurnConfig::default(), script);
    sim.input(TurnInput::Answered);
    sim.say("Hi there", 500);
    sim.after_turn();
    assert_eq!(
        agent_texts(&sim.machine),
        vec!["Sorry, I didn't quite catch that. Could you say it again?"]
    );

    // A brain that never answers is cut off after the first-token timeout.
    let script: Script = Box::new(|_: &[Message]| Vec::new());
    let mut sim = Sim::new(TurnConfig::default(), script);
    sim.input(TurnInput::Answered);
    sim.say("Hi there", 500);
    let asked = sim.now;
    sim.run_until(20_000, |s| !s.synthesised.is_empty());
    assert!(sim.now - asked >= 8_000);
    assert_eq!(
        sim.count(|a| matches!(a, TurnAction::CancelReply { .. })),
        1
    );
    sim.run_until(10_000, Sim::idle);
}

#[test]
fn a_failed_utterance_is_skipped_and_not_claimed_as_heard() {
    let mut sim = Sim::replying(
        TurnConfig::default(),
        "First sentence here. Second sentence here. Third sentence here.",
    );
    sim.tts_failures.push("Second sentence here.".into());
    sim.input(TurnInput::Answered);
    sim.say("Go on", 400);
    sim.after_turn();
    assert_eq!(
        agent_texts(&sim.machine),
        vec!["First sentence here. Third sentence here."]
    );
}

#[test]
fn speaking_again_while_the_agent_thinks_merges_the_turn() {
    let mut sim = Sim::replying(TurnConfig::default(), "Booked!");
    sim.brain_first_token_ms = 1500;
    sim.input(TurnInput::Answered);
    sim.say("I want to book", 600);
    sim.run_until(2_000, |s| s.machine.state() == TurnState::Thinking);
    sim.say("for Tuesday morning", 800);
    assert_eq!(
        sim.count(|a| matches!(a, TurnAction::CancelReply { .. })),
        1
    );
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 0);
    sim.after_turn();
    let history = sim.machine.history();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].text, "I want to book for Tuesday morning");
    assert_eq!(history[1].text, "Booked!");
    assert_eq!(sim.machine.latencies().len(), 1);
}

#[test]
fn an_uninterruptible_greeting_plays_out_and_the_caller_is_answered_after() {
    let config = TurnConfig {
        greeting_interruptible: false,
        ..greeting("This call may be recorded for quality and training purposes.")
    };
    let mut sim = Sim::replying(config, "How can I help?");
    sim.input(TurnInput::Answered);
    sim.run_for(500);
    sim.say("hello I need help", 1000);
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 0);
    sim.run_until(20_000, |s| {
        s.count(|a| matches!(a, TurnAction::StartReply { .. })) == 1
    });
    sim.run_until(20_000, Sim::idle);
    let texts = agent_texts(&sim.machine);
    assert_eq!(
        texts,
        vec![
            "This call may be recorded for quality and training purposes.",
            "How can I help?"
        ]
    );
}

#[test]
fn stale_events_of_a_cancelled_reply_are_ignored() {
    let mut sim = Sim::replying(
        TurnConfig::default(),
        "A fairly long reply to be interrupted soon.",
    );
    sim.input(TurnInput::Answered);
    sim.say("question", 400);
    sim.run_until(5_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    let old = sim
        .actions
        .iter()
        .find_map(|a| match a {
            TurnAction::StartReply { reply, .. } => Some(*reply),
            _ => None,
        })
        .expect("a reply");
    sim.input(TurnInput::SpeechStart);
    sim.input(TurnInput::SttPartial("stop".into()));
    let actions = sim.actions.len();
    sim.input(TurnInput::Brain {
        reply: old,
        event: BrainEvent::Text("Late words.".into()),
    });
    sim.input(TurnInput::Brain {
        reply: old,
        event: BrainEvent::EndCall,
    });
    sim.input(TurnInput::TtsAudio {
        utterance: UtteranceId(9_999),
        samples: 320,
    });
    assert_eq!(sim.actions.len(), actions);
    assert!(!agent_texts(&sim.machine).iter().any(|t| t.contains("Late")));
}

#[test]
fn dtmf_digits_make_a_turn() {
    let mut sim = Sim::replying(TurnConfig::default(), "Thanks.");
    sim.input(TurnInput::Answered);
    for d in ['1', '2', '3', '#'] {
        sim.input(TurnInput::Dtmf(d));
        sim.run_for(200);
    }
    assert_eq!(sim.machine.history()[0].text, "123");
}

#[test]
fn remote_hangup_mid_reply_records_what_was_heard() {
    let mut sim = Sim::replying(
        TurnConfig::default(),
        "We are open from nine until five every weekday, and on Saturday mornings too.",
    );
    sim.input(TurnInput::Answered);
    sim.say("When are you open", 700);
    sim.run_until(5_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    sim.run_for(1000);
    sim.input(TurnInput::Hangup);
    assert_eq!(sim.machine.end_reason(), Some(EndReason::CallerHangup));
    let heard = agent_texts(&sim.machine).pop().expect("some words heard");
    assert!("We are open from nine until five every weekday,".starts_with(&heard));
    assert!(
        sim.machine
            .transcript()
            .last()
            .is_some_and(|t| t.interrupted)
    );
}

#[test]
fn remote_hangup_while_paused_records_what_was_heard_before_the_pause() {
    let reply = "We are open Monday to Friday, from eight in the morning to six in the evening.";
    let mut sim = Sim::replying(TurnConfig::default(), reply);
    sim.input(TurnInput::Answered);
    sim.say("When are you open", 700);
    sim.run_until(5_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    sim.run_for(1500);
    // The caller talks over the agent (paused), then hangs up before a word is recognised.
    sim.input(TurnInput::SpeechStart);
    sim.run_for(300);
    assert_eq!(sim.count(|a| *a == TurnAction::ClearPlayout), 1);
    sim.input(TurnInput::Hangup);
    let heard = agent_texts(&sim.machine)
        .pop()
        .expect("the words heard before the pause");
    assert!(!heard.is_empty() && reply.starts_with(&heard), "{heard:?}");
    assert!(
        sim.machine
            .transcript()
            .last()
            .is_some_and(|t| t.interrupted)
    );
}

impl Sim {
    /// Whether `words` are the played words of the utterances from `at` on, each claimed no
    /// further than its played share of audio. An utterance cut by a pause may instead be
    /// passed over when the same text was synthesised again later (the retake).
    fn heard_from(&self, words: &[&str], at: usize) -> bool {
        if words.is_empty() {
            return true;
        }
        let Some((_, text, pushed, played)) = self.spoken.get(at) else {
            return false;
        };
        let retaken = self.spoken[at + 1..].iter().any(|later| later.1 == *text);
        if played < pushed && retaken && self.heard_from(words, at + 1) {
            return true;
        }
        let utterance: Vec<&str> = text.split_whitespace().collect();
        let take = words.len().min(utterance.len());
        let allowed = match (*pushed, played >= pushed) {
            (0, _) => 0,
            (_, true) => utterance.len(),
            (pushed, false) => utterance.len() * played / pushed,
        };
        if words[..take] != utterance[..take] || take > allowed {
            return false;
        }
        take == words.len() || (take == utterance.len() && self.heard_from(&words[take..], at + 1))
    }

    /// Every agent message in the history must be made of words that were played: a run of
    /// consecutive utterances, each claimed no further than its played share of audio.
    fn assert_history_was_heard(&self) {
        for message in self
            .machine
            .history()
            .iter()
            .filter(|m| m.role == Role::Agent)
        {
            let words: Vec<&str> = message.text.split_whitespace().collect();
            let fits = (0..self.spoken.len()).any(|start| self.heard_from(&words, start));
            assert!(
                fits,
                "{:?} was not heard; spoken {:?}",
                message.text, self.spoken
            );
        }
    }
}

#[test]
fn random_interleavings_never_get_stuck_or_claim_unheard_words() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const WORDS: &[&str] = &[
        "uh-huh", "yeah", "okay", "book", "Friday", "price", "no", "wait", "hello", "mm-hmm",
    ];
    const REPLIES: &[&str] = &[
        "Sure.",
        "We open at 9 a.m. on weekdays, and at 10 on Saturdays. Anything else?",
        "Dr. Patel has 10.30 free. Shall I book it? It takes about forty minutes.",
        "",
    ];
    for seed in 0..1_000u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = TurnConfig {
            greeting: rng
                .random_bool(0.5)
                .then(|| "Hello, thanks for calling. How can I help?".into()),
            greeting_interruptible: rng.random_bool(0.7),
            max_call_ms: rng.random_range(20_000..200_000),
            barge_in_speech_ms: rng.random_range(60..400),
            backchannel_max_ms: rng.random_range(300..2_000),
            ..TurnConfig::default()
        };
        let mut script_rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let script: Script = Box::new(move |_: &[Message]| {
            let text = REPLIES[script_rng.random_range(0..REPLIES.len())];
            let mut events = stream(text);
            match script_rng.random_range(0..10) {
                0 => events.insert(0, BrainEvent::Error("boom".into())),
                1 => events.insert(events.len() - 1, BrainEvent::EndCall),
                2 => events.clear(), // a brain that never answers
                3 => events.insert(
                    0,
                    BrainEvent::ToolCalled {
                        name: "book_appointment".into(),
                        arguments: serde_json::json!({}),
                        result: serde_json::json!({"id": "apt_1"}),
                    },
                ),
                _ => {}
            }
            events
        });
        let mut sim = Sim::new(config, script);
        sim.brain_first_token_ms = rng.random_range(20..2_000);
        if rng.random_bool(0.2) {
            sim.tts_failures.push("Sure.".into());
        }
        sim.input(TurnInput::Answered);
        for _ in 0..rng.random_range(0..120) {
            if sim.ended {
                break;
            }
            let word = WORDS[rng.random_range(0..WORDS.len())];
            match rng.random_range(0..12) {
                0 => sim.input(TurnInput::SpeechStart),
                1 => sim.input(TurnInput::SpeechEnd),
                2 => sim.input(TurnInput::SttPartial(word.into())),
                3 => sim.input(TurnInput::SttFinal(word.into())),
                4 => sim.input(TurnInput::SttFinal(String::new())),
                5 => sim.input(TurnInput::SttError("decoder".into())),
                6 => sim.input(TurnInput::Dtmf('5')),
                7 => {
                    // A late jump in time: the session was descheduled.
                    sim.now += rng.random_range(0..3_000);
                    sim.tick();
                }
                8 if rng.random_bool(0.05) => sim.input(TurnInput::Hangup),
                _ => sim.run_for(rng.random_range(1..40) * 20),
            }
            sim.assert_history_was_heard();
        }
        // Inputs stop (the caller falls silent, VAD closes any open segment): the machine
        // must settle into listening or end within bounded time.
        sim.input(TurnInput::SpeechEnd);
        let silent_from = sim.now;
        let limit = sim.now + 120_000;
        while !sim.ended && sim.machine.state() != TurnState::Ended {
            // A reply paused by the caller's voice is resumed or dropped once their turn is
            // over; it never waits for the stall timer.
            assert!(
                !sim.machine.is_paused() || sim.now <= silent_from + 1_560,
                "seed {seed}: still paused {} ms after the caller fell silent",
                sim.now - silent_from
            );
            assert!(
                sim.now < limit,
                "seed {seed}: stuck in {:?}",
                sim.machine.state()
            );
            sim.tick();
        }
        sim.assert_history_was_heard();
        let end = sim.machine.end_reason();
        assert!(end.is_some(), "seed {seed}");
    }
}

#[test]
fn deadlines_tell_the_session_when_to_wake() {
    let mut machine = TurnMachine::new(TurnConfig::default());
    assert_eq!(
        machine.next_deadline(),
        None,
        "nothing runs before the answer"
    );
    machine.handle(0, TurnInput::Answered);
    assert_eq!(machine.next_deadline(), Some(8_000), "idle reprompt");
    machine.handle(1_000, TurnInput::SpeechStart);
    machine.handle(1_400, TurnInput::SpeechEnd);
    assert_eq!(
        machine.next_deadline(),
        Some(2_900),
        "waiting for the final, capped"
    );
    machine.handle(1_600, TurnInput::SttFinal("hi there".into()));
    assert_eq!(machine.next_deadline(), Some(1_900), "endpointing");
    machine.handle(1_899, TurnInput::Tick);
    assert_eq!(machine.poll_action(), None);
    machine.handle(1_900, TurnInput::Tick);
    assert!(matches!(
        machine.poll_action(),
        Some(TurnAction::StartReply { .. })
    ));
    assert_eq!(machine.state(), TurnState::Thinking);
    assert_eq!(machine.next_deadline(), Some(9_900), "first-token timeout");
}

#[test]
fn a_yes_said_over_the_agents_question_answers_it() {
    let mut sim = Sim::replying(
        TurnConfig::default(),
        "I found a slot on Friday at ten in the morning. Shall I book it for you?",
    );
    sim.input(TurnInput::Answered);
    sim.say("Any time on Friday", 700);
    sim.run_until(5_000, |s| s.machine.state() == TurnState::AgentSpeaking);
    sim.run_for(2_500);
    sim.say("yeah", 300);
    assert_eq!(
        sim.count(|a| matches!(a, TurnAction::CancelReply { .. })),
        0,
        "not a barge-in: the question is resumed, not dropped"
    );
    sim.run_until(20_000, |s| {
        s.count(|a| matches!(a, TurnAction::StartReply { .. })) == 2
    });
    let history = sim.machine.history();
    assert_eq!(history[history.len() - 2].role, Role::Agent);
    assert_eq!(
        history.last(),
        Some(&Message {
            role: Role::Caller,
            text: "yeah".into()
        })
    );
}

/// What the `send_dtmf` tool reports for `keys`.
fn keys_pressed(keys: &str) -> BrainEvent {
    BrainEvent::ToolCalled {
        name: "send_dtmf".into(),
        arguments: serde_json::json!({ "digits": keys }),
        result: serde_json::json!({"action": "send_dtmf", "digits": keys, "status": "queued"}),
    }
}

#[test]
fn keys_are_pressed_only_once_the_words_before_them_have_played() {
    let script: Script = Box::new(|_: &[Message]| {
        vec![
            BrainEvent::Text("Sure, I will choose sales. Pressing one".into()),
            keys_pressed("1"),
            BrainEvent::Text("There we go.".into()),
            BrainEvent::Done,
        ]
    });
    let mut sim = Sim::new(TurnConfig::default(), script);
    sim.input(TurnInput::Answered);
    sim.say("For sales press one", 800);
    sim.after_turn();
    assert_eq!(sim.keys_sent.len(), 1);
    let (_, keys, played_before) = sim.keys_sent[0].clone();
    assert_eq!(keys, "1");
    let words_before: usize = sim
        .spoken
        .iter()
        .take_while(|s| !s.1.starts_with("keys"))
        .map(|s| s.2)
        .sum();
    assert!(words_before > 0);
    assert_eq!(
        played_before, words_before,
        "every word before the keys played first"
    );
    // The half sentence before the keys was spoken as it was; the words after them follow.
    let texts: Vec<&str> = sim.synthesised.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["Sure, I will choose sales.", "Pressing one", "There we go."]
    );
    assert!(sim.pacer.is_empty());
    // The transcript shows the keys; the brain's history holds only words.
    let turn = sim
        .machine
        .transcript()
        .last()
        .cloned()
        .expect("agent turn");
    assert_eq!(
        turn.text,
        "Sure, I will choose sales. Pressing one [DTMF:1] There we go."
    );
    assert_eq!(
        agent_texts(&sim.machine),
        ["Sure, I will choose sales. Pressing one There we go."]
    );
}

#[test]
fn the_far_end_talking_does_not_cut_keys_that_are_sounding() {
    let mut replies = 0;
    let script: Script = Box::new(move |_: &[Message]| {
        replies += 1;
        if replies == 1 {
            vec![keys_pressed("123456789"), BrainEvent::Done]
        } else {
            stream("Thanks.")
        }
    });
    let mut sim = Sim::new(TurnConfig::default(), script);
    sim.input(TurnInput::Answered);
    sim.say("Enter your account number", 800);
    sim.run_until(5_000, |s| !s.keys_sent.is_empty());
    // An IVR carries on over the keys (1.8 s of them).
    sim.say("followed by the pound key", 900);
    assert_eq!(sim.count(|a| matches!(a, TurnAction::ClearPlayout)), 0);
    sim.after_turn();
    assert_eq!(sim.count(|a| matches!(a, TurnAction::ClearPlayout)), 0);
    let turns: Vec<(Role, String)> = sim
        .machine
        .transcript()
        .iter()
        .map(|t| (t.role, t.text.clone()))
        .collect();
    assert_eq!(
        turns,
        [
            (Role::Caller, "Enter your account number".into()),
            (Role::Agent, "[DTMF:123456789]".into()),
            (Role::Caller, "followed by the pound key".into()),
            (Role::Agent, "Thanks.".into()),
        ]
    );
    // A reply of keys alone leaves no words in the history.
    assert_eq!(agent_texts(&sim.machine), ["Thanks."]);
}

#[test]
fn a_refused_send_dtmf_presses_nothing() {
    let script: Script = Box::new(|_: &[Message]| {
        vec![
            BrainEvent::ToolCalled {
                name: "send_dtmf".into(),
                arguments: serde_json::json!({ "digits": "9x" }),
                result: serde_json::json!({"error": "invalid arguments: digits"}),
            },
            BrainEvent::Text("Sorry, one moment.".into()),
            BrainEvent::Done,
        ]
    });
    let mut sim = Sim::new(TurnConfig::default(), script);
    sim.input(TurnInput::Answered);
    sim.say("Press nine", 500);
    sim.after_turn();
    assert!(sim.keys_sent.is_empty());
    assert_eq!(agent_texts(&sim.machine), ["Sorry, one moment."]);
}
