//! The vocabulary a call's recogniser is primed with, from the agent and its knowledge base.
//!
//! Callers say the business's name, its staff, its services and days and times; a recogniser
//! that has never seen "Bright Smile Dental" or "check-up" hears something else. Names are
//! the capitalised phrases of the greeting, the prompt and the documents; services are the
//! short heads of list items ("- Teeth whitening: $300"); titles are the documents' own. The
//! list is short on purpose: Whisper reads at most ~224 prompt tokens and a long prompt
//! makes it worse, not better.

use crate::providers::llm::KnowledgeDoc;
use crate::providers::stt::vocabulary::Vocabulary;

/// Terms kept, most important first.
const MAX_TERMS: usize = 40;
/// Words of a list item's head still read as the name of a service.
const MAX_SERVICE_WORDS: usize = 4;
/// What callers of any booking line say that a recogniser often mishears.
const DOMAIN: &[&str] = &[
    "appointment",
    "book",
    "check-up",
    "reschedule",
    "cancel",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "morning",
    "afternoon",
];
/// Capitalised words that start sentences rather than name anything.
const NOT_NAMES: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "before", "but", "by", "call", "can", "could", "do", "does", "each", "every", "for", "from",
    "good", "he", "hello", "hi", "how", "i", "if", "in", "is", "it", "its", "just", "let", "may",
    "my", "no", "not", "of", "ok", "on", "only", "or", "our", "please", "pm", "q", "she", "so",
    "thank", "thanks", "that", "the", "there", "these", "they", "this", "to", "we", "welcome",
    "what", "when", "where", "which", "who", "why", "will", "with", "would", "yes", "you", "your",
];
const TITLES: &[&str] = &["Dr.", "Mr.", "Mrs.", "Ms.", "St."];
const CALENDAR: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

fn bare(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_alphanumeric())
}

/// A single word worth priming: not a sentence starter, a day or a month.
fn names_something(word: &str) -> bool {
    let lower = bare(word).to_lowercase();
    let day = lower.strip_suffix('s').unwrap_or(&lower);
    !NOT_NAMES.contains(&lower.as_str()) && !CALENDAR.contains(&day) && lower.len() > 1
}

/// Runs of capitalised words ("Bright Smile Dental", "Dr. Patel"): a run ends at punctuation
/// other than a title's full stop.
fn capitalised_phrases(text: &str) -> Vec<String> {
    let mut phrases = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let mut flush = |run: &mut Vec<&str>| {
        let words: Vec<&str> = std::mem::take(run)
            .into_iter()
            .skip_while(|w| !names_something(w) && !TITLES.contains(w))
            .collect();
        if words.len() > 1 || words.first().is_some_and(|w| names_something(w)) {
            let phrase = words.join(" ");
            phrases.push(
                phrase
                    .trim_end_matches(|c: char| !c.is_alphanumeric())
                    .to_string(),
            );
        }
    };
    for word in text.split_whitespace() {
        if !is_capitalised(word) {
            flush(&mut run);
            continue;
        }
        run.push(word);
        let ends = word.ends_with(|c: char| !c.is_alphanumeric()) && !TITLES.contains(&word);
        if ends {
            flush(&mut run);
        }
    }
    flush(&mut run);
    phrases
}

/// Heads of list items: "- Teeth whitening: $300, 60 minutes" → "Teeth whitening".
fn services(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(['-', '*', '•']))
        .filter_map(|item| {
            let head = item.split([':', ',', '(', '–', '—']).next()?.trim();
            let words = head.split_whitespace().count();
            (1..=MAX_SERVICE_WORDS)
                .contains(&words)
                .then(|| head.to_string())
        })
        .collect()
}

/// The call's vocabulary: names from the greeting and prompt (the business, the agent, its
/// staff), services, document titles, names in the documents, then the booking words.
pub fn call_vocabulary(
    agent_name: &str,
    greeting: Option<&str>,
    prompt: Option<&str>,
    knowledge: &[KnowledgeDoc],
) -> Vocabulary {
    let mut terms: Vec<String> = Vec::new();
    for text in [greeting, prompt].into_iter().flatten() {
        terms.extend(capitalised_phrases(text));
    }
    terms.push(agent_name.to_string());
    for doc in knowledge {
        terms.extend(services(&doc.text));
    }
    terms.extend(knowledge.iter().map(|d| d.title.clone()));
    for doc in knowledge {
        terms.extend(capitalised_phrases(&doc.text));
    }
    terms.extend(DOMAIN.iter().map(|w| w.to_string()));
    let vocabulary = Vocabulary::new(terms);
    Vocabulary::new(vocabulary.terms().iter().take(MAX_TERMS).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(title: &str, text: &str) -> KnowledgeDoc {
        KnowledgeDoc {
            title: title.into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_dental_receptionist_primes_its_names_services_and_days() {
        let v = call_vocabulary(
            "Sarah",
            Some(
                "Thanks for calling Bright Smile Dental, this is Sarah. How can I help you today?",
            ),
            Some(
                "You are Sarah, the friendly receptionist at Bright Smile Dental. Dr. Anna Patel sees children.",
            ),
            &[
                doc(
                    "Opening hours",
                    "We are open Monday to Friday, 8 AM to 6 PM.\nOn Saturdays we open 9 AM to 1 PM.",
                ),
                doc(
                    "Services and prices",
                    "- Cleaning: $120, 45 minutes\n- Teeth whitening: $300\n* Filling (from $150)",
                ),
                doc(
                    "FAQ",
                    "Q: Do you take insurance?\nA: Yes, we accept Delta Dental plans.",
                ),
            ],
        );
        assert_eq!(
            v.terms()[..9],
            [
                "Bright Smile Dental",
                "Sarah",
                "Dr. Anna Patel",
                "Cleaning",
                "Teeth whitening",
                "Filling",
                "Opening hours",
                "Services and prices",
                "FAQ",
            ]
        );
        assert!(v.terms().contains(&"Delta Dental".to_string()));
        assert!(v.terms().contains(&"Tuesday".to_string()));
        for noise in [
            "Thanks",
            "How",
            "You",
            "We",
            "On",
            "Saturdays",
            "Q",
            "A",
            "Yes",
            "AM",
        ] {
            assert!(!v.terms().contains(&noise.to_string()), "{noise} in {v:?}");
        }
    }

    #[test]
    fn an_agent_with_nothing_but_a_name_still_gets_the_booking_words() {
        let v = call_vocabulary("Max", None, None, &[]);
        assert_eq!(v.terms()[0], "Max");
        assert!(v.terms().contains(&"appointment".to_string()));
    }

    #[test]
    fn a_long_knowledge_base_is_cut_to_the_budget() {
        let text: String = (0..200).map(|i| format!("- Service {i}: $1\n")).collect();
        let v = call_vocabulary("Max", None, None, &[doc("Menu", &text)]);
        assert_eq!(v.terms().len(), MAX_TERMS);
        assert_eq!(v.terms()[1], "Service 0");
    }
}
