//! What survives a crash: each running call names the engine instance that runs it and when
//! that instance last said it was alive, and journals its transcript turn by turn. At start,
//! an instance finishes the calls a dead run left open from that journal.

use chrono::{DateTime, Utc};

use super::{
    CallRecord, Store, StoreError, TranscriptEntry, format_ts, now_ts, on_reader, on_writer,
};

/// Statuses of a call some engine is still running.
const OPEN: &str = "status IN ('ringing', 'in-progress')";

impl Store {
    /// Names the engine instance this store works for (`BOLTCALL_INSTANCE_ID`).
    pub fn with_instance_id(mut self, instance_id: &str) -> Self {
        self.instance_id = instance_id.into();
        self
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Marks `call_id` as answered (`in-progress`) and run by this instance, alive now.
    pub async fn claim_call(&self, call_id: &str) -> Result<(), StoreError> {
        let now = now_ts();
        let claimed = on_writer!(self, pool => sqlx::query(
                "UPDATE calls SET status = 'in-progress', updated_at = $1, instance_id = $2, \
                 heartbeat_at = $1 WHERE id = $3")
            .bind(&now)
            .bind(&*self.instance_id)
            .bind(call_id)
            .execute(pool)
            .await?
            .rows_affected());
        if claimed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Says every open call of this instance is still running.
    pub async fn heartbeat_calls(&self) -> Result<u64, StoreError> {
        let sql = format!("UPDATE calls SET heartbeat_at = $1 WHERE instance_id = $2 AND {OPEN}");
        Ok(
            on_writer!(self, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_ts())
            .bind(&*self.instance_id)
            .execute(pool)
            .await?
            .rows_affected()),
        )
    }

    /// Journals turn `seq` of a running call (replacing what was journaled there before).
    pub async fn journal_turn(
        &self,
        call_id: &str,
        seq: usize,
        turn: &TranscriptEntry,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO call_turns (call_id, seq, role, text, start_ms, end_ms) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (call_id, seq) DO UPDATE SET \
                   role = excluded.role, text = excluded.text, start_ms = excluded.start_ms, \
                   end_ms = excluded.end_ms";
        on_writer!(self, pool => sqlx::query(sql)
            .bind(call_id)
            .bind(seq as i64)
            .bind(&turn.role)
            .bind(&turn.text)
            .bind(i64::try_from(turn.start_ms).unwrap_or(i64::MAX))
            .bind(i64::try_from(turn.end_ms).unwrap_or(i64::MAX))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Drops journaled turns from `seq` on (the machine took a turn back).
    pub async fn truncate_journal(&self, call_id: &str, seq: usize) -> Result<(), StoreError> {
        on_writer!(self, pool => sqlx::query("DELETE FROM call_turns WHERE call_id = $1 AND seq >= $2")
            .bind(call_id)
            .bind(seq as i64)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The journaled transcript of a call, in order.
    pub async fn journaled_turns(&self, call_id: &str) -> Result<Vec<TranscriptEntry>, StoreError> {
        let sql = "SELECT role, text, start_ms, end_ms FROM call_turns WHERE call_id = $1 \
                   ORDER BY seq";
        let rows: Vec<(String, String, i64, i64)> = on_reader!(self, pool => sqlx::query_as(sql)
            .bind(call_id)
            .fetch_all(pool)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(role, text, start, end)| TranscriptEntry {
                role,
                text,
                start_ms: start.max(0) as u64,
                end_ms: end.max(0) as u64,
            })
            .collect())
    }

    /// Open calls no live engine runs: on SQLite (one engine per database) every open call; on
    /// PostgreSQL those of this instance (a previous run of it) or whose instance has been
    /// silent since `stale_before`. Each returned call is claimed by this instance, so two
    /// instances starting together do not both finish it.
    pub async fn take_orphaned_calls(
        &self,
        stale_before: DateTime<Utc>,
    ) -> Result<Vec<(CallRecord, Option<DateTime<Utc>>)>, StoreError> {
        // SQLite has one engine: at its start, every open call counts as stale.
        let stale = if self.is_single_node() {
            "9999-12-31T23:59:59.999999Z".to_string()
        } else {
            format_ts(stale_before)
        };
        // $1 is this instance, $2 the staleness cut-off, $3 the call.
        let orphaned =
            format!("{OPEN} AND (instance_id = $1 OR COALESCE(heartbeat_at, updated_at) < $2)");
        let candidates = format!("SELECT id, heartbeat_at FROM calls WHERE {orphaned}");
        let claim = format!(
            "UPDATE calls SET instance_id = $1, heartbeat_at = $4 WHERE id = $3 AND {orphaned}"
        );
        let rows: Vec<(String, Option<String>)> = on_writer!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(candidates))
            .bind(&*self.instance_id)
            .bind(&stale)
            .fetch_all(pool)
            .await?);
        let mut taken = Vec::new();
        for (id, heartbeat) in rows {
            let claimed = on_writer!(self, pool => {
                sqlx::query(sqlx::AssertSqlSafe(claim.clone()))
                    .bind(&*self.instance_id)
                    .bind(&stale)
                    .bind(&id)
                    .bind(now_ts())
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            if claimed == 1
                && let Some(call) = self.get_call_by_id(&id).await?
            {
                taken.push((call, heartbeat.as_deref().and_then(super::parse_ts)));
            }
        }
        Ok(taken)
    }
}
