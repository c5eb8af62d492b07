//! The dialer used until a SIP trunk is wired in: live calls fail at once ("no SIP trunk
//! configured"), test calls complete at once. Replaced by the SIP dialer.

use chrono::Utc;

use super::{Dialer, OutboundCall};
use crate::store::{CallOutcome, Store};

pub struct UnplacedDialer {
    pub store: Store,
}

impl Dialer for UnplacedDialer {
    fn dial(&self, call: OutboundCall) {
        let store = self.store.clone();
        tokio::spawn(async move {
            let (status, reason) = if call.live {
                ("failed", "no SIP trunk configured")
            } else {
                ("completed", "test mode: simulated call")
            };
            let outcome = CallOutcome {
                status: status.into(),
                ended_at: Utc::now(),
                duration_seconds: 0,
                transcript: Vec::new(),
                summary: None,
                sentiment: None,
                tags: Vec::new(),
                recording_path: None,
                latency: serde_json::json!({}),
                end_reason: Some(reason.into()),
            };
            if let Err(e) = store.finish_call(&call.call_id, outcome).await {
                tracing::error!(call_id = %call.call_id, "cannot finish outbound call: {e}");
            }
        });
    }
}
