//! Speech and language providers: one trait each, an embedded offline default, and network
//! providers beside it.

pub mod llm;
pub mod models;
pub mod stt;
pub mod tts;

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use stt::SpeechToText;
use tts::TextToSpeech;

/// The speech-to-text engine `config.stt` names; installs the offline model on first use.
pub async fn build_stt(config: &Config) -> anyhow::Result<Arc<dyn SpeechToText>> {
    match config.stt.as_str() {
        "offline" | "whisper" => {
            let paths = models::ensure_installed(&config.data_dir)
                .await
                .context("installing the offline speech models (`boltcall models install`)")?;
            let whisper =
                tokio::task::spawn_blocking(move || stt::whisper::WhisperStt::load(&paths.whisper))
                    .await??;
            Ok(Arc::new(whisper))
        }
        "deepgram" => {
            let api_key = config
                .deepgram_api_key
                .clone()
                .context("stt = \"deepgram\" needs DEEPGRAM_API_KEY")?;
            Ok(Arc::new(stt::deepgram::DeepgramStt::new(
                stt::deepgram::DeepgramSettings {
                    api_key,
                    base_url: config.deepgram_base_url.clone(),
                    model: config.deepgram_model.clone(),
                    timing: stt::deepgram::Timing::default(),
                },
            )?))
        }
        "openai" => {
            let api_key = config
                .openai_api_key
                .clone()
                .context("stt = \"openai\" needs OPENAI_API_KEY")?;
            Ok(Arc::new(stt::openai::OpenAiStt::new(
                stt::openai::OpenAiSettings {
                    api_key,
                    base_url: config.openai_base_url.clone(),
                    model: config.openai_stt_model.clone(),
                    retry_delay: std::time::Duration::from_millis(300),
                },
            )?))
        }
        other => anyhow::bail!(
            "stt = {other:?} (BOLTCALL_STT) is not a speech-to-text engine; expected \"offline\", \"deepgram\" or \"openai\""
        ),
    }
}

/// The text-to-speech engine `config.tts` names, behind the speech cache.
pub async fn build_tts(config: &Config) -> anyhow::Result<Arc<dyn TextToSpeech>> {
    let engine = build_tts_engine(config).await?;
    let settings = tts::cache::SpeechCacheSettings {
        memory_bytes: config.speech_cache_mb.saturating_mul(1 << 20),
        disk_bytes: (config.speech_cache_disk_mb as u64).saturating_mul(1 << 20),
        dir: speech_cache_dir(config, engine.name()),
    };
    Ok(Arc::new(tts::cache::CachedTts::new(engine, settings).await))
}

/// Disk-cached audio is kept per engine and model, so a new model is never answered with the
/// old one's voice.
fn speech_cache_dir(config: &Config, engine: &str) -> std::path::PathBuf {
    let dir = config.data_dir.join("speech-cache").join(engine);
    match engine {
        "openai" => dir.join(&config.openai_tts_model),
        "elevenlabs" => dir.join(&config.elevenlabs_model),
        _ => dir,
    }
}

/// The engine itself. Piper falls back to espeak-ng, with a warning, when its model cannot be
/// installed or loaded.
async fn build_tts_engine(config: &Config) -> anyhow::Result<Arc<dyn TextToSpeech>> {
    match config.tts.as_str() {
        "piper" => {
            let piper = async {
                let paths = models::ensure_installed(&config.data_dir).await?;
                let piper = tokio::task::spawn_blocking(move || tts::piper::PiperTts::load(&paths))
                    .await??;
                anyhow::Ok(piper)
            };
            match piper.await {
                Ok(piper) => Ok(Arc::new(piper)),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Piper is unavailable; speaking with espeak-ng");
                    Ok(Arc::new(tts::espeak::EspeakTts))
                }
            }
        }
        "espeak" => Ok(Arc::new(tts::espeak::EspeakTts)),
        "openai" => {
            let key = config
                .openai_api_key
                .clone()
                .context("tts = \"openai\" needs OPENAI_API_KEY")?;
            let tts = tts::openai::OpenAiTts::new(
                &config.openai_base_url,
                key,
                config.openai_tts_model.clone(),
            )?;
            Ok(Arc::new(tts))
        }
        "elevenlabs" => {
            let key = config
                .elevenlabs_api_key
                .clone()
                .context("tts = \"elevenlabs\" needs ELEVENLABS_API_KEY")?;
            let tts = tts::elevenlabs::ElevenLabsTts::new(
                &config.elevenlabs_base_url,
                key,
                config.elevenlabs_model.clone(),
            )
            .context("BOLTCALL_ELEVENLABS_BASE_URL")?;
            Ok(Arc::new(tts))
        }
        other => anyhow::bail!(
            "tts = {other:?} (BOLTCALL_TTS) is not a text-to-speech engine; expected \"piper\", \"espeak\", \"openai\" or \"elevenlabs\""
        ),
    }
}
