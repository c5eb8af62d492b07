//! The offline dialogue policy: a deterministic state machine, not a language model.
//!
//! Sans-IO: `open` and `heard` return what to say and which tool to call; a tool's outcome
//! comes back through `tool_result`, which returns what follows. A `CallTool` is always the
//! last output of a batch. The driver (`session.rs`) does the IO.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Value, json};

use super::business::{Business, Service};
use super::contact::{say_last_four, say_phone, to_e164};
use super::understand::{Asked, Utterance};
use crate::agent::dates::{PartOfDay, say_date, say_date_time};
use crate::agent::knowledge::KnowledgeIndex;
use crate::agent::spoken::title_case;
use crate::agent::tools::ToolError;
use crate::agent::tools::arguments::{
    BOOK_APPOINTMENT, CAPTURE_LEAD, END_CALL, SEND_SMS, TRANSFER_CALL, UPDATE_LEAD, is_e164,
};
use crate::providers::llm::BrainContext;

/// One step of the agent's reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Say(String),
    CallTool {
        name: &'static str,
        arguments: Value,
    },
    EndCall,
    Transfer(String),
}

/// What the caller is being helped with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Goal {
    #[default]
    Open,
    Booking,
    /// Taking a message for the team; the tag says why ("callback", "reschedule", "cancel").
    Message(&'static str),
}

#[derive(Debug, Clone, Default)]
struct Draft {
    service: Option<Service>,
    /// The caller answered "what would you like to book?" with something off the list.
    title: Option<String>,
    date: Option<NaiveDate>,
    time: Option<NaiveTime>,
    part_of_day: Option<PartOfDay>,
    asked_service: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Contact {
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    tags: Vec<String>,
}

/// Work queued within one reply; tools run one at a time, in order.
#[derive(Debug, Clone)]
enum Task {
    Say(String),
    SyncLead,
    Book,
    /// Text the caller the booking's details.
    Text,
    End(&'static str),
    Transfer(String),
    /// Ask whatever the current goal still needs.
    FollowUp,
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Lead,
    Book,
    Text,
    End,
    Transfer,
}

/// The brain's state for one call. Cloned per reply so a cancelled reply leaves no trace.
#[derive(Debug, Clone)]
pub struct Dialogue {
    business: Arc<Business>,
    knowledge: Arc<KnowledgeIndex>,
    agent_name: String,
    greeting: Option<String>,
    briefing: Option<String>,
    caller_number: String,
    now: NaiveDateTime,
    /// How many caller messages of the history have been answered.
    pub consumed: usize,
    asked: Asked,
    goal: Goal,
    draft: Draft,
    booked: Option<NaiveDateTime>,
    contact: Contact,
    synced: Contact,
    lead_id: Option<String>,
    message_taken: bool,
    /// The caller asked for the booking's details by text.
    wants_text: bool,
    misunderstood: u8,
    agenda: VecDeque<Task>,
    pending: Option<Pending>,
}

impl Dialogue {
    pub fn new(context: &BrainContext) -> Self {
        Dialogue {
            business: Arc::new(Business::from_context(context)),
            knowledge: Arc::new(KnowledgeIndex::build(&context.knowledge)),
            agent_name: context.agent_name.clone(),
            greeting: context.greeting.clone().filter(|g| !g.trim().is_empty()),
            briefing: context
                .outbound_context
                .clone()
                .filter(|b| !b.trim().is_empty()),
            caller_number: context.caller_number.clone(),
            now: context.now.naive_utc(),
            consumed: 0,
            asked: Asked::Nothing,
            goal: Goal::Open,
            draft: Draft::default(),
            booked: None,
            contact: Contact::default(),
            synced: Contact::default(),
            lead_id: None,
            message_taken: false,
            wants_text: false,
            misunderstood: 0,
            agenda: VecDeque::new(),
            pending: None,
        }
    }

