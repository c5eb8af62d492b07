//! The lines an agent speaks on every call whatever the caller says (greeting, reprompt,
//! goodbyes, the apology), synthesised ahead of calls so the speech cache already holds them
//! when the first caller is answered.

use crate::config::Config;
use crate::providers::tts::{TextToSpeech, VOICES, Voice, find_voice};
use crate::store::AgentRecord;

/// The voice `agent` speaks with; an unknown id (a voice since removed) falls back to the first.
pub fn voice_of(agent: &AgentRecord) -> &'static Voice {
    find_voice(&agent.voice_id).unwrap_or(&VOICES[0])
}

/// The greeting a call opens with: none when the agent's is blank.
pub fn greeting_of(agent: &AgentRecord) -> Option<String> {
    agent.greeting.clone().filter(|g| !g.trim().is_empty())
}

/// Every fixed line a call of `agent` may speak.
pub fn fixed_lines(config: &Config, agent: &AgentRecord) -> Vec<String> {
    let turn = config.turn_config(greeting_of(agent));
    let lines = [
        turn.idle_reprompt,
        turn.idle_goodbye,
        turn.max_duration_goodbye,
        turn.brain_error_line,
    ];
    turn.greeting.into_iter().chain(lines).collect()
}

/// Synthesises `agent`'s fixed lines through `tts` (the cache keeps them); a failure is logged,
/// calls then synthesise the line themselves.
pub async fn warm(tts: &dyn TextToSpeech, config: &Config, agent: &AgentRecord) {
    let voice = voice_of(agent);
    for line in fixed_lines(config, agent) {
        let mut audio = tts.synthesize(line, voice);
        while let Some(chunk) = audio.recv().await {
            if let Err(e) = chunk {
                tracing::warn!(agent = %agent.id, "cannot prepare a fixed line: {e}");
                break;
            }
        }
    }
}
