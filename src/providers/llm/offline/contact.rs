//! Contact details as callers say them: "my name is Jane Smith", "five five five one two three
//! four", "jane at example dot com".

use crate::agent::spoken::{digits_of, title_case};
use crate::agent::tools::arguments::{is_e164, is_email};

/// Words that follow "this is" or "I'm" without being a name.
const NOT_NAME: &[&str] = &[
    "a",
    "about",
    "actually",
    "after",
    "all",
    "also",
    "an",
    "and",
    "any",
    "are",
    "at",
    "available",
    "back",
    "before",
    "busy",
    "but",
    "by",
    "calling",
    "can",
    "could",
    "do",
    "doing",
    "done",
    "fine",
    "for",
    "from",
    "going",
    "good",
    "great",
    "having",
    "he",
    "her",
    "here",
    "his",
    "hoping",
    "how",
    "i",
    "i'd",
    "i'll",
    "i'm",
    "in",
    "interested",
    "is",
    "it",
    "it's",
    "just",
    "looking",
    "me",
    "my",
    "need",
    "no",
    "not",
    "number",
    "of",
    "off",
    "ok",
    "okay",
    "on",
    "or",
    "phone",
    "please",
    "really",
    "ringing",
    "she",
    "so",
    "sorry",
    "still",
    "sure",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "there",
    "they",
    "this",
    "to",
    "too",
    "trying",
    "um",
    "uh",
    "very",
    "was",
    "we",
    "well",
    "what",
    "when",
    "where",
    "who",
    "why",
    "with",
    "wondering",
    "would",
    "yeah",
    "yes",
    "you",
    "your",
    "email",
    "mail",
    "address",
    "book",
    "booking",
    "appointment",
    "want",
    "wanted",
    "like",
    "have",
    "has",
    "had",
    "will",
    "be",
    "been",
    "bye",
    "goodbye",
    "hello",
    "hi",
    "hey",
    "thank",
    "today",
    "tomorrow",
    "morning",
    "afternoon",
    "evening",
    "correct",
    "right",
    "wrong",
    "nope",
    "yep",
    "yup",
    "mister",
    "missus",
    "doctor",
    "mr",
    "mrs",
    "ms",
    "dr",
    "again",
];

fn name_word(token: &str) -> bool {
    token
        .chars()
        .all(|c| c.is_alphabetic() || c == '\'' || c == '-')
        && token.chars().count() >= 2
        && !NOT_NAME.contains(&token)
        && digits_of(token).is_none()
        && crate::agent::spoken::number_at(&[token.to_string()], 0).is_none()
}

/// Reads up to three name words from `tokens[at..]`, title-cased, with the tokens used.
fn name_from(tokens: &[String], at: usize) -> Option<(String, usize)> {
    let words: Vec<&str> = tokens
        .iter()
        .skip(at)
        .take(3)
        .map(String::as_str)
        .take_while(|t| name_word(t))
        .collect();
    (!words.is_empty()).then(|| (title_case(&words), words.len()))
}

/// A name the caller gave about themselves. `asked` says the agent just asked for it, so a
/// bare "Jane Smith" or "it's Jane" counts.
pub fn find_name(tokens: &[String], asked: bool) -> Option<String> {
    let word = |i: usize| tokens.get(i).map_or("", String::as_str);
    for i in 0..tokens.len() {
        let after = match (word(i), word(i + 1), word(i + 2)) {
            ("name's", _, _) => Some(i + 1),
            ("name", "is", _) => Some(i + 2),
            ("call", "me", _) => Some(i + 2),
            ("this", "is", _)
                if i == 0
                    || matches!(word(i - 1), "hi" | "hello" | "hey" | "yes" | "yeah" | "oh") =>
            {
                Some(i + 2)
            }
            ("i'm", _, _) | ("im", _, _)
                if asked
                    || i == 0
                    || matches!(word(i - 1), "hi" | "hello" | "hey" | "yes" | "yeah") =>
            {
                Some(i + 1)
            }
            ("i", "am", _) if asked => Some(i + 2),
            ("it's", _, _) | ("its", _, _) if asked => Some(i + 1),
            _ => None,
        };
        if let Some(at) = after
            && let Some((name, _)) = name_from(tokens, at)
        {
            // "I'm calling about…" stops at "calling"; "I'm Jane" ends the utterance or a clause.
            let next = word(at + name.split(' ').count());
            let ends_clause = matches!(
                next,
                "" | "and" | "i" | "i'm" | "calling" | "here" | "from" | "my" | "speaking"
            );
            if ends_clause || matches!(word(i), "name" | "name's" | "call" | "this") {
                return Some(name);
            }
        }
    }
    if asked {
        let skip = tokens
            .iter()
            .take_while(|t| {
                matches!(
                    t.as_str(),
                    "yes" | "yeah" | "sure" | "ok" | "okay" | "um" | "uh" | "it" | "is" | "it's"
                )
            })
            .count();
        if let Some((name, used)) = name_from(tokens, skip)
            && skip + used == tokens.len()
        {
            return Some(name);
        }
    }
    None
}

