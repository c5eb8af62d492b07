//! The outbound calls this engine placed through Twilio and has not seen end yet, by our call
//! id. The dialer registers a call before asking Twilio for it; the stream's `start` takes it
//! over (its admission permit, briefing and machine-detection choice ride along); the status
//! callback removes a call whose stream never started. Answering-machine verdicts meet the
//! call's stream here, whichever of the two comes first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::telephony::{AnsweredBy, LegEvent, OutboundCall};

/// Longest an entry may wait for its stream or status callback. Twilio rings for at most
/// 600 s and reports the end of every call; an entry older than this lost its callback.
const STALE_AFTER: Duration = Duration::from_secs(2 * 60 * 60);

#[derive(Debug)]
struct Placed {
    /// `None` once the stream has taken the call.
    call: Option<OutboundCall>,
    /// Twilio's CallSid, once the create answered.
    call_sid: Option<String>,
    /// An AMD verdict that arrived before the stream started.
    verdict: Option<AnsweredBy>,
    /// The running stream's way to its session.
    events: Option<mpsc::Sender<LegEvent>>,
    placed_at: Instant,
}

/// What became of an AMD verdict.
#[derive(Debug)]
pub enum Verdict {
    /// The stream runs: send the event on this sender.
    Deliver(mpsc::Sender<LegEvent>),
    /// Kept until the stream starts.
    Kept,
    /// No such call here (ended, or placed by another engine).
    Unknown,
}

/// What a final status callback may do with a call.
#[derive(Debug)]
pub enum Ending {
    /// Its stream never started: the callback finishes it (dropping the entry frees the
    /// call's admission permit).
    Unstarted(OutboundCall),
    /// Its stream started: the session finishes it.
    Streaming,
    /// Not registered here.
    Unknown,
}

#[derive(Debug, Default)]
pub struct PlacedCalls {
    calls: Mutex<HashMap<String, Placed>>,
}

