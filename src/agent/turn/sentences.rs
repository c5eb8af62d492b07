//! Cuts the brain's streaming text into pieces the synthesiser can start on before the reply
//! is complete: the first sentence reaches TTS while the rest is still being generated.
//!
//! A piece ends at `.` `!` `?` (with any closing quotes or brackets) followed by whitespace,
//! never inside numbers ("10.30", "1,000"), after titles and common abbreviations ("Dr.",
//! "e.g."), after single-letter initials ("J. Smith"), or after dotted abbreviations followed by
//! a lowercase word ("at 9 a.m. tomorrow"). Long runs also break at `,` `;` `:` once they hold
//! enough words, and at a word boundary when they have no punctuation at all.

use super::config::SentenceConfig;

/// Titles and abbreviations after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "etc", "e.g", "i.e",
    "approx", "appt", "dept", "est", "inc", "ltd", "co", "corp", "no", "tel", "ext", "ave", "blvd",
    "rd", "apt", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun",
];

/// Abbreviations that often end a sentence too: they break only before a capitalised word.
const SENTENCE_FINAL_ABBREVIATIONS: &[&str] =
    &["etc", "a.m", "p.m", "am", "pm", "inc", "ltd", "co"];

/// Streaming sentence splitter: `push` text deltas, take finished pieces, `finish` at the end.
#[derive(Debug, Clone)]
pub struct SentenceSplitter {
    config: SentenceConfig,
    /// Text not yet handed out.
    buffer: String,
}

impl SentenceSplitter {
    pub fn new(config: SentenceConfig) -> Self {
        SentenceSplitter {
            config,
            buffer: String::new(),
        }
    }

    /// Adds a text delta and returns the pieces it completed, in order.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buffer.push_str(delta);
        let mut pieces = Vec::new();
        while let Some(end) = self.find_break(false) {
            self.take(end, &mut pieces);
        }
        pieces
    }

    /// Ends the stream: returns the pieces left, the last one unterminated.
    pub fn finish(&mut self) -> Vec<String> {
        let mut pieces = Vec::new();
        while let Some(end) = self.find_break(true) {
            self.take(end, &mut pieces);
        }
        let rest = std::mem::take(&mut self.buffer);
        let rest = rest.trim();
        if has_words(rest) {
            pieces.push(rest.to_string());
        }
        pieces
    }

    /// Splits a whole text at once.
    pub fn split_all(mut self, text: &str) -> Vec<String> {
        let mut pieces = self.push(text);
        pieces.extend(self.finish());
        pieces
    }

    /// Drops everything buffered (the reply was cancelled).
    pub fn reset(&mut self) {
        self.buffer.clear();
    }

    fn take(&mut self, end: usize, pieces: &mut Vec<String>) {
        let rest = self.buffer.split_off(end);
        let piece = std::mem::replace(&mut self.buffer, rest);
        let piece = piece.trim();
        // Stray punctuation is not spoken: dropped, whether or not the piece before it left in
        // an earlier delta, so where the stream was cut never changes the pieces.
        if has_words(piece) {
            pieces.push(piece.to_string());
        }
    }

    /// Byte offset just past the first complete piece, if the buffer holds one. At the end of
    /// the stream (`at_end`) the end of the buffer counts as whitespace.
    fn find_break(&self, at_end: bool) -> Option<usize> {
        let text = self.buffer.as_str();
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut words = 0usize;
        let mut in_word = false;
        let mut i = 0;
        while i < chars.len() {
            let (_, c) = chars[i];
            if c.is_whitespace() {
                if in_word && words >= self.config.max_words {
                    return Some(chars[i].0);
                }
                in_word = false;
                i += 1;
                continue;
            }
            if !in_word {
                in_word = true;
                words += 1;
            }
            let hard = matches!(c, '.' | '!' | '?' | '…');
            let soft = matches!(c, ',' | ';' | ':');
            if !hard && !soft {
                i += 1;
                continue;
            }
            // Extend over repeated terminators and closing quotes/brackets ("?!", "...", ".)").
            let mut j = i + 1;
            while j < chars.len() && is_terminator_tail(chars[j].1) {
                j += 1;
            }
            let end_byte = chars.get(j).map_or(text.len(), |&(b, _)| b);
            match chars.get(j) {
                None if !at_end => return None, // the next delta decides
                Some(&(_, next)) if !next.is_whitespace() => {
                    i = j;
                    continue; // "10.30", "1,000", "e.g", "U.S."
                }
                _ => {}
            }
            let breaks = if hard && c == '.' {
                match self.period_ends_sentence(text, chars[i].0, &chars[j..]) {
                    Some(ends) => ends,
                    None if at_end => true,
                    None => return None, // the next word decides ("Dr. Lee", "9 a.m. Then")
                }
            } else if hard {
                true
            } else {
                words >= self.config.soft_break_words
            };
            if breaks {
                return Some(end_byte);
            }
            i = j;
        }
        None
    }

    /// Whether the period at `dot` ends a sentence, given the characters after it; `None`
    /// while that depends on a word not yet received.
    fn period_ends_sentence(
        &self,
        text: &str,
        dot: usize,
        after: &[(usize, char)],
    ) -> Option<bool> {
        // Just past the boundary character, which may be wider than a byte (a no-break space).
        let word_start = text[..dot]
            .char_indices()
            .rev()
            .find(|&(_, c)| c.is_whitespace() || c == '(' || c == '"')
            .map_or(0, |(p, c)| p + c.len_utf8());
        let word = text[word_start..dot].to_lowercase();
        let word = word.trim_start_matches(|c: char| !c.is_alphanumeric());
        let next_word_capitalised = after
            .iter()
            .map(|&(_, c)| c)
            .find(|c| !c.is_whitespace())
            .map(|c| c.is_uppercase() || c.is_ascii_digit());
        let abbreviation = SENTENCE_FINAL_ABBREVIATIONS.contains(&word)
            || ABBREVIATIONS.contains(&word)
            || word.contains('.')
            || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic));
        if !abbreviation {
            return Some(true);
        }
        let capitalised = next_word_capitalised?;
        if SENTENCE_FINAL_ABBREVIATIONS.contains(&word) {
            return Some(capitalised);
        }
        if ABBREVIATIONS.contains(&word) {
            return Some(false);
        }
        // Initials ("J. Smith") never end a sentence; dotted abbreviations ("U.S. law") do
        // before a capitalised word.
        let single_letter = word.chars().count() == 1;
        Some(capitalised && !single_letter)
    }
}

