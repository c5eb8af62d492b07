//! Call admission: the one gate every call passes before it may ring an agent — SIP inbound,
//! Twilio streams, outbound calls placed through the API and their test-mode simulations. It
//! refuses a workspace whose plan's call minutes are used up, and caps concurrent calls per
//! workspace and per process. An admitted call holds a `CallPermit`; dropping it (the call
//! ended, or never started) frees the slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::store::{Plan, Scope, Store, StoreError, billing_period};

/// Why a call may not start.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the engine is already running its maximum of {0} concurrent calls")]
    EngineFull(usize),
    #[error("the workspace is already running its maximum of {0} concurrent calls")]
    WorkspaceFull(usize),
    #[error("the plan's {limit} call minutes for this billing period are used up ({used} used)")]
    MinutesExhausted { used: i64, limit: i64 },
    #[error("cannot check the call minutes used: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Default)]
struct Active {
    total: usize,
    per_workspace: HashMap<String, usize>,
}

/// Counts of running calls against the configured caps.
#[derive(Debug)]
pub struct Admission {
    max_calls: usize,
    max_per_workspace: usize,
    active: Mutex<Active>,
}

/// One admitted call's slot, freed on drop.
#[derive(Debug)]
pub struct CallPermit {
    admission: Arc<Admission>,
    workspace_id: String,
}

impl Admission {
    /// Caps of `max_calls` per process and `max_per_workspace` per workspace (live and test
    /// calls together).
    pub fn new(max_calls: usize, max_per_workspace: usize) -> Arc<Self> {
        Arc::new(Admission {
            max_calls,
            max_per_workspace,
            active: Mutex::default(),
        })
    }

    pub fn from_config(config: &Config) -> Arc<Self> {
        Self::new(
            config.max_concurrent_calls,
            config.workspace_max_concurrent_calls,
        )
    }

    /// Admits a call of `scope` billed under `plan` (the scope's own plan when `None`, as for
    /// inbound calls, which come with no API key).
    pub async fn admit(
        self: &Arc<Self>,
        store: &Store,
        scope: &Scope,
        plan: Option<Plan>,
    ) -> Result<CallPermit, Refusal> {
        // Cheap refusals first: a full engine costs no database round trip.
        self.check_capacity(&scope.workspace_id)?;
        let plan = match plan {
            Some(plan) => plan,
            None => store.scope_plan(scope).await?,
        };
        let period = billing_period(chrono::Utc::now().date_naive());
        let (used, _, _) = store.usage(scope, &period.from, &period.to).await?;
        let limit = plan.minutes_limit();
        if used >= limit {
            return Err(Refusal::MinutesExhausted { used, limit });
        }
        self.take(&scope.workspace_id)
    }

    fn check_capacity(&self, workspace_id: &str) -> Result<(), Refusal> {
        let active = self.lock();
        if active.total >= self.max_calls {
            return Err(Refusal::EngineFull(self.max_calls));
        }
        if active.per_workspace.get(workspace_id).copied().unwrap_or(0) >= self.max_per_workspace {
            return Err(Refusal::WorkspaceFull(self.max_per_workspace));
        }
        Ok(())
    }

    /// Checks the caps again and takes a slot under one lock, so racing calls cannot overshoot.
    fn take(self: &Arc<Self>, workspace_id: &str) -> Result<CallPermit, Refusal> {
        let mut active = self.lock();
        if active.total >= self.max_calls {
            return Err(Refusal::EngineFull(self.max_calls));
        }
        let mine = active
            .per_workspace
            .entry(workspace_id.to_string())
            .or_default();
        if *mine >= self.max_per_workspace {
            return Err(Refusal::WorkspaceFull(self.max_per_workspace));
        }
        *mine += 1;
        active.total += 1;
        Ok(CallPermit {
            admission: self.clone(),
            workspace_id: workspace_id.to_string(),
        })
    }

    /// Calls running now (all workspaces).
    pub fn active_calls(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Active> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        let mut active = self.admission.lock();
        active.total = active.total.saturating_sub(1);
        if let Some(n) = active.per_workspace.get_mut(&self.workspace_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                active.per_workspace.remove(&self.workspace_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CallOutcome, NewAgent, NewCall};

    fn scope(workspace: &str) -> Scope {
        Scope {
            workspace_id: workspace.into(),
            live: true,
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, Store::connect(&url).await.unwrap())
    }

    #[tokio::test]
    async fn caps_per_workspace_and_per_process_free_on_drop() {
        let (_dir, store) = store().await;
        let admission = Admission::new(3, 2);
        let a1 = admission.admit(&store, &scope("a"), None).await.unwrap();
        let _a2 = admission.admit(&store, &scope("a"), None).await.unwrap();
        assert!(matches!(
            admission.admit(&store, &scope("a"), None).await,
            Err(Refusal::WorkspaceFull(2))
        ));
        let _b1 = admission.admit(&store, &scope("b"), None).await.unwrap();
        assert!(matches!(
            admission.admit(&store, &scope("c"), None).await,
            Err(Refusal::EngineFull(3))
        ));
        assert_eq!(admission.active_calls(), 3);
        drop(a1);
        assert_eq!(admission.active_calls(), 2);
        admission.admit(&store, &scope("a"), None).await.unwrap();
        assert_eq!(admission.active_calls(), 2, "the new permit was dropped");
    }

    #[tokio::test]
    async fn used_up_minutes_refuse_calls() {
        let (_dir, store) = store().await;
        let ws = scope("ws_minutes");
        let agent = store
            .create_agent(
                &ws,
                NewAgent {
                    name: "Desk".into(),
                    voice_id: "voice_sarah".into(),
                    greeting: None,
                    prompt: None,
                    knowledge_base_id: None,
                    phone_number: None,
                    transfer_targets: Vec::new(),
                    llm: Default::default(),
                    tools: Vec::new(),
                },
            )
            .await
            .unwrap();
        let call = store
            .create_call(
                &ws,
                NewCall {
                    agent_id: agent.id,
                    direction: "inbound".into(),
                    caller: "+15550001".into(),
                    to: "+15550002".into(),
                    carrier_call_id: None,
                    status: "in-progress".into(),
                    context: None,
                },
            )
            .await
            .unwrap();
        // A 61-minute call uses up the free plan's 60 minutes.
        let mut outcome = CallOutcome::unanswered("completed", "caller_hangup");
        outcome.duration_seconds = 61 * 60;
        store.finish_call(&call.id, outcome).await.unwrap();
        let admission = Admission::new(10, 10);
        match admission.admit(&store, &ws, None).await {
            Err(Refusal::MinutesExhausted { used, limit: 60 }) => assert!(used >= 61),
            other => panic!("admitted past the free plan: {other:?}"),
        }
        // A bigger plan (an outbound call's key) still has minutes.
        assert!(admission.admit(&store, &ws, Some(Plan::Pro)).await.is_ok());
        assert_eq!(admission.active_calls(), 0);
    }
}
