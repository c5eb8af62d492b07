//! Webhook deliveries: the fan-out of outbox events to subscribed endpoints, claims of due
//! attempts, and their outcomes. Claims lock rows with `SKIP LOCKED` on PostgreSQL, so several
//! engines share the work without doubling it; SQLite has one writer, which serialises them.
//! A claim moves `next_attempt_at` to the end of a lease: a dispatcher that dies mid-attempt
//! leaves the delivery due again once the lease ends.

use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use super::{Db, Filter, FilterValue, Page, PageRequest, Store, StoreError, fetch_page, new_id};
use super::{on_writer, time::public_ts};

/// One due attempt, with everything needed to make it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryJob {
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The resource, as JSON text.
    pub payload: String,
    /// When the event happened (stored format).
    pub created_at: String,
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

impl DeliveryJob {
    /// The event's time as resources show it.
    pub fn timestamp(&self) -> String {
        public_ts(&self.created_at)
    }
}

/// What one HTTP attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status_code: Option<u16>,
    /// Transport failure, timeout, refusal by the SSRF guard, or a non-2xx status.
    pub error: Option<String>,
    pub latency_ms: i64,
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    Delivered,
    /// Try again at this stored timestamp.
    RetryAt(String),
    /// The schedule is spent: the delivery fails and the endpoint is disabled for this reason.
    GiveUp(String),
}

/// One attempt as `GET /v1/webhooks/:id/deliveries` shows it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct WebhookAttempt {
    pub id: String,
    /// `Boltcall-Event-Id` of the request.
    pub event_id: String,
    #[serde(rename = "event")]
    pub event_type: String,
    /// 1 for the first attempt of an event.
    pub attempt: i64,
    /// HTTP status of the answer; null when none came.
    pub status_code: Option<i64>,
    /// Why the attempt failed; null when it succeeded.
    pub error: Option<String>,
    pub latency_ms: i64,
    #[serde(serialize_with = "public")]
    pub created_at: String,
}

