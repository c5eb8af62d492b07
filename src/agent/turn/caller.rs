//! The caller's side of a turn: VAD segments, recogniser partials and finals, DTMF digits, and
//! the endpointing rule that decides when the caller has finished.

use super::completeness::{self, Completeness};
use super::config::TurnConfig;

/// What the caller has said since the last end of turn.
#[derive(Debug, Clone, Default)]
pub struct CallerTurn {
    /// VAD speech in progress since this time.
    pub speaking_since: Option<u64>,
    /// First speech (or digit) of the turn.
    pub started_at: Option<u64>,
    /// End of the latest speech segment.
    pub last_speech_end: Option<u64>,
    /// When the final of the latest segment arrived.
    pub last_final_at: Option<u64>,
    /// Settled words, one entry per segment.
    finals: Vec<String>,
    /// The recogniser's current hypothesis for the segment in progress.
    partial: String,
    /// Segments that ended without their final yet.
    awaiting_finals: u32,
    /// DTMF digits of this turn.
    digits: String,
    last_digit_at: Option<u64>,
    digits_terminated: bool,
    /// Finals still due for segments of turns already ended (on partials, after the wait
    /// cap): they arrive in segment order and are dropped so no words are taken twice.
    stale_finals: u32,
    /// The turn began while the agent held the floor.
    pub over_agent: bool,
}

impl CallerTurn {
    pub fn is_empty(&self) -> bool {
        self.started_at.is_none()
    }

    pub fn speech_start(&mut self, now: u64, agent_holds_floor: bool) {
        if self.speaking_since.is_some() {
            return;
        }
        if self.started_at.is_none() {
            self.started_at = Some(now);
            self.over_agent = agent_holds_floor;
        }
        self.speaking_since = Some(now);
        self.partial.clear();
    }

    pub fn speech_end(&mut self, now: u64) {
        if self.speaking_since.take().is_some() {
            self.last_speech_end = Some(now);
            self.awaiting_finals += 1;
        }
    }

    pub fn partial(&mut self, now: u64, text: &str) {
        self.note_words_without_vad(now);
        self.partial = text.trim().to_string();
    }

    pub fn final_text(&mut self, now: u64, text: &str) {
        if self.stale_finals > 0 {
            self.stale_finals -= 1;
            return;
        }
        self.note_words_without_vad(now);
        self.awaiting_finals = self.awaiting_finals.saturating_sub(1);
        self.last_final_at = Some(now);
        self.partial.clear();
        let text = text.trim();
        if !text.is_empty() {
            self.finals.push(text.to_string());
        }
    }

    /// The recogniser gave up on the pending segment: go on without it.
    pub fn stt_error(&mut self) {
        if self.stale_finals > 0 {
            self.stale_finals -= 1;
            return;
        }
        self.awaiting_finals = self.awaiting_finals.saturating_sub(1);
    }

    pub fn digit(&mut self, now: u64, digit: char, agent_holds_floor: bool) {
        if self.started_at.is_none() {
            self.started_at = Some(now);
            self.over_agent = agent_holds_floor;
        }
        if digit == '#' {
            self.digits_terminated = true;
        } else {
            self.digits.push(digit);
        }
        self.last_digit_at = Some(now);
    }

    /// A recogniser result with no VAD segment around it still marks speech.
    fn note_words_without_vad(&mut self, now: u64) {
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
        if self.speaking_since.is_none() && self.last_speech_end.is_none() {
            self.last_speech_end = Some(now);
        }
    }

    /// Everything recognised so far: finals, then the pending partial, then any digits.
    pub fn text(&self) -> String {
        let spoken = self.spoken();
        match (spoken.is_empty(), self.digits.is_empty()) {
            (_, true) => spoken,
            (true, false) => self.digits.clone(),
            (false, false) => format!("{spoken} {}", self.digits),
        }
    }

    /// The recognised words, without digits.
    fn spoken(&self) -> String {
        let mut parts: Vec<&str> = self.finals.iter().map(String::as_str).collect();
        if !self.partial.is_empty() {
            parts.push(&self.partial);
        }
        parts.join(" ")
    }

    /// Words recognised so far that are not backchannels (digits count as words).
    pub fn meaningful_words(&self, config: &TurnConfig) -> usize {
        let speech = self.finals.iter().chain(std::iter::once(&self.partial));
        let words: usize = speech.map(|t| non_backchannel_words(t, config)).sum();
        words + usize::from(!self.digits.is_empty() || self.digits_terminated)
    }

