//! API call counters per key per UTC day.

use super::{Store, StoreError, on_reader, on_writer};

impl Store {
    /// Adds `calls` to a key's counter for `day` (`YYYY-MM-DD`).
    pub async fn add_api_calls(
        &self,
        key_id: &str,
        workspace_id: &str,
        live: bool,
        day: &str,
        calls: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO api_usage (key_id, workspace_id, live, day, calls) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, day) \
                   DO UPDATE SET calls = api_usage.calls + excluded.calls";
        on_writer!(self, pool => sqlx::query(sql)
            .bind(key_id)
            .bind(workspace_id)
            .bind(live)
            .bind(day)
            .bind(calls)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// API calls already recorded for a key on `day`.
    pub async fn api_calls_on(&self, key_id: &str, day: &str) -> Result<i64, StoreError> {
        let sql = "SELECT calls FROM api_usage WHERE key_id = $1 AND day = $2";
        let row: Option<(i64,)> = on_reader!(self, pool => sqlx::query_as(sql)
            .bind(key_id)
            .bind(day)
            .fetch_optional(pool)
            .await?);
        Ok(row.map_or(0, |(n,)| n))
    }
}
