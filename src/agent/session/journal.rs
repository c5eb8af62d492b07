//! The call's writes as it goes, by a writer task so the call never waits on the database:
//! first its record (the caller hears the greeting while it is written), then its transcript
//! journaled turn by turn, so a call cut short by a panic or a crash can still be finished
//! with what was said.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::SessionError;
use super::outcome::transcript_entry;
use crate::agent::turn::TranscriptTurn;
use crate::providers::llm::Role;
use crate::store::{NewCall, Scope, Store, StoreError, TranscriptEntry};

/// How the call's record comes to say this instance runs it.
pub(super) enum Registration {
    /// A call the engine answered: recorded under the id the session gave it.
    New { scope: Scope, call: NewCall },
    /// A call recorded before it was answered (outbound): now in progress.
    Existing,
}

enum Write {
    Turn(usize, TranscriptEntry),
    /// The machine took turns back from this index on (a withdrawn caller turn).
    Truncate(usize),
}

/// The call's side: compares the machine's transcript with what was journaled.
pub(super) struct TurnJournal {
    writes: mpsc::UnboundedSender<Write>,
    journaled: Vec<TranscriptEntry>,
    /// Until the call's record is written: whether it was.
    registration: Option<oneshot::Receiver<Result<(), StoreError>>>,
}

/// Writes the journal; finishes once the call's `TurnJournal` is gone and all is written.
pub(super) struct JournalWriter(JoinHandle<()>);

impl TurnJournal {
    /// Starts writing the call's record; turns journaled meanwhile wait for it.
    pub(super) fn open(
        store: Store,
        call_id: String,
        registration: Registration,
    ) -> (Self, JournalWriter) {
        let (writes, mut pending) = mpsc::unbounded_channel();
        let (registered, registered_rx) = oneshot::channel();
        let writer = tokio::spawn(async move {
            let written = match registration {
                Registration::New { scope, call } => store
                    .create_running_call(&scope, call_id.clone(), call)
                    .await
                    .map(drop),
                Registration::Existing => store.claim_call(&call_id).await,
            };
            let written_ok = written.is_ok();
            let _ = registered.send(written);
            if !written_ok {
                return; // nothing to journal turns against; the session ends the call
            }
            while let Some(write) = pending.recv().await {
                let result = match &write {
                    Write::Turn(seq, turn) => store.journal_turn(&call_id, *seq, turn).await,
                    Write::Truncate(seq) => store.truncate_journal(&call_id, *seq).await,
                };
                if let Err(e) = result {
                    tracing::warn!(%call_id, "cannot journal the transcript: {e}");
                }
            }
        });
        let journal = TurnJournal {
            writes,
            journaled: Vec::new(),
            registration: Some(registered_rx),
        };
        (journal, JournalWriter(writer))
    }

    /// Whether the call's record is still being written.
    pub(super) fn registering(&self) -> bool {
        self.registration.is_some()
    }

    /// Waits for the call's record to be written (at once when it already is).
    pub(super) async fn registered(&mut self) -> Result<(), SessionError> {
        let Some(registration) = self.registration.as_mut() else {
            return Ok(());
        };
        let written = registration.await;
        self.registration = None;
        match written {
            Ok(written) => Ok(written?),
            Err(_) => Err(SessionError::WriterStopped),
        }
    }

    /// Journals whatever of `transcript` changed since the last call. Called every tick: the
    /// usual case (nothing new) compares one turn and allocates nothing.
    pub(super) fn sync(&mut self, transcript: &[TranscriptTurn]) {
        let last_same = match (self.journaled.last(), transcript.last()) {
            (Some(j), Some(t)) => same(j, t),
            (None, None) => true,
            _ => false,
        };
        if last_same && transcript.len() == self.journaled.len() {
            return;
        }
        // The machine only adds turns or takes back the last one: find where they part.
        let kept = self
            .journaled
            .iter()
            .zip(transcript)
            .take_while(|(j, t)| same(j, t))
            .count();
        if kept < self.journaled.len() {
            self.journaled.truncate(kept);
            let _ = self.writes.send(Write::Truncate(kept));
        }
        for (seq, turn) in transcript.iter().enumerate().skip(kept) {
            let entry = transcript_entry(turn);
            self.journaled.push(entry.clone());
            let _ = self.writes.send(Write::Turn(seq, entry));
        }
    }
}

fn same(journaled: &TranscriptEntry, turn: &TranscriptTurn) -> bool {
    let role = match turn.role {
        Role::Agent => "agent",
        Role::Caller => "caller",
    };
    journaled.role == role
        && journaled.text == turn.text
        && journaled.start_ms == turn.start_ms
        && journaled.end_ms == turn.end_ms
}

impl JournalWriter {
    /// Waits until everything journaled so far is written (the `TurnJournal` must be gone).
    pub(super) async fn flushed(self) {
        let _ = self.0.await;
    }
}