    /// The agent's first words: the greeting, or for an outbound call, who is calling and why.
    pub fn open(&mut self) -> Vec<Out> {
        self.agenda.clear();
        self.pending = None;
        match self.briefing.clone() {
            Some(briefing) => {
                self.say(format!(
                    "Hi, this is {} calling from {}.",
                    self.agent_name, self.business.name
                ));
                self.say(purpose(&briefing));
                self.say("Is now a good time?");
                self.asked = Asked::GoodTime;
            }
            None => {
                let greeting = self.greeting.clone().unwrap_or_else(|| {
                    format!(
                        "Thanks for calling {}, this is {}. How can I help you today?",
                        self.business.name, self.agent_name
                    )
                });
                self.say(greeting);
                self.asked = Asked::HowCanIHelp;
            }
        }
        self.run()
    }

    /// Called when a reply is asked for but the caller has said nothing new.
    pub fn silence(&mut self) -> Vec<Out> {
        self.agenda.clear();
        self.pending = None;
        self.say("Are you still there?");
        self.agenda.push_back(Task::FollowUp);
        self.run()
    }

    /// The caller's words since the agent last spoke.
    pub fn heard(&mut self, text: &str) -> Vec<Out> {
        self.agenda.clear();
        self.pending = None;
        let u = Utterance::read(text, self.asked, self.now.date(), &self.business);
        self.plan(&u);
        self.run()
    }

    /// The outcome of the tool the last batch ended with.
    pub fn tool_result(&mut self, result: Result<Value, ToolError>) -> Vec<Out> {
        let Some(pending) = self.pending.take() else {
            return self.run();
        };
        match (pending, result) {
            (Pending::Lead, Ok(lead)) => {
                if let Some(id) = lead.get("id").and_then(Value::as_str) {
                    self.lead_id = Some(id.to_string());
                }
                self.synced = self.contact.clone();
            }
            (Pending::Lead, Err(e)) => {
                // Keep going: the lead is a by-product, the call must not stall on it.
                tracing::warn!(error = %e, "offline brain could not save the lead");
                self.synced = self.contact.clone();
            }
            (Pending::Book, Ok(_)) => {
                let (Some(date), Some(time)) = (self.draft.date, self.draft.time) else {
                    return self.run();
                };
                self.booked = Some(date.and_time(time));
                self.goal = Goal::Open;
                self.agenda.push_front(Task::FollowUp);
                if self.wants_text {
                    self.agenda.push_front(Task::Text);
                }
                self.agenda
                    .push_front(Task::Say("We'll see you then!".into()));
                self.agenda.push_front(Task::Say(format!(
                    "You're booked for {}.",
                    say_date_time(date, time)
                )));
            }
            (Pending::Book, Err(e)) => {
                tracing::warn!(error = %e, "offline brain could not book");
                self.draft.time = None;
                self.agenda.push_front(Task::FollowUp);
                self.agenda
                    .push_front(Task::Say("I'm sorry, I couldn't book that time.".into()));
            }
            (Pending::Text, Ok(_)) => {
                self.wants_text = false;
                self.agenda
                    .push_front(Task::Say("I've texted you the details.".into()));
            }
            (Pending::Text, Err(e)) => {
                tracing::warn!(error = %e, "offline brain could not text the caller");
                self.wants_text = false;
                self.agenda.push_front(Task::Say(
                    "I'm sorry, I couldn't send you a text, but your appointment is booked.".into(),
                ));
            }
            (Pending::End, _) => return vec![Out::EndCall],
            (Pending::Transfer, Ok(result)) => {
                if let Some(target) = result.get("target").and_then(Value::as_str) {
                    return vec![Out::Transfer(target.to_string())];
                }
            }
            (Pending::Transfer, Err(e)) => {
                tracing::warn!(error = %e, "offline brain could not transfer");
                self.goal = Goal::Message("callback");
                self.add_tag("callback");
                self.agenda.push_front(Task::FollowUp);
                self.agenda.push_front(Task::Say(
                    "I'm sorry, I can't put you through right now, but I can take a message and have someone call you back.".into(),
                ));
            }
        }
        self.run()
    }

    fn say(&mut self, text: impl Into<String>) {
        self.agenda.push_back(Task::Say(text.into()));
    }

    fn then(&mut self, task: Task) {
        self.agenda.push_back(task);
    }

