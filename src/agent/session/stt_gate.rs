//! What the recogniser hears of a silent caller. Segment-based engines (Whisper, OpenAI
//! transcription) use only the speech between `SpeechStart` and `SpeechEnd` and the few frames
//! before it; for them the session keeps those frames itself and wakes the recogniser's task
//! only while the caller speaks, instead of 50 times a second for every silent call.

use media::InternalFrame;

/// Frames kept from before speech: at least what the engines keep (300 ms).
const PREROLL_FRAMES: usize = 16;

pub(super) struct SttGate {
    /// Silent frames are held back instead of sent.
    gated: bool,
    /// A ring of the last silent frames, oldest at `next` once full.
    preroll: [InternalFrame; PREROLL_FRAMES],
    held: usize,
    next: usize,
}

impl SttGate {
    /// `gated` when the engine does not hear silence (`SpeechToText::hears_silence`).
    pub(super) fn new(gated: bool) -> Self {
        SttGate {
            gated,
            preroll: [InternalFrame::silence(media::INTERNAL_RATE); PREROLL_FRAMES],
            held: 0,
            next: 0,
        }
    }

    /// Takes one caller frame: `Some` to send it now, `None` when it is held back. `in_speech`
    /// says whether the VAD counts it as part of a speech segment, `started` whether speech
    /// began on it (then `release` hands out the held frames, this one last).
    pub(super) fn admit(
        &mut self,
        frame: InternalFrame,
        in_speech: bool,
        started: bool,
    ) -> Option<InternalFrame> {
        if !self.gated || (in_speech && !started) {
            return Some(frame);
        }
        self.preroll[self.next] = frame;
        self.next = (self.next + 1) % PREROLL_FRAMES;
        self.held = (self.held + 1).min(PREROLL_FRAMES);
        None
    }

    /// The oldest held frame, taking it out.
    pub(super) fn release(&mut self) -> Option<InternalFrame> {
        if self.held == 0 {
            return None;
        }
        let oldest = (self.next + PREROLL_FRAMES - self.held) % PREROLL_FRAMES;
        self.held -= 1;
        Some(self.preroll[oldest])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(value: i16) -> InternalFrame {
        InternalFrame::from_slice(media::INTERNAL_RATE, &[value; 320]).unwrap()
    }

    /// What the session sends for one frame, as the frames' first samples.
    fn sent(gate: &mut SttGate, value: i16, in_speech: bool, started: bool) -> Vec<i16> {
        let mut out: Vec<i16> = gate
            .admit(frame(value), in_speech, started)
            .iter()
            .map(|f| f.samples()[0])
            .collect();
        if started {
            while let Some(f) = gate.release() {
                out.push(f.samples()[0]);
            }
        }
        out
    }

    #[test]
    fn silence_is_held_and_the_preroll_goes_out_oldest_first_when_speech_starts() {
        let mut gate = SttGate::new(true);
        for v in 0..40 {
            assert!(sent(&mut gate, v, false, false).is_empty());
        }
        let preroll = sent(&mut gate, 40, true, true);
        assert_eq!(preroll, (25..=40).collect::<Vec<_>>());
        assert_eq!(sent(&mut gate, 41, true, false), [41]);
        // After the speech ends, silence is held again, and a short preroll is all there is.
        assert!(sent(&mut gate, 42, false, false).is_empty());
        assert_eq!(sent(&mut gate, 43, true, true), [42, 43]);
    }

    #[test]
    fn an_ungated_engine_hears_every_frame() {
        let mut gate = SttGate::new(false);
        assert_eq!(sent(&mut gate, 1, false, false), [1]);
        assert_eq!(sent(&mut gate, 2, true, true), [2]);
    }
}