/// A phone number read out in digits or digit words, with the tokens it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpokenNumber {
    pub digits: String,
    /// Said with a leading "plus": the country code is in the digits.
    pub international: bool,
    pub used: Vec<bool>,
}

/// Finds the longest run of digits ("five five five, one two three four", "555 1234",
/// "double five") of at least seven digits.
pub fn find_phone(tokens: &[String]) -> Option<SpokenNumber> {
    let mut best: Option<SpokenNumber> = None;
    let mut i = 0;
    while i < tokens.len() {
        let international = tokens[i] == "plus";
        let start = if international { i + 1 } else { i };
        let mut j = start;
        let mut digits = String::new();
        while j < tokens.len() {
            let t = tokens[j].as_str();
            let repeat = match t {
                "double" => 2,
                "triple" => 3,
                _ => 1,
            };
            if repeat > 1
                && let Some(d) = tokens.get(j + 1).and_then(|n| digits_of(n))
                && d.len() == 1
            {
                digits.push_str(&d.repeat(repeat));
                j += 2;
                continue;
            }
            if let Some(d) = digits_of(t) {
                digits.push_str(&d);
                j += 1;
                continue;
            }
            if matches!(t, "dash" | "hyphen") && !digits.is_empty() {
                j += 1;
                continue;
            }
            break;
        }
        if digits.len() >= 7 && best.as_ref().is_none_or(|b| b.digits.len() < digits.len()) {
            let mut used = vec![false; tokens.len()];
            for u in used.iter_mut().take(j).skip(i) {
                *u = true;
            }
            best = Some(SpokenNumber {
                digits,
                international,
                used,
            });
        }
        i = j.max(i + 1);
    }
    best
}

/// Turns spoken digits into E.164 using the caller's own number for what was left out: a
/// local number borrows the caller's country and area code.
pub fn to_e164(number: &SpokenNumber, caller: &str) -> Option<String> {
    let candidate = if number.international {
        format!("+{}", number.digits)
    } else if let Some(caller_digits) = caller.strip_prefix('+').filter(|_| is_e164(caller)) {
        if number.digits.len() >= caller_digits.len() {
            format!("+{}", number.digits)
        } else {
            let prefix = &caller_digits[..caller_digits.len() - number.digits.len()];
            format!("+{prefix}{}", number.digits)
        }
    } else if number.digits.len() == 10 {
        // No caller number to borrow from: ten digits read as North American.
        format!("+1{}", number.digits)
    } else {
        format!("+{}", number.digits)
    };
    is_e164(&candidate).then_some(candidate)
}

