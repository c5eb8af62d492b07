//! Lexicon-based sentiment of a call, weighted towards what the caller said.
//!
//! Each word of the lexicon carries a valence from -3 to +3. Intensifiers ("very", "so")
//! strengthen the next sentiment word, diminishers ("a bit") soften it, and a negation ("not",
//! "never", "don't") within the three words before it flips and dampens it, up to the next
//! clause break. After "but" the clause counts more than before it. Turn scores are squashed into
//! [-1, 1]; the call score is their weighted mean, caller turns weighing more than the agent's
//! (the agent is polite whatever happens) and later turns more than earlier ones (how the call
//! ends matters most).

use serde::{Deserialize, Serialize};

use super::Line;
use super::text::tokens;
use crate::providers::llm::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Positive,
    Neutral,
    Negative,
}

impl SentimentLabel {
    /// The API's value: `positive`, `neutral` or `negative`.
    pub fn as_str(self) -> &'static str {
        match self {
            SentimentLabel::Positive => "positive",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Negative => "negative",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// From -1 (very negative) to +1 (very positive).
    pub score: f32,
}

/// Scores at or beyond these are positive / negative.
const POSITIVE_AT: f32 = 0.15;
const NEGATIVE_AT: f32 = -0.15;
const CALLER_WEIGHT: f32 = 1.0;
const AGENT_WEIGHT: f32 = 0.25;

const LEXICON: &[(&str, f32)] = &[
    // positive
    ("amazing", 2.8),
    ("appreciate", 2.0),
    ("appreciated", 2.0),
    ("awesome", 2.8),
    ("beautiful", 2.4),
    ("best", 2.4),
    ("brilliant", 2.6),
    ("convenient", 1.6),
    ("delighted", 2.8),
    ("easy", 1.4),
    ("excellent", 2.8),
    ("excited", 2.0),
    ("fantastic", 2.8),
    ("fine", 0.8),
    ("friendly", 1.8),
    ("glad", 2.0),
    ("good", 1.8),
    ("grateful", 2.2),
    ("great", 2.6),
    ("happy", 2.4),
    ("helpful", 2.0),
    ("impressed", 2.2),
    ("kind", 1.6),
    ("love", 2.8),
    ("lovely", 2.4),
    ("nice", 1.8),
    ("perfect", 2.6),
    ("pleased", 2.2),
    ("quick", 1.0),
    ("recommend", 1.8),
    ("relieved", 1.8),
    ("satisfied", 2.0),
    ("super", 2.0),
    ("thank", 1.4),
    ("thanks", 1.4),
    ("wonderful", 2.8),
    ("works", 0.8),
    // negative
    ("angry", -2.8),
    ("annoyed", -2.2),
    ("annoying", -2.2),
    ("awful", -2.8),
    ("bad", -2.2),
    ("broken", -1.8),
    ("cancel", -0.8),
    ("complain", -2.0),
    ("complaint", -2.0),
    ("confused", -1.2),
    ("disappointed", -2.4),
    ("disappointing", -2.4),
    ("disgusting", -3.0),
    ("expensive", -1.2),
    ("fail", -2.0),
    ("failed", -2.0),
    ("frustrated", -2.4),
    ("frustrating", -2.4),
    ("hate", -2.8),
    ("horrible", -2.8),
    ("incompetent", -2.8),
    ("issue", -1.0),
    ("late", -1.0),
    ("leak", -1.2),
    ("leaking", -1.2),
    ("mess", -1.8),
    ("mistake", -1.6),
    ("overcharged", -2.4),
    ("pain", -1.6),
    ("poor", -2.0),
    ("problem", -1.2),
    ("refund", -1.2),
    ("ridiculous", -2.6),
    ("rude", -2.6),
    ("sad", -2.0),
    ("scam", -3.0),
    ("sorry", -0.4),
    ("terrible", -3.0),
    ("unacceptable", -2.8),
    ("unhappy", -2.4),
    ("upset", -2.4),
    ("useless", -2.6),
    ("waited", -1.0),
    ("waiting", -0.8),
    ("waste", -2.4),
    ("worried", -1.6),
    ("worse", -2.4),
    ("worst", -3.0),
    ("wrong", -1.8),
];

const NEGATIONS: &[&str] = &[
    "not",
    "no",
    "never",
    "don't",
    "doesn't",
    "didn't",
    "isn't",
    "wasn't",
    "aren't",
    "weren't",
    "won't",
    "wouldn't",
    "can't",
    "cannot",
    "couldn't",
    "shouldn't",
    "haven't",
    "hasn't",
    "hadn't",
    "nothing",
    "nobody",
    "neither",
    "nor",
    "without",
    "hardly",
    "barely",
    "ain't",
];

const INTENSIFIERS: &[(&str, f32)] = &[
    ("very", 1.4),
    ("really", 1.4),
    ("so", 1.3),
    ("extremely", 1.7),
    ("incredibly", 1.7),
    ("absolutely", 1.6),
    ("totally", 1.5),
    ("completely", 1.5),
    ("super", 1.4),
    ("truly", 1.4),
    ("most", 1.3),
    ("too", 1.3),
];

const DIMINISHERS: &[&str] = &[
    "slightly", "somewhat", "bit", "little", "fairly", "kinda", "kind",
];

/// Valence of one turn: sum of word valences, squashed into [-1, 1].
pub fn turn_score(text: &str) -> f32 {
    let tokens = tokens(text);
    let mut total = 0.0f32;
    let mut clause_weight = 1.0f32;
    let mut clause: Vec<f32> = Vec::new();
    let flush = |clause: &mut Vec<f32>, weight: f32, total: &mut f32| {
        *total += clause.iter().sum::<f32>() * weight;
        clause.clear();
    };
    for (i, token) in tokens.iter().enumerate() {
        let Some(word) = token else {
            continue;
        };
        if word == "but" || word == "however" {
            // What came before "but" counts less, what follows counts more.
            flush(&mut clause, clause_weight * 0.5, &mut total);
            clause_weight = 1.5;
            continue;
        }
        let Some(&(_, valence)) = LEXICON.iter().find(|(w, _)| w == word) else {
            continue;
        };
        // "no problem", "no worries": a negated complaint is reassurance.
        let mut value = valence;
        let window = preceding_words(&tokens, i, 3);
        if let Some(&(_, boost)) = window
            .first()
            .and_then(|w| INTENSIFIERS.iter().find(|(i, _)| i == w))
        {
            value *= boost;
        } else if window
            .first()
            .is_some_and(|w| DIMINISHERS.contains(&w.as_str()))
        {
            value *= 0.5;
        }
        if window.iter().any(|w| NEGATIONS.contains(&w.as_str())) {
            value *= -0.6;
        }
        clause.push(value);
    }
    flush(&mut clause, clause_weight, &mut total);
    if text.contains('!') {
        total *= 1.15;
    }
    squash(total)
}

/// Up to `n` words before token `i`, nearest first, stopping at a clause break.
fn preceding_words(tokens: &[Option<String>], i: usize, n: usize) -> Vec<String> {
    tokens[..i]
        .iter()
        .rev()
        .map_while(|t| t.clone())
        .take(n)
        .collect()
}

/// Maps an unbounded sum into (-1, 1), near-linear for small sums.
fn squash(x: f32) -> f32 {
    x / (x * x + 15.0).sqrt()
}

/// The call's sentiment from its transcript.
pub fn sentiment(lines: &[Line<'_>]) -> Sentiment {
    let caller_lines = lines.iter().filter(|l| l.role == Role::Caller).count();
    let mut caller_seen = 0usize;
    let mut weighted = 0.0f32;
    let mut weights = 0.0f32;
    for line in lines {
        let score = turn_score(line.text);
        let weight = match line.role {
            Role::Caller => {
                caller_seen += 1;
                // Later caller turns count up to twice as much as the first.
                CALLER_WEIGHT * (1.0 + caller_seen as f32 / caller_lines.max(1) as f32)
            }
            Role::Agent => AGENT_WEIGHT,
        };
        if score != 0.0 {
            weighted += score * weight;
            weights += weight;
        }
    }
    let score = if weights > 0.0 {
        weighted / weights
    } else {
        0.0
    };
    let label = if score >= POSITIVE_AT {
        SentimentLabel::Positive
    } else if score <= NEGATIVE_AT {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    Sentiment { label, score }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(text: &str) -> Line<'_> {
        Line {
            role: Role::Caller,
            text,
        }
    }

    fn agent(text: &str) -> Line<'_> {
        Line {
            role: Role::Agent,
            text,
        }
    }

    #[test]
    fn negation_flips_and_intensifiers_strengthen() {
        assert!(turn_score("I'm happy with that") > 0.3);
        assert!(turn_score("I'm not happy with that") < 0.0);
        assert!(turn_score("I'm very happy") > turn_score("I'm happy"));
        assert!(turn_score("this is terrible") < -0.5);
        assert!(turn_score("That's not bad at all") > 0.0);
        assert!(turn_score("No problem") > 0.0);
        assert!(turn_score("a bit annoying") > turn_score("annoying"));
        assert_eq!(turn_score("I'd like to book for Friday at 10"), 0.0);
        // A negation does not cross a clause break.
        assert!(turn_score("No, that's great") > 0.3);
    }

    #[test]
    fn the_clause_after_but_dominates() {
        assert!(turn_score("The staff were nice but the wait was terrible") < 0.0);
        assert!(turn_score("It was a bad start but you were really helpful") > 0.0);
    }

    #[test]
    fn a_happy_booking_call_is_positive() {
        let lines = [
            agent("Thanks for calling Bright Dental, how can I help?"),
            caller("Hi, I'd like to book a cleaning for Friday."),
            agent("Sure, I have 10.30 on Friday with Dr. Patel."),
            caller("Perfect, that works great. Thank you so much!"),
        ];
        let s = sentiment(&lines);
        assert_eq!(s.label, SentimentLabel::Positive, "{s:?}");
    }

    #[test]
    fn an_angry_caller_is_negative_despite_a_polite_agent() {
        let lines = [
            agent("Thanks for calling, how can I help you today?"),
            caller("I was charged twice and nobody called me back. This is terrible."),
            agent("I'm so sorry about that, I'd be glad to help. Thank you for your patience."),
            caller("I'm not happy at all. Honestly it's ridiculous."),
        ];
        let s = sentiment(&lines);
        assert_eq!(s.label, SentimentLabel::Negative, "{s:?}");
        assert!(s.score < -0.3);
    }

    #[test]
    fn a_factual_call_is_neutral() {
        let lines = [
            agent("Hello, this is Sam from Acme Plumbing."),
            caller("What time do you open on Saturday?"),
            agent("We open at 9 a.m. on Saturdays."),
            caller("Okay. Bye."),
        ];
        let s = sentiment(&lines);
        assert_eq!(s.label, SentimentLabel::Neutral, "{s:?}");
        assert_eq!(sentiment(&[]).label, SentimentLabel::Neutral);
    }

    #[test]
    fn how_the_call_ends_counts_more() {
        let recovered = [
            caller("I'm frustrated, my appointment was cancelled."),
            agent("I'm sorry, let me rebook you."),
            caller("Oh that's wonderful, thank you, you've been really helpful!"),
        ];
        assert_eq!(sentiment(&recovered).label, SentimentLabel::Positive);
    }
}
