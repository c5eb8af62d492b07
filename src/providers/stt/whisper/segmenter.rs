//! Sans-IO bookkeeping of one recognition stream. It keeps a little audio from before the VAD
//! fired, collects the speech segment, and cuts long speech at pauses into chunks that can be
//! decoded for good while the caller is still talking, so the end of a turn only waits for
//! the tail. It also says when a fresh partial decode of the tail is due.

use std::collections::VecDeque;

use media::InternalFrame;

use crate::providers::stt::SttInput;

const RATE: usize = 16_000;
const FRAME: usize = RATE / 50;
/// Audio kept from before `SpeechStart`: the VAD fires a little after the first phoneme.
const PREROLL: usize = RATE * 3 / 10;
/// Re-decode the growing tail after this much new audio.
const PARTIAL_STEP: usize = RATE;
/// Look for a pause to cut at once the tail is this long…
const CUT_AFTER: usize = RATE * 3;
/// …keeping at least this much speech on each side of the cut…
const MIN_CHUNK_FRAMES: usize = 75;
const KEEP_AFTER_FRAMES: usize = 15;
/// …and cut at the quietest spot anyway once it is this long (Whisper's window is 30 s).
const FORCE_CUT: usize = RATE * 10;
/// A tail shorter than this at the end of speech is decoded again with the chunk before it
/// (Whisper hears a short piece like "on Monday" alone badly)…
const SHORT_TAIL: usize = RATE * 2;
/// …when the two together stay this short.
const MAX_REDECODE: usize = RATE * 6;
/// A pause: 80 ms quieter than this share of the segment's loud level.
const PAUSE_FRAMES: usize = 4;
const PAUSE_RATIO: f64 = 0.12;

/// Audio to decode.
#[derive(Debug, PartialEq)]
pub enum Job {
    /// A finished piece of a still-running segment, cut at a pause: its words are settled.
    Commit(Vec<i16>),
    /// The rest of the segment, at its end; with `redo_last`, the last `Commit` of the segment
    /// is in front again, and its words are to be replaced by this decode's.
    Final { audio: Vec<i16>, redo_last: bool },
}

#[derive(Default)]
pub struct Segmenter {
    preroll: VecDeque<i16>,
    /// The segment's audio since its last cut.
    tail: Vec<i16>,
    /// The segment's last committed chunk, while it may still be decoded again with the tail.
    last_chunk: Vec<i16>,
    in_speech: bool,
    /// Tail length when the last partial was taken.
    partial_at: usize,
    /// Tail length when a pause was last looked for.
    searched_at: usize,
}

impl Segmenter {
    /// Feeds one input; returns audio to decode for good.
    pub fn push(&mut self, input: SttInput) -> Option<Job> {
        match input {
            SttInput::Audio(frame) => self.audio(&frame),
            SttInput::SpeechStart => {
                if !self.in_speech {
                    self.in_speech = true;
                    self.tail.clear();
                    self.last_chunk.clear();
                    self.tail.extend(self.preroll.drain(..));
                    self.partial_at = 0;
                    self.searched_at = 0;
                }
                None
            }
            SttInput::SpeechEnd => {
                if !self.in_speech {
                    return None;
                }
                self.in_speech = false;
                let mut audio = std::mem::take(&mut self.tail);
                let last = std::mem::take(&mut self.last_chunk);
                let redo_last = !last.is_empty()
                    && audio.len() < SHORT_TAIL
                    && last.len() + audio.len() <= MAX_REDECODE;
                if redo_last {
                    audio.splice(0..0, last);
                }
                Some(Job::Final { audio, redo_last })
            }
        }
    }

