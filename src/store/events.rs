//! The outbox side of events: rows written in the same transaction as the change they report.
//! `crate::events` delivers them later; `delivery_state` starts at `pending` and becomes
//! `dispatched` once each subscribed webhook has its delivery row.

use serde::Serialize;

use super::{Scope, Store, StoreError, on_reader};

/// Names of every event a webhook may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "call.started",
    "call.completed",
    "call.missed",
    "lead.created",
    "lead.updated",
    "appointment.booked",
    "appointment.cancelled",
    "message.received",
    "message.delivered",
];

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    pub id: String,
    #[serde(rename = "event")]
    pub event_type: String,
    pub payload: String,
    pub created_at: String,
    pub delivery_state: String,
}

/// Inserts an outbox row through `$conn` (a connection or transaction of either engine) and
/// wakes this process's webhook dispatcher.
macro_rules! insert_event {
    ($conn:expr, $workspace:expr, $live:expr, $event_type:expr, $resource:expr) => {{
        let inserted = sqlx::query(
            "INSERT INTO events (id, workspace_id, live, event_type, payload, created_at, \
             delivery_state, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $6)",
        )
        .bind($crate::store::new_id("evt_"))
        .bind($workspace)
        .bind($live)
        .bind($event_type)
        .bind($crate::store::to_json_text($resource))
        .bind($crate::store::now_ts())
        .execute($conn)
        .await;
        $crate::events::outbox_written();
        inserted
    }};
}
pub(crate) use insert_event;

impl Store {
    /// The newest events of a scope, newest first.
    pub async fn recent_events(
        &self,
        scope: &Scope,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let sql = "SELECT id, event_type, payload, created_at, delivery_state FROM events \
                   WHERE workspace_id = $1 AND live = $2 ORDER BY created_at DESC, id LIMIT $3";
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, EventRecord>(sql)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?),
        )
    }
}
