//! Stereo call recorder: caller on the left, agent on the right, 16 kHz PCM16 WAV.
//!
//! Frames are placed by media time (milliseconds since the call started, passed in), so
//! the two sides stay aligned however their frames arrive; stretches nobody filled are
//! silence. Audio is held for `HOLD_MS` so a late side can still land, then written out, and
//! the WAV header is patched at least once per second of audio: a process killed mid-call
//! leaves a file that plays up to about the last second.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::Path;

use thiserror::Error;

use crate::frame::{Frame, INTERNAL_RATE};
use crate::wav_out::StereoWav;

/// How long audio waits for the other side before it is written (covers jitter buffering).
pub const HOLD_MS: u64 = 500;
/// Audio the recorder can hold before writing; frames further ahead push older audio out.
/// Twice the hold: room for a side running ahead, at 64 KB a call.
const WINDOW_MS: u64 = 2 * HOLD_MS;
/// Header patch interval, in written samples per channel (one second).
const CHECKPOINT_SAMPLES: u64 = INTERNAL_RATE as u64;

const SAMPLES_PER_MS: u64 = (INTERNAL_RATE / 1000) as u64;
const WINDOW: usize = (WINDOW_MS * SAMPLES_PER_MS) as usize;

#[derive(Debug, Error)]
pub enum RecorderError {
    #[error("recording write failed: {0}")]
    Io(#[from] io::Error),
    #[error("frame is at {0} Hz; recordings take 16 kHz frames")]
    WrongRate(u32),
}

/// Which side of the call a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The caller (left).
    Caller,
    /// The agent (right).
    Agent,
}

/// What a finished recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingSummary {
    /// Length of the recording in milliseconds.
    pub duration_ms: u64,
    /// Frames that arrived after their place had already been written, and were dropped.
    pub late_frames: u64,
}

/// Writes a call's two sides into one stereo WAV as it goes.
pub struct StereoRecorder<W: Write + Seek> {
    wav: StereoWav<W>,
    // Interleaved L/R ring covering [written, written + WINDOW) in samples per channel.
    window: Box<[[i16; 2]]>,
    written: u64,
    // One past the last sample any frame has covered.
    end: u64,
    last_checkpoint: u64,
    late_frames: u64,
}

impl StereoRecorder<BufWriter<File>> {
    /// Creates (or truncates) the WAV file at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, RecorderError> {
        let file = BufWriter::new(File::create(path)?);
        Self::new(file)
    }
}

impl<W: Write + Seek> StereoRecorder<W> {
    /// Records into any seekable writer.
    pub fn new(writer: W) -> Result<Self, RecorderError> {
        Ok(StereoRecorder {
            wav: StereoWav::new(writer, INTERNAL_RATE)?,
            window: vec![[0; 2]; WINDOW].into_boxed_slice(),
            written: 0,
            end: 0,
            last_checkpoint: 0,
            late_frames: 0,
        })
    }

    /// Places a 16 kHz frame for `channel` starting at `at_ms` of media time.
    pub fn write(
        &mut self,
        channel: Channel,
        at_ms: u64,
        frame: &Frame,
    ) -> Result<(), RecorderError> {
        if frame.rate() != INTERNAL_RATE {
            return Err(RecorderError::WrongRate(frame.rate()));
        }
        let samples = frame.samples();
        let start = at_ms.saturating_mul(SAMPLES_PER_MS);
        let frame_end = start + samples.len() as u64;
        if start < self.written {
            self.late_frames += 1;
            return Ok(());
        }
        // Make room: a frame beyond the window forces older audio (gaps as silence) out.
        if frame_end > self.written + WINDOW as u64 {
            self.write_until(frame_end - WINDOW as u64)?;
        }
        let side = match channel {
            Channel::Caller => 0,
            Channel::Agent => 1,
        };
        // At most two runs (the frame may wrap the ring): no division per sample.
        let pos = (start % WINDOW as u64) as usize;
        let (head, tail) = samples.split_at(samples.len().min(WINDOW - pos));
        for (slot, &s) in self.window[pos..].iter_mut().zip(head) {
            slot[side] = s;
        }
        for (slot, &s) in self.window.iter_mut().zip(tail) {
            slot[side] = s;
        }
        self.end = self.end.max(frame_end);
        // Whatever lies HOLD_MS behind the newest audio is final.
        let settled = self.end.saturating_sub(HOLD_MS * SAMPLES_PER_MS);
        if settled > self.written {
            self.write_until(settled)?;
        }
        Ok(())
    }

    /// Media time written to the file so far, in milliseconds.
    pub fn written_ms(&self) -> u64 {
        self.written / SAMPLES_PER_MS
    }

    /// Writes everything held, patches the header and closes the file.
    pub fn finish(mut self) -> Result<RecordingSummary, RecorderError> {
        let end = self.end;
        self.write_until(end)?;
        let summary = RecordingSummary {
            duration_ms: self.written / SAMPLES_PER_MS,
            late_frames: self.late_frames,
        };
        self.wav.finish()?;
        Ok(summary)
    }

