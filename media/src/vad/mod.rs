//! Voice activity detection: a per-frame classifier behind `VoiceActivity`, gated by level
//! and by contrast with the tracked noise floor, turned into speech start/end events with a
//! minimum speech time and a hangover.
//!
//! WebRTC's detector alone calls steady pink noise and hold music speech in its aggressive
//! modes; the gates reject frames that are too quiet or not clearly above the background.

mod noise_floor;
mod webrtc;

pub use noise_floor::NoiseFloor;
pub use webrtc::{Aggressiveness, WebRtcVoiceActivity};

use crate::frame::{FRAME_MS, Frame, INTERNAL_RATE};

/// Classifies single frames as speech or not.
pub trait VoiceActivity: Send {
    /// Whether this frame holds speech.
    fn is_speech(&mut self, frame: &Frame) -> bool;
    /// Forgets all adaptation, as at the start of a call.
    fn reset(&mut self);
}

/// Transitions of the caller's speaking state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began; fires once `min_speech_ms` of speech has accumulated after the onset.
    SpeechStart,
    /// Speech ended; fires `hangover_ms` after the last speech frame.
    SpeechEnd,
}

/// Tuning for `VoiceDetector`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// WebRTC detector mode.
    pub aggressiveness: Aggressiveness,
    /// Speech needed before `SpeechStart` (rejects clicks and coughs).
    pub min_speech_ms: u32,
    /// Non-speech needed before `SpeechEnd` (bridges pauses between words).
    pub hangover_ms: u32,
    /// Speech shorter than this so far ends only after `short_hangover_ms`: a lone "Hi," or
    /// "So," before a comma pause is the start of a sentence more often than its end, and a
    /// recogniser hears a fragment far worse than the whole.
    pub short_speech_ms: u32,
    pub short_hangover_ms: u32,
    /// Frames quieter than this (dB relative to full scale) are never speech.
    pub energy_gate_dbfs: f32,
    /// Frames must be this many dB above the tracked noise floor to be speech.
    pub noise_margin_db: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            aggressiveness: Aggressiveness::Aggressive,
            min_speech_ms: 100,
            hangover_ms: 200,
            short_speech_ms: 1000,
            short_hangover_ms: 500,
            energy_gate_dbfs: -50.0,
            noise_margin_db: 10.0,
        }
    }
}

/// Level of a frame in dB relative to a full-scale square wave (silence is -100).
pub fn frame_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return -100.0;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let mean = energy / samples.len() as f64 / (32768.0 * 32768.0);
    (10.0 * mean.max(1e-10).log10()) as f32
}

/// Speech start/end detector for one call's inbound audio (16 kHz frames by default).
pub struct VoiceDetector {
    config: VadConfig,
    classifier: Box<dyn VoiceActivity>,
    floor: NoiseFloor,
    speaking: bool,
    // Consecutive speech frames while silent / consecutive non-speech frames while speaking.
    run_frames: u32,
    /// Frames since `SpeechStart`.
    speech_frames: u32,
    last_frame_speech: bool,
}

impl VoiceDetector {
    /// A detector for 16 kHz frames using WebRTC's classifier.
    pub fn new(config: VadConfig) -> Self {
        let webrtc = WebRtcVoiceActivity::new(INTERNAL_RATE, config.aggressiveness)
            .expect("16 kHz is a WebRTC VAD rate");
        Self::with_classifier(config, Box::new(webrtc))
    }

    /// A detector around any frame classifier (Silero, a test double, …).
    pub fn with_classifier(config: VadConfig, classifier: Box<dyn VoiceActivity>) -> Self {
        VoiceDetector {
            config,
            classifier,
            floor: NoiseFloor::default(),
            speaking: false,
            run_frames: 0,
            speech_frames: 0,
            last_frame_speech: false,
        }
    }

    /// Feeds one 20 ms frame; returns an event when the speaking state changes.
    pub fn process(&mut self, frame: &Frame) -> Option<VadEvent> {
        let speech = self.classify(frame);
        self.last_frame_speech = speech;
        if self.speaking {
            self.speech_frames = self.speech_frames.saturating_add(1);
        }
        if speech == self.speaking {
            self.run_frames = 0;
            return None;
        }
        self.run_frames += 1;
        let needed_ms = if self.speaking {
            if self.speech_frames * FRAME_MS < self.config.short_speech_ms {
                self.config.short_hangover_ms
            } else {
                self.config.hangover_ms
            }
        } else {
            self.config.min_speech_ms
        };
        if self.run_frames * FRAME_MS < needed_ms.max(FRAME_MS) {
            return None;
        }
        self.run_frames = 0;
        self.speech_frames = 0;
        self.speaking = speech;
        Some(if speech {
            VadEvent::SpeechStart
        } else {
            VadEvent::SpeechEnd
        })
    }

    /// Whether the caller is speaking (between `SpeechStart` and `SpeechEnd`).
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// The gated per-frame decision for the last frame, before smoothing into events.
    pub fn last_frame_was_speech(&self) -> bool {
        self.last_frame_speech
    }

