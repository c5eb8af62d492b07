//! The embedded offline brain: a deterministic dialogue policy, not a language model.
//!
//! It greets, answers questions by quoting the agent's knowledge base (BM25), books
//! appointments by filling service/day/time slots, captures leads, takes messages, transfers
//! and says goodbye, calling the same tools an LLM brain would. Given the same conversation it
//! always says the same thing.

mod business;
mod contact;
mod policy;
mod understand;

use std::sync::Arc;

use serde_json::json;
use tokio::sync::{Mutex, mpsc};
use tracing::Instrument;

use self::policy::{Dialogue, Out};
use super::{Brain, BrainContext, BrainEvent, BrainSession, Message, Role};
use crate::agent::tools::ToolRunner;

/// Events buffered per reply; a reply is a handful of sentences and tool calls.
const REPLY_BUFFER: usize = 32;

pub struct OfflineBrain;

impl Brain for OfflineBrain {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn start(&self, context: BrainContext, tools: Arc<dyn ToolRunner>) -> Box<dyn BrainSession> {
        Box::new(OfflineSession::new(&context, tools))
    }
}

/// One call's brain. Replies run one at a time, in the order they were asked for.
pub(super) struct OfflineSession {
    dialogue: Arc<Mutex<Dialogue>>,
    tools: Arc<dyn ToolRunner>,
}

impl OfflineSession {
    pub(super) fn new(context: &BrainContext, tools: Arc<dyn ToolRunner>) -> Self {
        OfflineSession {
            dialogue: Arc::new(Mutex::new(Dialogue::new(context))),
            tools,
        }
    }

    /// Replies to the caller's words after their first `answered` turns, which another brain
    /// (an LLM this one stands in for) has already answered.
    pub(super) fn reply_after(
        &mut self,
        history: &[Message],
        answered: usize,
    ) -> mpsc::Receiver<BrainEvent> {
        let (tx, rx) = mpsc::channel(REPLY_BUFFER);
        let callers: Vec<String> = history
            .iter()
            .filter(|m| m.role == Role::Caller)
            .map(|m| m.text.clone())
            .collect();
        let fresh_call = history.is_empty();
        let dialogue = self.dialogue.clone();
        let tools = self.tools.clone();
        tokio::spawn(
            async move {
                let mut committed = dialogue.lock_owned().await;
                let mut state = (*committed).clone();
                state.consumed = state.consumed.max(answered);
                if let Some(state) = run_reply(state, &callers, fresh_call, tools, &tx).await {
                    *committed = state;
                }
            }
            .in_current_span(),
        );
        rx
    }
}

impl BrainSession for OfflineSession {
    fn reply(&mut self, history: &[Message]) -> mpsc::Receiver<BrainEvent> {
        self.reply_after(history, 0)
    }
}

/// Plays one reply on a copy of the state and returns the state to keep: `None` when the reply
/// was cancelled before it changed anything in the world, so the caller's words are answered
/// afresh next time. Once a tool has run, the state that knows about it is kept.
async fn run_reply(
    mut state: Dialogue,
    callers: &[String],
    fresh_call: bool,
    tools: Arc<dyn ToolRunner>,
    tx: &mpsc::Sender<BrainEvent>,
) -> Option<Dialogue> {
    let unanswered = callers.get(state.consumed..).unwrap_or(callers);
    let words = unanswered.join(" ");
    state.consumed = callers.len();
    let mut outs = if fresh_call {
        state.open()
    } else if words.trim().is_empty() {
        state.silence()
    } else {
        state.heard(&words)
    };
    let mut world_changed = false;
    let mut first_text = true;
    loop {
        let mut tool_call = None;
        for out in outs {
            let event = match out {
                Out::Say(text) if first_text => {
                    first_text = false;
                    BrainEvent::Text(text)
                }
                Out::Say(text) => BrainEvent::Text(format!(" {text}")),
                Out::EndCall => BrainEvent::EndCall,
                Out::Transfer(target) => BrainEvent::Transfer { target },
                Out::CallTool { name, arguments } => {
                    tool_call = Some((name, arguments));
                    break;
                }
            };
            // A closed receiver is handled below, where it matters.
            let _ = tx.send(event).await;
        }
        let Some((name, arguments)) = tool_call else {
            break;
        };
        let result = tokio::select! {
            result = tools.call(name, arguments.clone()) => result,
            // Cancelled mid-call: the tool's future is dropped, and the store's transactions
            // either committed whole or not at all.
            () = tx.closed() => return world_changed.then_some(state),
        };
        world_changed = true;
        let reported = match &result {
            Ok(value) => value.clone(),
            Err(e) => json!({ "error": e.to_string() }),
        };
        let _ = tx
            .send(BrainEvent::ToolCalled {
                name: name.to_string(),
                arguments,
                result: reported,
            })
            .await;
        outs = state.tool_result(result);
    }
    if tx.is_closed() && !world_changed {
        return None;
    }
    let _ = tx.send(BrainEvent::Done).await;
    Some(state)
}

#[cfg(test)]
mod tests;
