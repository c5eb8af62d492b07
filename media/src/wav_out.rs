//! A streaming stereo PCM16 WAV writer for the call recorder. Samples go out a block at a
//! time (the recorder's interleaved ring is the file's layout already), not a call per
//! sample. The header's two sizes are patched at each checkpoint, so a file cut off mid-call
//! plays up to the last one; dropping the writer without `finish` patches them once more.

use std::io::{self, Seek, SeekFrom, Write};

const HEADER_LEN: u32 = 44;
/// Where the header keeps the RIFF chunk's size and the data chunk's size.
const RIFF_SIZE_AT: u64 = 4;
const DATA_SIZE_AT: u64 = 40;
/// The RIFF size counts the header after its first 8 bytes, and must fit 32 bits too.
const MAX_DATA_BYTES: u32 = u32::MAX - (HEADER_LEN - 8);
/// Stereo samples converted per write.
const BLOCK: usize = 1024;

pub struct StereoWav<W: Write + Seek> {
    writer: W,
    data_bytes: u32,
    finished: bool,
}

impl<W: Write + Seek> StereoWav<W> {
    /// Writes the header of an empty 16-bit stereo file at `rate`.
    pub fn new(mut writer: W, rate: u32) -> io::Result<Self> {
        writer.write_all(&header(rate, 0))?;
        Ok(StereoWav {
            writer,
            data_bytes: 0,
            finished: false,
        })
    }

    /// Appends interleaved left/right samples.
    pub fn write(&mut self, samples: &[[i16; 2]]) -> io::Result<()> {
        let data_bytes = u32::try_from(samples.len() * 4)
            .ok()
            .and_then(|bytes| self.data_bytes.checked_add(bytes))
            .filter(|&total| total <= MAX_DATA_BYTES)
            .ok_or_else(|| io::Error::other("the recording is longer than a WAV file holds"))?;
        let mut block = [0u8; BLOCK * 4];
        for chunk in samples.chunks(BLOCK) {
            for (out, &[left, right]) in block.chunks_exact_mut(4).zip(chunk) {
                out[..2].copy_from_slice(&left.to_le_bytes());
                out[2..].copy_from_slice(&right.to_le_bytes());
            }
            self.writer.write_all(&block[..chunk.len() * 4])?;
        }
        self.data_bytes = data_bytes;
        Ok(())
    }

    /// Patches the header's sizes and flushes: a reader of the file sees all written so far.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        let end = self.writer.stream_position()?;
        self.writer.seek(SeekFrom::Start(RIFF_SIZE_AT))?;
        self.writer
            .write_all(&riff_size(self.data_bytes).to_le_bytes())?;
        self.writer.seek(SeekFrom::Start(DATA_SIZE_AT))?;
        self.writer.write_all(&self.data_bytes.to_le_bytes())?;
        self.writer.seek(SeekFrom::Start(end))?;
        self.writer.flush()
    }

    /// The last checkpoint.
    pub fn finish(mut self) -> io::Result<()> {
        self.finished = true;
        self.checkpoint()
    }
}

impl<W: Write + Seek> Drop for StereoWav<W> {
    fn drop(&mut self) {
        if !self.finished {
            // Nobody is left to hear of a failure; the file keeps its last checkpoint.
            let _ = self.checkpoint();
        }
    }
}

/// The RIFF chunk's size: the header after its first 8 bytes, and the data.
fn riff_size(data_bytes: u32) -> u32 {
    data_bytes + HEADER_LEN - 8
}

fn header(rate: u32, data_bytes: u32) -> [u8; HEADER_LEN as usize] {
    const CHANNELS: u16 = 2;
    const BITS: u16 = 16;
    const BLOCK_ALIGN: u16 = CHANNELS * BITS / 8;
    let mut header = [0u8; HEADER_LEN as usize];
    let fields: [&[u8]; 13] = [
        b"RIFF",
        &riff_size(data_bytes).to_le_bytes(),
        b"WAVE",
        b"fmt ",
        &16u32.to_le_bytes(),
        // PCM
        &1u16.to_le_bytes(),
        &CHANNELS.to_le_bytes(),
        &rate.to_le_bytes(),
        &(rate * u32::from(BLOCK_ALIGN)).to_le_bytes(),
        &BLOCK_ALIGN.to_le_bytes(),
        &BITS.to_le_bytes(),
        b"data",
        &data_bytes.to_le_bytes(),
    ];
    let mut at = 0;
    for field in fields {
        header[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read(bytes: Vec<u8>) -> (hound::WavSpec, Vec<i16>) {
        let reader = hound::WavReader::new(Cursor::new(bytes)).unwrap();
        let spec = reader.spec();
        (spec, reader.into_samples().map(Result::unwrap).collect())
    }

    #[test]
    fn a_finished_file_is_a_stereo_pcm16_wav_of_what_was_written() {
        let mut bytes = Vec::new();
        let mut wav = StereoWav::new(Cursor::new(&mut bytes), 16_000).unwrap();
        let samples: Vec<[i16; 2]> = (0..3_000).map(|n| [n as i16, -(n as i16)]).collect();
        wav.write(&samples[..10]).unwrap();
        wav.write(&samples[10..]).unwrap();
        wav.finish().unwrap();
        let (spec, read) = read(bytes);
        assert_eq!(
            spec,
            hound::WavSpec {
                channels: 2,
                sample_rate: 16_000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            }
        );
        assert_eq!(read, samples.concat());
    }

    #[test]
    fn a_file_cut_off_after_a_checkpoint_plays_up_to_it() {
        let mut bytes = Vec::new();
        let mut wav = StereoWav::new(Cursor::new(&mut bytes), 16_000).unwrap();
        wav.write(&[[1, 2]; 100]).unwrap();
        wav.checkpoint().unwrap();
        wav.write(&[[3, 4]; 50]).unwrap();
        // A kill runs no destructors.
        std::mem::forget(wav);
        let (_, read) = read(bytes);
        assert_eq!(read, [[1, 2]; 100].concat());
    }

    #[test]
    fn dropping_an_unfinished_writer_keeps_everything_written() {
        let mut bytes = Vec::new();
        let mut wav = StereoWav::new(Cursor::new(&mut bytes), 8_000).unwrap();
        wav.write(&[[5, 6]; 70]).unwrap();
        drop(wav);
        assert_eq!(read(bytes).1, [[5, 6]; 70].concat());
    }
}
