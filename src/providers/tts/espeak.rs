//! The zero-model fallback: espeak-ng's formant synthesiser, run as a command (keeping its GPL
//! out of our binary), sentence by sentence like Piper.

use tokio::sync::mpsc;

use super::piper::run_espeak;
use super::{TextToSpeech, TtsError, Voice, pcm, sentences};

const CHANNEL_DEPTH: usize = 4;

pub struct EspeakTts;

/// Decodes the mono 16-bit WAV espeak-ng writes to stdout and converts it to 16 kHz.
fn wav_to_pcm(wav: &[u8]) -> Result<Vec<i16>, TtsError> {
    let err = |e: hound::Error| TtsError(format!("espeak-ng output: {e}"));
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav)).map_err(err)?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(TtsError(format!(
            "espeak-ng output: expected mono 16-bit, got {} channels of {} bits",
            spec.channels, spec.bits_per_sample
        )));
    }
    let samples: Vec<f32> = reader
        .samples::<i16>()
        // espeak-ng writes a placeholder data length when streaming: stop at the real end.
        .map_while(Result::ok)
        .map(|s| f32::from(s) / 32768.0)
        .collect();
    pcm::to_internal_rate(&samples, spec.sample_rate)
}

async fn speak(sentence: &str, voice: &str) -> Result<Vec<i16>, TtsError> {
    let wav = run_espeak(&["-q", "--stdout", "-v", voice, "--stdin"], sentence).await?;
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
            for sentence in sentences::split(&text) {
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

    #[test]
    fn rejects_non_wav_and_stereo_output() {
        assert!(wav_to_pcm(b"not a wav").is_err());
        let mut stereo = Vec::new();
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(std::io::Cursor::new(&mut stereo), spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        assert!(wav_to_pcm(&stereo).unwrap_err().0.contains("mono"));
    }
}
