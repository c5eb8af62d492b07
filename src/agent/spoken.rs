//! Words as speech-to-text writes them: lowercase tokens and numbers spoken as words.
//!
//! STT output is unpunctuated and inconsistent ("10am", "ten a.m.", "10:30", "ten thirty",
//! "twenty-first"), so everything that reads the caller's words goes through here first.

/// Splits an utterance into lowercase tokens. Keeps `:` inside clock times and `'` inside
/// words ("o'clock", "it's"); splits digits from a glued unit ("10am" → "10", "am") and
/// hyphenated number words ("twenty-five" → "twenty", "five"); folds "a.m."/"p.m." into
/// "am"/"pm".
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text
        .to_lowercase()
        .replace("a.m.", " am ")
        .replace("p.m.", " pm ")
        .replace('’', "'");
    let chars: Vec<char> = lower.chars().collect();
    let mut cleaned = String::with_capacity(lower.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let between_digits =
            prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        let inside_word =
            prev.is_some_and(char::is_alphanumeric) && next.is_some_and(char::is_alphanumeric);
        match c {
            c if c.is_alphanumeric() => cleaned.push(c),
            ':' | '.' if between_digits => cleaned.push(':'),
            '\'' if inside_word => cleaned.push('\''),
            _ => cleaned.push(' '),
        }
    }
    let mut tokens = Vec::new();
    for word in cleaned.split_whitespace() {
        split_glued_unit(word, &mut tokens);
    }
    tokens
}

