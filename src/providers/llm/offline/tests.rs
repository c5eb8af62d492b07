//! Whole conversations with the offline brain, through the `Brain`/`BrainSession` seam, with
//! an in-memory tool runner that validates arguments exactly as the real tools do.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::TimeZone;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::OfflineBrain;
use crate::agent::tools::arguments::{self, call_tool_specs};
use crate::agent::tools::{ToolError, ToolRunner, ToolSpec};
use crate::providers::llm::{
    Brain, BrainContext, BrainEvent, BrainSession, KnowledgeDoc, Message, Role,
};

#[derive(Default)]
struct MemoryTools {
    calls: Mutex<Vec<(String, Value)>>,
    leads: AtomicUsize,
    /// When set, `book_appointment` starts, signals `booking_started` and never finishes.
    hang_booking: AtomicBool,
    booking_started: Notify,
}

impl MemoryTools {
    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().expect("lock").clone()
    }

    fn named(&self, name: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| a)
            .collect()
    }
}

impl ToolRunner for MemoryTools {
    fn specs(&self) -> Vec<ToolSpec> {
        call_tool_specs()
    }

    fn call<'a>(&'a self, name: &'a str, args: Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let result = match name {
                arguments::BOOK_APPOINTMENT => {
                    arguments::parse_booking(args.clone())?;
                    if self.hang_booking.load(Ordering::SeqCst) {
                        self.booking_started.notify_one();
                        std::future::pending::<()>().await;
                    }
                    json!({"id": "apt_1", "status": "upcoming"})
                }
                arguments::CAPTURE_LEAD => {
                    arguments::parse_lead(args.clone(), true)?;
                    let n = self.leads.fetch_add(1, Ordering::SeqCst) + 1;
                    json!({"id": format!("lead_{n}")})
                }
                arguments::UPDATE_LEAD => {
                    let lead = arguments::parse_lead(args.clone(), false)?;
                    json!({"id": lead.lead_id})
                }
                arguments::END_CALL => {
                    arguments::parse_end(args.clone())?;
                    json!({"action": "end"})
                }
                arguments::TRANSFER_CALL => {
                    let t = arguments::parse_transfer(args.clone())?;
                    json!({"action": "transfer", "target": t.target})
                }
                other => return Err(ToolError::Unknown(other.to_string())),
            };
            self.calls
                .lock()
                .expect("lock")
                .push((name.to_string(), args));
            Ok(result)
        })
    }
}

fn dental_context(prompt: &str) -> BrainContext {
    BrainContext {
        agent_name: "Sarah".into(),
        prompt: prompt.into(),
        greeting: None,
        knowledge: vec![
            KnowledgeDoc {
                title: "Opening hours".into(),
                text: "We are open Monday to Friday, 8 AM to 6 PM.\nOn Saturdays we open 9 AM to 1 PM. We are closed on Sundays.".into(),
            },
            KnowledgeDoc {
                title: "Services and prices".into(),
                text: "- Cleaning: $120, 45 minutes\n- Teeth whitening: $300, 60 minutes\n- Filling: from $150, 30 minutes".into(),
            },
            KnowledgeDoc {
                title: "FAQ".into(),
                text: "Q: Do you take insurance?\nA: Yes, we accept most major dental insurance plans.".into(),
            },
        ],
        caller_number: "+14155550123".into(),
        outbound_context: None,
        // Wednesday, March 25 2026, 9 AM.
        now: chrono::Utc.with_ymd_and_hms(2026, 3, 25, 9, 0, 0).single().expect("valid time"),
        llm: Default::default(),
    }
}

const DENTAL_PROMPT: &str = "You are Sarah, the friendly receptionist at Bright Smile Dental.";

struct Call {
    session: Box<dyn BrainSession>,
    history: Vec<Message>,
    tools: Arc<MemoryTools>,
}

