//! What Whisper says about silence is not speech: it writes annotations (`[BLANK_AUDIO]`,
//! `(music)`) and, on near-silent audio, stock phrases from its training subtitles.

use crate::agent::spoken::digits_of;

/// 20 ms frames louder than this RMS (about −46 dBFS) count as voiced.
const VOICED_RMS: f64 = 160.0;
/// Segments with less voiced audio than this are not decoded at all.
pub const MIN_VOICED_FRAMES: usize = 5;
/// Below this much voiced audio, Whisper's favourite phantom phrases are dropped.
const PHANTOM_MAX_VOICED_FRAMES: usize = 20;
/// Whisper's own estimate that a segment holds no speech, above which its words are dropped.
pub const NO_SPEECH_PROB: f32 = 0.6;

const PHANTOMS: &[&str] = &[
    "thank you",
    "thanks for watching",
    "thank you for watching",
    "you",
    "bye",
    "so",
    "okay",
];

/// Number of voiced 20 ms frames in 16 kHz `samples`.
pub fn voiced_frames(samples: &[i16]) -> usize {
    samples
        .chunks(320)
        .filter(|c| {
            let energy: f64 = c.iter().map(|s| f64::from(*s).powi(2)).sum();
            (energy / c.len() as f64).sqrt() > VOICED_RMS
        })
        .count()
}

/// Removes bracketed annotations and collapses whitespace.
pub fn strip_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut starred = false;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            '*' if depth == 0 => starred = !starred,
            _ if depth == 0 && !starred => out.push(c),
            _ => {}
        }
    }
    let mut joined = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for p in [" .", " ,", " ?", " !"] {
        joined = joined.replace(p, &p[1..]);
    }
    joined
}

fn normalised(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Greedy decoding can loop, writing the same sentence again and again after the real words
/// (ended by the token limit, often mid-sentence): keeps the first of each run of repeats and
/// drops a trailing fragment of the sentence before it.
pub fn collapse_repeats(text: &str) -> String {
    let mut sentences: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '?' | '!') {
            sentences.push(text[start..=i].trim());
            start = i + c.len_utf8();
        }
    }
    let rest = text[start..].trim();
    let mut kept: Vec<&str> = Vec::new();
    for s in sentences {
        if kept
            .last()
            .is_none_or(|last| normalised(last) != normalised(s))
        {
            kept.push(s);
        }
    }
    let fragment = normalised(rest);
    let repeats_last = kept
        .last()
        .is_some_and(|last| !fragment.is_empty() && normalised(last).starts_with(&fragment));
    if !rest.is_empty() && !repeats_last {
        kept.push(rest);
    }
    kept.retain(|s| !s.is_empty());
    kept.join(" ")
}

/// Longest run of words looked for as the unit of a loop.
const MAX_LOOP_WORDS: usize = 8;

/// A digit of a number read out ("five", "5", "double"): repeating those is how "five five
/// five" is said. A group of digits said again and again ("9876, 9876, 9876") is a loop.
fn is_digit_word(key: &str) -> bool {
    let group = key.len() > 1 && key.chars().all(|c| c.is_ascii_digit());
    (digits_of(key).is_some() && !group) || matches!(key, "double" | "triple")
}

/// Greedy decoding also loops on a word or a phrase ("Hi Hi Hi Hi …", "my number is 400 and
/// my number is 400 and my number …"): a run of three or more of the same one or two words,
/// or of two or more of the same longer phrase, keeps the first, and a fragment of the phrase
/// the loop ends on (cut by the token limit) goes too. Digits read out one by one
/// ("five five five five") are never a loop.
pub fn collapse_word_loops(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let keys: Vec<String> = words.iter().map(|w| normalised(w)).collect();
    let mut kept: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let looped = (1..=MAX_LOOP_WORDS).find_map(|n| {
            let unit = keys.get(i..i + n)?;
            if unit.iter().all(|k| is_digit_word(k)) {
                return None;
            }
            let runs = keys[i..]
                .chunks_exact(n)
                .take_while(|chunk| *chunk == unit)
                .count();
            let enough = if n <= 2 { 3 } else { 2 };
            (runs >= enough).then_some((n, runs))
        });
        match looped {
            Some((n, runs)) => {
                kept.extend(&words[i..i + n]);
                i += n * runs;
                let rest = &keys[i..];
                if rest.len() < n && keys[i - n..i].starts_with(rest) {
                    i = words.len();
                }
            }
            None => {
                kept.push(words[i]);
                i += 1;
            }
        }
    }
    kept.join(" ")
}

