//! The engine's own answering-machine detection, for legs whose carrier does not detect:
//! who answered, from the first seconds of the callee's audio, then (for a machine) when its
//! greeting ends so a message can be left. Sans-IO: frames and call time (ms) go in, verdicts
//! come out; nothing is allocated per frame.
//!
//! The rules follow how people and machines answer:
//! - a person says a short "Hello?" and waits: under `human_max_speech_ms` of speech followed
//!   by `human_silence_ms` of silence is a human;
//! - a recorded greeting talks on: speech reaching `machine_speech_ms` from its first word
//!   (pauses between phrases included), or a beep, is a machine;
//! - nothing decided within `decide_within_ms` is unknown (the agent then greets anyway);
//! - a 2100 Hz answer tone is a fax.
//!
//! A machine's greeting ends at its beep (a steady 400–2000 Hz tone, reported when the tone
//! stops, since the recording starts after it), or after `greeting_silence_ms` of silence, and
//! at the latest `greeting_cap_ms` after answer.

use media::Frame;
use media::tone::{SteadyToneDetector, ToneConfig, ToneEvent};
use media::vad::{VadConfig, VoiceDetector};

use super::leg::AnsweredBy;

/// Tuning for `MachineDetector` (milliseconds of call time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineDetectorConfig {
    pub human_max_speech_ms: u64,
    pub human_silence_ms: u64,
    pub machine_speech_ms: u64,
    pub decide_within_ms: u64,
    pub greeting_silence_ms: u64,
    pub greeting_cap_ms: u64,
    /// Speech shorter than this (a click, a breath) is not an answer.
    pub min_speech_ms: u64,
    /// Beep band (Hz).
    pub beep_min_hz: f32,
    pub beep_max_hz: f32,
    /// A tone still sounding after this long ends the greeting anyway.
    pub beep_max_ms: u32,
    /// A fax answer tone (CED, 2100 Hz) lasting this long is a fax.
    pub fax_tone_ms: u32,
}

impl Default for MachineDetectorConfig {
    fn default() -> Self {
        MachineDetectorConfig {
            human_max_speech_ms: 1500,
            human_silence_ms: 800,
            machine_speech_ms: 3000,
            decide_within_ms: 5000,
            greeting_silence_ms: 1500,
            greeting_cap_ms: 30_000,
            min_speech_ms: 100,
            beep_min_hz: 400.0,
            beep_max_hz: 2000.0,
            beep_max_ms: 2000,
            fax_tone_ms: 500,
        }
    }
}

const FAX_HZ: std::ops::RangeInclusive<f32> = 2050.0..=2150.0;
/// A frame this loud, and this far above the line's quiet level, is sound (not silence).
const SOUND_MIN_DBFS: f32 = -45.0;
const SOUND_MARGIN_DB: f32 = 10.0;
/// The line's quiet level follows its quietest frames down at once and creeps up 2.5 dB a
/// second otherwise: a steady hiss becomes silence within seconds, while a sustained vowel or
/// note (which the voice detector's own floor soon takes for noise) stays sound.
const QUIET_FLOOR_RISE_DB: f32 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Who answered is not known yet.
    Detecting,
    /// A machine: waiting for the end of its greeting.
    Greeting,
    Done,
}

/// Answering-machine detection for one outbound call.
pub struct MachineDetector {
    config: MachineDetectorConfig,
    vad: VoiceDetector,
    tone: SteadyToneDetector,
    phase: Phase,
    /// Call time of the first frame (the answer).
    started_at: Option<u64>,
    /// The current stretch of speech: its first and latest speech frame, and how many frames
    /// of it were speech.
    speech_from: Option<u64>,
    speech_last: u64,
    speech_frames: u64,
    /// The first utterance was too long for a "Hello?" but ended: no longer a human answer.
    first_utterance_over: bool,
    /// Latest speech (or greeting start) while waiting for the greeting to end.
    greeting_last_sound: u64,
    /// `MachineGreetingEnded` was given.
    greeting_over: bool,
    /// The line's quiet level (dBFS), below which nothing counts as sound.
    quiet_floor: f32,
}

