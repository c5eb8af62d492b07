//! The caller's audio for `twilio-load` and `sip-load`: an 8 kHz mono 16-bit WAV as μ-law,
//! what both carriers carry.

use std::path::Path;

use anyhow::Context;

pub fn load_mulaw(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut reader = hound::WavReader::open(path).with_context(|| path.display().to_string())?;
    let spec = reader.spec();
    anyhow::ensure!(
        spec.channels == 1 && spec.sample_rate == 8000 && spec.bits_per_sample == 16,
        "{}: expected 8 kHz mono 16-bit",
        path.display()
    );
    let pcm: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
    let mut out = vec![0u8; pcm.len()];
    media::g711::encode_ulaw(&pcm, &mut out)?;
    Ok(out)
}