    fn write_until(&mut self, until: u64) -> Result<(), RecorderError> {
        while self.written < until {
            // Write in runs that do not wrap, clearing each slot for its next lap.
            let pos = (self.written % WINDOW as u64) as usize;
            let run = ((until - self.written) as usize).min(WINDOW - pos);
            let slots = &mut self.window[pos..pos + run];
            self.wav.write(slots)?;
            slots.fill([0; 2]);
            self.written += run as u64;
        }
        if self.written - self.last_checkpoint >= CHECKPOINT_SAMPLES {
            self.wav.checkpoint()?;
            self.last_checkpoint = self.written;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frame(value: i16) -> Frame {
        Frame::from_slice(INTERNAL_RATE, &[value; 320]).unwrap()
    }

    fn read(reader: hound::WavReader<impl std::io::Read>) -> Vec<[i16; 2]> {
        assert_eq!(
            reader.spec(),
            hound::WavSpec {
                channels: 2,
                sample_rate: INTERNAL_RATE,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            }
        );
        let samples: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
        samples.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
    }

    /// Stereo samples of the 20 ms starting at `ms`.
    fn at(samples: &[[i16; 2]], ms: usize) -> &[[i16; 2]] {
        &samples[ms * 16..(ms + 20) * 16]
    }

    #[test]
    fn sides_align_by_media_time_whatever_order_frames_arrive_in() {
        let mut buffer = Cursor::new(Vec::new());
        let mut recorder = StereoRecorder::new(&mut buffer).unwrap();
        // The agent runs ahead; the caller's frames arrive 100 ms late, and 200–260 ms is lost.
        for n in 0..100u64 {
            recorder.write(Channel::Agent, n * 20, &frame(-1)).unwrap();
            if n >= 5 {
                let caller_ms = (n - 5) * 20;
                if !(200..260).contains(&caller_ms) {
                    recorder
                        .write(Channel::Caller, caller_ms, &frame(n as i16))
                        .unwrap();
                }
            }
        }
        let summary = recorder.finish().unwrap();
        assert_eq!(
            summary,
            RecordingSummary {
                duration_ms: 2_000,
                late_frames: 0
            }
        );
        let samples = read(hound::WavReader::new(Cursor::new(buffer.into_inner())).unwrap());
        assert_eq!(samples.len(), 32_000);
        assert!(at(&samples, 0).iter().all(|&s| s == [5, -1]));
        assert!(at(&samples, 180).iter().all(|&s| s == [14, -1]));
        assert!(at(&samples, 220).iter().all(|&s| s == [0, -1]));
        assert!(at(&samples, 260).iter().all(|&s| s == [18, -1]));
        // The caller's last 100 ms never arrived: silence on the left.
        assert!(at(&samples, 1_980).iter().all(|&s| s == [0, -1]));
    }

    #[test]
    fn frames_off_the_20_ms_grid_wrap_the_ring_intact() {
        let mut buffer = Cursor::new(Vec::new());
        let mut recorder = StereoRecorder::new(&mut buffer).unwrap();
        // Offset by 10 ms, every lap of the one-second ring splits a frame across its end.
        for n in 0..150u64 {
            recorder
                .write(Channel::Agent, 10 + n * 20, &frame(n as i16 + 1))
                .unwrap();
        }
        recorder.finish().unwrap();
        let samples = read(hound::WavReader::new(Cursor::new(buffer.into_inner())).unwrap());
        for n in 0..150usize {
            let start = (10 + n * 20) * 16;
            let run = &samples[start..start + 320];
            assert!(run.iter().all(|&s| s == [0, n as i16 + 1]), "frame {n}");
        }
    }

    #[test]
    fn pauses_become_silence_and_very_late_frames_are_dropped() {
        let mut buffer = Cursor::new(Vec::new());
        let mut recorder = StereoRecorder::new(&mut buffer).unwrap();
        recorder.write(Channel::Caller, 0, &frame(7)).unwrap();
        // Five seconds of nothing, then both sides again.
        recorder.write(Channel::Caller, 5_000, &frame(8)).unwrap();
        recorder.write(Channel::Agent, 5_000, &frame(9)).unwrap();
        // Far behind what has been written: it cannot be placed any more.
        recorder.write(Channel::Agent, 1_000, &frame(1)).unwrap();
        let summary = recorder.finish().unwrap();
        assert_eq!(
            summary,
            RecordingSummary {
                duration_ms: 5_020,
                late_frames: 1
            }
        );
        let samples = read(hound::WavReader::new(Cursor::new(buffer.into_inner())).unwrap());
        assert!(at(&samples, 0).iter().all(|&s| s == [7, 0]));
        assert!(samples[320..80_000].iter().all(|&s| s == [0, 0]));
        assert!(at(&samples, 5_000).iter().all(|&s| s == [8, 9]));
    }

    #[test]
    fn a_killed_process_leaves_a_playable_file_up_to_the_last_second() {
        let dir = std::env::temp_dir().join(format!("media-recorder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("killed.wav");
        let mut recorder = StereoRecorder::create(&path).unwrap();
        for n in 0..175u64 {
            recorder.write(Channel::Caller, n * 20, &frame(3)).unwrap();
            recorder.write(Channel::Agent, n * 20, &frame(4)).unwrap();
        }
        // A kill runs no destructors: buffered bytes and the final header patch are lost.
        std::mem::forget(recorder);
        let samples = read(hound::WavReader::open(&path).unwrap());
        // 3.5 s of media, 0.5 s still held: the header was last patched at 2 s or later.
        assert!(
            samples.len() >= 2 * 16_000,
            "only {} samples survived",
            samples.len()
        );
        assert!(samples.iter().all(|&s| s == [3, 4]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn frames_at_other_rates_are_refused() {
        let mut recorder = StereoRecorder::new(Cursor::new(Vec::new())).unwrap();
        assert!(matches!(
            recorder.write(Channel::Caller, 0, &Frame::silence(8_000)),
            Err(RecorderError::WrongRate(8_000))
        ));
    }
}