    /// Decides the reply to one utterance.
    fn plan(&mut self, u: &Utterance) {
        if u.is_silence() {
            self.say("Sorry, I didn't catch that. Could you say that again?");
            return;
        }
        let asked = self.asked;
        let i = u.intents;
        let contact_news = self.absorb_contact(u, asked);

        if i.text_me {
            self.wants_text = true;
            if self.booked.is_some() && !i.booking {
                self.acknowledge(&contact_news);
                self.say("Sure.");
                self.then(Task::SyncLead);
                self.then(Task::Text);
                self.then(Task::FollowUp);
                return;
            }
            if self.goal != Goal::Booking && !i.booking {
                self.say("I can text you a confirmation once you've booked an appointment.");
                self.then(Task::FollowUp);
                return;
            }
        }
        let nothing_else = (i.deny || i.thanks) && !i.booking && !i.question && !i.affirm;
        let farewell_answer =
            matches!(asked, Asked::AnythingElse) && nothing_else && !u.has_contact()
                || matches!(asked, Asked::OfferMessage | Asked::HowCanIHelp)
                    && i.deny
                    && !i.booking
                    && !i.question;
        if i.goodbye && asked != Asked::ConfirmBooking || farewell_answer {
            self.acknowledge(&contact_news);
            self.then(Task::SyncLead);
            self.say(format!(
                "Thanks for calling {}. Have a great day, goodbye!",
                self.business.name
            ));
            self.then(Task::End("caller said goodbye"));
            return;
        }
        if i.message && !i.booking {
            self.acknowledge(&contact_news);
            self.goal = Goal::Message("callback");
            self.add_tag("callback");
            self.message_taken = false;
            self.say("Of course, I can take a message.");
            self.then(Task::SyncLead);
            self.then(Task::FollowUp);
            return;
        }
        if i.human {
            self.acknowledge(&contact_news);
            self.then(Task::SyncLead);
            match self.business.transfer_target.clone() {
                Some(target) => {
                    self.say("Of course, let me put you through to someone now. Please hold.");
                    self.then(Task::Transfer(target));
                }
                None => {
                    self.say("There's no one available to take your call right now, but I can take a message and have someone call you back.");
                    self.goal = Goal::Message("callback");
                    self.add_tag("callback");
                    self.then(Task::FollowUp);
                }
            }
            return;
        }
        let changes_booking = self.booked.is_some() && i.change && !u.when.is_empty();
        if i.reschedule || i.cancel || changes_booking {
            self.acknowledge(&contact_news);
            let (reason, verb) = if i.cancel {
                ("cancel", "cancel")
            } else {
                ("reschedule", "move")
            };
            self.add_tag(reason);
            self.say(format!(
                "I can't {verb} existing appointments myself, but I'll take your details and the team will get back to you to sort it out."
            ));
            self.goal = Goal::Message(reason);
            self.message_taken = false;
            self.then(Task::SyncLead);
            self.then(Task::FollowUp);
            return;
        }
        let slots_given = !u.when.is_empty() || u.service.is_some();
        if asked == Asked::ConfirmBooking && i.affirm && !slots_given && !i.deny {
            self.acknowledge(&contact_news);
            self.then(Task::SyncLead);
            self.then(Task::Book);
            return;
        }
        let booking_answer = matches!(
            asked,
            Asked::Service | Asked::When | Asked::Time | Asked::ConfirmBooking
        );
        let outbound_yes = asked == Asked::GoodTime && i.affirm && self.briefing_books();
        if i.booking
            || outbound_yes
            || (self.goal == Goal::Booking && (slots_given || booking_answer) && !i.question)
            || (self.goal == Goal::Open
                && (!u.when.is_empty() || u.service.is_some())
                && !i.question)
        {
            let starting = self.goal != Goal::Booking || (i.booking && self.booked.is_some());
            if starting {
                self.draft = Draft::default();
                self.booked = None;
            }
            self.goal = Goal::Booking;
            if outbound_yes && let Some(briefing) = self.briefing.clone() {
                self.take_slots(&Utterance::read(
                    &briefing,
                    Asked::Nothing,
                    self.now.date(),
                    &self.business,
                ));
            }
            self.take_slots(u);
            if asked == Asked::Service && u.service.is_none() && self.draft.title.is_none() {
                self.draft.title = free_title(u);
            }
            if asked == Asked::ConfirmBooking && i.deny && !slots_given {
                self.say("No problem. What would you like to change?");
                self.asked = Asked::When;
                return;
            }
            self.acknowledge(&contact_news);
            let wants_service = i.booking || u.service.is_some();
            if starting && wants_service && (self.draft.date.is_none() || self.draft.time.is_none())
            {
                let what = self
                    .draft
                    .service
                    .as_ref()
                    .map_or("an appointment".to_string(), |s| {
                        with_article(&s.name.to_lowercase())
                    });
                self.say(format!("I'd be happy to help you book {what}."));
            }
            self.then(Task::SyncLead);
            self.then(Task::FollowUp);
            return;
        }
        if i.question
            || (!u.has_contact()
                && !i.affirm
                && !i.deny
                && !i.greeting
                && !i.thanks
                && asked != Asked::Message)
        {
            if let Some(answer) = self.knowledge.answer(&u.text) {
                let answer = answer.text.clone();
                self.misunderstood = 0;
                self.acknowledge(&contact_news);
                self.say(answer);
                self.then(Task::SyncLead);
                self.then(Task::FollowUp);
                return;
            }
            if i.question {
                self.acknowledge(&contact_news);
                self.say("I'm sorry, I don't have that information.");
                self.offer_message();
                return;
            }
        }
        match asked {
            Asked::Message if !u.has_contact() || u.tokens.len() > 6 => {
                self.message_taken = true;
                if let Goal::Message(reason) = self.goal {
                    self.add_tag(reason);
                }
                self.acknowledge(&contact_news);
                self.say("Thanks, I'll pass that on and someone will get back to you as soon as possible.");
                self.goal = Goal::Open;
                self.then(Task::SyncLead);
                self.then(Task::FollowUp);
                return;
            }
            Asked::OfferMessage if i.affirm => {
                self.goal = Goal::Message("callback");
                self.add_tag("callback");
                self.say("Sure.");
                self.then(Task::FollowUp);
                return;
            }
            Asked::AnythingElse if i.affirm => {
                self.say("Sure, what can I help you with?");
                self.asked = Asked::HowCanIHelp;
                return;
            }
            Asked::GoodTime if i.deny => {
                self.say(
                    "No problem, I'll let the team know to try you another time. Thanks, goodbye!",
                );
                self.then(Task::End("callee was busy"));
                return;
            }
            Asked::GoodTime if i.affirm => {
                self.say("Great.");
                self.say("Is there anything I can help you with, or any questions I can answer?");
                self.asked = Asked::HowCanIHelp;
                return;
            }
            Asked::ConfirmCallerNumber if i.deny && u.phone.is_none() => {
                self.say("No problem. What's the best number to reach you?");
                self.asked = Asked::Phone;
                return;
            }
            Asked::Phone if u.phone.is_some() && self.contact.phone.is_none() => {
                self.say("Sorry, I didn't get the full number. Could you say it again, with the area code?");
                return;
            }
            _ => {}
        }
        if !contact_news.is_empty() {
            self.misunderstood = 0;
            self.acknowledge(&contact_news);
            self.then(Task::SyncLead);
            self.then(Task::FollowUp);
            return;
        }
        if i.how_are_you
            || i.greeting
            || i.thanks
            || (i.affirm && asked == Asked::ConfirmCallerNumber)
        {
            if i.how_are_you {
                self.say("I'm doing well, thank you for asking!");
            } else if i.thanks {
                self.say("You're welcome!");
            } else if i.greeting {
                self.say("Hello!");
            }
            self.then(Task::SyncLead);
            self.then(Task::FollowUp);
            return;
        }
        self.misunderstood += 1;
        if self.misunderstood == 1 {
            self.say(format!(
                "Sorry, I didn't quite get that. I can book an appointment, answer questions about {}, or take a message. What would you like to do?",
                self.business.name
            ));
            self.asked = Asked::HowCanIHelp;
        } else {
            self.say("I'm sorry, I'm having trouble understanding.");
            self.offer_message();
        }
    }

