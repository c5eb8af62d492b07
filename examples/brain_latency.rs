//! Measures how long the offline brain takes to answer, per caller turn, over a scripted
//! booking call (greeting, booking, name, confirmation, goodbye) with tools that answer at once.
//!
//! `cargo run --release --example brain_latency [calls]`

use std::sync::Arc;
use std::time::Instant;

use boltcall::agent::tools::{ToolError, ToolRunner, ToolSpec, arguments};
use boltcall::providers::llm::offline::OfflineBrain;
use boltcall::providers::llm::{Brain, BrainContext, BrainEvent, KnowledgeDoc, Message, Role};
use futures::future::BoxFuture;
use serde_json::{Value, json};

struct InstantTools;

impl ToolRunner for InstantTools {
    fn specs(&self) -> Vec<ToolSpec> {
        arguments::call_tool_specs()
    }

    fn call<'a>(&'a self, _name: &'a str, _args: Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async { Ok(json!({"id": "lead_1", "action": "end_call"})) })
    }
}

const SCRIPT: &[&str] = &[
    "hi i'd like to book a cleaning",
    "what are your opening hours",
    "friday at ten",
    "my name is jane smith",
    "yes please",
    "no that's all thanks",
];

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let context = BrainContext {
        agent_name: "Sarah".into(),
        prompt: "You are the receptionist at Bright Smile Dental.".into(),
        greeting: None,
        knowledge: vec![
            KnowledgeDoc {
                title: "Opening hours".into(),
                text: "We are open Monday to Friday, 8 AM to 6 PM.\nOn Saturdays we open 9 AM to 1 PM.".into(),
            },
            KnowledgeDoc {
                title: "Services and prices".into(),
                text: "- Cleaning: $120, 45 minutes\n- Teeth whitening: $300, 60 minutes".into(),
            },
        ],
        caller_number: "+14155550123".into(),
        outbound_context: None,
        now: chrono::Utc::now(),
        llm: Default::default(),
    };
    let tools: Arc<dyn ToolRunner> = Arc::new(InstantTools);
    let mut turn_times = Vec::with_capacity(calls * SCRIPT.len());
    for _ in 0..calls {
        let mut session = OfflineBrain.start(context.clone(), tools.clone());
        let mut history: Vec<Message> = Vec::new();
        for said in SCRIPT {
            history.push(Message {
                role: Role::Caller,
                text: (*said).into(),
            });
            let started = Instant::now();
            let mut rx = session.reply(&history);
            let mut reply = String::new();
            let mut first_text = None;
            while let Some(event) = rx.recv().await {
                match event {
                    BrainEvent::Text(t) => {
                        first_text.get_or_insert_with(|| started.elapsed());
                        reply.push_str(&t);
                    }
                    BrainEvent::Done | BrainEvent::Error(_) => break,
                    _ => {}
                }
            }
            turn_times.push((first_text.unwrap_or_default(), started.elapsed()));
            history.push(Message {
                role: Role::Agent,
                text: reply,
            });
        }
    }
    let mut firsts: Vec<f64> = turn_times.iter().map(|t| t.0.as_secs_f64() * 1e6).collect();
    let mut totals: Vec<f64> = turn_times.iter().map(|t| t.1.as_secs_f64() * 1e6).collect();
    firsts.sort_by(f64::total_cmp);
    totals.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p) as usize];
    println!(
        "{} turns: first text p50 {:.0} µs p99 {:.0} µs; whole reply p50 {:.0} µs p99 {:.0} µs",
        totals.len(),
        pct(&firsts, 0.5),
        pct(&firsts, 0.99),
        pct(&totals, 0.5),
        pct(&totals, 0.99)
    );
}
