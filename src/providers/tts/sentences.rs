//! Splits text into sentences so the first one can be spoken while the rest is synthesised.

/// Sentences of `text`, each trimmed, ending with its punctuation. Splits after `.`, `!`, `?`
/// (and `;`, `:` in long runs) followed by whitespace, but not after a lone initial or a
/// common abbreviation such as "Dr." or "a.m." before a lowercase word.
pub fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let boundary =
            matches!(c, '.' | '!' | '?' | '\n') && chars.peek().is_none_or(|n| n.is_whitespace());
        if boundary && !ends_with_abbreviation(&current, chars.clone()) {
            push(&mut out, &current);
            current.clear();
        }
    }
    push(&mut out, &current);
    out
}

fn push(out: &mut Vec<String>, sentence: &str) {
    let s = sentence.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().any(char::is_alphanumeric) {
        out.push(s);
    }
}

const ABBREVIATIONS: &[&str] = &[
    "mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "e.g.", "i.e.", "etc.", "no.",
];

fn ends_with_abbreviation(
    current: &str,
    mut rest: std::iter::Peekable<std::str::Chars<'_>>,
) -> bool {
    if !current.ends_with('.') {
        return false;
    }
    let last = current
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_lowercase();
    let stem = &last[..last.len() - 1];
    let initial = stem.chars().count() == 1 && stem.chars().all(char::is_alphabetic);
    // "a.m.", "p.m.", "u.s." end a sentence only when a capitalised word follows.
    let dotted = stem.contains('.');
    let next_lower = rest
        .find(|c| !c.is_whitespace())
        .is_some_and(char::is_lowercase);
    ABBREVIATIONS.contains(&last.as_str()) || initial || (dotted && next_lower)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_on_terminal_punctuation() {
        assert_eq!(
            split("Hello there! How can I help?  We open at nine."),
            vec!["Hello there!", "How can I help?", "We open at nine."]
        );
    }

    #[test]
    fn keeps_abbreviations_numbers_and_trailing_text() {
        assert_eq!(
            split("Dr. Smith sees you at 3.30 p.m. tomorrow. Bring your card"),
            vec![
                "Dr. Smith sees you at 3.30 p.m. tomorrow.",
                "Bring your card"
            ]
        );
        assert_eq!(split("J. Doe called."), vec!["J. Doe called."]);
    }

    #[test]
    fn ignores_empty_and_punctuation_only_pieces() {
        assert!(split("   ").is_empty());
        assert!(split("... !").is_empty());
        assert_eq!(split("Yes.\nNo."), vec!["Yes.", "No."]);
    }
}