impl MachineDetector {
    pub fn new(config: MachineDetectorConfig) -> Self {
        MachineDetector {
            config,
            vad: VoiceDetector::new(VadConfig::default()),
            tone: SteadyToneDetector::new(ToneConfig {
                min_hz: config.beep_min_hz,
                max_hz: FAX_HZ.end() + 50.0,
                ..ToneConfig::default()
            }),
            phase: Phase::Detecting,
            started_at: None,
            speech_from: None,
            speech_last: 0,
            speech_frames: 0,
            first_utterance_over: false,
            greeting_last_sound: 0,
            greeting_over: false,
            quiet_floor: SOUND_MIN_DBFS - SOUND_MARGIN_DB,
        }
    }

    /// Feeds one frame of the callee's audio (16 kHz, 20 ms) heard at call time `now`.
    /// Returns `Human`, `Machine`, `Fax` or `Unknown` once, then, after `Machine`,
    /// `MachineGreetingEnded` once (a beep heard while detecting gives `Machine` as it is
    /// confirmed and `MachineGreetingEnded` when it stops).
    pub fn process(&mut self, now: u64, frame: &Frame) -> Option<AnsweredBy> {
        if self.phase == Phase::Done {
            return None;
        }
        let started = *self.started_at.get_or_insert(now);
        self.vad.process(frame);
        let tone = self.tone.process(frame);
        let toning = self.tone.current().is_some();
        let speech = self.vad.last_frame_was_speech() && !toning;
        // A greeting is over when the line goes quiet, whatever made the sound (the voice
        // detector misses sung or music-like greetings).
        let level = media::vad::frame_dbfs(frame.samples());
        self.quiet_floor = (self.quiet_floor + QUIET_FLOOR_RISE_DB).min(level);
        if speech || level >= SOUND_MIN_DBFS.max(self.quiet_floor + SOUND_MARGIN_DB) {
            self.greeting_last_sound = now;
        }
        if let Some(verdict) = self.on_tone(now, tone) {
            return Some(verdict);
        }
        if speech {
            self.on_speech(now);
        }
        match self.phase {
            Phase::Detecting => self.detect(now, started, speech),
            Phase::Greeting => self.greeting_ended(now, started, toning),
            Phase::Done => None,
        }
    }

    /// Time passes without audio (a silent or stalled line): deadlines still fire.
    pub fn tick(&mut self, now: u64) -> Option<AnsweredBy> {
        let started = self.started_at?;
        match self.phase {
            Phase::Detecting if now >= started + self.config.decide_within_ms => {
                self.phase = Phase::Done;
                Some(AnsweredBy::Unknown)
            }
            Phase::Greeting if now >= started + self.config.greeting_cap_ms => self.end_greeting(),
            _ => None,
        }
    }

    /// Someone else (the carrier) decided this is a machine: wait for its greeting to end,
    /// whatever this detector thought so far.
    pub fn assume_machine(&mut self, now: u64) {
        if self.phase != Phase::Greeting && !self.greeting_over {
            self.started_at.get_or_insert(now);
            self.phase = Phase::Greeting;
            self.greeting_last_sound = now;
        }
    }

    /// Whether `MachineGreetingEnded` was given.
    pub fn greeting_is_over(&self) -> bool {
        self.greeting_over
    }

    fn end_greeting(&mut self) -> Option<AnsweredBy> {
        self.phase = Phase::Done;
        self.greeting_over = true;
        Some(AnsweredBy::MachineGreetingEnded)
    }

