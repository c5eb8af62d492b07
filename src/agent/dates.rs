//! Dates and times in words, as callers say them: "Friday at ten", "tomorrow at 3 pm",
//! "next Tuesday morning", "March 5th at 2:30", "half past nine". Resolved against the day the
//! call takes place; said back naturally ("Friday, March 27 at 10 AM").
//!
//! Without "am"/"pm" a bare hour is read in business hours: 7–11 are mornings, 12 is noon,
//! 1–6 are afternoons ("ten" is 10:00, "three" is 15:00).

use chrono::{Datelike, Days, NaiveDate, NaiveTime, Timelike, Weekday};

use super::spoken::{Number, number_at};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartOfDay {
    Morning,
    Afternoon,
    Evening,
}

impl PartOfDay {
    pub fn as_words(self) -> &'static str {
        match self {
            PartOfDay::Morning => "morning",
            PartOfDay::Afternoon => "afternoon",
            PartOfDay::Evening => "evening",
        }
    }
}

/// What one utterance said about when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct When {
    pub date: Option<NaiveDate>,
    pub time: Option<NaiveTime>,
    pub part_of_day: Option<PartOfDay>,
}

impl When {
    pub fn is_empty(&self) -> bool {
        self.date.is_none() && self.time.is_none() && self.part_of_day.is_none()
    }
}

/// The result of reading an utterance: what it said and which tokens said it.
#[derive(Debug, Clone)]
pub struct WhenParse {
    pub when: When,
    pub used: Vec<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meridiem {
    Am,
    Pm,
}

/// A clock time as said, before business hours and the part of day decide am or pm.
#[derive(Debug, Clone, Copy)]
struct SaidTime {
    hour: u32,
    minute: u32,
    meridiem: Option<Meridiem>,
}

/// Reads dates and times from `tokens` (see `spoken::tokenize`), ignoring tokens marked in
/// `skip` (already read as something else, such as a phone number). `expect_time` says the
/// agent just asked for a time, so a bare number is an hour.
pub fn parse_when(
    tokens: &[String],
    skip: &[bool],
    today: NaiveDate,
    expect_time: bool,
) -> WhenParse {
    let mut used = vec![false; tokens.len()];
    let mut when = When::default();
    let mut said_time: Option<SaidTime> = None;
    let words = Words { tokens, skip };
    let word = |i: usize| words.get(i);
    let mut i = 0;
    while i < tokens.len() {
        if word(i).is_empty() {
            i += 1;
            continue;
        }
        if let Some((date, len)) = date_at(&words, i, today) {
            when.date = Some(date);
            mark(&mut used, i, len);
            if word(i) == "tonight" {
                when.part_of_day = Some(PartOfDay::Evening);
            }
            i += len;
            continue;
        }
        if let Some(part) = part_of_day(word(i)) {
            when.part_of_day = Some(part);
            used[i] = true;
            i += 1;
            continue;
        }
        let after_date = i > 0 && used[i - 1];
        let cue = matches!(
            word(i.wrapping_sub(1)),
            "at" | "around" | "about" | "by" | "say"
        );
        if let Some((time, len)) = time_at(&words, i, cue || after_date || expect_time) {
            said_time = Some(time);
            mark(&mut used, i, len);
            if cue {
                used[i - 1] = true;
            }
            i += len;
            continue;
        }
        i += 1;
    }
    when.time = said_time.and_then(|t| resolve_time(t, when.part_of_day));
    WhenParse { when, used }
}

/// The tokens with the skipped ones blanked out.
struct Words<'a> {
    tokens: &'a [String],
    skip: &'a [bool],
}

impl<'a> Words<'a> {
    /// The token at `i`, or "" when past the end or skipped.
    fn get(&self, i: usize) -> &'a str {
        match self.tokens.get(i) {
            Some(t) if !self.skip.get(i).copied().unwrap_or(false) => t.as_str(),
            _ => "",
        }
    }

    /// A number at `i` whose first token is not skipped.
    fn number(&self, i: usize) -> Option<Number> {
        if self.get(i).is_empty() {
            return None;
        }
        number_at(self.tokens, i)
    }
}