/// Says a number digit by digit in groups so TTS reads it as a phone number: "+14155550123"
/// → "4 1 5, 5 5 5, 0 1 2 3" (national part only).
pub fn say_phone(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    let national = if e164.starts_with("+1") && digits.len() == 11 {
        &digits[1..]
    } else {
        &digits[..]
    };
    let n = national.len();
    let groups: Vec<&[char]> = if n == 10 {
        vec![&national[..3], &national[3..6], &national[6..]]
    } else if n > 4 {
        vec![&national[..n - 4], &national[n - 4..]]
    } else {
        vec![national]
    };
    groups
        .iter()
        .map(|g| g.iter().map(char::to_string).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last four digits, spaced for speech: "4 5 6 7".
pub fn say_last_four(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    let start = digits.len().saturating_sub(4);
    digits[start..]
        .iter()
        .map(char::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An email address written ("jane@example.com") or spoken ("jane dot smith at example dot
/// com"), with the tokens it used.
pub fn find_email(raw: &str, tokens: &[String]) -> Option<(String, Vec<bool>)> {
    let mut used = vec![false; tokens.len()];
    if let Some(written) = raw
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .find(|w| is_email(w))
    {
        // Its pieces are tokens too; mark those that appear in it.
        for (i, t) in tokens.iter().enumerate() {
            used[i] = written.contains(t.as_str()) && t.len() > 1;
        }
        return Some((written, used));
    }
    let at = tokens.iter().position(|t| t == "at")?;
    let domain_end = spoken_domain_end(tokens, at + 1)?;
    let domain = spoken_part(&tokens[at + 1..domain_end]);
    let cue_end = (0..at)
        .rev()
        .find(|&i| {
            matches!(
                tokens[i].as_str(),
                "is" | "email" | "it's" | "address" | "at"
            )
        })
        .map_or(at.saturating_sub(1), |i| i + 1);
    let local_start = cue_end.max(at.saturating_sub(4));
    if local_start >= at {
        return None;
    }
    let local = spoken_part(&tokens[local_start..at]);
    let email = format!("{local}@{domain}");
    if !is_email(&email) {
        return None;
    }
    for u in used.iter_mut().take(domain_end).skip(local_start) {
        *u = true;
    }
    Some((email, used))
}

/// Where a spoken domain ("example dot com", "mail dot example dot co dot uk") starts at
/// `from` ends; it needs at least one "dot".
fn spoken_domain_end(tokens: &[String], from: usize) -> Option<usize> {
    let mut i = from;
    let mut dots = 0;
    loop {
        let label = tokens.get(i)?;
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || label == "dot" {
            return None;
        }
        i += 1;
        if tokens.get(i).map(String::as_str) == Some("dot") && tokens.get(i + 1).is_some() {
            dots += 1;
            i += 1;
        } else {
            break;
        }
    }
    (dots > 0).then_some(i)
}

fn spoken_part(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| match t.as_str() {
            "dot" | "period" => ".".to_string(),
            "underscore" => "_".to_string(),
            "dash" | "hyphen" => "-".to_string(),
            other => other.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::spoken::tokenize;

    fn name(text: &str, asked: bool) -> Option<String> {
        find_name(&tokenize(text), asked)
    }

    #[test]
    fn names_from_common_phrasings() {
        assert_eq!(
            name("hi my name is jane smith", false).as_deref(),
            Some("Jane Smith")
        );
        assert_eq!(name("hello this is jane", false).as_deref(), Some("Jane"));
        assert_eq!(name("it's john doe", true).as_deref(), Some("John Doe"));
        assert_eq!(name("john doe", true).as_deref(), Some("John Doe"));
        assert_eq!(name("yeah it's maria", true).as_deref(), Some("Maria"));
        assert_eq!(name("i'm calling about my appointment", false), None);
        assert_eq!(name("this is about my bill", false), None);
        assert_eq!(name("it's raining", false), None);
        assert_eq!(name("i'd like to book a cleaning", true), None);
        assert_eq!(
            name("my name is jane and i'd like to book", false).as_deref(),
            Some("Jane")
        );
    }

    #[test]
    fn phone_numbers_in_words_and_digits() {
        let caller = "+14155550000";
        let n = find_phone(&tokenize("my number is five five five one two three four"))
            .expect("a number");
        assert_eq!(n.digits, "5551234");
        assert_eq!(to_e164(&n, caller).as_deref(), Some("+14155551234"));
        let n = find_phone(&tokenize("it's 415 555 0199")).expect("a number");
        assert_eq!(to_e164(&n, caller).as_deref(), Some("+14155550199"));
        let n = find_phone(&tokenize(
            "plus four four seven nine double one two three four five six",
        ))
        .expect("a number");
        assert_eq!(to_e164(&n, caller).as_deref(), Some("+44791123456"));
        assert_eq!(find_phone(&tokenize("at three on friday")), None);
        let n = find_phone(&tokenize("six one seven five five five")).map(|n| n.digits);
        assert_eq!(n, None);
    }

    #[test]
    fn phone_numbers_said_back() {
        assert_eq!(say_phone("+14155551234"), "4 1 5, 5 5 5, 1 2 3 4");
        assert_eq!(say_last_four("+14155551234"), "1 2 3 4");
    }

    #[test]
    fn emails_written_and_spoken() {
        let email = |text: &str| find_email(text, &tokenize(text)).map(|(e, _)| e);
        assert_eq!(
            email("my email is jane at example dot com").as_deref(),
            Some("jane@example.com")
        );
        assert_eq!(
            email("it's jane dot smith at mail dot example dot co dot uk").as_deref(),
            Some("jane.smith@mail.example.co.uk")
        );
        assert_eq!(
            email("send it to Jane@Example.com please").as_deref(),
            Some("jane@example.com")
        );
        assert_eq!(email("see you at ten"), None);
        assert_eq!(email("at the office"), None);
    }
}