    fn on_tone(&mut self, now: u64, event: Option<ToneEvent>) -> Option<AnsweredBy> {
        let band = self.config.beep_min_hz..=self.config.beep_max_hz;
        let beep = move |hz: f32| band.contains(&hz);
        if let Some((hz, ms)) = self.tone.current() {
            if FAX_HZ.contains(&hz) && ms >= self.config.fax_tone_ms {
                self.phase = Phase::Done;
                return Some(AnsweredBy::Fax);
            }
            if beep(hz) && ms >= self.config.beep_max_ms && self.phase == Phase::Greeting {
                return self.end_greeting();
            }
        }
        match event {
            // A beep while detecting: only a machine beeps. Its greeting ends with the beep.
            Some(ToneEvent::Started { hz }) if beep(hz) && self.phase == Phase::Detecting => {
                self.assume_machine(now);
                Some(AnsweredBy::Machine)
            }
            Some(ToneEvent::Ended { hz, .. }) if beep(hz) && self.phase == Phase::Greeting => {
                self.end_greeting()
            }
            _ => None,
        }
    }

    fn on_speech(&mut self, now: u64) {
        let gap = self.config.human_silence_ms;
        match self.speech_from {
            Some(_) if now.saturating_sub(self.speech_last) < gap => {}
            _ => {
                if self.speech_from.is_some() {
                    // A second utterance after a pause: the first was no "Hello?".
                    self.first_utterance_over = true;
                }
                self.speech_from = Some(self.speech_from.unwrap_or(now));
            }
        }
        self.speech_last = now;
        self.speech_frames += 1;
    }

    fn detect(&mut self, now: u64, started: u64, speech: bool) -> Option<AnsweredBy> {
        let c = self.config;
        if let Some(from) = self.speech_from {
            let frame_ms = u64::from(media::FRAME_MS);
            if speech && now + frame_ms - from > c.machine_speech_ms {
                self.phase = Phase::Greeting;
                self.greeting_last_sound = now;
                return Some(AnsweredBy::Machine);
            }
            if !speech && now.saturating_sub(self.speech_last) >= c.human_silence_ms {
                let spoken = self.speech_frames * frame_ms;
                let length = self.speech_last + frame_ms - from;
                if spoken < c.min_speech_ms {
                    // A click or a breath: forget it.
                    self.speech_from = None;
                    self.speech_frames = 0;
                } else if !self.first_utterance_over && length <= c.human_max_speech_ms {
                    self.phase = Phase::Done;
                    return Some(AnsweredBy::Human);
                } else {
                    self.first_utterance_over = true;
                }
            }
        }
        if now >= started + c.decide_within_ms {
            self.phase = Phase::Done;
            return Some(AnsweredBy::Unknown);
        }
        None
    }