    fn offer_message(&mut self) {
        if matches!(self.goal, Goal::Message(_)) && !self.message_taken {
            self.then(Task::FollowUp);
            return;
        }
        self.say("I can take a message and have someone from the team get back to you. Would you like that?");
        self.asked = Asked::OfferMessage;
    }

    fn briefing_books(&self) -> bool {
        self.briefing.as_deref().is_some_and(|b| {
            let u = Utterance::read(b, Asked::Nothing, self.now.date(), &self.business);
            u.intents.booking || u.service.is_some()
        })
    }

    /// Takes the service, day and time the caller gave; later words win.
    fn take_slots(&mut self, u: &Utterance) {
        if let Some(service) = &u.service {
            self.draft.service = Some(service.clone());
            self.draft.title = None;
        }
        if let Some(date) = u.when.date {
            self.draft.date = Some(date);
        }
        if let Some(part) = u.when.part_of_day {
            self.draft.part_of_day = Some(part);
        }
        if let Some(time) = u.when.time {
            self.draft.time = Some(time);
        } else if u.when.part_of_day.is_some() {
            self.draft.time = None;
        }
    }

    /// Takes name, number and email; returns the acknowledgements to say.
    fn absorb_contact(&mut self, u: &Utterance, asked: Asked) -> Vec<String> {
        let mut news = Vec::new();
        if let Some(name) = &u.name
            && self.contact.name.as_ref() != Some(name)
        {
            let first = name.split(' ').next().unwrap_or(name).to_string();
            self.contact.name = Some(name.clone());
            news.push(format!("Thanks, {first}."));
        }
        if let Some(spoken) = &u.phone {
            if let Some(phone) = to_e164(spoken, &self.caller_number) {
                if self.contact.phone.as_ref() != Some(&phone) {
                    news.push(format!("Got it, {}.", say_phone(&phone)));
                    self.contact.phone = Some(phone);
                }
            } else if asked != Asked::Phone {
                news.push("Sorry, I didn't get that whole number.".into());
            }
        } else if asked == Asked::ConfirmCallerNumber && u.intents.affirm && !u.intents.deny {
            self.contact.phone = Some(self.caller_number.clone());
        }
        if let Some(email) = &u.email
            && self.contact.email.as_ref() != Some(email)
        {
            news.push(format!("Thanks, I've got {}.", say_email(email)));
            self.contact.email = Some(email.clone());
        }
        news
    }

