//! Tags for the call record, from what was said and what the tools did.

use chrono::{Datelike, NaiveDateTime, Timelike, Weekday};

use super::Line;
use super::facts::Fact;
use super::sentiment::{Sentiment, SentimentLabel};
use super::text::{has_phrase, words};
use crate::providers::llm::Role;

/// Opening hours for the `after-hours` tag, in the agent's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessHours {
    /// First open hour (0–23).
    pub opens: u32,
    /// Hour the business closes (1–24).
    pub closes: u32,
    pub weekends_open: bool,
}

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours {
            opens: 8,
            closes: 18,
            weekends_open: false,
        }
    }
}

impl BusinessHours {
    pub fn is_open(&self, at: NaiveDateTime) -> bool {
        let weekend = matches!(at.weekday(), Weekday::Sat | Weekday::Sun);
        (self.weekends_open || !weekend) && at.hour() >= self.opens && at.hour() < self.closes
    }
}

/// A tag and the caller phrases that suggest it.
const KEYWORD_TAGS: &[(&str, &[&str])] = &[
    (
        "appointment",
        &[
            "appointment",
            "book",
            "booking",
            "schedule",
            "available",
            "availability",
            "slot",
        ],
    ),
    (
        "pricing",
        &[
            "price",
            "prices",
            "pricing",
            "cost",
            "costs",
            "how much",
            "quote",
            "fee",
            "fees",
            "rate",
            "rates",
            "charge",
            "expensive",
            "cheap",
            "afford",
            "insurance",
        ],
    ),
    (
        "complaint",
        &[
            "complaint",
            "complain",
            "not happy",
            "unhappy",
            "terrible",
            "awful",
            "unacceptable",
            "refund",
            "manager",
            "ridiculous",
            "rude",
            "overcharged",
            "worst",
            "disappointed",
        ],
    ),
    (
        "cancellation",
        &["cancel", "cancellation", "cancelling", "canceling"],
    ),
    (
        "reschedule",
        &[
            "reschedule",
            "rescheduling",
            "move my appointment",
            "change my appointment",
        ],
    ),
    (
        "new-customer",
        &[
            "first time",
            "new patient",
            "new customer",
            "new client",
            "never been",
            "haven't been before",
            "never used",
            "just moved",
        ],
    ),
    (
        "returning-customer",
        &[
            "existing customer",
            "existing patient",
            "my account",
            "last time",
            "i'm a patient",
            "returning customer",
        ],
    ),
    (
        "urgent",
        &[
            "urgent",
            "emergency",
            "asap",
            "right away",
            "immediately",
            "leaking",
            "flooding",
        ],
    ),
];

/// Tags in a stable order, without duplicates.
pub fn tags(
    lines: &[Line<'_>],
    facts: &[Fact],
    sentiment: &Sentiment,
    local_start: Option<NaiveDateTime>,
    hours: &BusinessHours,
) -> Vec<String> {
    let caller_words: Vec<String> = lines
        .iter()
        .filter(|l| l.role == Role::Caller)
        .flat_map(|l| words(l.text))
        .collect();
    let mut tags: Vec<&str> = Vec::new();
    for (tag, phrases) in KEYWORD_TAGS {
        if phrases.iter().any(|p| has_phrase(&caller_words, p)) {
            tags.push(tag);
        }
    }
    for fact in facts {
        tags.push(match fact {
            Fact::AppointmentBooked { .. } => "appointment",
            Fact::AppointmentCancelled => "cancellation",
            Fact::LeadCaptured { .. } | Fact::LeadUpdated => "lead",
            Fact::Transferred { .. } => "transferred",
        });
    }
    if facts.iter().any(|f| matches!(f, Fact::LeadCaptured { .. }))
        && !tags.contains(&"returning-customer")
    {
        tags.push("new-customer");
    }
    // A strongly negative call is a complaint even without the words.
    if sentiment.label == SentimentLabel::Negative && sentiment.score <= -0.4 {
        tags.push("complaint");
    }
    if local_start.is_some_and(|at| !hours.is_open(at)) {
        tags.push("after-hours");
    }
    let order = |t: &str| ORDER.iter().position(|o| *o == t).unwrap_or(ORDER.len());
    tags.sort_by_key(|t| order(t));
    tags.dedup();
    if tags.contains(&"new-customer") && tags.contains(&"returning-customer") {
        tags.retain(|t| *t != "new-customer");
    }
    tags.into_iter().map(String::from).collect()
}

const ORDER: &[&str] = &[
    "appointment",
    "reschedule",
    "cancellation",
    "lead",
    "new-customer",
    "returning-customer",
    "pricing",
    "complaint",
    "urgent",
    "transferred",
    "after-hours",
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn neutral() -> Sentiment {
        Sentiment {
            label: SentimentLabel::Neutral,
            score: 0.0,
        }
    }

    fn caller(text: &str) -> Line<'_> {
        Line {
            role: Role::Caller,
            text,
        }
    }

    fn at(day: u32, hour: u32) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(2025, 3, day).and_then(|d| d.and_hms_opt(hour, 15, 0))
    }

    #[test]
    fn keywords_and_tool_results_make_tags() {
        let lines = [
            caller("Hi, it's my first time calling. How much is a cleaning?"),
            caller("Okay, can I book one for Friday?"),
        ];
        let facts = [
            Fact::AppointmentBooked {
                title: None,
                start: None,
            },
            Fact::LeadCaptured {
                name: Some("Ana".into()),
                phone: None,
                email: None,
            },
        ];
        let tags = tags(
            &lines,
            &facts,
            &neutral(),
            at(20, 10),
            &BusinessHours::default(),
        );
        assert_eq!(tags, vec!["appointment", "lead", "new-customer", "pricing"]);
    }

    #[test]
    fn complaints_after_hours_and_urgency() {
        let lines = [caller(
            "This is an emergency, my basement is flooding and I'm not happy nobody answered.",
        )];
        // Saturday 2025-03-22, 23:15.
        let tags = tags(
            &lines,
            &[],
            &neutral(),
            at(22, 23),
            &BusinessHours::default(),
        );
        assert_eq!(tags, vec!["complaint", "urgent", "after-hours"]);
    }

    #[test]
    fn agent_words_do_not_tag_and_negative_calls_are_complaints() {
        let lines = [
            Line {
                role: Role::Agent,
                text: "Would you like to book an appointment? Our prices are low.",
            },
            caller("No thanks."),
        ];
        assert!(tags(&lines, &[], &neutral(), None, &BusinessHours::default()).is_empty());
        let angry = Sentiment {
            label: SentimentLabel::Negative,
            score: -0.6,
        };
        assert_eq!(
            tags(&lines, &[], &angry, None, &BusinessHours::default()),
            vec!["complaint"]
        );
    }

    #[test]
    fn business_hours() {
        let hours = BusinessHours::default();
        assert!(hours.is_open(at(20, 8).expect("date")));
        assert!(!hours.is_open(at(20, 18).expect("date")));
        assert!(!hours.is_open(at(23, 12).expect("date")), "Sunday");
    }
}
