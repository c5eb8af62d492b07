//! Shutting down without dropping calls: the engine stops taking new calls (`Draining`), lets
//! the live ones finish, and after the grace asks them to say goodbye and hang up (`Closing`).

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// No new calls; live calls go on.
    Draining,
    /// Live calls say goodbye and hang up.
    Closing,
}

/// The process's calls and how far shutdown has gone. Clones share the state.
#[derive(Clone)]
pub struct Drain {
    phase: Arc<watch::Sender<Phase>>,
    active: Arc<watch::Sender<usize>>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            phase: Arc::new(watch::Sender::new(Phase::Running)),
            active: Arc::new(watch::Sender::new(0)),
        }
    }
}

/// Counts one running call until dropped (also when its task panics).
pub struct ActiveCall(Drain);

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Drain {
    /// Whether new calls must be refused.
    pub fn is_draining(&self) -> bool {
        *self.phase.borrow() != Phase::Running
    }

    pub fn start_draining(&self) {
        self.phase.send_if_modified(|p| {
            let changed = *p == Phase::Running;
            if changed {
                *p = Phase::Draining;
            }
            changed
        });
    }

    /// Asks every live call to say goodbye and hang up.
    pub fn close_calls(&self) {
        self.phase.send_replace(Phase::Closing);
    }

    pub fn active_calls(&self) -> usize {
        *self.active.borrow()
    }

    /// Resolves once no call is running.
    pub async fn idle(&self) {
        let mut active = self.active.subscribe();
        let _ = active.wait_for(|n| *n == 0).await;
    }

    /// Resolves once calls are asked to close.
    pub async fn closing(&self) {
        let mut phase = self.phase.subscribe();
        let _ = phase.wait_for(|p| *p == Phase::Closing).await;
    }

    pub fn call_started(&self) -> ActiveCall {
        self.active.send_modify(|n| *n += 1);
        ActiveCall(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_call_and_closing_for_the_phase() {
        let drain = Drain::default();
        let first = drain.call_started();
        let second = drain.call_started();
        assert!(!drain.is_draining());
        drain.start_draining();
        assert!(drain.is_draining());
        let idle = tokio::spawn({
            let drain = drain.clone();
            async move { drain.idle().await }
        });
        let closing = tokio::spawn({
            let drain = drain.clone();
            async move { drain.closing().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!idle.is_finished());
        assert_eq!(drain.active_calls(), 1);
        drain.close_calls();
        closing.await.unwrap();
        drop(second);
        idle.await.unwrap();
        assert_eq!(drain.active_calls(), 0);
    }
}