fn mark(used: &mut [bool], from: usize, len: usize) {
    for u in used.iter_mut().skip(from).take(len) {
        *u = true;
    }
}

fn part_of_day(word: &str) -> Option<PartOfDay> {
    match word {
        "morning" | "mornings" => Some(PartOfDay::Morning),
        "afternoon" | "afternoons" | "lunchtime" => Some(PartOfDay::Afternoon),
        "evening" | "evenings" | "tonight" => Some(PartOfDay::Evening),
        _ => None,
    }
}

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word {
        "monday" | "mon" | "mondays" => Weekday::Mon,
        "tuesday" | "tues" | "tue" | "tuesdays" => Weekday::Tue,
        "wednesday" | "wed" | "weds" | "wednesdays" => Weekday::Wed,
        "thursday" | "thurs" | "thu" | "thursdays" => Weekday::Thu,
        "friday" | "fri" | "fridays" => Weekday::Fri,
        "saturday" | "sat" | "saturdays" => Weekday::Sat,
        "sunday" | "sun" | "sundays" => Weekday::Sun,
        _ => return None,
    })
}

fn month(word: &str) -> Option<u32> {
    Some(match word {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sept" | "sep" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    })
}

/// A date starting at `tokens[i]`, with the number of tokens it used.
fn date_at(words: &Words, i: usize, today: NaiveDate) -> Option<(NaiveDate, usize)> {
    let word = |i: usize| words.get(i);
    match word(i) {
        "today" | "tonight" => return Some((today, 1)),
        "tomorrow" => return today.checked_add_days(Days::new(1)).map(|d| (d, 1)),
        "day" if word(i + 1) == "after" && word(i + 2) == "tomorrow" => {
            return today.checked_add_days(Days::new(2)).map(|d| (d, 3));
        }
        "this" | "coming" | "next" => {
            let modifier = word(i);
            let offset = if modifier == "this" && word(i + 1) == "coming" {
                2
            } else {
                1
            };
            if let Some(day) = weekday(word(i + offset)) {
                let date = if modifier == "next" {
                    next_week(today, day)
                } else {
                    upcoming(today, day, modifier == "this" && offset == 1)
                };
                // "Friday the 27th": the explicit day of month wins over the weekday.
                return Some(
                    date_of_month_after(words, i + offset + 1, today)
                        .map(|(d, len)| (d, offset + 1 + len))
                        .unwrap_or((date, offset + 1)),
                );
            }
        }
        "in" => {
            if let Some(n) = words.number(i + 1).filter(|n| !n.ordinal && n.value <= 60)
                && matches!(word(i + 1 + n.len), "days" | "day")
            {
                return today
                    .checked_add_days(Days::new(u64::from(n.value)))
                    .map(|d| (d, n.len + 2));
            }
            if word(i + 1) == "a" && word(i + 2) == "week" {
                return today.checked_add_days(Days::new(7)).map(|d| (d, 3));
            }
        }
        _ => {}
    }
    if let Some(day) = weekday(word(i)) {
        if let Some((date, len)) = date_of_month_after(words, i + 1, today) {
            return Some((date, 1 + len));
        }
        return Some((upcoming(today, day, false), 1));
    }
    if let Some(m) = month(word(i)) {
        // "march 5th", "march the fifth", "march 5"
        let at = if word(i + 1) == "the" { i + 2 } else { i + 1 };
        if let Some(n) = words.number(at).filter(|n| (1..=31).contains(&n.value)) {
            return month_day(today, m, n.value).map(|d| (d, at - i + n.len));
        }
        return None;
    }
    // "the fifth of march", "5th of march", "5 march", "the 5th"
    let start = if word(i) == "the" { i + 1 } else { i };
    let n = words
        .number(start)
        .filter(|n| (1..=31).contains(&n.value))?;
    let after = start + n.len;
    let month_at = if word(after) == "of" {
        after + 1
    } else {
        after
    };
    if let Some(m) = month(word(month_at)) {
        return month_day(today, m, n.value).map(|d| (d, month_at + 1 - i));
    }
    if n.ordinal && start > i {
        return day_of_month(today, n.value).map(|d| (d, start - i + n.len));
    }
    None
}

/// "the 27th" right after a weekday.
fn date_of_month_after(words: &Words, at: usize, today: NaiveDate) -> Option<(NaiveDate, usize)> {
    let word = |i: usize| words.get(i);
    let start = if word(at) == "the" { at + 1 } else { at };
    let n = words
        .number(start)
        .filter(|n| n.ordinal && (1..=31).contains(&n.value))?;
    let after = start + n.len;
    let month_at = if word(after) == "of" {
        after + 1
    } else {
        after
    };
    if let Some(m) = month(word(month_at)) {
        return month_day(today, m, n.value).map(|d| (d, month_at + 1 - at));
    }
    day_of_month(today, n.value).map(|d| (d, after - at))
}

/// The next `day` after today, or today itself when `include_today` ("this Friday" on a Friday).
fn upcoming(today: NaiveDate, day: Weekday, include_today: bool) -> NaiveDate {
    let ahead = (day.num_days_from_monday() + 7 - today.weekday().num_days_from_monday()) % 7;
    let ahead = if ahead == 0 && !include_today {
        7
    } else {
        ahead
    };
    today + Days::new(u64::from(ahead))
}

/// "next Tuesday": the Tuesday of next week (weeks start on Monday).
fn next_week(today: NaiveDate, day: Weekday) -> NaiveDate {
    let to_monday = 7 - today.weekday().num_days_from_monday();
    today + Days::new(u64::from(to_monday + day.num_days_from_monday()))
}

/// Month and day with no year: this year, or next year once the date has passed.
fn month_day(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day);
    match this_year {
        Some(d) if d >= today => Some(d),
        _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day),
    }
}

