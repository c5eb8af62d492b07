//! The caller's recording as 16 kHz 20 ms frames, the way a transport would deliver them.

use std::path::Path;

use media::resample::FrameResampler;
use media::{Frame, InternalFrame};

#[derive(Debug, thiserror::Error)]
pub enum CallerAudioError {
    #[error("cannot read {path}: {source}")]
    Wav { path: String, source: hound::Error },
    #[error(
        "{path}: expected mono 16-bit PCM at 8 or 16 kHz, found {channels} ch {bits} bit {rate} Hz"
    )]
    Format {
        path: String,
        channels: u16,
        bits: u16,
        rate: u32,
    },
    #[error("{path}: {source}")]
    Resample {
        path: String,
        source: media::resample::ResampleError,
    },
}

/// Reads `path` and converts it to 16 kHz frames (a last partial frame is padded with silence).
pub fn load_frames(path: &Path) -> Result<Vec<InternalFrame>, CallerAudioError> {
    let name = path.display().to_string();
    let reader = hound::WavReader::open(path).map_err(|source| CallerAudioError::Wav {
        path: name.clone(),
        source,
    })?;
    let spec = reader.spec();
    if spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
        || !matches!(spec.sample_rate, 8_000 | 16_000)
    {
        return Err(CallerAudioError::Format {
            path: name,
            channels: spec.channels,
            bits: spec.bits_per_sample,
            rate: spec.sample_rate,
        });
    }
    let samples: Vec<i16> = reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|source| CallerAudioError::Wav {
            path: name.clone(),
            source,
        })?;
    let rate = spec.sample_rate;
    let mut resampler = FrameResampler::new(rate, media::INTERNAL_RATE).map_err(|source| {
        CallerAudioError::Resample {
            path: name.clone(),
            source,
        }
    })?;
    let per_frame = Frame::samples_per_frame(rate);
    let mut frames = Vec::with_capacity(samples.len() / per_frame + 1);
    for chunk in samples.chunks(per_frame) {
        let mut frame = Frame::silence(rate);
        frame.samples_mut()[..chunk.len()].copy_from_slice(chunk);
        let wide = resampler
            .process(&frame)
            .map_err(|source| CallerAudioError::Resample {
                path: name.clone(),
                source,
            })?;
        // Resampled to the internal rate, so it always fits.
        frames.extend(wide.convert());
    }
    Ok(frames)
}
