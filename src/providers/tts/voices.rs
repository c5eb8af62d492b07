//! The voice library behind `GET /v1/voices` and agents' `voice_id`.

use serde::Serialize;

/// One voice a user can pick, and what serves it with each TTS engine.
#[derive(Debug, Serialize)]
pub struct Voice {
    pub id: &'static str,
    pub name: &'static str,
    pub gender: &'static str,
    pub accent: &'static str,
    /// Piper model name used by the offline `piper` engine, when one fits this voice.
    pub piper: Option<&'static str>,
    /// espeak-ng voice (`-v`) for the zero-model fallback.
    pub espeak: &'static str,
    /// OpenAI TTS voice name.
    pub openai: &'static str,
    /// ElevenLabs voice id.
    pub elevenlabs: &'static str,
}

pub static VOICES: &[Voice] = &[
    Voice {
        id: "voice_sarah",
        name: "Sarah",
        gender: "female",
        accent: "american",
        piper: None,
        espeak: "en-us+f3",
        openai: "nova",
        elevenlabs: "EXAVITQu4vr4xnSDxMaL",
    },
    Voice {
        id: "voice_james",
        name: "James",
        gender: "male",
        accent: "american",
        piper: Some("en_US-joe-medium"),
        espeak: "en-us+m3",
        openai: "onyx",
        elevenlabs: "JBFqnCBsd6RMkjVDRZzb",
    },
    Voice {
        id: "voice_joe",
        name: "Joe",
        gender: "male",
        accent: "american",
        piper: Some("en_US-joe-medium"),
        espeak: "en-us",
        openai: "echo",
        elevenlabs: "TxGEqnHWrfWFTfGW9XjX",
    },
    Voice {
        id: "voice_emma",
        name: "Emma",
        gender: "female",
        accent: "british",
        piper: None,
        espeak: "en-gb+f4",
        openai: "shimmer",
        elevenlabs: "ThT5KcBeYPX3keUQqHPh",
    },
];

pub fn find_voice(id: &str) -> Option<&'static Voice> {
    VOICES.iter().find(|v| v.id == id)
}