#[derive(Debug, Default)]
struct Turn {
    text: String,
    tools: Vec<String>,
    ended: bool,
    transfer: Option<String>,
}

impl Call {
    fn start(context: BrainContext) -> Self {
        let tools = Arc::new(MemoryTools::default());
        let session = OfflineBrain.start(context, tools.clone());
        Call {
            session,
            history: Vec::new(),
            tools,
        }
    }

    async fn agent(&mut self) -> Turn {
        let mut rx = self.session.reply(&self.history);
        let mut turn = Turn::default();
        loop {
            match rx.recv().await.expect("the reply ends with Done") {
                BrainEvent::Text(t) => turn.text.push_str(&t),
                BrainEvent::ToolCalled { name, .. } => turn.tools.push(name),
                BrainEvent::EndCall => turn.ended = true,
                BrainEvent::Transfer { target } => turn.transfer = Some(target),
                BrainEvent::Done => break,
                BrainEvent::Error(e) => panic!("brain error {e}"),
                BrainEvent::ProviderFailed { error, .. } => panic!("provider failed: {error}"),
            }
        }
        self.history.push(Message {
            role: Role::Agent,
            text: turn.text.clone(),
        });
        turn
    }

    async fn caller(&mut self, text: &str) -> Turn {
        self.history.push(Message {
            role: Role::Caller,
            text: text.into(),
        });
        self.agent().await
    }
}

#[tokio::test]
async fn dental_booking_end_to_end() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    let hello = call.agent().await;
    assert_eq!(
        hello.text,
        "Thanks for calling Bright Smile Dental, this is Sarah. How can I help you today?"
    );

    let t = call.caller("hi i'd like to book a cleaning").await;
    assert_eq!(
        t.text,
        "I'd be happy to help you book a cleaning. What day and time would suit you?"
    );

    let t = call.caller("friday at ten").await;
    assert_eq!(t.text, "Can I get your name for the booking?");

    let t = call.caller("it's jane smith").await;
    assert_eq!(t.tools, ["capture_lead"]);
    assert_eq!(
        t.text,
        "Thanks, Jane. So that's a cleaning appointment on Friday, March 27 at 10 AM. Shall I book that for you?"
    );

    let t = call.caller("yes please").await;
    assert_eq!(t.tools, ["book_appointment"]);
    assert_eq!(
        t.text,
        "You're booked for Friday, March 27 at 10 AM. We'll see you then! Is there anything else I can help you with?"
    );
    assert_eq!(
        call.tools.named("book_appointment"),
        [
            json!({"title": "Cleaning", "start_time": "2026-03-27T10:00:00Z", "end_time": "2026-03-27T10:45:00Z", "lead_id": "lead_1"})
        ]
    );
    assert_eq!(
        call.tools.named("capture_lead"),
        [json!({"name": "Jane Smith"})]
    );

    let t = call.caller("no that's all thank you").await;
    assert_eq!(
        t.text,
        "Thanks for calling Bright Smile Dental. Have a great day, goodbye!"
    );
    assert_eq!(t.tools, ["end_call"]);
    assert!(t.ended);
}

#[tokio::test]
async fn service_day_and_time_in_one_breath() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call
        .caller("hi my name is jane and i need teeth whitening tomorrow at 3 pm")
        .await;
    assert_eq!(
        t.text,
        "Thanks, Jane. So that's a teeth whitening appointment on Thursday, March 26 at 3 PM. Shall I book that for you?"
    );
    call.caller("yep").await;
    let booking = &call.tools.named("book_appointment")[0];
    assert_eq!(booking["title"], "Teeth whitening");
    assert_eq!(booking["end_time"], "2026-03-26T16:00:00Z");
}

