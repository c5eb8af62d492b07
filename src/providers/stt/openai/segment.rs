//! Sans-IO collection of one call's speech segments for a whole-file transcription API: a
//! little audio from before the VAD fired, the segment itself, and a cap that sends a long
//! segment off in pieces so a caller who never stops cannot grow it forever.

use std::collections::VecDeque;

use crate::providers::stt::SttInput;

const RATE: usize = 16_000;
/// Audio kept from before `SpeechStart`: the VAD fires a little after the first phoneme.
const PREROLL: usize = RATE * 3 / 10;

/// Audio to transcribe.
#[derive(Debug, PartialEq)]
pub enum Job {
    /// A full-length piece of a segment still running: transcribed now, its words lead the
    /// segment's final.
    Piece(Vec<i16>),
    /// The rest of the segment, at its end. Every `SpeechEnd` yields one (maybe empty), so
    /// every `SpeechEnd` gets its `Final`.
    Final(Vec<i16>),
}

pub struct Segmenter {
    preroll: VecDeque<i16>,
    segment: Vec<i16>,
    in_speech: bool,
    /// Samples a piece holds at most.
    limit: usize,
}

impl Segmenter {
    pub fn new(limit_secs: usize) -> Self {
        Segmenter {
            preroll: VecDeque::with_capacity(PREROLL),
            segment: Vec::new(),
            in_speech: false,
            limit: (limit_secs * RATE).max(1),
        }
    }

    /// Feeds one input; returns audio to transcribe.
    pub fn push(&mut self, input: SttInput) -> Option<Job> {
        match input {
            SttInput::Audio(frame) => {
                if frame.rate() as usize != RATE {
                    return None;
                }
                if !self.in_speech {
                    self.preroll.extend(frame.samples());
                    let excess = self.preroll.len().saturating_sub(PREROLL);
                    self.preroll.drain(..excess);
                    return None;
                }
                self.segment.extend_from_slice(frame.samples());
                (self.segment.len() >= self.limit)
                    .then(|| Job::Piece(std::mem::take(&mut self.segment)))
            }
            SttInput::SpeechStart => {
                if !self.in_speech {
                    self.in_speech = true;
                    self.segment.clear();
                    self.segment.extend(self.preroll.drain(..));
                }
                None
            }
            SttInput::SpeechEnd => {
                self.in_speech = false;
                Some(Job::Final(std::mem::take(&mut self.segment)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::InternalFrame;

    const FRAME: usize = RATE / 50;

    fn frame(value: i16) -> SttInput {
        SttInput::Audio(InternalFrame::from_slice(16_000, &[value; FRAME]).unwrap())
    }

    #[test]
    fn a_segment_starts_with_the_preroll_and_ends_on_speech_end() {
        let mut s = Segmenter::new(30);
        for _ in 0..50 {
            assert_eq!(s.push(frame(1)), None);
        }
        assert_eq!(s.push(SttInput::SpeechStart), None);
        for _ in 0..10 {
            assert_eq!(s.push(frame(2)), None);
        }
        let Some(Job::Final(audio)) = s.push(SttInput::SpeechEnd) else {
            panic!("no final");
        };
        assert_eq!(audio.len(), PREROLL + 10 * FRAME);
        assert!(audio[..PREROLL].iter().all(|v| *v == 1));
        assert!(audio[PREROLL..].iter().all(|v| *v == 2));
        // An end without a start still gets its (empty) final.
        assert_eq!(s.push(SttInput::SpeechEnd), Some(Job::Final(Vec::new())));
    }

    #[test]
    fn long_speech_goes_in_capped_pieces() {
        let mut s = Segmenter::new(1);
        s.push(SttInput::SpeechStart);
        let mut pieces = Vec::new();
        for _ in 0..120 {
            if let Some(Job::Piece(p)) = s.push(frame(3)) {
                pieces.push(p.len());
            }
        }
        assert_eq!(pieces, vec![RATE, RATE]);
        let Some(Job::Final(rest)) = s.push(SttInput::SpeechEnd) else {
            panic!("no final");
        };
        assert_eq!(rest.len(), 20 * FRAME);
    }

    #[test]
    fn other_rates_are_ignored() {
        let mut s = Segmenter::new(30);
        s.push(SttInput::SpeechStart);
        s.push(SttInput::Audio(InternalFrame::silence(8_000)));
        assert_eq!(s.push(SttInput::SpeechEnd), Some(Job::Final(Vec::new())));
    }
}
