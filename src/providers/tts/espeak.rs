//! The zero-model fallback: espeak-ng's formant synthesiser, run as a command (keeping its GPL
//! out of our binary), sentence by sentence like Piper.

use tokio::sync::mpsc;

use super::piper::run_espeak;
use super::{TextToSpeech, TtsError, Voice, pcm};

const CHANNEL_DEPTH: usize = 4;

pub struct EspeakTts;

/// Decodes the mono 16-bit WAV espeak-ng writes to stdout and converts it to 16 kHz.
/// Streaming to a pipe, espeak-ng cannot seek back to fill in the data length, so the header
/// holds a placeholder: the data runs to the end of the output.
fn wav_to_pcm(wav: &[u8]) -> Result<Vec<i16>, TtsError> {
    let bad = |why: &str| TtsError(format!("espeak-ng output: {why}"));
    if wav.len() < 12 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return Err(bad("not a WAV file"));
    }
    let mut at = 12;
    let mut format = None;
    while at + 8 <= wav.len() {
        let id = &wav[at..at + 4];
        let len = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]) as usize;
        let body = &wav[at + 8..];
        if id == b"fmt " {
            if body.len() < 16 {
                return Err(bad("short fmt chunk"));
            }
            let channels = u16::from_le_bytes([body[2], body[3]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            if channels != 1 || bits != 16 {
                return Err(bad(&format!(
                    "expected mono 16-bit, got {channels} channels of {bits} bits"
                )));
            }
            format = Some(rate);
        } else if id == b"data" {
            let rate = format.ok_or_else(|| bad("data before fmt"))?;
            let data = &body[..len.min(body.len())];
            let samples: Vec<f32> = data
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect();
            return pcm::to_internal_rate(&samples, rate);
        }
        at = at.saturating_add(8).saturating_add(len + (len & 1));
    }
    Err(bad("no audio data"))
}

async fn speak(sentence: &str, voice: &str) -> Result<Vec<i16>, TtsError> {
    let wav = run_espeak(&["--stdout", "-v", voice, "--stdin"], sentence).await?;
    tokio::task::spawn_blocking(move || wav_to_pcm(&wav))
        .await
        .map_err(|e| TtsError(format!("espeak task: {e}")))?
}

impl TextToSpeech for EspeakTts {
    fn name(&self) -> &'static str {
        "espeak"
    }

    fn synthesize(
        &self,
        text: String,
        voice: &'static Voice,
    ) -> mpsc::Receiver<Result<Vec<i16>, TtsError>> {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        tokio::spawn(async move {
            for sentence in super::sentences(&text) {
                if tx.is_closed() {
                    return;
                }
                let result = speak(&sentence, voice.espeak).await;
                let failed = result.is_err();
                if tx.send(result).await.is_err() || failed {
                    return;
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, data_len: u32, samples: &[i16]) -> Vec<u8> {
        let mut w = b"RIFF\x24\xf0\xff\x7fWAVEfmt ".to_vec();
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&1u16.to_le_bytes());
        w.extend_from_slice(&channels.to_le_bytes());
        w.extend_from_slice(&16_000u32.to_le_bytes());
        w.extend_from_slice(&32_000u32.to_le_bytes());
        w.extend_from_slice(&2u16.to_le_bytes());
        w.extend_from_slice(&16u16.to_le_bytes());
        w.extend_from_slice(b"data");
        w.extend_from_slice(&data_len.to_le_bytes());
        for s in samples {
            w.extend_from_slice(&s.to_le_bytes());
        }
        w
    }

    #[test]
    fn reads_streamed_wav_with_placeholder_length() {
        assert_eq!(
            wav_to_pcm(&wav(1, 0x7fff_f000, &[1, -2, 3])).unwrap(),
            vec![1, -2, 3]
        );
        assert_eq!(wav_to_pcm(&wav(1, 4, &[1, -2, 3])).unwrap(), vec![1, -2]);
    }

    #[test]
    fn rejects_non_wav_and_stereo_output() {
        assert!(wav_to_pcm(b"not a wav").is_err());
        assert!(
            wav_to_pcm(&wav(2, 4, &[0, 0]))
                .unwrap_err()
                .0
                .contains("mono")
        );
        assert!(wav_to_pcm(&wav(1, 0, &[])[..30]).is_err());
    }

    #[tokio::test]
    async fn speaks_a_sentence_at_16khz() {
        let pcm = speak("Hello there.", "en-us").await.unwrap();
        // About a second of speech, not silence.
        assert!((8_000..40_000).contains(&pcm.len()), "{}", pcm.len());
        assert!(pcm.iter().any(|s| s.unsigned_abs() > 3000));
    }
}