    fn acknowledge(&mut self, news: &[String]) {
        for line in news {
            self.say(line.clone());
        }
    }

    fn add_tag(&mut self, tag: &str) {
        if !self.contact.tags.iter().any(|t| t == tag) {
            self.contact.tags.push(tag.to_string());
        }
    }

    /// Runs the agenda until it is empty or a tool must be called.
    fn run(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        while let Some(task) = self.agenda.pop_front() {
            match task {
                Task::Say(text) => out.push(Out::Say(text)),
                Task::FollowUp => {
                    let question = self.follow_up();
                    out.push(Out::Say(question));
                }
                Task::SyncLead => {
                    if let Some(call) = self.lead_call() {
                        self.pending = Some(Pending::Lead);
                        out.push(call);
                        return out;
                    }
                }
                Task::Book => match self.booking_call() {
                    Ok(call) => {
                        self.pending = Some(Pending::Book);
                        out.push(call);
                        return out;
                    }
                    Err(problem) => {
                        out.push(Out::Say(problem));
                        out.push(Out::Say(self.follow_up()));
                    }
                },
                Task::Text => {
                    if let Some(call) = self.text_call() {
                        self.pending = Some(Pending::Text);
                        out.push(call);
                        return out;
                    }
                }
                Task::End(reason) => {
                    self.pending = Some(Pending::End);
                    out.push(Out::CallTool {
                        name: END_CALL,
                        arguments: json!({"reason": reason}),
                    });
                    return out;
                }
                Task::Transfer(target) => {
                    self.pending = Some(Pending::Transfer);
                    out.push(Out::CallTool {
                        name: TRANSFER_CALL,
                        arguments: json!({"target": target, "reason": "caller asked for a person"}),
                    });
                    return out;
                }
            }
        }
        out
    }

