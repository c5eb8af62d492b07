//! Repairs a PCM WAV file whose writer died mid-way (the process was killed): the header's
//! sizes are set to the whole frames actually on disk, so players read all of them.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// What a repaired file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// Length of the audio in milliseconds.
    pub duration_ms: u64,
    /// Whether the header had to be rewritten.
    pub changed: bool,
}

/// Rewrites the RIFF and `data` sizes of the WAV at `path` to match the file's length (a
/// partial last frame is cut off). Fails on a file that is not a PCM WAV.
pub fn repair_wav(path: &Path) -> io::Result<Repaired> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff)?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(invalid("not a RIFF/WAVE file"));
    }
    // Walk the chunks up to `data`, reading the format on the way.
    let mut at = 12u64;
    let mut block_align = 0u64;
    let mut byte_rate = 0u64;
    let data_start = loop {
        let mut header = [0u8; 8];
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut header)?;
        let size = u64::from(u32::from_le_bytes([
            header[4], header[5], header[6], header[7],
        ]));
        if &header[0..4] == b"data" {
            break at + 8;
        }
        if &header[0..4] == b"fmt " {
            let mut fmt = [0u8; 16];
            file.read_exact(&mut fmt)?;
            byte_rate = u64::from(u32::from_le_bytes([fmt[8], fmt[9], fmt[10], fmt[11]]));
            block_align = u64::from(u16::from_le_bytes([fmt[12], fmt[13]]));
        }
        // Chunks are padded to an even size.
        at += 8 + size + (size & 1);
        if at + 8 > len {
            return Err(invalid("no data chunk"));
        }
    };
    if block_align == 0 || byte_rate == 0 {
        return Err(invalid("no usable fmt chunk before the data"));
    }
    let data_len = (len - data_start) / block_align * block_align;
    let data_size = u32::try_from(data_len).map_err(|_| invalid("data too long for WAV"))?;
    let riff_size = u32::try_from(data_start + data_len - 8).map_err(|_| invalid("too long"))?;
    let mut stored = [0u8; 4];
    file.seek(SeekFrom::Start(data_start - 4))?;
    file.read_exact(&mut stored)?;
    let changed = u32::from_le_bytes(stored) != data_size
        || u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]) != riff_size
        || data_start + data_len != len;
    if changed {
        file.set_len(data_start + data_len)?;
        file.seek(SeekFrom::Start(4))?;
        file.write_all(&riff_size.to_le_bytes())?;
        file.seek(SeekFrom::Start(data_start - 4))?;
        file.write_all(&data_size.to_le_bytes())?;
        file.sync_all()?;
    }
    Ok(Repaired {
        duration_ms: data_len * 1000 / byte_rate,
        changed,
    })
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;
    use crate::recorder::{Channel, StereoRecorder};

    /// A recording cut off mid-write, as `kill -9` leaves it: audio past the last header
    /// patch, and half a sample frame at the end.
    #[test]
    fn a_killed_recording_plays_every_whole_frame_after_repair() {
        let dir = std::env::temp_dir().join(format!("wav-repair-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cut.wav");
        let mut rec = StereoRecorder::create(&path).unwrap();
        let frame = Frame::from_slice(crate::INTERNAL_RATE, &[1000; 320]).unwrap();
        for i in 0..100 {
            rec.write(Channel::Caller, i * 20, &frame).unwrap();
        }
        rec.finish().unwrap();
        // Pretend the writer never patched the header and died inside a frame.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 2);
        bytes[4..8].copy_from_slice(&0u32.to_le_bytes());
        bytes[40..44].copy_from_slice(&0u32.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        assert!(hound::WavReader::open(&path).map_or(true, |r| r.duration() == 0));

        let repaired = repair_wav(&path).unwrap();
        assert!(repaired.changed);
        let reader = hound::WavReader::open(&path).unwrap();
        // 2 s minus the cut half frame: one whole stereo frame (4 bytes) fewer.
        assert_eq!(reader.duration(), 32_000 - 1);
        assert_eq!(repaired.duration_ms, 1999);
        assert!(
            !repair_wav(&path).unwrap().changed,
            "a sound file is left alone"
        );
        std::fs::write(&path, b"RIFF\0\0\0\0WAVEjunk").unwrap();
        assert!(repair_wav(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
