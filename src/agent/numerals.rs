//! Numbers a caller said as words, written in digits where they are a phone number or a time:
//! "four one five, five five five, nine eight seven six" → "4155559876", "ten thirty" →
//! "10:30", "at three in the afternoon" → "at 3 in the afternoon".
//!
//! Recognisers write the same number as words one time and as digits the next ("four one five
//! 555"), and a brain (or a person reading the transcript) reads digits best. Everything else
//! is left as it was said: "two people" stays words, punctuation and case stay. Pure, so the
//! session can run it on every recognised segment and the WER harness on both sides.

/// Digit words of a phone number. "oh" counts only once a number has begun.
const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const TEENS: [&str; 10] = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
/// Digits in a row before a run of them is read as a number given out.
const MIN_RUN_DIGITS: usize = 3;
/// Words after which a lone hour is a time: "at three", "until five".
const TIME_BEFORE: &[&str] = &["at", "around", "until", "till", "after", "before", "by"];
/// Words that may follow such an hour: "at three tomorrow", "at two or three".
const TIME_AFTER: &[&str] = &[
    "or", "and", "tomorrow", "today", "tonight", "on", "this", "next", "then", "please", "sharp",
    "works", "is", "would",
];
const MERIDIEM: &[&str] = &["am", "pm", "a.m", "p.m", "o'clock", "oclock"];
const PARTS_OF_DAY: &[&str] = &["morning", "afternoon", "evening"];

/// One word of the text, or one part of a hyphenated number ("forty-five").
struct Piece<'a> {
    text: &'a str,
    key: String,
    /// Trailing punctuation, kept on whatever replaces the piece.
    punct: &'a str,
    /// Followed by another part of the same hyphenated word.
    hyphen: bool,
}

impl Piece<'_> {
    fn ends_sentence(&self) -> bool {
        self.punct.contains(['.', '?', '!'])
    }
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let core = word.trim_end_matches([',', '.', '?', '!', ';', ':']);
        let punct = &word[core.len()..];
        let parts: Vec<&str> = core.split('-').collect();
        let numeric = parts.len() > 1
            && parts.iter().all(|p| {
                let key = p.to_lowercase();
                is_all_digits(&key) || digit(&key).is_some() || tens(&key).is_some()
            });
        let parts = if numeric { parts } else { vec![core] };
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            out.push(Piece {
                text: part,
                key: part.to_lowercase().replace('’', "'"),
                punct: if i == last { punct } else { "" },
                hyphen: i < last,
            });
        }
    }
    out
}

fn is_all_digits(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_digit())
}

fn digit(key: &str) -> Option<u32> {
    DIGITS.iter().position(|d| *d == key).map(|n| n as u32)
}

fn teen(key: &str) -> Option<u32> {
    TEENS.iter().position(|d| *d == key).map(|n| n as u32 + 10)
}

fn tens(key: &str) -> Option<u32> {
    TENS.iter()
        .position(|d| *d == key)
        .map(|n| n as u32 * 10 + 20)
}

/// A number from 10 to 99 at `p[i]` ("twelve", "thirty", "thirty four"), with pieces used.
fn two_digits(p: &[Piece], i: usize) -> Option<(u32, usize)> {
    let key = &p.get(i)?.key;
    if let Some(n) = teen(key) {
        return Some((n, 1));
    }
    let n = tens(key)?;
    match p.get(i + 1).and_then(|next| digit(&next.key)) {
        Some(unit) if unit > 0 && !p[i].ends_sentence() => Some((n + unit, 2)),
        _ => Some((n, 1)),
    }
}

/// A run of digits read out from `p[i]`: its end and digits, when it holds at least
/// `MIN_RUN_DIGITS` digits in three or more pieces and some of them were words.
fn digit_run(p: &[Piece], i: usize) -> Option<(usize, String)> {
    let mut digits = String::new();
    let mut items = 0;
    let mut words = false;
    let mut j = i;
    while let Some(piece) = p.get(j) {
        let key = piece.key.as_str();
        let mut used = 1;
        if let Some(d) = digit(key).or((key == "oh" && !digits.is_empty()).then_some(0)) {
            digits.push(char::from_digit(d, 10)?);
            words = true;
        } else if is_all_digits(key) {
            digits.push_str(key);
        } else if let ("double" | "triple", Some(d)) =
            (key, p.get(j + 1).and_then(|n| digit(&n.key)))
        {
            let times = if key == "double" { 2 } else { 3 };
            digits.extend(std::iter::repeat_n(char::from_digit(d, 10)?, times));
            used = 2;
            words = true;
        } else if key == "hundred" && j > i && digit(&p[j - 1].key).is_some() {
            digits.push_str("00");
            words = true;
        } else if let Some((n, len)) = two_digits(p, j).filter(|_| digits.len() >= MIN_RUN_DIGITS) {
            digits.push_str(&n.to_string());
            used = len;
            words = true;
        } else {
            break;
        }
        items += 1;
        j += used;
        if p[j - 1].ends_sentence() {
            break;
        }
    }
    (words && items >= 3 && digits.len() >= MIN_RUN_DIGITS).then_some((j, digits))
}