fn is_terminator_tail(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | '…' | '"' | '\'' | ')' | ']' | '”' | '’'
    )
}

fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_stream(deltas: &[&str]) -> Vec<String> {
        let mut splitter = SentenceSplitter::new(SentenceConfig::default());
        let mut out = Vec::new();
        for d in deltas {
            out.extend(splitter.push(d));
        }
        out.extend(splitter.finish());
        out
    }

    fn split_chars(text: &str) -> Vec<String> {
        let deltas: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = deltas.iter().map(String::as_str).collect();
        split_stream(&refs)
    }

    #[test]
    fn first_sentence_is_released_before_the_reply_ends() {
        let mut splitter = SentenceSplitter::new(SentenceConfig::default());
        assert!(splitter.push("Sure, I can").is_empty());
        assert!(
            splitter.push(" help with that.").is_empty(),
            "needs the next char"
        );
        assert_eq!(splitter.push(" What"), vec!["Sure, I can help with that."]);
        assert!(splitter.push(" day suits you").is_empty());
        assert_eq!(splitter.finish(), vec!["What day suits you"]);
    }

    #[test]
    fn numbers_times_and_prices_stay_whole() {
        assert_eq!(
            split_chars("We open at 10.30 on Friday. It costs $1,250.50 in total!"),
            vec![
                "We open at 10.30 on Friday.",
                "It costs $1,250.50 in total!"
            ]
        );
        assert_eq!(
            split_chars("Your slot is 9:45 tomorrow."),
            vec!["Your slot is 9:45 tomorrow."]
        );
    }

    #[test]
    fn abbreviations_and_initials_do_not_end_sentences() {
        assert_eq!(
            split_chars("Dr. Patel can see you at 3 p.m. tomorrow. Mr. J. Smith is away."),
            vec![
                "Dr. Patel can see you at 3 p.m. tomorrow.",
                "Mr. J. Smith is away."
            ]
        );
        assert_eq!(
            split_chars("We open at 9 a.m. Please arrive early."),
            vec!["We open at 9 a.m.", "Please arrive early."]
        );
        assert_eq!(
            split_chars("Bring ID, e.g. a passport. Thanks."),
            vec!["Bring ID, e.g. a passport.", "Thanks."]
        );
    }

    #[test]
    fn questions_exclamations_quotes_and_ellipses() {
        assert_eq!(
            split_chars("Really?! He said \"come tomorrow.\" Well... maybe."),
            vec![
                "Really?!",
                "He said \"come tomorrow.\"",
                "Well...",
                "maybe."
            ]
        );
    }

    #[test]
    fn long_clauses_break_at_commas_short_ones_do_not() {
        assert_eq!(
            split_chars("Yes, we do."),
            vec!["Yes, we do."],
            "a short clause keeps its comma"
        );
        assert_eq!(
            split_chars(
                "We have openings on Monday morning and Tuesday afternoon next week, \
                 and Thursday is also possible."
            ),
            vec![
                "We have openings on Monday morning and Tuesday afternoon next week,",
                "and Thursday is also possible."
            ]
        );
    }

    #[test]
    fn unpunctuated_runs_are_cut_at_word_boundaries() {
        let text = (0..90)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let pieces = split_stream(&[&text]);
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| p.split_whitespace().count() <= 40));
        assert_eq!(pieces.join(" "), text);
    }

    #[test]
    fn splitting_does_not_depend_on_delta_boundaries() {
        let text = "Hi there! Dr. Lee is in at 10.30, so come by. Is that okay? Great.";
        let whole = split_stream(&[text]);
        assert_eq!(whole, split_chars(text));
        let words: Vec<String> = text.split_inclusive(' ').map(String::from).collect();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(whole, split_stream(&refs));
    }

    #[test]
    fn a_multi_byte_space_before_an_abbreviation_is_a_boundary() {
        assert_eq!(
            split_stream(&["Call\u{a0}us. Thanks"]),
            vec!["Call\u{a0}us.", "Thanks"]
        );
        assert_eq!(
            split_chars("See Dr.\u{2003}Lee\u{3000}now. Bye"),
            vec!["See Dr.\u{2003}Lee\u{3000}now.", "Bye"]
        );
    }

    #[test]
    fn stray_punctuation_is_dropped_wherever_the_stream_was_cut() {
        let text = "Really?\t. Yes indeed.";
        let whole = split_stream(&[text]);
        assert_eq!(whole, vec!["Really?", "Yes indeed."]);
        assert_eq!(split_stream(&["Really?\t", ". Yes indeed."]), whole);
    }

    #[test]
    fn stray_punctuation_and_whitespace_make_no_piece() {
        assert!(split_stream(&["  ", "...", " "]).is_empty());
        assert_eq!(split_stream(&["Okay. . "]), vec!["Okay."]);
    }
}