/// "10am" → "10" "am"; "3pm" → "3" "pm"; ordinals like "5th" stay whole.
fn split_glued_unit(word: &str, out: &mut Vec<String>) {
    for unit in ["am", "pm"] {
        if let Some(number) = word.strip_suffix(unit)
            && !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit() || c == ':')
        {
            out.push(number.to_string());
            out.push(unit.to_string());
            return;
        }
    }
    out.push(word.to_string());
}

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
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
const TENS: [(&str, u32); 4] = [("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50)];
const ORDINAL_UNITS: [&str; 20] = [
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
];
const ORDINAL_TENS: [(&str, u32); 2] = [("twentieth", 20), ("thirtieth", 30)];

/// A number said as one word or digits: "ten" → 10, "42" → 42. Not ordinals.
fn cardinal_word(token: &str) -> Option<u32> {
    if !token.is_empty() && token.len() <= 4 && token.chars().all(|c| c.is_ascii_digit()) {
        return token.parse().ok();
    }
    if token == "oh" || token == "o" {
        return Some(0);
    }
    if let Some(n) = UNITS.iter().position(|u| *u == token) {
        return u32::try_from(n).ok();
    }
    TENS.iter().find(|(w, _)| *w == token).map(|(_, n)| *n)
}

/// An ordinal said as one word or digits: "fifth" → 5, "5th" → 5, "21st" → 21.
fn ordinal_word(token: &str) -> Option<u32> {
    for suffix in ["st", "nd", "rd", "th"] {
        if let Some(digits) = token.strip_suffix(suffix)
            && !digits.is_empty()
            && digits.len() <= 2
            && digits.chars().all(|c| c.is_ascii_digit())
        {
            return digits.parse().ok();
        }
    }
    if let Some(n) = ORDINAL_UNITS.iter().position(|u| *u == token) {
        return u32::try_from(n).ok();
    }
    ORDINAL_TENS
        .iter()
        .find(|(w, _)| *w == token)
        .map(|(_, n)| *n)
}

/// A number read from `tokens[at..]`, with how many tokens it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number {
    pub value: u32,
    pub len: usize,
    pub ordinal: bool,
}

/// Reads a cardinal or ordinal below 100 at `tokens[at]`: "twenty five", "twenty first",
/// "5th", "thirty". Clock times with a colon are not numbers here.
pub fn number_at(tokens: &[String], at: usize) -> Option<Number> {
    let first = tokens.get(at)?;
    if let Some(value) = ordinal_word(first) {
        return Some(Number {
            value,
            len: 1,
            ordinal: true,
        });
    }
    let value = cardinal_word(first)?;
    if first == "oh" || first == "o" {
        return None;
    }
    let is_tens_word = TENS.iter().any(|(w, _)| w == first);
    if is_tens_word && let Some(next) = tokens.get(at + 1) {
        if let Some(unit) = ordinal_word(next).filter(|n| (1..10).contains(n))
            && !next.chars().any(|c| c.is_ascii_digit())
        {
            return Some(Number {
                value: value + unit,
                len: 2,
                ordinal: true,
            });
        }
        if let Some(unit) = cardinal_word(next).filter(|n| (1..10).contains(n))
            && !next.chars().any(|c| c.is_ascii_digit())
            && next != "oh"
        {
            return Some(Number {
                value: value + unit,
                len: 2,
                ordinal: false,
            });
        }
    }
    Some(Number {
        value,
        len: 1,
        ordinal: false,
    })
}

/// The digits a token stands for when a phone number is read out: "five" → "5", "oh" → "0",
/// "555" → "555". `None` for anything else.
pub fn digits_of(token: &str) -> Option<String> {
    if !token.is_empty() && token.chars().all(|c| c.is_ascii_digit()) {
        return Some(token.to_string());
    }
    match token {
        "oh" | "o" | "zero" => Some("0".into()),
        _ => UNITS[1..10]
            .iter()
            .position(|u| *u == token)
            .map(|n| (n + 1).to_string()),
    }
}

/// Capitalises each word: "jane smith" → "Jane Smith".
pub fn title_case(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// True when two words are the same up to a typo or a plural: STT often writes "appointmant",
/// "cleanings", "resheduled". Short words must match exactly.
pub fn fuzzy_eq(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a, b) = (stem(a), stem(b));
    if a == b {
        return true;
    }
    let shorter = a.chars().count().min(b.chars().count());
    let allowed = match shorter {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    };
    allowed > 0 && edit_distance(&a, &b) <= allowed
}

/// A crude English stem so "cleanings", "cleaning" and "cleaned", or "close" and "closes",
/// meet: drops common suffixes, then a final "e".
pub fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s");
    let mut base = w;
    for suffix in ["ings", "ing", "ies", "es", "ed", "s"] {
        if let Some(b) = w.strip_suffix(suffix)
            && b.chars().count() >= 3
        {
            if suffix == "ies" {
                return format!("{b}y");
            }
            base = b;
            break;
        }
    }
    match base.strip_suffix('e') {
        Some(b) if b.chars().count() >= 3 => b.to_string(),
        _ => base.to_string(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokenize(s)
    }

    #[test]
    fn tokenize_handles_stt_spellings() {
        assert_eq!(toks("At 10am, please!"), ["at", "10", "am", "please"]);
        assert_eq!(toks("ten a.m. o'clock"), ["ten", "am", "o'clock"]);
        assert_eq!(toks("2:30 PM"), ["2:30", "pm"]);
        assert_eq!(toks("10.30"), ["10:30"]);
        assert_eq!(toks("twenty-first"), ["twenty", "first"]);
        assert_eq!(toks("It’s Jane"), ["it's", "jane"]);
    }

    #[test]
    fn numbers_in_words_and_digits() {
        let t = toks("twenty five 5th twenty first thirty 12 oh");
        assert_eq!(number_at(&t, 0).map(|n| (n.value, n.len)), Some((25, 2)));
        assert_eq!(
            number_at(&t, 2).map(|n| (n.value, n.ordinal)),
            Some((5, true))
        );
        assert_eq!(
            number_at(&t, 3).map(|n| (n.value, n.ordinal)),
            Some((21, true))
        );
        assert_eq!(number_at(&t, 5).map(|n| n.value), Some(30));
        assert_eq!(number_at(&t, 6).map(|n| n.value), Some(12));
        assert_eq!(number_at(&t, 7), None);
    }

    #[test]
    fn fuzzy_matching_tolerates_typos_and_plurals() {
        assert!(fuzzy_eq("cleanings", "cleaning"));
        assert!(fuzzy_eq("appointmant", "appointment"));
        assert!(fuzzy_eq("whitening", "whitenning"));
        assert!(!fuzzy_eq("book", "look"));
        assert!(!fuzzy_eq("filling", "billing"));
        assert_eq!(stem("closes"), stem("close"));
        assert_eq!(stem("closed"), stem("close"));
        assert_eq!(stem("opening"), "open");
    }

    #[test]
    fn phone_digits_from_words() {
        assert_eq!(digits_of("five").as_deref(), Some("5"));
        assert_eq!(digits_of("oh").as_deref(), Some("0"));
        assert_eq!(digits_of("555").as_deref(), Some("555"));
        assert_eq!(digits_of("ten"), None);
    }
}
