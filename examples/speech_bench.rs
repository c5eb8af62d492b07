//! Measures the offline speech stack on this machine: Whisper's real-time factor per
//! utterance and its end-of-turn delay on real-time input, Piper's real-time factor and time
//! to first audio, and espeak-ng's time to first audio.
//!
//! `cargo run --release --example speech_bench` (models install into `./data` on first run;
//! set `BOLTCALL_DATA_DIR` to use another directory).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use boltcall::providers::models;
use boltcall::providers::stt::whisper::WhisperStt;
use boltcall::providers::stt::{SpeechToText, SttEvent, SttInput};
use boltcall::providers::tts::espeak::EspeakTts;
use boltcall::providers::tts::piper::PiperTts;
use boltcall::providers::tts::{TextToSpeech, find_voice};
use media::InternalFrame;

const UTTERANCES: &[&str] = &[
    "Yes, that works for me.",
    "I would like to book a cleaning for next Tuesday morning, please.",
    "Hi, I'm calling because my daughter chipped a tooth at soccer practice this afternoon, \
     and I was wondering whether the doctor could see her before the weekend.",
];

async fn synthesize(
    tts: &dyn TextToSpeech,
    text: &str,
) -> anyhow::Result<(Vec<i16>, Duration, Duration)> {
    let start = Instant::now();
    let mut rx = tts.synthesize(text.into(), find_voice("voice_joe").expect("voice"));
    let mut audio = Vec::new();
    let mut first = None;
    while let Some(chunk) = rx.recv().await {
        audio.extend(chunk?);
        first.get_or_insert_with(|| start.elapsed());
    }
    Ok((audio, first.unwrap_or_default(), start.elapsed()))
}

fn seconds(samples: usize) -> f64 {
    samples as f64 / 16_000.0
}

/// Feeds `audio` in real time (one frame per 20 ms) and returns the delay from `SpeechEnd`
/// to the `Final`, and how many partials came before it.
async fn end_of_turn(stt: &WhisperStt, audio: &[i16]) -> anyhow::Result<(Duration, usize)> {
    let mut stream = stt.open();
    stream.input.send(SttInput::SpeechStart).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut partials = 0;
    for chunk in audio.chunks_exact(320) {
        tick.tick().await;
        stream
            .input
            .send(SttInput::Audio(
                InternalFrame::from_slice(16_000, chunk).expect("frame"),
            ))
            .await?;
        while let Ok(event) = stream.events.try_recv() {
            partials += usize::from(matches!(event, SttEvent::Partial { .. }));
        }
    }
    let end = Instant::now();
    stream.input.send(SttInput::SpeechEnd).await?;
    while let Some(event) = stream.events.recv().await {
        match event {
            SttEvent::Partial { .. } => partials += 1,
            SttEvent::Final { .. } => return Ok((end.elapsed(), partials)),
            SttEvent::Error { message } => anyhow::bail!(message),
        }
    }
    anyhow::bail!("stream ended without a final")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data_dir = std::env::var_os("BOLTCALL_DATA_DIR")
        .map_or_else(|| PathBuf::from("./data"), PathBuf::from);
    let paths = models::ensure_installed(&data_dir).await?;
    let piper = PiperTts::load(&paths)?;
    let whisper = WhisperStt::load(&paths.whisper)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("cores: {cores}");

    // Warm both engines once (first runs allocate buffers).
    let (warm, _, _) = synthesize(&piper, UTTERANCES[0]).await?;
    whisper.transcribe(warm).await?;

    println!("\nPiper en_US-joe-medium (22.05 kHz → 16 kHz)");
    let mut clips = Vec::new();
    for text in UTTERANCES {
        let (audio, first, total) = synthesize(&piper, text).await?;
        let dur = seconds(audio.len());
        println!(
            "  {dur:5.2} s audio: first audio {:4.0} ms, total {:5.0} ms, RTF {:.3}",
            first.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            total.as_secs_f64() / dur
        );
        clips.push((text, audio));
    }

    println!("\nespeak-ng");
    for text in UTTERANCES {
        let (audio, first, total) = synthesize(&EspeakTts, text).await?;
        println!(
            "  {:5.2} s audio: first audio {:4.0} ms, total {:5.0} ms",
            seconds(audio.len()),
            first.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3
        );
    }

    println!("\nWhisper base (greedy, audio_ctx sized to the utterance)");
    for (text, audio) in &clips {
        let start = Instant::now();
        let heard = whisper.transcribe(audio.clone()).await?;
        let took = start.elapsed().as_secs_f64();
        let dur = seconds(audio.len());
        println!(
            "  {dur:5.2} s audio: decode {:5.0} ms, RTF {:.3}",
            took * 1e3,
            took / dur
        );
        println!("    said:  {text}\n    heard: {heard}");
    }

    println!("\nWhisper streaming, real-time input: SpeechEnd → Final");
    for (_, audio) in &clips {
        let (delay, partials) = end_of_turn(&whisper, audio).await?;
        println!(
            "  {:5.2} s utterance: final after {:4.0} ms ({partials} partials before it)",
            seconds(audio.len()),
            delay.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