    fn audio(&mut self, frame: &InternalFrame) -> Option<Job> {
        if frame.rate() as usize != RATE {
            // Not ours to resample: the session sends 16 kHz.
            return None;
        }
        if !self.in_speech {
            self.preroll.extend(frame.samples());
            let excess = self.preroll.len().saturating_sub(PREROLL);
            self.preroll.drain(..excess);
            return None;
        }
        self.tail.extend_from_slice(frame.samples());
        // Look again every 100 ms once the tail is long enough.
        if self.tail.len() < CUT_AFTER || self.tail.len() < self.searched_at + 5 * FRAME {
            return None;
        }
        self.searched_at = self.tail.len();
        let cut = find_pause(&self.tail, self.tail.len() >= FORCE_CUT)?;
        let chunk: Vec<i16> = self.tail.drain(..cut).collect();
        self.partial_at = self.partial_at.saturating_sub(cut);
        self.searched_at = self.tail.len();
        self.last_chunk.clone_from(&chunk);
        Some(Job::Commit(chunk))
    }

    /// Is enough new speech buffered for a fresh partial hypothesis of the tail?
    pub fn partial_due(&self) -> bool {
        self.in_speech && self.tail.len() >= self.partial_at + PARTIAL_STEP
    }

    /// The tail so far, for a partial decode.
    pub fn take_partial(&mut self) -> Vec<i16> {
        self.partial_at = self.tail.len();
        self.tail.clone()
    }
}