#[tokio::test]
async fn asks_for_the_service_then_only_what_is_missing() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("can i make an appointment").await;
    assert_eq!(
        t.text,
        "I'd be happy to help you book an appointment. What would you like to book? We offer cleaning, teeth whitening and filling."
    );
    let t = call.caller("a filling next tuesday morning").await;
    assert_eq!(t.text, "What time on Tuesday morning works for you?");
    let t = call.caller("half past nine").await;
    assert_eq!(t.text, "Can I get your name for the booking?");
    let t = call.caller("john doe").await;
    assert!(t.text.ends_with("So that's a filling appointment on Tuesday, March 31 at 9:30 AM. Shall I book that for you?"), "{}", t.text);
}

#[tokio::test]
async fn caller_changes_the_time_before_confirming() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    call.caller("this is jane smith i want to book a cleaning on friday at ten")
        .await;
    let t = call
        .caller("actually can we make it three pm instead")
        .await;
    assert_eq!(
        t.text,
        "So that's a cleaning appointment on Friday, March 27 at 3 PM. Shall I book that for you?"
    );
    let t = call.caller("no").await;
    assert_eq!(t.text, "No problem. What would you like to change?");
    let t = call.caller("make it monday at 11").await;
    assert_eq!(
        t.text,
        "So that's a cleaning appointment on Monday, March 30 at 11 AM. Shall I book that for you?"
    );
    call.caller("yes").await;
    let bookings = call.tools.named("book_appointment");
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0]["start_time"], "2026-03-30T11:00:00Z");
}

#[tokio::test]
async fn a_time_already_gone_is_refused() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("book a cleaning today at 8 am").await;
    assert!(
        t.text
            .ends_with("That time has already passed. What other time would work for you?"),
        "{}",
        t.text
    );
    assert!(call.tools.named("book_appointment").is_empty());
}

#[tokio::test]
async fn a_question_after_an_apology_is_still_answered() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("Sorry, what are your opening hours?").await;
    assert!(
        t.text.starts_with("We are open Monday to Friday"),
        "{}",
        t.text
    );
}

#[tokio::test]
async fn opening_hours_answered_from_the_knowledge_base() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("hi what are your opening hours").await;
    assert_eq!(
        t.text,
        "We are open Monday to Friday, 8 AM to 6 PM. How can I help you today?"
    );

    let t = call.caller("do you take insurance").await;
    assert_eq!(
        t.text,
        "Yes, we accept most major dental insurance plans. How can I help you today?"
    );
    assert!(call.tools.calls().is_empty());
}

#[tokio::test]
async fn unknown_question_offers_a_message() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("do you do brain surgery").await;
    assert_eq!(
        t.text,
        "I'm sorry, I don't have that information. I can take a message and have someone from the team get back to you. Would you like that?"
    );
    let t = call.caller("yes please").await;
    assert_eq!(t.text, "Sure. Can I get your name, please?");
}

#[tokio::test]
async fn lead_capture_with_name_and_number() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call
        .caller("hello this is john doe could someone call me back")
        .await;
    assert_eq!(t.tools, ["capture_lead"]);
    assert_eq!(
        t.text,
        "Thanks, John. Of course, I can take a message. Is the number you're calling from, ending in 0 1 2 3, the best one to reach you?"
    );
    let t = call
        .caller("no my number is five five five nine eight seven six")
        .await;
    assert_eq!(t.tools, ["update_lead"]);
    assert_eq!(
        t.text,
        "Got it, 4 1 5, 5 5 5, 9 8 7 6. And what would you like me to pass on to the team?"
    );
    let t = call.caller("i want to ask about braces for my son").await;
    assert!(t.tools.is_empty());
    assert_eq!(
        t.text,
        "Thanks, I'll pass that on and someone will get back to you as soon as possible. Is there anything else I can help you with?"
    );
    let t = call.caller("my email is john at example dot com").await;
    assert_eq!(
        t.text,
        "Thanks, I've got john at example dot com. Is there anything else I can help you with?"
    );
    assert_eq!(
        call.tools.calls(),
        [
            (
                "capture_lead".to_string(),
                json!({"name": "John Doe", "tags": ["callback"]})
            ),
            (
                "update_lead".to_string(),
                json!({"lead_id": "lead_1", "phone": "+14155559876"})
            ),
            (
                "update_lead".to_string(),
                json!({"lead_id": "lead_1", "email": "john@example.com"})
            ),
        ]
    );
}

