//! Reads one caller utterance: what they want (intents) and what they said (name, number,
//! email, date and time, service). Tolerant of STT text: lowercase, unpunctuated, misspelt.

use chrono::NaiveDate;

use super::business::{Business, Service};
use super::contact::{SpokenNumber, find_email, find_name, find_phone};
use crate::agent::dates::{When, parse_when};
use crate::agent::spoken::{fuzzy_eq, tokenize};

/// What the agent asked last, which decides how a bare "yes", "ten" or "Jane" is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Asked {
    #[default]
    Nothing,
    HowCanIHelp,
    Service,
    When,
    Time,
    Name,
    Phone,
    ConfirmCallerNumber,
    ConfirmBooking,
    Message,
    OfferMessage,
    AnythingElse,
    GoodTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Intents {
    pub greeting: bool,
    pub how_are_you: bool,
    pub thanks: bool,
    pub goodbye: bool,
    pub affirm: bool,
    pub deny: bool,
    pub booking: bool,
    pub reschedule: bool,
    pub cancel: bool,
    pub human: bool,
    pub question: bool,
    pub change: bool,
    /// Wants to leave a message or be called back.
    pub message: bool,
    /// Wants the details texted to them.
    pub text_me: bool,
}

#[derive(Debug, Clone)]
pub struct Utterance {
    pub text: String,
    pub tokens: Vec<String>,
    pub intents: Intents,
    pub name: Option<String>,
    pub phone: Option<SpokenNumber>,
    pub email: Option<String>,
    pub when: When,
    pub service: Option<Service>,
}

impl Utterance {
    pub fn read(text: &str, asked: Asked, today: NaiveDate, business: &Business) -> Self {
        let tokens = tokenize(text);
        let phone = find_phone(&tokens);
        let email = find_email(text, &tokens);
        let mut used = vec![false; tokens.len()];
        for mask in [
            phone.as_ref().map(|p| &p.used),
            email.as_ref().map(|e| &e.1),
        ]
        .into_iter()
        .flatten()
        {
            for (u, m) in used.iter_mut().zip(mask) {
                *u |= *m;
            }
        }
        let expect_time = matches!(asked, Asked::When | Asked::Time | Asked::ConfirmBooking);
        let when = parse_when(&tokens, &used, today, expect_time);
        for (u, m) in used.iter_mut().zip(&when.used) {
            *u |= *m;
        }
        let service = business.find_service(&tokens, &used).cloned();
        let name = find_name(&tokens, asked == Asked::Name);
        let intents = intents(&tokens);
        Utterance {
            text: text.trim().to_string(),
            tokens,
            intents,
            name,
            phone,
            email: email.map(|(e, _)| e),
            when: when.when,
            service,
        }
    }

    pub fn is_silence(&self) -> bool {
        self.tokens.is_empty()
    }

    /// True when the caller gave any contact detail.
    pub fn has_contact(&self) -> bool {
        self.name.is_some() || self.phone.is_some() || self.email.is_some()
    }
}

/// `phrase` (space-separated words) occurs in `tokens`; words of five letters or more match
/// up to a typo or plural.
fn has(tokens: &[String], phrase: &str) -> bool {
    let words: Vec<&str> = phrase.split(' ').collect();
    tokens.windows(words.len()).any(|window| {
        window
            .iter()
            .zip(&words)
            .all(|(t, w)| if w.len() >= 5 { fuzzy_eq(t, w) } else { t == w })
    })
}

fn any(tokens: &[String], phrases: &[&str]) -> bool {
    phrases.iter().any(|p| has(tokens, p))
}

fn starts(tokens: &[String], phrases: &[&str]) -> bool {
    phrases.iter().any(|p| {
        let words: Vec<&str> = p.split(' ').collect();
        tokens.len() >= words.len() && tokens.iter().zip(&words).all(|(t, w)| t == w)
    })
}

