//! What the Vonage handlers share about calls in flight: outbound calls placed but not yet
//! streaming (so an event webhook can finish one that never connects, exactly once), the
//! open streams (so a machine-detection verdict reaches its call), and verdicts that arrive
//! before their stream does.
//!
//! Streams are keyed by our call id for outbound calls and by Vonage's uuid for inbound ones.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::telephony::{AnsweredBy, LegEvent, OutboundCall};

/// Verdicts kept for one call before its stream opens (Vonage sends at most a decision and
/// the beep).
const MAX_EARLY_VERDICTS: usize = 4;

#[derive(Default)]
pub(crate) struct CallRegistry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: HashMap<String, Pending>,
    streams: HashMap<String, Stream>,
}

struct Pending {
    call: OutboundCall,
    uuid: Option<String>,
    verdicts: Vec<AnsweredBy>,
}

struct Stream {
    uuid: Option<String>,
    events: mpsc::Sender<LegEvent>,
}

/// An outbound call whose stream has opened.
pub(crate) struct Streaming {
    pub call: OutboundCall,
    pub uuid: Option<String>,
    /// Verdicts that arrived first, to hand the session before anything else.
    pub verdicts: Vec<AnsweredBy>,
}

/// Where a verdict went.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// To this open stream.
    Deliver(mpsc::Sender<LegEvent>),
    /// Kept for the stream of a call still connecting.
    Kept,
    /// No such call here.
    Unknown,
}

impl CallRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An outbound call about to be placed.
    pub fn placing(&self, call: OutboundCall) {
        let id = call.call_id.clone();
        self.lock().pending.insert(
            id,
            Pending {
                call,
                uuid: None,
                verdicts: Vec::new(),
            },
        );
    }

    /// Vonage accepted the call as `uuid`.
    pub fn placed(&self, call_id: &str, uuid: &str) {
        let mut inner = self.lock();
        if let Some(pending) = inner.pending.get_mut(call_id) {
            pending.uuid = Some(uuid.to_string());
        } else if let Some(stream) = inner.streams.get_mut(call_id) {
            stream.uuid = Some(uuid.to_string());
        }
    }

    /// Whether an outbound call is still connecting (placed, not streaming, not finished).
    pub fn is_pending(&self, call_id: &str) -> bool {
        self.lock().pending.contains_key(call_id)
    }

    /// Takes a call that will never stream (refused, busy, unanswered…) for its caller to
    /// finish; `None` when it streams or was finished already, so a call ends once.
    pub fn take_unconnected(&self, call_id: &str) -> Option<OutboundCall> {
        self.lock().pending.remove(call_id).map(|p| p.call)
    }

    /// The outbound call `call_id` starts streaming into `events`; `None` when it is not
    /// connecting (unknown, finished, or streaming already).
    pub fn start_outbound(
        &self,
        call_id: &str,
        events: mpsc::Sender<LegEvent>,
    ) -> Option<Streaming> {
        let mut inner = self.lock();
        let pending = inner.pending.remove(call_id)?;
        inner.streams.insert(
            call_id.to_string(),
            Stream {
                uuid: pending.uuid.clone(),
                events,
            },
        );
        Some(Streaming {
            call: pending.call,
            uuid: pending.uuid,
            verdicts: pending.verdicts,
        })
    }

    /// An inbound call (`uuid`) starts streaming into `events`.
    pub fn start_inbound(&self, uuid: &str, events: mpsc::Sender<LegEvent>) {
        self.lock().streams.insert(
            uuid.to_string(),
            Stream {
                uuid: Some(uuid.to_string()),
                events,
            },
        );
    }

    /// Vonage's uuid of a streaming call, once known.
    pub fn uuid(&self, key: &str) -> Option<String> {
        self.lock().streams.get(key).and_then(|s| s.uuid.clone())
    }

    pub fn end_stream(&self, key: &str) {
        self.lock().streams.remove(key);
    }

    /// Routes a machine-detection verdict for the call `key`.
    pub fn verdict(&self, key: &str, verdict: AnsweredBy) -> Verdict {
        let mut inner = self.lock();
        if let Some(stream) = inner.streams.get(key) {
            return Verdict::Deliver(stream.events.clone());
        }
        match inner.pending.get_mut(key) {
            Some(pending) if pending.verdicts.len() < MAX_EARLY_VERDICTS => {
                pending.verdicts.push(verdict);
                Verdict::Kept
            }
            Some(_) => Verdict::Kept,
            None => Verdict::Unknown,
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
            workspace_id: "default".into(),
            live: true,
            agent_id: "agent_1".into(),
            from: "+15550001000".into(),
            to: "+15550002000".into(),
            context: None,
            permit: None,
            machine_detection: MachineDetection::HangUp,
        }
    }

    #[test]
    fn a_verdict_before_the_stream_is_kept_and_handed_over_at_start() {
        let calls = CallRegistry::default();
        calls.placing(call("call_1"));
        calls.placed("call_1", "uuid-1");
        assert!(matches!(
            calls.verdict("call_1", AnsweredBy::Machine),
            Verdict::Kept
        ));
        assert!(matches!(
            calls.verdict("call_1", AnsweredBy::MachineGreetingEnded),
            Verdict::Kept
        ));
        let (tx, mut rx) = mpsc::channel(4);
        let streaming = calls.start_outbound("call_1", tx).unwrap();
        assert_eq!(streaming.uuid.as_deref(), Some("uuid-1"));
        assert_eq!(
            streaming.verdicts,
            [AnsweredBy::Machine, AnsweredBy::MachineGreetingEnded]
        );
        // Later verdicts go straight to the stream.
        let Verdict::Deliver(events) = calls.verdict("call_1", AnsweredBy::Human) else {
            panic!("not delivered")
        };
        events
            .try_send(LegEvent::AnsweredBy(AnsweredBy::Human))
            .unwrap();
        assert!(matches!(
            rx.try_recv(),
            Ok(LegEvent::AnsweredBy(AnsweredBy::Human))
        ));
        calls.end_stream("call_1");
        assert!(matches!(
            calls.verdict("call_1", AnsweredBy::Human),
            Verdict::Unknown
        ));
    }

    #[test]
    fn a_call_streams_or_is_finished_never_both() {
        let calls = CallRegistry::default();
        calls.placing(call("call_1"));
        assert!(calls.is_pending("call_1"));
        let (tx, _rx) = mpsc::channel(4);
        assert!(calls.start_outbound("call_1", tx.clone()).is_some());
        assert!(!calls.is_pending("call_1"));
        assert!(calls.take_unconnected("call_1").is_none());
        assert!(
            calls.start_outbound("call_1", tx.clone()).is_none(),
            "streams once"
        );
        // The uuid may come back after the stream opened.
        assert_eq!(calls.uuid("call_1"), None);
        calls.placed("call_1", "uuid-1");
        assert_eq!(calls.uuid("call_1").as_deref(), Some("uuid-1"));

        calls.placing(call("call_2"));
        assert!(calls.take_unconnected("call_2").is_some());
        assert!(calls.take_unconnected("call_2").is_none(), "finished once");
        assert!(calls.start_outbound("call_2", tx).is_none());
        assert!(matches!(
            calls.verdict("nobody", AnsweredBy::Human),
            Verdict::Unknown
        ));
    }
}