    /// `capture_lead` once a name is known, `update_lead` when details changed since.
    fn lead_call(&self) -> Option<Out> {
        if self.contact == self.synced {
            return None;
        }
        let mut fields = serde_json::Map::new();
        let changed = |new: &Option<String>, old: &Option<String>| new.is_some() && new != old;
        if changed(&self.contact.name, &self.synced.name) || self.lead_id.is_none() {
            fields.insert("name".into(), json!(self.contact.name.as_ref()?));
        }
        if changed(&self.contact.phone, &self.synced.phone)
            || (self.lead_id.is_none() && self.contact.phone.is_some())
        {
            fields.insert("phone".into(), json!(self.contact.phone));
        }
        if changed(&self.contact.email, &self.synced.email)
            || (self.lead_id.is_none() && self.contact.email.is_some())
        {
            fields.insert("email".into(), json!(self.contact.email));
        }
        if self.contact.tags != self.synced.tags
            || (self.lead_id.is_none() && !self.contact.tags.is_empty())
        {
            fields.insert("tags".into(), json!(self.contact.tags));
        }
        match &self.lead_id {
            None => Some(Out::CallTool {
                name: CAPTURE_LEAD,
                arguments: Value::Object(fields),
            }),
            Some(id) if !fields.is_empty() => {
                fields.insert("lead_id".into(), json!(id));
                Some(Out::CallTool {
                    name: UPDATE_LEAD,
                    arguments: Value::Object(fields),
                })
            }
            Some(_) => None,
        }
    }