#[tokio::test]
async fn callers_own_number_confirmed() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    call.caller("can i leave a message").await;
    call.caller("maria garcia").await;
    let t = call.caller("yes that's right").await;
    assert_eq!(t.text, "And what would you like me to pass on to the team?");
    assert_eq!(
        call.tools.named("update_lead"),
        [json!({"lead_id": "lead_1", "phone": "+14155550123"})]
    );
}

#[tokio::test]
async fn goodbye_ends_the_call_after_a_farewell() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("ok bye").await;
    assert_eq!(
        t.text,
        "Thanks for calling Bright Smile Dental. Have a great day, goodbye!"
    );
    assert!(t.ended);
    assert_eq!(t.tools, ["end_call"]);
}

#[tokio::test]
async fn nonsense_is_met_with_help_then_a_message_offer() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("purple monkey dishwasher").await;
    assert_eq!(
        t.text,
        "Sorry, I didn't quite get that. I can book an appointment, answer questions about Bright Smile Dental, or take a message. What would you like to do?"
    );
    let t = call.caller("blorp zzz").await;
    assert!(
        t.text
            .starts_with("I'm sorry, I'm having trouble understanding."),
        "{}",
        t.text
    );
    let t = call.caller("   ").await;
    assert_eq!(t.text, "Are you still there? How can I help you today?");
    assert!(call.tools.calls().is_empty());
}

#[tokio::test]
async fn asking_for_a_person_transfers_when_the_prompt_names_a_target() {
    let mut call = Call::start(dental_context(
        "You are the receptionist at Bright Smile Dental. Transfer callers who ask for a person to +1 415 555 0100.",
    ));
    call.agent().await;
    let t = call.caller("can i speak to a real person please").await;
    assert_eq!(
        t.text,
        "Of course, let me put you through to someone now. Please hold."
    );
    assert_eq!(t.transfer.as_deref(), Some("+14155550100"));
    assert_eq!(t.tools, ["transfer_call"]);

    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("let me talk to a human").await;
    assert!(
        t.text.ends_with(
            "I can take a message and have someone call you back. Can I get your name, please?"
        ),
        "{}",
        t.text
    );
    assert_eq!(t.transfer, None);
}

#[tokio::test]
async fn reschedule_requests_take_details_for_the_team() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call.caller("i need to reschedule my appointment").await;
    assert_eq!(
        t.text,
        "I can't move existing appointments myself, but I'll take your details and the team will get back to you to sort it out. Can I get your name, please?"
    );
    call.caller("jane smith").await;
    assert_eq!(
        call.tools.named("capture_lead"),
        [json!({"name": "Jane Smith", "tags": ["reschedule"]})]
    );
}

#[tokio::test]
async fn outbound_call_opens_with_the_briefing_and_books() {
    let mut context = dental_context(DENTAL_PROMPT);
    context.outbound_context = Some("Follow up on their cleaning inquiry and book a visit.".into());
    let mut call = Call::start(context);
    let t = call.agent().await;
    assert_eq!(
        t.text,
        "Hi, this is Sarah calling from Bright Smile Dental. I'm calling to follow up on your cleaning inquiry and book a visit. Is now a good time?"
    );
    let t = call.caller("yes sure").await;
    assert_eq!(t.text, "What day and time would suit you?");
    call.caller("thursday at two").await;
    call.caller("my name is amy").await;
    call.caller("yes").await;
    let booking = &call.tools.named("book_appointment")[0];
    assert_eq!(booking["title"], "Cleaning");
    assert_eq!(booking["start_time"], "2026-03-26T14:00:00Z");
}

