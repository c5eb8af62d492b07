//! One transcription request to `{base}/audio/transcriptions`: the segment as a WAV in a
//! multipart form, the answer as JSON or, for models that stream, as server-sent
//! `transcript.text.delta` / `transcript.text.done` events. Overload and network failures are
//! retried once.

use std::io::Cursor;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use super::sse::SseDecoder;

pub struct Transcriber {
    pub client: reqwest::Client,
    pub url: String,
    pub api_key: String,
    pub model: String,
    /// Ask for a streamed answer (the gpt-4o family does; whisper-1 does not).
    pub stream: bool,
    pub retry_delay: Duration,
}

/// Why an attempt failed.
enum Failure {
    /// Overload, a server error or the network: worth one more try.
    Transient(String),
    Permanent(String),
}

#[derive(Deserialize)]
struct Transcription {
    text: String,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum StreamEvent {
    #[serde(rename = "transcript.text.delta")]
    Delta { delta: String },
    #[serde(rename = "transcript.text.done")]
    Done { text: String },
    #[serde(other)]
    Other,
}

impl Transcriber {
    /// The words of 16 kHz `pcm`; `on_text` sees the streamed text so far as it grows.
    pub async fn transcribe(
        &self,
        pcm: &[i16],
        mut on_text: impl FnMut(&str),
    ) -> Result<String, String> {
        let wav = wav(pcm);
        match self.attempt(&wav, &mut on_text).await {
            Ok(text) => Ok(text),
            Err(Failure::Permanent(message)) => Err(message),
            Err(Failure::Transient(first)) => {
                tracing::warn!(error = %first, "OpenAI transcription failed; retrying once");
                tokio::time::sleep(self.retry_delay).await;
                self.attempt(&wav, &mut on_text)
                    .await
                    .map_err(|(Failure::Transient(m) | Failure::Permanent(m))| m)
            }
        }
    }

    async fn attempt(&self, wav: &[u8], on_text: &mut impl FnMut(&str)) -> Result<String, Failure> {
        let file = Part::bytes(wav.to_vec())
            .file_name("speech.wav")
            .mime_str("audio/wav")
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        let mut form = Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            .text("response_format", "json");
        if self.stream {
            form = form.text("stream", "true");
        }
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.api_key)
            .multipart(form)
            .send()
            .await
            .map_err(|e| Failure::Transient(format!("OpenAI transcription request failed: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(refusal(status, &body));
        }
        let streamed = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !streamed {
            let body: Transcription = response.json().await.map_err(|e| {
                Failure::Transient(format!("OpenAI transcription answer unreadable: {e}"))
            })?;
            return Ok(body.text.trim().to_string());
        }
        let mut decoder = SseDecoder::default();
        let mut text = String::new();
        let mut body = response.bytes_stream();
        loop {
            let (events, ended) = match body.next().await {
                Some(Ok(chunk)) => (decoder.push(&chunk), false),
                Some(Err(e)) => {
                    return Err(Failure::Transient(format!(
                        "OpenAI transcription stream broke: {e}"
                    )));
                }
                None => (decoder.finish().into_iter().collect(), true),
            };
            for data in events {
                match serde_json::from_str::<StreamEvent>(&data) {
                    Ok(StreamEvent::Delta { delta }) => {
                        text.push_str(&delta);
                        on_text(text.trim());
                    }
                    Ok(StreamEvent::Done { text }) => return Ok(text.trim().to_string()),
                    Ok(StreamEvent::Other) | Err(_) => {}
                }
            }
            if ended {
                return Err(Failure::Transient(
                    "OpenAI transcription stream ended before transcript.text.done".into(),
                ));
            }
        }
    }
}

/// What a non-success answer means.
fn refusal(status: StatusCode, body: &str) -> Failure {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        message: String,
    }
    let detail = serde_json::from_str::<Envelope>(body)
        .map(|e| e.error.message)
        .unwrap_or_else(|_| body.trim().chars().take(300).collect());
    match status.as_u16() {
        429 | 500..=599 => Failure::Transient(format!(
            "OpenAI transcription answered HTTP {status}: {detail}"
        )),
        401 | 403 => Failure::Permanent(format!(
            "OpenAI refused the API key (HTTP {status}); check OPENAI_API_KEY: {detail}"
        )),
        _ => Failure::Permanent(format!(
            "OpenAI transcription refused the request (HTTP {status}): {detail}"
        )),
    }
}

/// 16 kHz mono 16-bit WAV.
fn wav(pcm: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::with_capacity(44 + pcm.len() * 2));
    {
        let mut writer = hound::WavWriter::new(&mut out, spec).expect("writing to memory");
        let mut samples = writer.get_i16_writer(pcm.len() as u32);
        for &s in pcm {
            samples.write_sample(s);
        }
        samples.flush().expect("writing to memory");
        writer.finalize().expect("writing to memory");
    }
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wav_is_16khz_mono_16bit_and_holds_the_samples() {
        let bytes = wav(&[0, 1, -1, i16::MAX]);
        let mut reader = hound::WavReader::new(Cursor::new(bytes)).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (16_000, 1, 16)
        );
        let samples: Vec<i16> = reader.samples().map(Result::unwrap).collect();
        assert_eq!(samples, vec![0, 1, -1, i16::MAX]);
    }

    #[test]
    fn overload_is_transient_and_a_bad_key_names_the_setting() {
        assert!(matches!(
            refusal(StatusCode::TOO_MANY_REQUESTS, "{}"),
            Failure::Transient(_)
        ));
        assert!(matches!(
            refusal(StatusCode::BAD_GATEWAY, ""),
            Failure::Transient(_)
        ));
        let Failure::Permanent(m) = refusal(
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        ) else {
            panic!("401 is permanent");
        };
        assert!(
            m.contains("OPENAI_API_KEY") && m.contains("Incorrect API key"),
            "{m}"
        );
        assert!(matches!(
            refusal(StatusCode::BAD_REQUEST, "bad"),
            Failure::Permanent(_)
        ));
    }
}
