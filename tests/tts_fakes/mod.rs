//! Local stand-ins for the network speech services, speaking their real wire protocols, and
//! what the tests measure on the audio they return.

pub mod elevenlabs;
pub mod openai;

use std::time::Duration;

use boltcall::providers::tts::TtsError;
use tokio::sync::mpsc;

/// Generous bound so a broken engine fails the test instead of hanging it.
pub const HANG: Duration = Duration::from_secs(20);

/// A sine tone as PCM16.
pub fn tone(rate: u32, hz: f32, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            let t = i as f32 / rate as f32;
            (16_000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

pub fn zero_crossings(pcm: &[i16]) -> usize {
    pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}

pub fn le_bytes(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Everything a synthesis delivered: its audio chunks, then the error that ended it, if any.
pub struct Heard {
    pub chunks: Vec<Vec<i16>>,
    pub error: Option<TtsError>,
}

impl Heard {
    pub fn audio(&self) -> Vec<i16> {
        self.chunks.concat()
    }
}

pub async fn hear(mut rx: mpsc::Receiver<Result<Vec<i16>, TtsError>>) -> Heard {
    let mut heard = Heard {
        chunks: Vec::new(),
        error: None,
    };
    let all = async {
        while let Some(item) = rx.recv().await {
            match item {
                Ok(chunk) => heard.chunks.push(chunk),
                Err(e) => {
                    heard.error = Some(e);
                    // An error ends the synthesis: nothing may follow it.
                    assert!(rx.recv().await.is_none(), "audio after an error");
                    break;
                }
            }
        }
    };
    tokio::time::timeout(HANG, all)
        .await
        .expect("synthesis hung");
    heard
}

/// The first chunk of a synthesis, bounded by [`HANG`].
pub async fn first_chunk(rx: &mut mpsc::Receiver<Result<Vec<i16>, TtsError>>) -> Vec<i16> {
    tokio::time::timeout(HANG, rx.recv())
        .await
        .expect("no first chunk")
        .expect("channel closed")
        .expect("first chunk is an error")
}