#[tokio::test]
async fn outbound_callee_who_is_busy_is_let_go() {
    let mut context = dental_context(DENTAL_PROMPT);
    context.outbound_context = Some("Remind them about tomorrow's check-up".into());
    let mut call = Call::start(context);
    call.agent().await;
    let t = call.caller("no not a good time").await;
    assert!(t.ended);
}

#[tokio::test]
async fn a_cancelled_reply_leaves_nothing_half_done() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    call.caller("my name is jane i'd like a cleaning on friday at ten")
        .await;
    call.tools.hang_booking.store(true, Ordering::SeqCst);
    call.history.push(Message {
        role: Role::Caller,
        text: "yes".into(),
    });
    let rx = call.session.reply(&call.history);
    call.tools.booking_started.notified().await;
    drop(rx);
    assert!(call.tools.named("book_appointment").is_empty());

    // The caller speaks again: the unanswered "yes" is answered now, once.
    call.tools.hang_booking.store(false, Ordering::SeqCst);
    call.history.push(Message {
        role: Role::Agent,
        text: String::new(),
    });
    let t = call.caller("hello?").await;
    assert_eq!(t.tools, ["book_appointment"]);
    assert_eq!(call.tools.named("book_appointment").len(), 1);
}

#[tokio::test]
async fn same_conversation_same_words() {
    async fn transcript() -> Vec<String> {
        let mut call = Call::start(dental_context(DENTAL_PROMPT));
        let mut lines = vec![call.agent().await.text];
        for said in [
            "hi there how are you",
            "i want whitening",
            "next friday at 2:30",
            "it's bob",
            "yes",
            "bye",
        ] {
            lines.push(call.caller(said).await.text);
        }
        lines
    }
    assert_eq!(transcript().await, transcript().await);
}

#[tokio::test]
async fn booking_through_the_real_call_tools_writes_rows_and_events() {
    use crate::agent::tools::CallTools;
    use crate::store::{PageRequest, Scope, Store};

    let dir = std::env::temp_dir().join(format!("boltcall-offline-brain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("store.db");
    let _ = std::fs::remove_file(&path);
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("store opens");
    let scope = Scope {
        workspace_id: "ws_brain".into(),
        live: false,
    };
    let tools = Arc::new(CallTools::new(
        crate::messaging::Messaging::new(store.clone(), Default::default()),
        scope.clone(),
        "agent_1".into(),
        "call_1".into(),
        "+14155550123".into(),
        chrono::Utc::now(),
    ));
    let mut context = dental_context(DENTAL_PROMPT);
    context.now = chrono::Utc::now();
    let mut call = Call {
        session: OfflineBrain.start(context, tools),
        history: Vec::new(),
        tools: Arc::new(MemoryTools::default()),
    };
    call.agent().await;
    call.caller("hi this is jane smith i'd like to book a cleaning next friday at ten")
        .await;
    let t = call.caller("yes please").await;
    assert!(t.text.starts_with("You're booked for"), "{}", t.text);
    call.caller("my email is jane at example dot com").await;

    let page = PageRequest { page: 1, limit: 20 };
    let leads = store
        .list_leads(&scope, &Default::default(), page)
        .await
        .expect("leads");
    assert_eq!(leads.items.len(), 1);
    let lead = &leads.items[0];
    assert_eq!(lead.name, "Jane Smith");
    assert_eq!(lead.phone.as_deref(), Some("+14155550123"));
    assert_eq!(lead.email.as_deref(), Some("jane@example.com"));
    let appointments = store
        .list_appointments(&scope, &Default::default(), page)
        .await
        .expect("appointments");
    assert_eq!(appointments.items.len(), 1);
    assert_eq!(appointments.items[0].title, "Cleaning");
    assert_eq!(
        appointments.items[0].lead_id.as_deref(),
        Some(lead.id.as_str())
    );
    let mut events: Vec<String> = store
        .recent_events(&scope, 10)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    events.sort();
    assert_eq!(
        events,
        ["appointment.booked", "lead.created", "lead.updated"]
    );
}

#[tokio::test]
async fn polite_phrasings_are_not_misread() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    call.caller("Hi, this is Jane. Can I book a filling for Thursday at 4?")
        .await;
    let t = call.caller("No problem, go ahead.").await;
    assert_eq!(t.tools, ["book_appointment"]);
    assert_eq!(
        call.tools.named("book_appointment")[0]["start_time"],
        "2026-03-26T16:00:00Z"
    );
    let t = call.caller("Thank you!").await;
    assert!(t.ended, "{}", t.text);
}

#[test]
fn prompts_with_non_ascii_text_do_not_break_service_parsing() {
    let context = dental_context("Zahnarztpraxis İstanbul Services: Reinigung, Bleaching");
    let business = super::business::Business::from_context(&context);
    let names: Vec<&str> = business.services.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"Reinigung") && names.contains(&"Bleaching"),
        "{names:?}"
    );
}

