//! The offline speech stack end to end: the model installer, Piper and espeak-ng synthesis,
//! a telephone line in between, and Whisper hearing the words again.
//!
//! The first run downloads about 250 MB into `$BOLTCALL_MODEL_CACHE` (default
//! `~/.cache/boltcall/models`); later runs are offline.

mod speech_support;

use std::sync::Arc;

use boltcall::providers::stt::{SpeechToText, SttEvent, SttInput};
use boltcall::providers::tts::piper::PiperTts;
use boltcall::providers::tts::{TextToSpeech, find_voice};
use boltcall::providers::{build_stt, build_tts, models};
use media::InternalFrame;
use speech_support::{config, rms, through_phone_line, word_overlap};
use tokio::sync::OnceCell;

const GREETING: &str = "Thanks for calling Bright Smile Dental. How can I help you today?";
const REQUEST: &str = "I would like to book a cleaning for next Tuesday morning, please.";

static STT: OnceCell<Arc<dyn SpeechToText>> = OnceCell::const_new();

async fn stt() -> Arc<dyn SpeechToText> {
    STT.get_or_init(|| async { build_stt(&config()).await.expect("whisper") })
        .await
        .clone()
}

async fn tts(engine: &str) -> Arc<dyn TextToSpeech> {
    let mut config = config();
    config.tts = engine.into();
    build_tts(&config).await.expect("tts")
}

/// Every chunk of one synthesis, in order.
async fn synthesize(tts: &dyn TextToSpeech, text: &str, voice: &str) -> Vec<Vec<i16>> {
    let mut rx = tts.synthesize(text.into(), find_voice(voice).expect("voice"));
    let mut chunks = Vec::new();
    while let Some(chunk) = rx.recv().await {
        chunks.push(chunk.expect("synthesis"));
    }
    chunks
}

/// Sends `audio` as one VAD segment (with a little silence either side) and returns the
/// events up to and including the `Final`.
async fn recognise(stt: &dyn SpeechToText, audio: &[i16]) -> Vec<SttEvent> {
    let mut stream = stt.open();
    let silence = InternalFrame::silence(16_000);
    for _ in 0..10 {
        stream.input.send(SttInput::Audio(silence)).await.unwrap();
    }
    stream.input.send(SttInput::SpeechStart).await.unwrap();
    for chunk in audio.chunks(320) {
        let mut pcm = [0i16; 320];
        pcm[..chunk.len()].copy_from_slice(chunk);
        let frame = InternalFrame::from_slice(16_000, &pcm).unwrap();
        stream.input.send(SttInput::Audio(frame)).await.unwrap();
    }
    stream.input.send(SttInput::SpeechEnd).await.unwrap();
    let mut events = Vec::new();
    while let Some(event) = stream.events.recv().await {
        let last = matches!(event, SttEvent::Final { .. } | SttEvent::Error { .. });
        events.push(event);
        if last {
            break;
        }
    }
    events
}

