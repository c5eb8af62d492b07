//! `GET /v1/voices`: the voice library and which TTS engine serves each voice.

use axum::Json;
use axum::{Router, routing::get};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::error::ErrorEnvelope;
use super::page::{List, Meta};
use crate::providers::tts::voices::VOICES;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/voices", get(list))
}

#[derive(Serialize, ToSchema)]
pub struct VoiceView {
    pub id: String,
    pub name: String,
    pub gender: String,
    pub accent: String,
    /// The voice each TTS engine uses for it (`piper` is null when no offline model fits).
    pub engines: VoiceEngines,
}

#[derive(Serialize, ToSchema)]
pub struct VoiceEngines {
    pub piper: Option<String>,
    pub espeak: String,
    pub openai: String,
    pub elevenlabs: String,
}

#[utoipa::path(get, path = "/v1/voices", tag = "voices",
    responses((status = 200, body = List<VoiceView>), (status = "default", body = ErrorEnvelope)))]
pub async fn list() -> Json<List<VoiceView>> {
    let data: Vec<VoiceView> = VOICES
        .iter()
        .map(|v| VoiceView {
            id: v.id.into(),
            name: v.name.into(),
            gender: v.gender.into(),
            accent: v.accent.into(),
            engines: VoiceEngines {
                piper: v.piper.map(Into::into),
                espeak: v.espeak.into(),
                openai: v.openai.into(),
                elevenlabs: v.elevenlabs.into(),
            },
        })
        .collect();
    let total = i64::try_from(data.len()).unwrap_or(i64::MAX);
    let limit = u32::try_from(data.len()).unwrap_or(u32::MAX);
    Json(List {
        data,
        meta: Meta {
            page: 1,
            limit,
            total,
        },
    })
}
