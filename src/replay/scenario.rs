//! `scenario.toml`: the agent a fixture call is made to, the caller's side, and what must
//! come of it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub description: String,
    /// The call's wall-clock start, so relative dates resolve the same on every run.
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    pub agent: AgentSpec,
    pub caller: CallerSpec,
    #[serde(default)]
    pub expect: Expectations,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub name: String,
    pub greeting: Option<String>,
    pub prompt: Option<String>,
    /// A voice of the voice library (`voice_sarah`, …); the library's first when unset.
    pub voice: Option<String>,
    pub phone_number: Option<String>,
    #[serde(default)]
    pub knowledge: Vec<Document>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerSpec {
    /// Mono WAV, 8 or 16 kHz, relative to the fixture directory.
    pub audio: PathBuf,
    pub number: String,
    /// How long the caller stays on the line (silent) after the recording ends before hanging
    /// up, unless the agent hangs up first.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
}

fn default_linger_ms() -> u64 {
    10_000
}

/// What the call must come to. Every field is optional; unset ones are not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// `completed`, `missed` or `failed`.
    pub status: Option<String>,
    /// `agent_hangup`, `caller_hangup`, `idle_timeout`, …
    pub end_reason: Option<String>,
    /// Phrases (case-insensitive) the whole transcript contains.
    #[serde(default)]
    pub transcript_contains: Vec<String>,
    /// Phrases (case-insensitive) the agent said (and the caller heard).
    #[serde(default)]
    pub agent_said: Vec<String>,
    /// Exactly these tools ran, each at least once (an empty list: no tool ran); `end_call` is
    /// ignored unless listed.
    pub tools_called: Option<Vec<String>>,
    pub appointment: Option<AppointmentExpectation>,
    pub lead: Option<LeadExpectation>,
    /// `positive`, `neutral` or `negative`.
    pub sentiment: Option<String>,
    /// At most this many transcript turns (both sides).
    pub max_turns: Option<usize>,
    /// Exactly this many caller turns.
    pub caller_turns: Option<usize>,
    /// Whether an agent turn was cut short by the caller.
    pub interrupted: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentExpectation {
    pub title: Option<String>,
    /// RFC 3339.
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadExpectation {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl Scenario {
    pub fn load(fixture: &Path) -> Result<Self, ScenarioError> {
        let path = fixture.join("scenario.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| ScenarioError::Read {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ScenarioError::Parse { path, source })
    }
}