/// "the 5th": this month, or the next month that has that day once it has passed.
fn day_of_month(today: NaiveDate, day: u32) -> Option<NaiveDate> {
    let mut year = today.year();
    let mut month = today.month();
    for _ in 0..3 {
        if let Some(d) = NaiveDate::from_ymd_opt(year, month, day)
            && d >= today
        {
            return Some(d);
        }
        month += 1;
        if month > 12 {
            month = 1;
            year += 1;
        }
    }
    None
}

/// A clock time starting at `tokens[i]`. Bare numbers count only with `context` (after "at",
/// after a date, or when the agent asked for a time) so "two people" is not two o'clock.
fn time_at(words: &Words, i: usize, context: bool) -> Option<(SaidTime, usize)> {
    let word = |i: usize| words.get(i);
    let w = word(i);
    if w == "noon" || w == "midday" {
        return Some((said(12, 0, Some(Meridiem::Pm)), 1));
    }
    if w == "twelve" && word(i + 1) == "noon" {
        return Some((said(12, 0, Some(Meridiem::Pm)), 2));
    }
    // "half past nine", "quarter past ten", "quarter to three"
    let relative = match (w, word(i + 1), word(i + 2)) {
        ("half", "past", _) => Some((30, true, 2)),
        ("quarter", "past", _) => Some((15, true, 2)),
        ("quarter", "to", _) => Some((45, false, 2)),
        ("a", "quarter", "past") => Some((15, true, 3)),
        ("a", "quarter", "to") => Some((45, false, 3)),
        _ => None,
    };
    if let Some((minutes, past, skip)) = relative {
        let n = words
            .number(i + skip)
            .filter(|n| !n.ordinal && (1..=12).contains(&n.value))?;
        let hour = match (past, n.value) {
            (true, h) => h,
            (false, 1) => 12,
            (false, h) => h - 1,
        };
        let (meridiem, suffix) = meridiem_at(words, i + skip + n.len);
        return Some((said(hour, minutes, meridiem), skip + n.len + suffix));
    }
    // "2:30", "14:00"
    if let Some((h, m)) = w.split_once(':') {
        let hour: u32 = h.parse().ok()?;
        let minute: u32 = m.parse().ok()?;
        if hour > 23 || minute > 59 || m.len() != 2 {
            return None;
        }
        let (meridiem, suffix) = meridiem_at(words, i + 1);
        return Some((said(hour, minute, meridiem), 1 + suffix));
    }
    // "ten", "ten thirty", "ten oh five", "10 am", "three o'clock"
    let n = words
        .number(i)
        .filter(|n| !n.ordinal && (1..=12).contains(&n.value))?;
    let mut len = n.len;
    let mut minute = 0;
    if word(i + len) == "oh"
        && let Some(m) = words
            .number(i + len + 1)
            .filter(|m| !m.ordinal && m.value < 10)
    {
        minute = m.value;
        len += 1 + m.len;
    } else if let Some(m) = words
        .number(i + len)
        .filter(|m| !m.ordinal && (10..60).contains(&m.value))
    {
        minute = m.value;
        len += m.len;
    }
    let (meridiem, suffix) = meridiem_at(words, i + len);
    let oclock = suffix > 0 && meridiem.is_none();
    if !context && meridiem.is_none() && !oclock && minute == 0 {
        return None;
    }
    Some((said(n.value, minute, meridiem), len + suffix))
}

