//! Extractive summary: the call's most informative sentences, chosen by term weights, followed
//! by the facts its tools established.
//!
//! A word's weight is how often the call used it (stopwords excluded); a sentence scores the
//! sum of its distinct words' weights over the square root of its length, more for the caller
//! (their request is the point of the call) and for concrete details (numbers, days, times),
//! less for the agent's greeting and pleasantries.

use std::collections::HashMap;

use super::Line;
use super::facts::Fact;
use super::text::{is_stopword, words};
use crate::agent::turn::{SentenceConfig, SentenceSplitter};
use crate::providers::llm::Role;

/// At most this many characters of quoted sentences.
const MAX_QUOTED_CHARS: usize = 320;

const DETAIL_WORDS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
    "morning",
    "afternoon",
    "evening",
    "week",
    "am",
    "pm",
    "price",
    "cost",
    "appointment",
    "email",
    "address",
    "number",
];

struct Candidate {
    role: Role,
    text: String,
    line: usize,
    score: f32,
}

/// A short summary of the call.
pub fn summarize(lines: &[Line<'_>], facts: &[Fact]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !lines
        .iter()
        .any(|l| l.role == Role::Caller && !words(l.text).is_empty())
    {
        parts.push("The caller did not speak.".into());
    } else {
        let mut chosen = choose(lines);
        chosen.sort_by_key(|c| c.line);
        for c in chosen {
            let who = match c.role {
                Role::Caller => "Caller",
                Role::Agent => "Agent",
            };
            parts.push(format!("{who}: {}", c.text));
        }
    }
    parts.extend(facts.iter().map(Fact::sentence));
    parts.join(" ")
}

/// The best caller sentences, then the best agent sentence, within the length budget.
fn choose(lines: &[Line<'_>]) -> Vec<Candidate> {
    let mut weights: HashMap<String, f32> = HashMap::new();
    for line in lines {
        for w in content_words(line.text) {
            *weights.entry(w).or_default() += 1.0;
        }
    }
    let first_agent_line = lines.iter().position(|l| l.role == Role::Agent);
    let mut candidates: Vec<Candidate> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for sentence in SentenceSplitter::new(SentenceConfig::default()).split_all(line.text) {
            let all = words(&sentence);
            let content: Vec<String> = dedup(content_words(&sentence));
            if all.len() < 3 || content.is_empty() {
                continue;
            }
            let mut score: f32 = content
                .iter()
                .map(|w| weights.get(w).copied().unwrap_or(0.0))
                .sum();
            score /= (all.len() as f32).sqrt();
            let details = all
                .iter()
                .filter(|w| {
                    DETAIL_WORDS.contains(&w.as_str()) || w.chars().any(|c| c.is_ascii_digit())
                })
                .count();
            score *= 1.0 + 0.3 * details.min(3) as f32;
            score *= match line.role {
                Role::Caller => 1.5,
                Role::Agent => 1.0,
            };
            if Some(i) == first_agent_line {
                score *= 0.3; // the greeting says nothing about this call
            }
            candidates.push(Candidate {
                role: line.role,
                text: sentence,
                line: i,
                score,
            });
        }
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut chosen: Vec<Candidate> = Vec::new();
    let mut budget = MAX_QUOTED_CHARS;
    let mut callers = 0;
    let mut agents = 0;
    for c in candidates {
        let room = c.text.len() <= budget;
        let wanted = match c.role {
            Role::Caller => callers < 2,
            Role::Agent => agents < 1,
        };
        let repeat = chosen.iter().any(|k| k.text == c.text);
        if room && wanted && !repeat && (chosen.is_empty() || c.score >= 0.4 * chosen[0].score) {
            budget -= c.text.len();
            match c.role {
                Role::Caller => callers += 1,
                Role::Agent => agents += 1,
            }
            chosen.push(c);
        }
    }
    chosen
}

fn content_words(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| w.chars().count() > 1 && !is_stopword(w))
        .collect()
}

fn dedup(mut words: Vec<String>) -> Vec<String> {
    words.sort();
    words.dedup();
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(role: Role, text: &str) -> Line<'_> {
        Line { role, text }
    }

    #[test]
    fn picks_the_request_and_the_answer_and_adds_facts() {
        let lines = [
            line(
                Role::Agent,
                "Thanks for calling Bright Dental, this is Ava. How can I help?",
            ),
            line(
                Role::Caller,
                "Hi. I'd like to book a teeth cleaning, ideally Friday morning.",
            ),
            line(
                Role::Agent,
                "Sure. I have a cleaning slot on Friday at 10.30 with Dr. Patel. Does that work?",
            ),
            line(Role::Caller, "Yes, Friday at 10.30 works. Thanks!"),
            line(Role::Agent, "Great, you're all set. Goodbye!"),
        ];
        let facts = [Fact::AppointmentBooked {
            title: Some("Teeth cleaning".into()),
            start: Some("2025-03-21T10:30:00Z".into()),
        }];
        let summary = summarize(&lines, &facts);
        assert!(
            summary
                .starts_with("Caller: I'd like to book a teeth cleaning, ideally Friday morning."),
            "{summary}"
        );
        assert!(
            summary.contains("Agent: I have a cleaning slot on Friday at 10.30 with Dr. Patel."),
            "{summary}"
        );
        assert!(
            summary.ends_with("Booked: Teeth cleaning at 2025-03-21T10:30:00Z."),
            "{summary}"
        );
        assert!(
            !summary.contains("Bright Dental"),
            "the greeting is not the point: {summary}"
        );
    }

    #[test]
    fn stays_short_on_long_calls() {
        let long = "I have been trying to reach someone about the leaking pipe under my kitchen sink \
                    for three days now and it is getting worse every single day.";
        let lines: Vec<Line<'_>> = (0..20)
            .map(|i| {
                line(
                    if i % 2 == 0 {
                        Role::Caller
                    } else {
                        Role::Agent
                    },
                    long,
                )
            })
            .collect();
        let summary = summarize(&lines, &[]);
        assert!(summary.len() <= MAX_QUOTED_CHARS + 40, "{}", summary.len());
        assert!(summary.contains("leaking pipe"));
    }

    #[test]
    fn a_silent_caller_is_said_so() {
        let lines = [line(Role::Agent, "Hello? Are you still there?")];
        assert_eq!(summarize(&lines, &[]), "The caller did not speak.");
        assert_eq!(summarize(&[], &[]), "The caller did not speak.");
    }
}
