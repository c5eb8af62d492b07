//! A stand-in voice whose audio is easy to measure: a 440 Hz tone, 60 ms per character, in
//! 100 ms chunks (so a reply's length in frames tells which text was spoken).

use boltcall::providers::tts::{TextToSpeech, TtsError, Voice};
use tokio::sync::mpsc;

/// Speaks a 440 Hz tone, 60 ms per character, in 100 ms chunks.
pub struct ToneTts;

impl TextToSpeech for ToneTts {
    fn name(&self) -> &'static str {
        "tone"
    }
    fn synthesize(
        &self,
        text: String,
        _voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let total = text.chars().count() * 960;
            let mut n = 0usize;
            while n < total {
                let len = 1600.min(total - n);
                let chunk: Vec<i16> = (n..n + len)
                    .map(|i| {
                        let t = i as f32 / 16_000.0;
                        (6000.0 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16
                    })
                    .collect();
                n += len;
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
        });
        rx
    }
}