fn said(hour: u32, minute: u32, meridiem: Option<Meridiem>) -> SaidTime {
    SaidTime {
        hour,
        minute,
        meridiem,
    }
}

/// "am", "pm", "a m", "p m", "o'clock" after a number, with the tokens used.
fn meridiem_at(words: &Words, i: usize) -> (Option<Meridiem>, usize) {
    match (words.get(i), words.get(i + 1)) {
        ("am", _) => (Some(Meridiem::Am), 1),
        ("pm", _) => (Some(Meridiem::Pm), 1),
        ("a", "m") => (Some(Meridiem::Am), 2),
        ("p", "m") => (Some(Meridiem::Pm), 2),
        ("o'clock" | "oclock", _) => (None, 1),
        ("o", "clock") => (None, 2),
        _ => (None, 0),
    }
}

/// Turns a said hour into a clock time: explicit am/pm first, then the part of day, then
/// business hours.
fn resolve_time(t: SaidTime, part: Option<PartOfDay>) -> Option<NaiveTime> {
    let hour = if t.hour > 12 {
        t.hour
    } else {
        match (t.meridiem, part) {
            (Some(Meridiem::Am), _) => t.hour % 12,
            (Some(Meridiem::Pm), _) => t.hour % 12 + 12,
            (None, Some(PartOfDay::Morning)) => t.hour % 12,
            (None, Some(PartOfDay::Afternoon | PartOfDay::Evening)) if t.hour < 12 => t.hour + 12,
            (None, _) if (1..=6).contains(&t.hour) => t.hour + 12,
            (None, _) => t.hour,
        }
    };
    NaiveTime::from_hms_opt(hour, t.minute, 0)
}

/// "Friday, March 27".
pub fn say_date(date: NaiveDate) -> String {
    date.format("%A, %B %-d").to_string()
}

/// "10 AM", "2:30 PM", "noon".
pub fn say_time(time: NaiveTime) -> String {
    if time.hour() == 12 && time.minute() == 0 {
        return "noon".into();
    }
    let suffix = if time.hour() < 12 { "AM" } else { "PM" };
    let hour = match time.hour() % 12 {
        0 => 12,
        h => h,
    };
    if time.minute() == 0 {
        format!("{hour} {suffix}")
    } else {
        format!("{hour}:{:02} {suffix}", time.minute())
    }
}