fn intents(t: &[String]) -> Intents {
    let reschedule = any(
        t,
        &[
            "reschedule",
            "move my appointment",
            "change my appointment",
            "move my booking",
            "change my booking",
            "different time for my",
            "push back my",
            "postpone",
        ],
    );
    let cancel = any(t, &["cancel", "cancellation", "call off my"]);
    let human = any(
        t,
        &[
            "human",
            "real person",
            "a person",
            "live person",
            "representative",
            "operator",
            "receptionist",
            "manager",
            "speak to someone",
            "talk to someone",
            "speak with someone",
            "talk with someone",
            "speak to somebody",
            "talk to somebody",
            "live agent",
            "real agent",
            "transfer me",
            "put me through",
            "member of staff",
            "staff member",
        ],
    );
    let goodbye = any(
        t,
        &[
            "bye",
            "goodbye",
            "good bye",
            "bye bye",
            "that's all",
            "that is all",
            "that's it",
            "that's everything",
            "nothing else",
            "have a good day",
            "have a nice day",
            "have a great day",
            "hang up",
            "talk later",
            "i'm done",
            "all set",
            "i'm good thanks",
            "no thanks",
            "no thank you",
        ],
    );
    let affirm = starts(
        t,
        &[
            "yes",
            "yeah",
            "yep",
            "yup",
            "sure",
            "correct",
            "right",
            "ok",
            "okay",
            "absolutely",
            "definitely",
            "perfect",
            "great",
            "sounds good",
            "that works",
            "please do",
            "go ahead",
            "fine",
            "of course",
            "exactly",
            "uh huh",
            "mhm",
            "alright",
            "all right",
            "it is",
            "that's right",
            "that's correct",
            "yes please",
        ],
    ) || any(
        t,
        &[
            "that's right",
            "that's correct",
            "sounds good",
            "that works",
            "go ahead",
            "please do",
            "sounds great",
            "works for me",
        ],
    );
    let polite_yes = any(t, &["no problem", "no worries", "no doubt"]);
    let deny = !polite_yes
        && (starts(
            t,
            &[
                "no",
                "nope",
                "nah",
                "not really",
                "not now",
                "negative",
                "wrong",
                "that's wrong",
                "incorrect",
            ],
        ) || any(
            t,
            &[
                "not right",
                "that's not",
                "not a good time",
                "bad time",
                "not correct",
                "don't book",
                "not interested",
            ],
        ));
    let booking = !reschedule
        && !cancel
        && any(
            t,
            &[
                "book",
                "booking",
                "appointment",
                "schedule",
                "reserve",
                "reservation",
                "come in",
                "slot",
                "availability",
                "available",
                "opening for",
                "make an appointment",
                "see the doctor",
                "see the dentist",
                "get in",
                "any openings",
                "free time",
            ],
        );
    let question = starts(
        t,
        &[
            "what",
            "what's",
            "when",
            "where",
            "how",
            "why",
            "which",
            "who",
            "do you",
            "does",
            "is there",
            "is it",
            "are you",
            "are there",
            "can i",
            "can you",
            "could you",
            "could i",
            "will",
            "tell me",
            "i was wondering",
            "i'd like to know",
            "i want to know",
            "wondering",
        ],
    ) || any(
        t,
        &[
            "do you",
            "does it",
            "is there",
            "are there",
            "how much",
            "what time",
            "wondering",
            "what are",
            "what is",
        ],
    );
    Intents {
        greeting: starts(
            t,
            &[
                "hi",
                "hello",
                "hey",
                "good morning",
                "good afternoon",
                "good evening",
                "howdy",
                "hiya",
            ],
        ),
        how_are_you: any(
            t,
            &[
                "how are you",
                "how's it going",
                "how are things",
                "how you doing",
                "how are you doing",
            ],
        ),
        thanks: any(t, &["thanks", "thank you", "cheers", "appreciate it"]),
        goodbye,
        affirm,
        deny,
        booking,
        reschedule,
        cancel,
        human,
        question,
        message: any(
            t,
            &[
                "leave a message",
                "take a message",
                "call me back",
                "callback",
                "call back",
                "get back to me",
                "ring me back",
            ],
        ),
        text_me: any(
            t,
            &[
                "text me",
                "send me a text",
                "send me a confirmation",
                "text message",
                "confirmation text",
                "by text",
                "via text",
                "an sms",
                "text it to me",
                "text the details",
            ],
        ),
        change: any(
            t,
            &[
                "actually",
                "instead",
                "change",
                "rather",
                "make it",
                "how about",
                "what about",
                "can we do",
                "could we do",
                "earlier",
                "later",
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn business() -> Business {
        Business {
            name: "Bright Smile Dental".into(),
            transfer_target: None,
            services: vec![Service {
                name: "Cleaning".into(),
                minutes: 45,
            }],
        }
    }

    fn read(text: &str) -> Utterance {
        let today = NaiveDate::from_ymd_opt(2026, 3, 25).expect("valid date");
        Utterance::read(text, Asked::Nothing, today, &business())
    }

    #[test]
    fn intents_of_typical_callers() {
        assert!(read("hi i'd like to book an appointment").intents.booking);
        assert!(read("can i make an apointment").intents.booking);
        assert!(
            read("i need to reschedule my appointment")
                .intents
                .reschedule
        );
        assert!(!read("i need to reschedule my appointment").intents.booking);
        assert!(read("please cancel my booking").intents.cancel);
        assert!(read("can i talk to a real person").intents.human);
        assert!(read("ok thanks bye").intents.goodbye);
        assert!(read("yeah that's right").intents.affirm);
        assert!(read("no that's wrong").intents.deny);
        assert!(read("what are your opening hours").intents.question);
        assert!(!read("purple monkey dishwasher").intents.question);
        assert_eq!(read("purple monkey dishwasher").intents, Intents::default());
    }

    #[test]
    fn entities_do_not_collide() {
        let u =
            read("book a cleaning friday at ten my number is five five five one two three four");
        assert_eq!(u.service.map(|s| s.name).as_deref(), Some("Cleaning"));
        assert_eq!(u.when.date, NaiveDate::from_ymd_opt(2026, 3, 27));
        assert_eq!(u.when.time, chrono::NaiveTime::from_hms_opt(10, 0, 0));
        assert_eq!(u.phone.map(|p| p.digits).as_deref(), Some("5551234"));
        let u = read("my email is jane at example dot com");
        assert_eq!(u.email.as_deref(), Some("jane@example.com"));
        assert_eq!(u.when, When::default());
    }
}