    fn booking_call(&self) -> Result<Out, String> {
        let (Some(date), Some(time)) = (self.draft.date, self.draft.time) else {
            return Err("I still need a day and time for that.".into());
        };
        let start = date.and_time(time);
        if start <= self.now {
            return Err("That time has already passed.".into());
        }
        let minutes = self
            .draft
            .service
            .as_ref()
            .map_or(super::business::DEFAULT_DURATION_MINUTES, |s| s.minutes);
        let end = start + Duration::minutes(i64::from(minutes));
        let mut arguments = json!({
            "title": self.title(),
            "start_time": start.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "end_time": end.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        if let Some(id) = &self.lead_id {
            arguments["lead_id"] = json!(id);
        }
        Ok(Out::CallTool {
            name: BOOK_APPOINTMENT,
            arguments,
        })
    }

    /// `send_sms` to the caller with the booking's details (the tool's default recipient).
    fn text_call(&self) -> Option<Out> {
        let booked = self.booked?;
        let body = format!(
            "{}: {} at {}.",
            self.business.name,
            self.title(),
            say_date_time(booked.date(), booked.time())
        );
        Some(Out::CallTool {
            name: SEND_SMS,
            arguments: json!({"body": body}),
        })
    }

    fn title(&self) -> String {
        match (&self.draft.service, &self.draft.title) {
            (Some(service), _) => service.name.clone(),
            (None, Some(title)) => title.clone(),
            (None, None) => "Appointment".into(),
        }
    }

    /// The next question for the current goal, and remembers it was asked.
    fn follow_up(&mut self) -> String {
        let (question, asked) = self.next_question();
        self.asked = asked;
        question
    }

    fn next_question(&mut self) -> (String, Asked) {
        match self.goal.clone() {
            Goal::Booking => self.next_booking_question(),
            Goal::Message(_) if !self.message_taken => {
                if self.contact.name.is_none() {
                    ("Can I get your name, please?".into(), Asked::Name)
                } else if self.contact.phone.is_none() && is_e164(&self.caller_number) {
                    (
                        format!(
                            "Is the number you're calling from, ending in {}, the best one to reach you?",
                            say_last_four(&self.caller_number)
                        ),
                        Asked::ConfirmCallerNumber,
                    )
                } else if self.contact.phone.is_none() {
                    ("What's the best number to reach you?".into(), Asked::Phone)
                } else {
                    (
                        "And what would you like me to pass on to the team?".into(),
                        Asked::Message,
                    )
                }
            }
            _ if self.booked.is_some()
                || self.message_taken
                || self.lead_id.is_some()
                || self.asked == Asked::AnythingElse =>
            {
                (
                    "Is there anything else I can help you with?".into(),
                    Asked::AnythingElse,
                )
            }
            _ => ("How can I help you today?".into(), Asked::HowCanIHelp),
        }
    }

    fn next_booking_question(&mut self) -> (String, Asked) {
        let d = &self.draft;
        if d.service.is_none()
            && d.title.is_none()
            && !d.asked_service
            && !self.business.services.is_empty()
        {
            self.draft.asked_service = true;
            let names: Vec<String> = self
                .business
                .services
                .iter()
                .take(4)
                .map(|s| s.name.to_lowercase())
                .collect();
            return (
                format!("What would you like to book? We offer {}.", list(&names)),
                Asked::Service,
            );
        }
        match (d.date, d.time) {
            (None, None) => return ("What day and time would suit you?".into(), Asked::When),
            (None, Some(_)) => return ("What day would you like to come in?".into(), Asked::When),
            (Some(date), None) => {
                let part = d
                    .part_of_day
                    .map(|p| format!(" {}", p.as_words()))
                    .unwrap_or_default();
                return (
                    format!("What time on {}{part} works for you?", weekday_name(date)),
                    Asked::Time,
                );
            }
            (Some(date), Some(time)) if date.and_time(time) <= self.now => {
                self.draft.time = None;
                return (
                    "That time has already passed. What other time would work for you?".into(),
                    Asked::When,
                );
            }
            _ => {}
        }
        if self.contact.name.is_none() {
            return ("Can I get your name for the booking?".into(), Asked::Name);
        }
        let (Some(date), Some(time)) = (self.draft.date, self.draft.time) else {
            return ("What day and time would suit you?".into(), Asked::When);
        };
        let what = match (&self.draft.service, &self.draft.title) {
            (Some(s), _) => with_article(&format!("{} appointment", s.name.to_lowercase())),
            (None, Some(t)) => with_article(&format!("{} appointment", t.to_lowercase())),
            (None, None) => "an appointment".into(),
        };
        (
            format!(
                "So that's {what} on {}. Shall I book that for you?",
                say_date_time(date, time)
            ),
            Asked::ConfirmBooking,
        )
    }
}

/// "Follow up on their cleaning inquiry" → "I'm calling to follow up on your cleaning inquiry."
fn purpose(briefing: &str) -> String {
    let text = briefing.trim().trim_end_matches(['.', '!']);
    let swapped: Vec<String> = text
        .split_whitespace()
        .map(|w| match w.to_lowercase().as_str() {
            "their" | "his" | "her" => "your".into(),
            "them" | "him" => "you".into(),
            "they" => "you".into(),
            _ => w.to_string(),
        })
        .collect();
    let mut words = swapped;
    let verb = words.first().map(|w| w.to_lowercase()).unwrap_or_default();
    if let Some(first) = words.first_mut() {
        *first = first.to_lowercase();
    }
    let text = words.join(" ");
    const VERBS: &[&str] = &[
        "follow",
        "remind",
        "confirm",
        "check",
        "ask",
        "offer",
        "invite",
        "book",
        "schedule",
        "let",
        "tell",
        "thank",
        "see",
        "discuss",
        "update",
        "reschedule",
        "collect",
        "welcome",
    ];
    if VERBS.contains(&verb.as_str()) {
        format!("I'm calling to {text}.")
    } else {
        format!("I'm calling about {text}.")
    }
}

/// The caller's answer to "what would you like to book?" when it names no known service.
fn free_title(u: &Utterance) -> Option<String> {
    const FILLER: &[&str] = &[
        "a",
        "an",
        "the",
        "i",
        "i'd",
        "like",
        "want",
        "need",
        "to",
        "book",
        "just",
        "for",
        "please",
        "um",
        "uh",
        "appointment",
        "my",
        "some",
        "get",
        "it's",
        "its",
        "is",
        "me",
        "on",
        "at",
    ];
    let words: Vec<&str> = u
        .tokens
        .iter()
        .map(String::as_str)
        .filter(|t| !FILLER.contains(t) && t.chars().all(char::is_alphabetic))
        .collect();
    (!words.is_empty() && words.len() <= 4).then(|| title_case(&words))
}

fn weekday_name(date: NaiveDate) -> String {
    say_date(date)
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

/// "a, b and c".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// "jane.smith@example.com" → "jane dot smith at example dot com".
fn say_email(email: &str) -> String {
    email.replace('.', " dot ").replace('@', " at ")
}