/// "Friday, March 27 at 10 AM".
pub fn say_date_time(date: NaiveDate, time: NaiveTime) -> String {
    format!("{} at {}", say_date(date), say_time(time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::spoken::tokenize;

    /// Wednesday, March 25 2026.
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 25).expect("valid date")
    }

    fn parse(text: &str, expect_time: bool) -> When {
        let tokens = tokenize(text);
        parse_when(&tokens, &vec![false; tokens.len()], today(), expect_time).when
    }

    fn d(m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2026, m, day)
    }

    fn t(h: u32, m: u32) -> Option<NaiveTime> {
        NaiveTime::from_hms_opt(h, m, 0)
    }

    #[test]
    fn table_of_spoken_dates_and_times() {
        let cases: &[(&str, Option<NaiveDate>, Option<NaiveTime>)] = &[
            ("friday at ten", d(3, 27), t(10, 0)),
            ("tomorrow at 3 pm", d(3, 26), t(15, 0)),
            ("tomorrow at three", d(3, 26), t(15, 0)),
            (
                "march 5th at 2:30",
                NaiveDate::from_ymd_opt(2027, 3, 5),
                t(14, 30),
            ),
            ("april the fifth at ten thirty", d(4, 5), t(10, 30)),
            ("the 5th of april at 9 a.m.", d(4, 5), t(9, 0)),
            ("half past nine on monday", d(3, 30), t(9, 30)),
            ("quarter to three today", d(3, 25), t(14, 45)),
            ("quarter past eleven", None, t(11, 15)),
            ("at 10am", None, t(10, 0)),
            ("ten a m on thursday", d(3, 26), t(10, 0)),
            ("next tuesday morning at 8", d(3, 31), t(8, 0)),
            ("next friday", d(4, 3), None),
            ("this friday at noon", d(3, 27), t(12, 0)),
            ("wednesday", d(4, 1), None),
            ("this wednesday at four", d(3, 25), t(16, 0)),
            ("the day after tomorrow at eleven", d(3, 27), t(11, 0)),
            ("in three days at 2", d(3, 28), t(14, 0)),
            ("friday the 27th at ten", d(3, 27), t(10, 0)),
            ("the 28th", d(3, 28), None),
            ("the twenty first", d(4, 21), None),
            ("at seven in the evening", None, t(19, 0)),
            ("14:00 on friday", d(3, 27), t(14, 0)),
            ("three o'clock", None, t(15, 0)),
            ("ten oh five", None, t(10, 5)),
        ];
        for (text, date, time) in cases {
            let when = parse(text, false);
            assert_eq!((when.date, when.time), (*date, *time), "{text}");
        }
    }

    #[test]
    fn bare_numbers_are_times_only_with_context() {
        assert_eq!(parse("ten", true).time, t(10, 0));
        assert_eq!(parse("ten", false).time, None);
        assert_eq!(parse("we are two people", false), When::default());
        assert_eq!(parse("how are you", false), When::default());
    }

    #[test]
    fn part_of_day_without_a_time() {
        let when = parse("next tuesday morning", false);
        assert_eq!(when.date, d(3, 31));
        assert_eq!(when.time, None);
        assert_eq!(when.part_of_day, Some(PartOfDay::Morning));
        assert_eq!(
            parse("tonight", false).part_of_day,
            Some(PartOfDay::Evening)
        );
    }

    #[test]
    fn skipped_tokens_are_not_read() {
        let tokens = tokenize("five five five one two three four");
        let skip = vec![true; tokens.len()];
        assert!(parse_when(&tokens, &skip, today(), true).when.is_empty());
    }

    #[test]
    fn impossible_dates_are_ignored() {
        assert_eq!(parse("february 30th", false).date, None);
        assert_eq!(parse("at 25:00", false).time, None);
    }

    #[test]
    fn says_dates_and_times_naturally() {
        let date = d(3, 27).expect("valid");
        assert_eq!(
            say_date_time(date, t(10, 0).expect("valid")),
            "Friday, March 27 at 10 AM"
        );
        assert_eq!(say_time(t(14, 30).expect("valid")), "2:30 PM");
        assert_eq!(say_time(t(12, 0).expect("valid")), "noon");
        assert_eq!(say_time(t(0, 15).expect("valid")), "12:15 AM");
    }
}