/// The words of a decoded segment, or empty when they are Whisper's noise.
pub fn clean(text: &str, voiced_frames: usize) -> String {
    let text = collapse_word_loops(&collapse_repeats(&strip_annotations(text)));
    let words = normalised(&text);
    if words.is_empty() {
        return String::new();
    }
    if voiced_frames < PHANTOM_MAX_VOICED_FRAMES && PHANTOMS.contains(&words.as_str()) {
        return String::new();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_go_words_stay() {
        assert_eq!(strip_annotations(" [BLANK_AUDIO]"), "");
        assert_eq!(
            strip_annotations("(music) Hello  there [laughs]."),
            "Hello there."
        );
        assert_eq!(
            strip_annotations("*sighs* I'd like a table."),
            "I'd like a table."
        );
        assert_eq!(
            strip_annotations("Book it for 3 p.m."),
            "Book it for 3 p.m."
        );
    }

    #[test]
    fn repeated_sentences_collapse_to_one() {
        assert_eq!(
            collapse_repeats("Yes, that works for me. Yes, that works for me. Yes, that works"),
            "Yes, that works for me."
        );
        assert_eq!(
            collapse_repeats("No. No. I said no, thanks. Bye"),
            "No. I said no, thanks. Bye"
        );
        assert_eq!(collapse_repeats("Book me in at nine"), "Book me in at nine");
    }

    #[test]
    fn looping_words_collapse_to_one() {
        assert_eq!(collapse_word_loops("Hi Hi Hi Hi Hi Hi Hi"), "Hi");
        assert_eq!(
            collapse_word_loops("Hello, hello. hello hello what are your hours"),
            "Hello, what are your hours"
        );
        assert_eq!(
            collapse_word_loops("I want to I want to I want to book"),
            "I want to book"
        );
        // Two in a row is how people talk.
        assert_eq!(collapse_word_loops("no no thanks"), "no no thanks");
        assert_eq!(
            collapse_word_loops("My number is 400 and my number is 400 and my number is 400"),
            "My number is 400 and"
        );
        assert_eq!(
            collapse_word_loops("Can I book a cleaning? Can I book a cleaning? For Friday"),
            "Can I book a cleaning? For Friday"
        );
        // A number read out repeats digits.
        assert_eq!(
            collapse_word_loops("five five five five, one two one two one two"),
            "five five five five, one two one two one two"
        );
        assert_eq!(
            collapse_word_loops("5 5 5 5, 1 2 1 2 1 2"),
            "5 5 5 5, 1 2 1 2 1 2"
        );
        // A group of digits said again and again is not.
        assert_eq!(
            collapse_word_loops("No, my number is 555. 9876, 9876, 9876, 9876, 9876,"),
            "No, my number is 555. 9876,"
        );
        assert_eq!(collapse_word_loops(""), "");
    }

    #[test]
    fn phantom_phrases_are_dropped_only_on_near_silence() {
        assert_eq!(clean(" Thank you.", 3), "");
        assert_eq!(clean("[BLANK_AUDIO]", 40), "");
        assert_eq!(clean(" Thank you.", 60), "Thank you.");
        assert_eq!(
            clean("Thank you, see you Monday.", 3),
            "Thank you, see you Monday."
        );
    }

    #[test]
    fn voiced_frames_count_loud_frames() {
        let mut samples = vec![0i16; 320 * 10];
        samples[320 * 2..320 * 5].fill(3000);
        samples[320 * 7..320 * 8]
            .iter_mut()
            .enumerate()
            .for_each(|(i, s)| *s = if i % 2 == 0 { 50 } else { -50 });
        assert_eq!(voiced_frames(&samples), 3);
    }
}