    /// Time at which the turn ends if nothing more happens, or `None` while it cannot end
    /// (the caller is speaking, or nothing was said).
    pub fn end_of_turn_at(&self, config: &TurnConfig) -> Option<u64> {
        if self.speaking_since.is_some() || self.started_at.is_none() {
            return None;
        }
        let speech_done = self.last_speech_end.map(|end| {
            if self.awaiting_finals > 0 {
                return end + config.endpointing_ms.max(config.final_wait_ms);
            }
            end + match completeness::judge(&self.spoken()) {
                Completeness::Complete => config.endpointing_complete_ms,
                Completeness::Incomplete => config.endpointing_incomplete_ms,
                Completeness::Unknown => config.endpointing_ms,
            }
        });
        let digits_done = self.last_digit_at.map(|at| {
            if self.digits_terminated {
                at
            } else {
                at + config.dtmf_endpoint_ms
            }
        });
        match (speech_done, digits_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ends the turn: its text (possibly empty) and a fresh turn that keeps any speech in
    /// progress.
    pub fn take(&mut self) -> String {
        let text = self.text();
        let speaking_since = self.speaking_since;
        *self = CallerTurn {
            speaking_since,
            started_at: speaking_since,
            stale_finals: self.stale_finals + self.awaiting_finals,
            ..CallerTurn::default()
        };
        text
    }
}

/// Words of `text` outside the configured backchannel phrases.
pub fn non_backchannel_words(text: &str, config: &TurnConfig) -> usize {
    let words = normalised_words(text);
    let mut count = 0;
    let mut i = 0;
    'outer: while i < words.len() {
        // Longest backchannel phrase starting here.
        for phrase in &config.backchannels {
            let phrase_words: Vec<&str> = phrase.split([' ', '-']).collect();
            let n = phrase_words.len();
            if i + n <= words.len() && words[i..i + n].iter().eq(phrase_words.iter()) {
                i += n;
                continue 'outer;
            }
        }
        count += 1;
        i += 1;
    }
    count
}

/// Lowercase words with punctuation stripped; hyphens split words ("uh-huh" → "uh", "huh").
fn normalised_words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backchannels_are_not_words_that_take_the_floor() {
        let config = TurnConfig::default();
        assert_eq!(non_backchannel_words("Uh-huh.", &config), 0);
        assert_eq!(non_backchannel_words("Mm-hmm, yeah okay", &config), 0);
        assert_eq!(non_backchannel_words("uh huh right, got it", &config), 0);
        assert_eq!(
            non_backchannel_words("Yeah, but what about Friday?", &config),
            4
        );
        assert_eq!(non_backchannel_words("wait", &config), 1);
        assert_eq!(non_backchannel_words("", &config), 0);
    }

    #[test]
    fn the_turn_waits_for_silence_and_the_final() {
        let config = TurnConfig::default();
        let mut turn = CallerTurn::default();
        turn.speech_start(1000, false);
        assert_eq!(turn.end_of_turn_at(&config), None);
        turn.partial(1200, "I need");
        turn.speech_end(2000);
        // No final yet: wait up to the cap.
        assert_eq!(turn.end_of_turn_at(&config), Some(3500));
        turn.final_text(2300, "I need an appointment");
        assert_eq!(turn.end_of_turn_at(&config), Some(2500));
        assert_eq!(turn.take(), "I need an appointment");
        assert!(turn.is_empty());
    }

    #[test]
    fn a_missing_final_falls_back_to_the_partial() {
        let mut turn = CallerTurn::default();
        turn.speech_start(0, false);
        turn.partial(300, "book me in");
        turn.speech_end(800);
        assert_eq!(turn.text(), "book me in");
        turn.stt_error();
        assert_eq!(turn.end_of_turn_at(&TurnConfig::default()), Some(1300));
    }

    #[test]
    fn digits_end_the_turn_after_a_pause_or_at_hash() {
        let config = TurnConfig::default();
        let mut turn = CallerTurn::default();
        turn.digit(100, '4', false);
        turn.digit(400, '2', false);
        assert_eq!(turn.end_of_turn_at(&config), Some(1900));
        turn.digit(500, '#', false);
        assert_eq!(turn.end_of_turn_at(&config), Some(500));
        assert_eq!(turn.text(), "42");
        assert_eq!(turn.meaningful_words(&config), 1);
    }
}