    /// The tracked background level in dBFS.
    pub fn noise_floor_dbfs(&self) -> f32 {
        self.floor.floor()
    }

    /// Forgets everything, as at the start of a new call.
    pub fn reset(&mut self) {
        self.classifier.reset();
        self.floor = NoiseFloor::default();
        self.speaking = false;
        self.run_frames = 0;
        self.speech_frames = 0;
        self.last_frame_speech = false;
    }

    fn classify(&mut self, frame: &Frame) -> bool {
        let level = frame_dbfs(frame.samples());
        let floor = self.floor.update(level);
        // Run the classifier on every frame so its own adaptation keeps up.
        let voiced = self.classifier.is_speech(frame);
        voiced
            && level >= self.config.energy_gate_dbfs
            && level - floor >= self.config.noise_margin_db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classifier that believes whatever the frame's first sample says.
    struct Scripted;
    impl VoiceActivity for Scripted {
        fn is_speech(&mut self, frame: &Frame) -> bool {
            frame.samples()[0] != 0
        }
        fn reset(&mut self) {}
    }

    fn loud() -> Frame {
        let pcm: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 8000 } else { -8000 })
            .collect();
        Frame::from_slice(16_000, &pcm).unwrap()
    }

    fn quiet() -> Frame {
        let pcm: Vec<i16> = (0..320).map(|i| if i % 2 == 0 { 3 } else { -3 }).collect();
        Frame::from_slice(16_000, &pcm).unwrap()
    }

    fn detector() -> VoiceDetector {
        VoiceDetector::with_classifier(VadConfig::default(), Box::new(Scripted))
    }

    #[test]
    fn speech_start_needs_min_speech_and_end_needs_hangover() {
        let config = VadConfig {
            short_speech_ms: 0,
            ..VadConfig::default()
        };
        let mut vad = VoiceDetector::with_classifier(config, Box::new(Scripted));
        for _ in 0..10 {
            assert_eq!(vad.process(&quiet()), None);
        }
        let events: Vec<_> = (0..5).map(|_| vad.process(&loud())).collect();
        assert_eq!(events[..4], [None; 4]);
        assert_eq!(events[4], Some(VadEvent::SpeechStart));
        assert!(vad.is_speaking());
        let events: Vec<_> = (0..10).map(|_| vad.process(&quiet())).collect();
        assert_eq!(events[..9], [None; 9]);
        assert_eq!(events[9], Some(VadEvent::SpeechEnd));
    }

    #[test]
    fn short_speech_ends_only_after_the_longer_hangover() {
        let mut vad = detector();
        for _ in 0..10 {
            vad.process(&quiet());
        }
        let started = (0..10)
            .filter_map(|_| vad.process(&loud()))
            .collect::<Vec<_>>();
        assert_eq!(started, [VadEvent::SpeechStart]);
        // "Hi," then a 300 ms comma pause: still the same utterance.
        for _ in 0..15 {
            assert_eq!(vad.process(&quiet()), None);
        }
        assert!(vad.is_speaking());
        let events: Vec<_> = (0..10).map(|_| vad.process(&quiet())).collect();
        assert_eq!(events[..9], [None; 9]);
        assert_eq!(events[9], Some(VadEvent::SpeechEnd), "after 500 ms");
    }

    #[test]
    fn short_bursts_and_short_pauses_are_bridged() {
        let mut vad = detector();
        for _ in 0..10 {
            vad.process(&quiet());
        }
        // A 60 ms click is not speech.
        for _ in 0..3 {
            assert_eq!(vad.process(&loud()), None);
        }
        assert_eq!(vad.process(&quiet()), None);
        for _ in 0..5 {
            vad.process(&loud());
        }
        assert!(vad.is_speaking());
        // A 100 ms pause between words does not end the utterance.
        for _ in 0..5 {
            assert_eq!(vad.process(&quiet()), None);
        }
        assert_eq!(vad.process(&loud()), None);
        assert!(vad.is_speaking());
    }

    #[test]
    fn steady_sound_stops_counting_as_speech_once_it_becomes_the_floor() {
        let mut vad = detector();
        for _ in 0..10 {
            vad.process(&quiet());
        }
        let mut started = false;
        let mut ended = false;
        // Twenty seconds of an unchanging loud tone: started, then absorbed into the floor.
        for _ in 0..1_000 {
            match vad.process(&loud()) {
                Some(VadEvent::SpeechStart) => started = true,
                Some(VadEvent::SpeechEnd) => ended = true,
                None => {}
            }
        }
        assert!(started && ended);
        assert!(!vad.is_speaking());
    }

    #[test]
    fn digital_silence_is_never_speech() {
        let mut vad = VoiceDetector::new(VadConfig::default());
        for _ in 0..100 {
            assert_eq!(vad.process(&Frame::silence(16_000)), None);
        }
        assert!(frame_dbfs(Frame::silence(16_000).samples()) <= -99.0);
    }
}