#[tokio::test]
async fn naming_a_service_is_enough_to_start_booking() {
    let mut call = Call::start(dental_context(DENTAL_PROMPT));
    call.agent().await;
    let t = call
        .caller("Yeah, hi. Um, I was hoping to get my teeth cleaned sometime next week?")
        .await;
    assert_eq!(
        t.text,
        "I'd be happy to help you book a cleaning. What day and time would suit you?"
    );
}

#[tokio::test]
async fn a_caller_who_asks_for_a_text_gets_the_booking_by_sms() {
    use crate::agent::tools::CallTools;
    use crate::store::{MessageFilter, PageRequest, Scope, Store};

    let dir = std::env::temp_dir().join(format!("boltcall-offline-sms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("store.db");
    let _ = std::fs::remove_file(&path);
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("store opens");
    let scope = Scope {
        workspace_id: "ws_brain".into(),
        live: false,
    };
    let tools = Arc::new(CallTools::new(
        crate::messaging::Messaging::new(store.clone(), Default::default()),
        scope.clone(),
        "agent_1".into(),
        "call_1".into(),
        "+14155550123".into(),
        chrono::Utc::now(),
    ));
    let mut context = dental_context(DENTAL_PROMPT);
    context.now = chrono::Utc::now();
    let mut call = Call {
        session: OfflineBrain.start(context, tools),
        history: Vec::new(),
        tools: Arc::new(MemoryTools::default()),
    };
    call.agent().await;
    let t = call
        .caller("hi this is jane smith, can I book a cleaning next friday at ten and text me the confirmation")
        .await;
    assert!(!t.text.contains("texted"), "{}", t.text);
    let t = call.caller("yes please").await;
    assert!(
        t.text.contains("I've texted you the details."),
        "{}",
        t.text
    );

    let page = PageRequest { page: 1, limit: 20 };
    let messages = store
        .list_messages(&scope, &MessageFilter::default(), page)
        .await
        .expect("messages");
    assert_eq!(messages.items.len(), 1);
    let sms = &messages.items[0];
    assert_eq!(sms.to, "+14155550123", "the caller's number");
    assert!(
        sms.body.as_deref().unwrap_or_default().contains("Cleaning"),
        "{sms:?}"
    );
    assert!(sms.lead_id.is_some(), "linked to the caller's lead");
    assert_eq!(sms.status, "delivered", "test mode: the sandbox");

    // Asked again after the booking: texted again, no new booking.
    let t = call.caller("can you text me the details again").await;
    assert!(
        t.text.contains("I've texted you the details."),
        "{}",
        t.text
    );
    let messages = store
        .list_messages(&scope, &MessageFilter::default(), page)
        .await
        .expect("messages");
    assert_eq!(messages.items.len(), 2);
}
