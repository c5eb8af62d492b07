//! Whether the caller's recognised words already form a whole turn, so the machine can answer a
//! finished question sooner and give "my number is…" the time to go on.

/// How finished the caller's words sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// A question, a short answer, or a sentence the recogniser closed with a full stop.
    Complete,
    /// Cut mid-way: a trailing "and", "my", "is", a comma, a filler, or a phone number with
    /// too few digits so far.
    Incomplete,
    /// No sign either way (e.g. a recogniser that does not punctuate).
    Unknown,
}

/// Words that end a turn only when it stops mid-sentence.
const CONTINUERS: &[&str] = &[
    // Not "on", "in", "about": they end phrasal verbs ("go on", "book me in") as often.
    "a", "and", "are", "as", "at", "because", "but", "by", "can", "could", "cause", "er", "erm",
    "for", "from", "has", "have", "her", "his", "i", "i'm", "if", "is", "its", "like", "my",
    "need", "of", "or", "our", "plus", "so", "than", "that", "the", "their", "then", "to", "uh",
    "um", "was", "we", "were", "when", "which", "will", "with", "would", "your",
];

/// Whole short answers: said alone they are the turn.
const ANSWERS: &[&str] = &[
    "yes",
    "no",
    "yeah",
    "nope",
    "sure",
    "correct",
    "right",
    "exactly",
    "okay",
    "ok",
    "perfect",
    "great",
    "thanks",
    "thank you",
    "yes please",
    "no thanks",
    "no thank you",
    "that's right",
    "that's correct",
    "that works",
    "sounds good",
    "that's it",
    "bye",
    "goodbye",
];

/// Phone numbers have at least this many digits; fewer after "number" means more is coming.
const PHONE_DIGITS: usize = 10;

pub fn judge(text: &str) -> Completeness {
    let text = text.trim();
    let Some(last_char) = text.chars().last() else {
        return Completeness::Unknown;
    };
    if matches!(last_char, ',' | ';' | ':' | '-' | '…') || text.ends_with("...") {
        return Completeness::Incomplete;
    }
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let Some(last_word) = words.last() else {
        return Completeness::Unknown;
    };
    if CONTINUERS.contains(&last_word.as_str()) || giving_number(&words) {
        return Completeness::Incomplete;
    }
    if last_char == '?' || ANSWERS.contains(&words.join(" ").as_str()) {
        return Completeness::Complete;
    }
    if matches!(last_char, '.' | '!') {
        return Completeness::Complete;
    }
    Completeness::Unknown
}

/// A phone number under way: "number" (or "phone") followed by some digits, but fewer than a
/// whole number's.
fn giving_number(words: &[String]) -> bool {
    let Some(at) = words
        .iter()
        .rposition(|w| matches!(w.as_str(), "number" | "phone" | "cell" | "mobile"))
    else {
        return false;
    };
    let digits: usize = words[at + 1..]
        .iter()
        .map(|w| w.chars().filter(char::is_ascii_digit).count())
        .sum();
    (1..PHONE_DIGITS).contains(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_answers_and_closed_sentences_are_complete() {
        for text in [
            "When are you open on Saturday?",
            "Yes.",
            "no thanks",
            "That's right.",
            "I'd like to book a cleaning next Tuesday.",
            "My number is 415-555-0123.",
        ] {
            assert_eq!(judge(text), Completeness::Complete, "{text}");
        }
    }

    #[test]
    fn words_cut_mid_sentence_are_incomplete() {
        for text in [
            "My number is",
            "I'd like to book a cleaning and",
            "Well, um",
            "It's for my daughter,",
            "I'd like to come in at",
            "My number is 415 555.",
            "The phone is 555-01",
            "So I was wondering...",
        ] {
            assert_eq!(judge(text), Completeness::Incomplete, "{text}");
        }
    }

    #[test]
    fn unpunctuated_words_say_nothing() {
        assert_eq!(judge("book a cleaning tuesday"), Completeness::Unknown);
        assert_eq!(judge("go on"), Completeness::Unknown);
        assert_eq!(judge(""), Completeness::Unknown);
        assert_eq!(judge("  ?"), Completeness::Unknown);
    }
}
