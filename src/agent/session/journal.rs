//! The transcript journaled as the call goes: each turn the machine commits is written at
//! once (by a writer task, so the call never waits on the database), so a call cut short by
//! a panic or a crash can still be finished with what was said.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::outcome::transcript_entry;
use crate::agent::turn::TranscriptTurn;
use crate::providers::llm::Role;
use crate::store::{Store, TranscriptEntry};

enum Write {
    Turn(usize, TranscriptEntry),
    /// The machine took turns back from this index on (a withdrawn caller turn).
    Truncate(usize),
}

/// The call's side: compares the machine's transcript with what was journaled.
pub(super) struct TurnJournal {
    writes: mpsc::UnboundedSender<Write>,
    journaled: Vec<TranscriptEntry>,
}

/// Writes the journal; finishes once the call's `TurnJournal` is gone and all is written.
pub(super) struct JournalWriter(JoinHandle<()>);

impl TurnJournal {
    pub(super) fn open(store: Store, call_id: String) -> (Self, JournalWriter) {
        let (writes, mut pending) = mpsc::unbounded_channel();
        let writer = tokio::spawn(async move {
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
        };
        (journal, JournalWriter(writer))
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