    fn greeting_ended(&mut self, now: u64, started: u64, toning: bool) -> Option<AnsweredBy> {
        let c = self.config;
        let silent_for = now.saturating_sub(self.greeting_last_sound);
        if (!toning && silent_for >= c.greeting_silence_ms) || now >= started + c.greeting_cap_ms {
            return self.end_greeting();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use media::{INTERNAL_RATE, InternalFrame};

    use super::*;
    use crate::telephony::simulated::load_script;

    /// Call time of the first frame: the detector must not assume calls start at zero.
    const ANSWERED_AT: u64 = 1_000;

    /// A fixture clip (8 kHz, as a G.711 call carries it) at 16 kHz, and its length in ms.
    fn clip(name: &str) -> (Vec<i16>, u64) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/media")
            .join(name);
        let pcm = load_script(&path).unwrap();
        let ms = pcm.len() as u64 / 16;
        (pcm, ms)
    }

    /// Feeds `pcm` then `then_silence_ms` of silence; returns every verdict with the clip time
    /// (ms from answer) of the frame that gave it.
    fn verdicts(pcm: &[i16], then_silence_ms: u64) -> Vec<(u64, AnsweredBy)> {
        let mut detector = MachineDetector::new(MachineDetectorConfig::default());
        let mut seen = Vec::new();
        let silence = vec![0i16; then_silence_ms as usize * 16];
        for (i, chunk) in pcm.chunks(320).chain(silence.chunks(320)).enumerate() {
            let mut frame = InternalFrame::silence(INTERNAL_RATE);
            frame.samples_mut()[..chunk.len()].copy_from_slice(chunk);
            let at = i as u64 * 20;
            let frame = Frame::from(frame);
            if let Some(verdict) = detector.process(ANSWERED_AT + at, &frame) {
                seen.push((at, verdict));
            }
        }
        seen
    }

    /// End of the last 20 ms of the clip louder than -40 dBFS.
    fn last_sound_ms(pcm: &[i16]) -> u64 {
        let loud = pcm
            .chunks(320)
            .rposition(|c| media::vad::frame_dbfs(c) > -40.0)
            .expect("some sound");
        (loud as u64 + 1) * 20
    }

    #[test]
    fn a_person_saying_hello_is_a_human_once_they_wait() {
        // "Hello?" from 0.4 s, under a second long, then line noise.
        let (pcm, _) = clip("amd_person_hello.wav");
        let seen = verdicts(&pcm, 0);
        assert_eq!(seen.len(), 1, "{seen:?}");
        let (at, verdict) = seen[0];
        assert_eq!(verdict, AnsweredBy::Human);
        assert!(
            (1_400..=2_600).contains(&at),
            "decided 0.8 s after the hello ends, not while it is said: {at} ms"
        );
    }

    #[test]
    fn a_voicemail_greeting_is_a_machine_whose_greeting_ends_at_the_beep() {
        // 0.4 s of line noise, a ~6.5 s greeting, 0.3 s gap, a 0.5 s beep, 3 s of noise.
        let (pcm, ms) = clip("amd_voicemail_beep.wav");
        let beep_end = ms - 3_000;
        let seen = verdicts(&pcm, 0);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].1, AnsweredBy::Machine);
        assert!(
            (3_000..=4_000).contains(&seen[0].0),
            "three seconds of talk make a machine: {seen:?}"
        );
        assert_eq!(seen[1].1, AnsweredBy::MachineGreetingEnded);
        // (To the frame: resampling moves the clip's edges by a few samples.)
        assert!(
            (beep_end - 20..=beep_end + 40).contains(&seen[1].0),
            "the greeting ends when the beep stops ({beep_end} ms): {seen:?}"
        );
    }

    #[test]
    fn a_greeting_without_a_beep_ends_after_its_silence() {
        let (pcm, ms) = clip("amd_voicemail_no_beep.wav");
        let speech_end = last_sound_ms(&pcm);
        assert!(speech_end < ms - 3_000, "{speech_end}");
        let seen = verdicts(&pcm, 0);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].1, AnsweredBy::Machine);
        assert_eq!(seen[1].1, AnsweredBy::MachineGreetingEnded);
        let ended = seen[1].0;
        assert!(
            (speech_end + 1_400..=speech_end + 1_700).contains(&ended),
            "1.5 s of silence after the greeting ({speech_end} ms) ends it: {seen:?}"
        );
    }

    #[test]
    fn line_noise_alone_is_unknown_after_five_seconds() {
        let (pcm, _) = clip("amd_line_noise.wav");
        assert_eq!(verdicts(&pcm, 0), vec![(5_000, AnsweredBy::Unknown)]);
        // A dead line (no frames at all) decides on ticks alone.
        let mut detector = MachineDetector::new(MachineDetectorConfig::default());
        let frame = Frame::from(InternalFrame::silence(INTERNAL_RATE));
        assert_eq!(detector.process(ANSWERED_AT, &frame), None);
        assert_eq!(detector.tick(ANSWERED_AT + 4_980), None);
        assert_eq!(
            detector.tick(ANSWERED_AT + 5_000),
            Some(AnsweredBy::Unknown)
        );
        assert_eq!(detector.tick(ANSWERED_AT + 9_000), None, "said once");
    }

    #[test]
    fn sustained_tonal_vowels_are_speech_not_a_beep() {
        let (pcm, ms) = clip("amd_tonal_vowels.wav");
        let mut tones = SteadyToneDetector::new(ToneConfig::default());
        for chunk in pcm.chunks_exact(320) {
            let frame = Frame::from_slice(INTERNAL_RATE, chunk).unwrap();
            assert_eq!(tones.process(&frame), None);
        }
        // A machine whose greeting is these vowels: its end is not heard in them.
        let mut detector = MachineDetector::new(MachineDetectorConfig::default());
        detector.assume_machine(0);
        let mut ended = Vec::new();
        let silence = vec![0i16; 2_000 * 16];
        for (i, chunk) in pcm.chunks_exact(320).chain(silence.chunks(320)).enumerate() {
            let frame = Frame::from_slice(INTERNAL_RATE, chunk).unwrap();
            if let Some(verdict) = detector.process(i as u64 * 20, &frame) {
                ended.push((i as u64 * 20, verdict));
            }
        }
        let last_vowel = last_sound_ms(&pcm);
        assert!(last_vowel > ms - 1_000, "{last_vowel}");
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert_eq!(ended[0].1, AnsweredBy::MachineGreetingEnded);
        assert!(
            ended[0].0 >= last_vowel + 1_000,
            "the greeting goes on while the vowels do ({last_vowel} ms): {ended:?}"
        );
    }

    #[test]
    fn a_beep_alone_ends_a_greeting_at_once_and_a_fax_tone_is_a_fax() {
        let tone = |hz: f32, ms: usize| -> Vec<i16> {
            (0..ms * 16)
                .map(|i| {
                    (9000.0 * (2.0 * std::f32::consts::PI * hz * i as f32 / 16_000.0).sin()) as i16
                })
                .collect()
        };
        let mut pcm = vec![0i16; 16 * 600];
        pcm.extend(tone(1400.0, 400));
        let seen = verdicts(&pcm, 400);
        assert_eq!(
            seen.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec![AnsweredBy::Machine, AnsweredBy::MachineGreetingEnded],
        );
        assert_eq!(seen[1].0, 1_000, "ended as the beep stops");

        let mut pcm = vec![0i16; 16 * 300];
        pcm.extend(tone(2100.0, 2600));
        let seen = verdicts(&pcm, 0);
        // 300 ms of silence, then 500 ms of the answer tone.
        assert_eq!(seen, vec![(780, AnsweredBy::Fax)]);
    }

    #[test]
    fn a_machine_the_carrier_named_still_gets_its_greeting_end_heard() {
        let (pcm, ms) = clip("amd_voicemail_beep.wav");
        let mut detector = MachineDetector::new(MachineDetectorConfig::default());
        detector.assume_machine(ANSWERED_AT);
        let mut ended = None;
        for (i, chunk) in pcm.chunks_exact(320).enumerate() {
            let frame = Frame::from_slice(INTERNAL_RATE, chunk).unwrap();
            if let Some(verdict) = detector.process(ANSWERED_AT + i as u64 * 20, &frame) {
                assert_eq!(verdict, AnsweredBy::MachineGreetingEnded);
                ended = Some(i as u64 * 20);
            }
        }
        let ended = ended.expect("the beep ends the greeting");
        assert!((ms - 3_020..=ms - 2_960).contains(&ended), "{ended}");
        assert!(detector.greeting_is_over());
        // Capped when nothing ends it.
        let mut detector = MachineDetector::new(MachineDetectorConfig::default());
        detector.assume_machine(0);
        assert_eq!(detector.tick(29_980), None);
        assert_eq!(
            detector.tick(30_000),
            Some(AnsweredBy::MachineGreetingEnded)
        );
    }
}
