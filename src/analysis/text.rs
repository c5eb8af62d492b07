//! Word-level helpers shared by the analysers.

/// Lowercase word tokens; apostrophes kept ("don't"), other punctuation dropped. Clause breaks
/// (`,` `.` `;` `!` `?` `:`) are returned as `None` so rules can stop at them.
pub fn tokens(text: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '\'' || c == '’' {
            word.extend(c.to_lowercase().map(|c| if c == '’' { '\'' } else { c }));
            continue;
        }
        if !word.is_empty() {
            out.push(Some(std::mem::take(&mut word)));
        }
        if matches!(c, ',' | '.' | ';' | '!' | '?' | ':') {
            out.push(None);
        }
    }
    if !word.is_empty() {
        out.push(Some(word));
    }
    out
}

/// Just the words.
pub fn words(text: &str) -> Vec<String> {
    tokens(text).into_iter().flatten().collect()
}

/// Whether `text` contains `phrase` as whole words (phrase given lowercase, space-separated).
pub fn has_phrase(words: &[String], phrase: &str) -> bool {
    let parts: Vec<&str> = phrase.split(' ').collect();
    words
        .windows(parts.len())
        .any(|w| w.iter().zip(&parts).all(|(a, b)| a == b))
}

/// Function words that carry no topic.
pub const STOPWORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does",
    "doing", "don't", "for", "from", "get", "go", "going", "got", "had", "has", "have", "having",
    "he", "her", "here", "hi", "hello", "him", "his", "how", "i", "i'd", "i'll", "i'm", "i've",
    "if", "in", "into", "is", "it", "it's", "its", "just", "let", "like", "me", "my", "need", "no",
    "not", "of", "oh", "ok", "okay", "on", "one", "or", "our", "out", "please", "so", "some",
    "sure", "than", "thank", "thanks", "that", "that's", "the", "their", "them", "then", "there",
    "these", "they", "this", "to", "too", "um", "uh", "up", "us", "very", "want", "was", "we",
    "we're", "well", "were", "what", "when", "where", "which", "who", "will", "with", "would",
    "yeah", "yes", "you", "you're", "your",
];

pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_apostrophes_and_mark_clause_breaks() {
        assert_eq!(
            tokens("I don’t know, really."),
            vec![
                Some("i".into()),
                Some("don't".into()),
                Some("know".into()),
                None,
                Some("really".into()),
                None
            ]
        );
        let w = words("How much does a cleaning cost?");
        assert!(has_phrase(&w, "how much"));
        assert!(!has_phrase(&w, "much how"));
    }
}