/// An hour from one to twelve said as a word.
fn hour(key: &str) -> Option<u32> {
    digit(key)
        .filter(|h| *h > 0)
        .or_else(|| teen(key).filter(|h| *h <= 12))
}

/// A clock time at `p[i]`: its end and how it is written.
fn time_at(p: &[Piece], i: usize) -> Option<(usize, String)> {
    let h = hour(&p[i].key)?;
    let next = p.get(i + 1).filter(|_| !p[i].ends_sentence());
    let next_key = next.map(|n| n.key.as_str());
    // "ten thirty", "ten oh five", "ten forty-five".
    if let Some(key) = next_key {
        if key == "oh"
            && let Some(m) = p.get(i + 2).and_then(|m| digit(&m.key)).filter(|m| *m > 0)
            && !p[i + 1].ends_sentence()
        {
            return Some((i + 3, format!("{h}:0{m}")));
        }
        if let Some((m, len)) = two_digits(p, i + 1).filter(|(m, _)| *m < 60) {
            return Some((i + 1 + len, format!("{h}:{m:02}")));
        }
    }
    let hour_only = Some((i + 1, h.to_string()));
    // "three pm", "three o'clock", "three in the afternoon".
    if next_key.is_some_and(|k| MERIDIEM.contains(&k)) {
        return hour_only;
    }
    let part_of_day = p.get(i + 3).map(|k| k.key.as_str());
    if next_key == Some("in")
        && p.get(i + 2).is_some_and(|k| k.key == "the")
        && part_of_day.is_some_and(|k| PARTS_OF_DAY.contains(&k))
    {
        return hour_only;
    }
    // "at three", "at three tomorrow".
    let after_time_word = i > 0 && TIME_BEFORE.contains(&p[i - 1].key.as_str());
    let nothing_else = next_key.is_none_or(|k| TIME_AFTER.contains(&k)) || !p[i].punct.is_empty();
    (after_time_word && nothing_else).then_some((i + 1, h.to_string()))
}

/// `text` with spoken phone numbers and clock times in digits.
pub fn digits_for_numbers(text: &str) -> String {
    let p = pieces(text);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < p.len() {
        let (end, written) = match digit_run(&p, i).or_else(|| time_at(&p, i)) {
            Some((end, digits)) => (end, digits + p[end - 1].punct),
            None => (i + 1, format!("{}{}", p[i].text, p[i].punct)),
        };
        out.push_str(&written);
        if end < p.len() {
            out.push(if p[end - 1].hyphen { '-' } else { ' ' });
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::digits_for_numbers as n;

    #[test]
    fn phone_numbers_read_out_become_digits() {
        assert_eq!(
            n("My number is four one five, five five five, nine eight seven six."),
            "My number is 4155559876."
        );
        assert_eq!(n("It's 415 555 nine eight seven six"), "It's 4155559876");
        assert_eq!(n("six five oh, double two one"), "650221");
        assert_eq!(n("five five five, twelve thirty-four"), "5551234");
        assert_eq!(n("it's five five five, four hundred"), "it's 555400");
        assert_eq!(n("I need four hundred"), "I need four hundred");
    }

    #[test]
    fn clock_times_become_digits() {
        assert_eq!(
            n("Can I come next Tuesday at three in the afternoon?"),
            "Can I come next Tuesday at 3 in the afternoon?"
        );
        assert_eq!(n("Thursday at ten thirty?"), "Thursday at 10:30?");
        assert_eq!(n("ten oh five works"), "10:05 works");
        assert_eq!(n("at eleven forty-five"), "at 11:45");
        assert_eq!(n("Friday at ten."), "Friday at 10.");
        assert_eq!(n("two pm or three o'clock"), "2 pm or 3 o'clock");
        assert_eq!(n("at three tomorrow"), "at 3 tomorrow");
    }

    #[test]
    fn other_numbers_and_words_stay_as_said() {
        for said in [
            "A table for two people, please.",
            "I have one question.",
            "at one point I was sure",
            "No, that's all. Thank you.",
            "It costs twenty-five dollars",
            "Oh, five is fine. Nine?",
            "one two",
            "",
        ] {
            assert_eq!(n(said), said);
        }
    }

    #[test]
    fn digits_already_written_stay() {
        assert_eq!(n("It's 415-555-9876."), "It's 415-555-9876.");
        assert_eq!(n("At 3:30 pm"), "At 3:30 pm");
    }
}