fn final_text(events: &[SttEvent]) -> String {
    match events.last() {
        Some(SttEvent::Final { text }) => text.clone(),
        other => panic!("no final: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installer_is_idempotent_and_names_every_file() {
    let data_dir = config().data_dir;
    let (a, b) = tokio::join!(
        models::ensure_installed(&data_dir),
        models::ensure_installed(&data_dir)
    );
    let (a, b) = (a.expect("install"), b.expect("install"));
    assert_eq!(a.whisper, b.whisper);
    for path in [&a.whisper, &a.piper_model, &a.piper_config, &a.onnxruntime] {
        let len = std::fs::metadata(path).expect("installed file").len();
        assert!(len > 1000, "{} is {len} bytes", path.display());
    }
    // A ggml file starts with its magic.
    let head = std::fs::read(&a.whisper).unwrap()[..4].to_vec();
    assert_eq!(head, 0x6767_6d6cu32.to_le_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_speaks_sentence_by_sentence_at_16khz() {
    let tts = tts("piper").await;
    assert_eq!(tts.name(), "piper");
    let chunks = synthesize(tts.as_ref(), GREETING, "voice_joe").await;
    assert_eq!(chunks.len(), 2, "one chunk per sentence");
    let audio: Vec<i16> = chunks.concat();
    let seconds = audio.len() as f64 / 16_000.0;
    assert!(
        (2.0..8.0).contains(&seconds),
        "{seconds} s for two short sentences"
    );
    assert!(rms(&audio) > 500.0, "nearly silent: rms {}", rms(&audio));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_over_a_phone_line_is_understood_by_whisper() {
    let tts = tts("piper").await;
    let audio = synthesize(tts.as_ref(), REQUEST, "voice_sarah")
        .await
        .concat();
    let events = recognise(stt().await.as_ref(), &through_phone_line(&audio)).await;
    let heard = final_text(&events);
    let overlap = word_overlap(REQUEST, &heard);
    assert!(overlap >= 0.8, "heard {heard:?} ({:.0} %)", overlap * 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_over_a_phone_line_is_understood_by_whisper() {
    let tts = tts("espeak").await;
    assert_eq!(tts.name(), "espeak");
    let text = "Please call me back tomorrow afternoon.";
    let audio = synthesize(tts.as_ref(), text, "voice_emma").await.concat();
    assert!(rms(&audio) > 500.0);
    let events = recognise(stt().await.as_ref(), &through_phone_line(&audio)).await;
    let heard = final_text(&events);
    let overlap = word_overlap(text, &heard);
    assert!(overlap >= 0.8, "heard {heard:?} ({:.0} %)", overlap * 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partials_arrive_while_the_caller_is_still_speaking() {
    let tts = tts("piper").await;
    let text = format!("{REQUEST} My name is Alice Johnson and my phone number has not changed.");
    let audio = synthesize(tts.as_ref(), &text, "voice_joe").await.concat();
    let mut stream = stt().await.open();
    stream.input.send(SttInput::SpeechStart).await.unwrap();
    let frames: Vec<InternalFrame> = audio
        .chunks_exact(320)
        .map(|c| InternalFrame::from_slice(16_000, c).unwrap())
        .collect();
    let (first, rest) = frames.split_at(frames.len() / 2);
    for f in first {
        stream.input.send(SttInput::Audio(*f)).await.unwrap();
    }
    // Half the utterance is in and speech has not ended: a partial must come.
    let partial = match stream.events.recv().await {
        Some(SttEvent::Partial { text }) => text,
        other => panic!("expected a partial, got {other:?}"),
    };
    assert!(
        word_overlap(&partial, REQUEST) >= 0.5,
        "partial {partial:?}"
    );
    for f in rest {
        stream.input.send(SttInput::Audio(*f)).await.unwrap();
    }
    stream.input.send(SttInput::SpeechEnd).await.unwrap();
    let heard = loop {
        match stream.events.recv().await {
            Some(SttEvent::Partial { .. }) => continue,
            Some(SttEvent::Final { text }) => break text,
            other => panic!("expected the final, got {other:?}"),
        }
    };
    assert!(word_overlap(&text, &heard) >= 0.8, "heard {heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_silence_gives_an_empty_final() {
    // Faint noise, like a line with nobody speaking.
    let mut seed = 7u32;
    let noise: Vec<i16> = (0..16_000 * 2)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((seed >> 16) % 61) as i16 - 30
        })
        .collect();
    let events = recognise(stt().await.as_ref(), &noise).await;
    assert_eq!(
        events,
        vec![SttEvent::Final {
            text: String::new()
        }]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_receiver_stops_synthesis() {
    let paths = models::ensure_installed(&config().data_dir).await.unwrap();
    let piper = PiperTts::load(&paths).unwrap();
    let long: String = (1..=12)
        .map(|i| format!("This is sentence number {i} of a very long answer. "))
        .collect();
    let mut rx = piper.synthesize(long, find_voice("voice_joe").unwrap());
    assert!(rx.recv().await.expect("first chunk").is_ok());
    drop(rx);
    // Wait for the synthesis task to notice and end (bounded so a hang fails the test).
    for _ in 0..3000 {
        if piper.stats().active == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stats = piper.stats();
    assert_eq!(
        stats.active, 0,
        "synthesis still running after the receiver was dropped"
    );
    // The sentence being made when the receiver went (and one already queued) may finish;
    // the other ten of twelve must not be synthesised.
    assert!(
        stats.sentences <= 3,
        "{} of 12 sentences synthesised",
        stats.sentences
    );
}
