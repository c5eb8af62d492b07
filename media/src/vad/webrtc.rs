//! The WebRTC voice activity detector (libfvad through `webrtc-vad`) as a `VoiceActivity`.

use webrtc_vad::{SampleRate, Vad, VadMode};

use super::VoiceActivity;
use crate::frame::Frame;

/// How readily WebRTC's detector calls a frame speech (its four modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggressiveness {
    /// Calls almost anything speech; misses least.
    Quality,
    LowBitrate,
    Aggressive,
    /// Rejects the most non-speech; may clip soft onsets.
    VeryAggressive,
}

impl Aggressiveness {
    fn mode(self) -> VadMode {
        match self {
            Aggressiveness::Quality => VadMode::Quality,
            Aggressiveness::LowBitrate => VadMode::LowBitrate,
            Aggressiveness::Aggressive => VadMode::Aggressive,
            Aggressiveness::VeryAggressive => VadMode::VeryAggressive,
        }
    }
}

fn fvad_rate(rate: u32) -> Option<SampleRate> {
    match rate {
        8_000 => Some(SampleRate::Rate8kHz),
        16_000 => Some(SampleRate::Rate16kHz),
        48_000 => Some(SampleRate::Rate48kHz),
        _ => None,
    }
}

/// Frame classifier backed by WebRTC's GMM detector at 8, 16 or 48 kHz.
pub struct WebRtcVoiceActivity {
    vad: Vad,
    rate: u32,
    mode: Aggressiveness,
}

// SAFETY: `Vad` owns a heap-allocated libfvad instance that no one else references and that
// keeps no thread-local state, so moving it to another thread is sound. (It is not `Sync`, and
// we don't claim it: every call takes `&mut self`.)
unsafe impl Send for WebRtcVoiceActivity {}

impl WebRtcVoiceActivity {
    /// A detector for frames at `rate` (8000, 16000 or 48000); `None` for other rates.
    pub fn new(rate: u32, mode: Aggressiveness) -> Option<Self> {
        Some(WebRtcVoiceActivity {
            vad: Vad::new_with_rate_and_mode(fvad_rate(rate)?, mode.mode()),
            rate,
            mode,
        })
    }
}

impl VoiceActivity for WebRtcVoiceActivity {
    fn is_speech(&mut self, frame: &Frame) -> bool {
        // Any other rate would be misread; 20 ms at our rate is always a valid fvad length.
        frame.rate() == self.rate && self.vad.is_voice_segment(frame.samples()).unwrap_or(false)
    }

    fn reset(&mut self) {
        self.vad.reset();
        // libfvad's reset restores its defaults (8 kHz, quality mode): set ours again.
        if let Some(rate) = fvad_rate(self.rate) {
            self.vad.set_sample_rate(rate);
        }
        self.vad.set_mode(self.mode.mode());
    }
}