fn public<S: Serializer>(stored: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&public_ts(stored))
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Row-lock clause that lets concurrent PostgreSQL claimers pass each other.
    fn skip_locked(&self, of: &str) -> String {
        match self.db {
            Db::Postgres(_) => format!(" FOR UPDATE{of} SKIP LOCKED"),
            Db::Sqlite { .. } => String::new(),
        }
    }

    /// Turns up to `limit` pending outbox events into one pending delivery per active webhook
    /// of their scope subscribed to their type; returns how many events it took.
    pub async fn fan_out_events(&self, now: &str, limit: u32) -> Result<usize, StoreError> {
        let select = format!(
            "SELECT id FROM events WHERE delivery_state = 'pending' ORDER BY created_at \
             LIMIT {limit}{}",
            self.skip_locked("")
        );
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            let ids: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .fetch_all(&mut *tx)
                .await?;
            if ids.is_empty() {
                return Ok(0);
            }
            let insert = format!(
                "INSERT INTO webhook_deliveries (id, event_id, webhook_id, state, attempts, \
                 next_attempt_at, created_at) \
                 SELECT 'dlv_' || e.id || '_' || w.id, e.id, w.id, 'pending', 0, $1, $1 \
                 FROM events e JOIN webhooks w ON w.workspace_id = e.workspace_id \
                 AND w.live = e.live \
                 WHERE e.id IN ({}) AND w.status = 'active' \
                 AND w.events LIKE '%\"' || e.event_type || '\"%' \
                 ON CONFLICT (event_id, webhook_id) DO NOTHING",
                placeholders(2, ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert)).bind(now);
            for (id,) in &ids {
                query = query.bind(id);
            }
            query.execute(&mut *tx).await?;
            let update = format!(
                "UPDATE events SET delivery_state = 'dispatched' WHERE id IN ({})",
                placeholders(1, ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(update));
            for (id,) in &ids {
                query = query.bind(id);
            }
            query.execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(ids.len())
        })
    }

    /// Claims up to `limit` deliveries due at `now` to active webhooks until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let claim = format!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN (\
             SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $2 AND w.status = 'active' \
             ORDER BY d.next_attempt_at LIMIT {limit}{}) RETURNING id",
            self.skip_locked(" OF d")
        );
        on_writer!(self, pool => {
            let ids: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(claim))
                .bind(lease_until)
                .bind(now)
                .fetch_all(pool)
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let load = format!(
                "SELECT d.id AS delivery_id, d.event_id, e.event_type, e.payload, e.created_at, \
                 d.webhook_id, w.url, w.secret, d.attempts FROM webhook_deliveries d \
                 JOIN events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.id IN ({}) ORDER BY e.created_at",
                placeholders(1, ids.len())
            );
            let mut query = sqlx::query_as::<_, DeliveryJob>(sqlx::AssertSqlSafe(load));
            for (id,) in &ids {
                query = query.bind(id);
            }
            Ok(query.fetch_all(pool).await?)
        })
    }

    /// Records an attempt of `job` and moves its delivery on to `next`.
    pub async fn record_attempt(
        &self,
        job: &DeliveryJob,
        outcome: &AttemptOutcome,
        next: &NextStep,
        now: &str,
    ) -> Result<(), StoreError> {
        let (state, next_at) = match next {
            NextStep::Delivered => ("delivered", now),
            NextStep::RetryAt(at) => ("pending", at.as_str()),
            NextStep::GiveUp(_) => ("failed", now),
        };
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT_ATTEMPT)
                .bind(new_id("att_"))
                .bind(&job.webhook_id)
                .bind(&job.event_id)
                .bind(&job.event_type)
                .bind(job.attempts + 1)
                .bind(outcome.status_code.map(i64::from))
                .bind(&outcome.error)
                .bind(outcome.latency_ms)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, \
                 next_attempt_at = $2 WHERE id = $3",
            )
            .bind(state)
            .bind(next_at)
            .bind(&job.delivery_id)
            .execute(&mut *tx)
            .await?;
            if let NextStep::GiveUp(reason) = next {
                sqlx::query(
                    "UPDATE webhooks SET status = 'disabled', disabled_reason = $1 \
                     WHERE id = $2 AND status = 'active'",
                )
                .bind(reason)
                .bind(&job.webhook_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a one-off attempt outside any delivery (`POST /v1/webhooks/:id/test`).
    pub async fn record_test_attempt(
        &self,
        webhook_id: &str,
        event_id: &str,
        outcome: &AttemptOutcome,
    ) -> Result<WebhookAttempt, StoreError> {
        let attempt = WebhookAttempt {
            id: new_id("att_"),
            event_id: event_id.to_string(),
            event_type: "ping".into(),
            attempt: 1,
            status_code: outcome.status_code.map(i64::from),
            error: outcome.error.clone(),
            latency_ms: outcome.latency_ms,
            created_at: super::now_ts(),
        };
        on_writer!(self, pool => sqlx::query(INSERT_ATTEMPT)
            .bind(&attempt.id)
            .bind(webhook_id)
            .bind(&attempt.event_id)
            .bind(&attempt.event_type)
            .bind(attempt.attempt)
            .bind(attempt.status_code)
            .bind(&attempt.error)
            .bind(attempt.latency_ms)
            .bind(&attempt.created_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(attempt)
    }

    /// Attempts made to one webhook (whose scope the caller has checked), newest first.
    pub async fn list_attempts(
        &self,
        webhook_id: &str,
        page: PageRequest,
    ) -> Result<Page<WebhookAttempt>, StoreError> {
        let filter = Filter {
            clauses: vec!["webhook_id = $1".into()],
            values: vec![FilterValue::Text(webhook_id.to_string())],
        };
        Ok(fetch_page!(
            self,
            WebhookAttempt,
            "id, event_id, event_type, attempt, status_code, error, latency_ms, created_at",
            "webhook_attempts",
            filter,
            "created_at DESC, id DESC",
            page
        ))
    }

    /// Deletes events older than `before` that have nothing left to deliver, with their
    /// deliveries and attempts; returns how many events went.
    pub async fn prune_delivered_events(&self, before: &str) -> Result<u64, StoreError> {
        const SETTLED: &str = "SELECT e.id FROM events e WHERE e.created_at < $1 \
             AND e.delivery_state = 'dispatched' AND NOT EXISTS (SELECT 1 FROM \
             webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')";
        let attempts = format!("DELETE FROM webhook_attempts WHERE event_id IN ({SETTLED})");
        let deliveries = format!("DELETE FROM webhook_deliveries WHERE event_id IN ({SETTLED})");
        let events = format!("DELETE FROM events WHERE id IN ({SETTLED})");
        // Test pings and attempts of deleted webhooks' events belong to no event row.
        let strays = "DELETE FROM webhook_attempts WHERE created_at < $1 \
                      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = event_id)";
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            for sql in [attempts, deliveries] {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
            }
            let pruned = sqlx::query(sqlx::AssertSqlSafe(events))
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(strays).bind(before).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(pruned)
        })
    }
}

const INSERT_ATTEMPT: &str = "INSERT INTO webhook_attempts (id, webhook_id, event_id, event_type, \
     attempt, status_code, error, latency_ms, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn numbered_placeholders() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
    }
}
