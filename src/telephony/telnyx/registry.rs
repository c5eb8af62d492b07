//! Which Telnyx calls this engine is running: outbound calls placed but not yet streaming (the
//! `OutboundCall` with its admission permit waits here for its stream), and live streams by
//! call control id (where machine-detection webhooks deliver their verdict). One lock over
//! both, so a call is always in exactly one place: the stream takes it, or the hang-up webhook
//! finishes it, never both.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::telephony::{AnsweredBy, LegEvent, OutboundCall};

/// Verdicts kept for a call whose stream has not started (detection and greeting end).
const MAX_EARLY_VERDICTS: usize = 4;

pub struct PendingOutbound {
    pub call: OutboundCall,
    /// Known once `POST /v2/calls` answered.
    pub call_control_id: Option<String>,
    /// Machine detection verdicts that arrived before the stream; delivered when it starts.
    pub verdicts: Vec<AnsweredBy>,
}

#[derive(Default)]
struct Calls {
    /// By our call id.
    pending: HashMap<String, PendingOutbound>,
    /// By call control id.
    live: HashMap<String, mpsc::Sender<LegEvent>>,
}

#[derive(Default)]
pub struct Registry {
    calls: Mutex<Calls>,
}

/// Where a verdict went.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Kept,
    Live,
    Unknown,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An outbound call about to be placed.
    pub fn add_pending(&self, call: OutboundCall) {
        let id = call.call_id.clone();
        self.lock().pending.insert(
            id,
            PendingOutbound {
                call,
                call_control_id: None,
                verdicts: Vec::new(),
            },
        );
    }

    /// Telnyx accepted the call: remember its control id (`false`: it is no longer pending).
    pub fn placed(&self, call_id: &str, call_control_id: &str) -> bool {
        match self.lock().pending.get_mut(call_id) {
            Some(pending) => {
                pending.call_control_id = Some(call_control_id.to_string());
                true
            }
            None => false,
        }
    }

    /// Takes a pending call out (its stream will not come, or it is finished elsewhere).
    pub fn take_pending(&self, call_id: &str) -> Option<PendingOutbound> {
        self.lock().pending.remove(call_id)
    }

    /// The stream of a pending outbound call started: the call moves to `live` and the
    /// verdicts that came early are delivered first.
    pub fn start_outbound(
        &self,
        call_id: &str,
        call_control_id: &str,
        events: &mpsc::Sender<LegEvent>,
    ) -> Option<OutboundCall> {
        let mut calls = self.lock();
        let pending = calls.pending.remove(call_id)?;
        for verdict in pending.verdicts {
            // A fresh leg's channel has room for these few.
            let _ = events.try_send(LegEvent::AnsweredBy(verdict));
        }
        calls
            .live
            .insert(call_control_id.to_string(), events.clone());
        Some(pending.call)
    }

    /// An inbound stream started.
    pub fn start_inbound(&self, call_control_id: &str, events: &mpsc::Sender<LegEvent>) {
        self.lock()
            .live
            .insert(call_control_id.to_string(), events.clone());
    }

    pub fn end(&self, call_control_id: &str) {
        self.lock().live.remove(call_control_id);
    }

    /// A machine-detection verdict for the call with this control id (and, for ours, call id).
    pub fn verdict(
        &self,
        call_id: Option<&str>,
        call_control_id: &str,
        verdict: AnsweredBy,
    ) -> (Delivery, Option<mpsc::Sender<LegEvent>>) {
        let mut calls = self.lock();
        if let Some(pending) = call_id.and_then(|id| calls.pending.get_mut(id))
            && pending.verdicts.len() < MAX_EARLY_VERDICTS
        {
            pending.verdicts.push(verdict);
            return (Delivery::Kept, None);
        }
        match calls.live.get(call_control_id) {
            Some(events) => (Delivery::Live, Some(events.clone())),
            None => (Delivery::Unknown, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telephony::MachineDetection;

    fn call(id: &str) -> OutboundCall {
        OutboundCall {
            call_id: id.into(),
            workspace_id: "ws".into(),
            live: true,
            agent_id: "agent_1".into(),
            from: "+1".into(),
            to: "+2".into(),
            context: None,
            permit: None,
            machine_detection: MachineDetection::HangUp,
        }
    }

    #[tokio::test]
    async fn early_verdicts_reach_the_stream_first_and_later_ones_go_live() {
        let registry = Registry::default();
        registry.add_pending(call("call_1"));
        assert!(registry.placed("call_1", "v3:1"));
        assert_eq!(
            registry
                .verdict(Some("call_1"), "v3:1", AnsweredBy::Machine)
                .0,
            Delivery::Kept
        );
        let (tx, mut rx) = mpsc::channel(8);
        let started = registry.start_outbound("call_1", "v3:1", &tx).unwrap();
        assert_eq!(started.call_id, "call_1");
        assert!(matches!(
            rx.try_recv(),
            Ok(LegEvent::AnsweredBy(AnsweredBy::Machine))
        ));
        let (delivery, sender) =
            registry.verdict(Some("call_1"), "v3:1", AnsweredBy::MachineGreetingEnded);
        assert_eq!(delivery, Delivery::Live);
        assert!(sender.is_some());
        registry.end("v3:1");
        assert_eq!(
            registry
                .verdict(Some("call_1"), "v3:1", AnsweredBy::Human)
                .0,
            Delivery::Unknown
        );
    }

    #[test]
    fn a_call_is_taken_once() {
        let registry = Registry::default();
        registry.add_pending(call("call_2"));
        let (tx, _rx) = mpsc::channel(8);
        assert!(registry.take_pending("call_2").is_some());
        assert!(registry.start_outbound("call_2", "v3:2", &tx).is_none());
        assert!(!registry.placed("call_2", "v3:2"));
        assert!(registry.take_pending("call_2").is_none());
    }
}
