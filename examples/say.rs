//! Speaks one piece of text with the engine's configured TTS (Piper by default) into a 16 kHz
//! mono WAV file. `fixtures/calls/make_caller_audio.py` uses it to voice fixture callers.
//!
//! `cargo run --release --example say -- "Friday at ten." out.wav [voice_id]`

use anyhow::Context;
use boltcall::config::Config;
use boltcall::providers::build_tts;
use boltcall::providers::tts::find_voice;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: say TEXT OUT.wav [VOICE_ID]";
    let text = args.next().context(usage)?;
    let out = args.next().context(usage)?;
    let voice_id = args.next().unwrap_or_else(|| "voice_james".into());
    let voice = find_voice(&voice_id).with_context(|| format!("unknown voice {voice_id:?}"))?;

    let config = Config::load(None)?;
    let tts = build_tts(&config).await?;

    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(&out, spec)?;
    let mut chunks = tts.synthesize(text, voice);
    while let Some(chunk) = chunks.recv().await {
        for sample in chunk.map_err(|e| anyhow::anyhow!("{e}"))? {
            wav.write_sample(sample)?;
        }
    }
    wav.finalize()?;
    Ok(())
}