/// Where to cut `speech` (a sample index at the middle of a pause), if it has a pause with
/// enough speech either side; with `force`, the quietest spot even if it is not a pause.
fn find_pause(speech: &[i16], force: bool) -> Option<usize> {
    let rms: Vec<f64> = speech
        .chunks_exact(FRAME)
        .map(|f| (f.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / FRAME as f64).sqrt())
        .collect();
    let last = rms.len().checked_sub(KEEP_AFTER_FRAMES + PAUSE_FRAMES)?;
    if last < MIN_CHUNK_FRAMES {
        return None;
    }
    let (start, quiet) = (MIN_CHUNK_FRAMES..=last)
        .map(|i| {
            (
                i,
                rms[i..i + PAUSE_FRAMES].iter().sum::<f64>() / PAUSE_FRAMES as f64,
            )
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let mut sorted = rms.clone();
    sorted.sort_by(f64::total_cmp);
    let loud = sorted[sorted.len() * 9 / 10];
    (force || quiet < loud * PAUSE_RATIO).then_some((start + PAUSE_FRAMES / 2) * FRAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(value: i16) -> SttInput {
        SttInput::Audio(InternalFrame::from_slice(16_000, &[value; FRAME]).unwrap())
    }

    /// Alternating ±`level`: a loud "voiced" frame.
    fn voiced(level: i16) -> SttInput {
        let pcm: Vec<i16> = (0..FRAME)
            .map(|i| if i % 2 == 0 { level } else { -level })
            .collect();
        SttInput::Audio(InternalFrame::from_slice(16_000, &pcm).unwrap())
    }

    #[test]
    fn segment_includes_preroll_and_ends_on_speech_end() {
        let mut s = Segmenter::default();
        for _ in 0..50 {
            assert!(s.push(frame(1)).is_none());
        }
        assert!(s.push(SttInput::SpeechStart).is_none());
        for _ in 0..10 {
            assert!(s.push(frame(2)).is_none());
        }
        let Some(Job::Final {
            audio: seg,
            redo_last: false,
        }) = s.push(SttInput::SpeechEnd)
        else {
            panic!("no final");
        };
        assert_eq!(seg.len(), PREROLL + 10 * FRAME);
        assert!(seg[..PREROLL].iter().all(|v| *v == 1));
        assert!(seg[PREROLL..].iter().all(|v| *v == 2));
        // A second end without a start finalises nothing.
        assert!(s.push(SttInput::SpeechEnd).is_none());
    }

    #[test]
    fn partials_are_due_every_second_of_new_speech() {
        let mut s = Segmenter::default();
        s.push(SttInput::SpeechStart);
        for _ in 0..49 {
            s.push(voiced(3000));
        }
        assert!(!s.partial_due());
        s.push(voiced(3000));
        assert!(s.partial_due());
        assert_eq!(s.take_partial().len(), RATE);
        assert!(!s.partial_due());
        for _ in 0..50 {
            s.push(voiced(3000));
        }
        assert!(s.partial_due());
        assert!(s.push(SttInput::SpeechEnd).is_some());
        assert!(!s.partial_due(), "no partials outside speech");
    }

    #[test]
    fn long_speech_is_cut_at_a_pause_and_the_final_holds_only_the_tail() {
        let mut s = Segmenter::default();
        s.push(SttInput::SpeechStart);
        let mut jobs = Vec::new();
        // 2 s of speech, a 200 ms pause, then 2 s more.
        let script = (0..100)
            .map(|_| voiced(4000))
            .chain((0..10).map(|_| frame(0)))
            .chain((0..100).map(|_| voiced(4000)));
        for input in script {
            jobs.extend(s.push(input));
        }
        jobs.extend(s.push(SttInput::SpeechEnd));
        assert_eq!(
            jobs.len(),
            2,
            "{:?}",
            jobs.iter()
                .map(|j| matches!(j, Job::Commit(_)))
                .collect::<Vec<_>>()
        );
        let (
            Job::Commit(first),
            Job::Final {
                audio: tail,
                redo_last: false,
            },
        ) = (&jobs[0], &jobs[1])
        else {
            panic!("expected a commit then the final");
        };
        // The cut lands inside the pause.
        assert!(
            (100 * FRAME..=110 * FRAME).contains(&first.len()),
            "{}",
            first.len()
        );
        assert_eq!(first.len() + tail.len(), 210 * FRAME);
    }

    #[test]
    fn speech_without_pauses_is_cut_by_force_before_whispers_window() {
        let mut s = Segmenter::default();
        s.push(SttInput::SpeechStart);
        let mut commits = Vec::new();
        for _ in 0..(FORCE_CUT / FRAME) {
            if let Some(Job::Commit(c)) = s.push(voiced(4000)) {
                commits.push(c.len());
            }
        }
        assert_eq!(
            commits.len(),
            1,
            "exactly one forced cut at {} s",
            FORCE_CUT / RATE
        );
        assert!(commits[0] >= MIN_CHUNK_FRAMES * FRAME);
    }

    #[test]
    fn other_rates_are_ignored() {
        let mut s = Segmenter::default();
        s.push(SttInput::SpeechStart);
        s.push(SttInput::Audio(InternalFrame::silence(8_000)));
        assert_eq!(
            s.push(SttInput::SpeechEnd),
            Some(Job::Final {
                audio: Vec::new(),
                redo_last: false
            })
        );
    }

    #[test]
    fn a_short_last_piece_is_decoded_again_with_the_chunk_before_it() {
        let mut s = Segmenter::default();
        s.push(SttInput::SpeechStart);
        let mut jobs = Vec::new();
        // 3 s of speech, a 200 ms pause, then 0.6 s more ("on Monday").
        let script = (0..150)
            .map(|_| voiced(4000))
            .chain((0..10).map(|_| frame(0)))
            .chain((0..30).map(|_| voiced(4000)));
        for input in script {
            jobs.extend(s.push(input));
        }
        jobs.extend(s.push(SttInput::SpeechEnd));
        let [Job::Commit(first), Job::Final { audio, redo_last }] = &jobs[..] else {
            panic!("expected a commit then the final");
        };
        assert!(redo_last);
        assert_eq!(audio.len(), 190 * FRAME);
        assert_eq!(&audio[..first.len()], &first[..]);
        // The next segment starts without a chunk to redo.
        s.push(SttInput::SpeechStart);
        s.push(voiced(4000));
        assert!(matches!(
            s.push(SttInput::SpeechEnd),
            Some(Job::Final {
                redo_last: false,
                ..
            })
        ));
    }
}