impl PlacedCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Placed>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a call about to be placed.
    pub fn insert(&self, call: OutboundCall, now: Instant) {
        let mut calls = self.lock();
        calls.retain(|id, placed| {
            let fresh = now.duration_since(placed.placed_at) < STALE_AFTER;
            if !fresh {
                tracing::warn!(call_id = %id, "twilio never reported the end of this call; forgetting it");
            }
            fresh
        });
        calls.insert(
            call.call_id.clone(),
            Placed {
                call: Some(call),
                call_sid: None,
                verdict: None,
                events: None,
                placed_at: now,
            },
        );
    }

    pub fn set_call_sid(&self, call_id: &str, call_sid: &str) {
        if let Some(placed) = self.lock().get_mut(call_id) {
            placed.call_sid = Some(call_sid.to_string());
        }
    }

    /// The stream of `call_id` (Twilio's `call_sid`) started: hands over the call. `None` when
    /// the call is not waiting for its stream (unknown here, taken by an earlier stream, or
    /// placed as another CallSid).
    pub fn take(&self, call_id: &str, call_sid: &str) -> Option<OutboundCall> {
        let mut calls = self.lock();
        let placed = calls.get_mut(call_id)?;
        if placed
            .call_sid
            .as_deref()
            .is_some_and(|sid| sid != call_sid)
        {
            return None;
        }
        placed.call_sid = Some(call_sid.to_string());
        placed.call.take()
    }

    /// Routes the verdict of the taken call `call_id` to its stream's `events` from now on;
    /// returns the verdict that arrived before.
    pub fn attach(&self, call_id: &str, events: mpsc::Sender<LegEvent>) -> Option<AnsweredBy> {
        let mut calls = self.lock();
        let placed = calls.get_mut(call_id)?;
        placed.events = Some(events);
        placed.verdict.take()
    }

    /// Whether `call_id` was placed here and its stream has not started.
    pub fn is_waiting(&self, call_id: &str) -> bool {
        self.lock().get(call_id).is_some_and(|p| p.call.is_some())
    }

    /// An AMD verdict for `call_id`.
    pub fn verdict(&self, call_id: &str, verdict: AnsweredBy) -> Verdict {
        let mut calls = self.lock();
        let Some(placed) = calls.get_mut(call_id) else {
            return Verdict::Unknown;
        };
        match &placed.events {
            Some(events) => Verdict::Deliver(events.clone()),
            None => {
                placed.verdict = Some(verdict);
                Verdict::Kept
            }
        }
    }

    /// A final status arrived: removes the call if its stream never started.
    pub fn end(&self, call_id: &str) -> Ending {
        let mut calls = self.lock();
        match calls.get(call_id) {
            None => Ending::Unknown,
            Some(placed) if placed.call.is_none() => Ending::Streaming,
            Some(_) => match calls.remove(call_id).and_then(|p| p.call) {
                Some(call) => Ending::Unstarted(call),
                None => Ending::Unknown,
            },
        }
    }

    /// Forgets a call (its stream ended, or Twilio refused to place it).
    pub fn remove(&self, call_id: &str) {
        self.lock().remove(call_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> OutboundCall {
        OutboundCall {
            call_id: id.into(),
            workspace_id: "ws".into(),
            live: true,
            agent_id: "agent_1".into(),
            from: "+15550001000".into(),
            to: "+15550002000".into(),
            context: None,
            permit: None,
            machine_detection: Default::default(),
        }
    }

    #[test]
    fn a_verdict_before_the_stream_is_kept_and_handed_over_at_start() {
        let placed = PlacedCalls::default();
        placed.insert(call("call_1"), Instant::now());
        assert!(matches!(
            placed.verdict("call_1", AnsweredBy::MachineGreetingEnded),
            Verdict::Kept
        ));
        let taken = placed.take("call_1", "CA1").unwrap();
        assert_eq!(taken.call_id, "call_1");
        // A verdict between taking the call and attaching its stream is kept too.
        assert!(matches!(
            placed.verdict("call_1", AnsweredBy::MachineGreetingEnded),
            Verdict::Kept
        ));
        let (tx, _rx) = mpsc::channel(4);
        assert_eq!(
            placed.attach("call_1", tx),
            Some(AnsweredBy::MachineGreetingEnded)
        );
    }

    #[test]
    fn a_verdict_after_start_goes_to_the_running_stream() {
        let placed = PlacedCalls::default();
        placed.insert(call("call_1"), Instant::now());
        placed.take("call_1", "CA1").unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        assert_eq!(placed.attach("call_1", tx), None);
        match placed.verdict("call_1", AnsweredBy::Human) {
            Verdict::Deliver(events) => events
                .try_send(LegEvent::AnsweredBy(AnsweredBy::Human))
                .unwrap(),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            rx.try_recv(),
            Ok(LegEvent::AnsweredBy(AnsweredBy::Human))
        ));
        assert!(matches!(
            placed.verdict("call_2", AnsweredBy::Human),
            Verdict::Unknown
        ));
    }

    #[test]
    fn a_call_streams_once_and_only_unstarted_calls_are_ended_by_the_status_callback() {
        let placed = PlacedCalls::default();
        placed.insert(call("call_1"), Instant::now());
        placed.insert(call("call_2"), Instant::now());
        placed.set_call_sid("call_2", "CA2");
        assert!(placed.is_waiting("call_1"));
        assert!(placed.take("call_1", "CA1").is_some());
        assert!(!placed.is_waiting("call_1"));
        assert!(placed.take("call_1", "CA1").is_none(), "a second stream");
        assert!(
            placed.take("call_2", "CA9").is_none(),
            "another Twilio call"
        );
        assert!(matches!(placed.end("call_1"), Ending::Streaming));
        assert!(matches!(placed.end("call_2"), Ending::Unstarted(c) if c.call_id == "call_2"));
        assert!(matches!(placed.end("call_2"), Ending::Unknown));
        assert!(
            placed.take("call_2", "CA2").is_none(),
            "ended before its stream"
        );
        placed.remove("call_1");
        assert_eq!(placed.len(), 0);
    }

    #[test]
    fn entries_whose_end_was_never_reported_are_forgotten() {
        let placed = PlacedCalls::default();
        let t0 = Instant::now();
        placed.insert(call("call_1"), t0);
        placed.insert(call("call_2"), t0 + STALE_AFTER);
        assert_eq!(placed.len(), 1);
    }
}
