//! Calls: created and finished by the call path, read by the API.

use chrono::{DateTime, Utc};

use super::events::insert_event;
use super::{
    CallOutcome, CallRecord, Filter, NewCall, Page, PageRequest, Scope, Store, StoreError,
    fetch_page, format_ts, new_id, now_ts, on_reader, on_writer, to_json_text,
};

const COLUMNS: &str = "id, workspace_id, live, agent_id, direction, caller, to_number, \
                       carrier_call_id, context, status, duration_seconds, sentiment, summary, \
                       tags, transcript, recording_path, latency, end_reason, outcome, \
                       provider_failures, tool_calls, answered_by, transferred_to, created_at, ended_at";

/// Filters of `GET /v1/calls`.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub agent_id: Option<String>,
    pub direction: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Store {
    /// Records a new call and its `call.started` event in one transaction.
    pub async fn create_call(&self, scope: &Scope, new: NewCall) -> Result<CallRecord, StoreError> {
        self.insert_call(scope, new_id("call_"), new, false).await
    }

    /// Records a call this instance answers and runs (`claim_call` in the same write), under
    /// the id the session already gave it.
    pub async fn create_running_call(
        &self,
        scope: &Scope,
        id: String,
        new: NewCall,
    ) -> Result<CallRecord, StoreError> {
        self.insert_call(scope, id, new, true).await
    }

    async fn insert_call(
        &self,
        scope: &Scope,
        id: String,
        new: NewCall,
        claimed: bool,
    ) -> Result<CallRecord, StoreError> {
        let now = now_ts();
        let mut call = CallRecord {
            id,
            workspace_id: scope.workspace_id.clone(),
            live: scope.live,
            agent_id: new.agent_id,
            direction: new.direction,
            caller: new.caller,
            to: new.to,
            carrier_call_id: new.carrier_call_id,
            context: new.context,
            status: new.status,
            duration_seconds: None,
            sentiment: None,
            summary: None,
            tags: Default::default(),
            transcript: Default::default(),
            recording_path: None,
            latency: super::JsonText(serde_json::Value::Object(Default::default())),
            end_reason: None,
            outcome: Default::default(),
            provider_failures: Default::default(),
            tool_calls: Default::default(),
            answered_by: None,
            transferred_to: None,
            recording_url: None,
            transcript_url: String::new(),
            created_at: now,
            ended_at: None,
        };
        self.fill_urls(&mut call);
        let sql = format!(
            "INSERT INTO calls ({COLUMNS}, updated_at, instance_id, heartbeat_at) VALUES ($1, $2, \
             $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL, '[]', '[]', NULL, '{{}}', NULL, \
             'null', '[]', '[]', NULL, NULL, $11, NULL, $11, $12, $13)"
        );
        let (instance_id, heartbeat_at) = match claimed {
            true => (Some(&*self.instance_id), Some(&call.created_at)),
            false => (None, None),
        };
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&call.id)
                .bind(&call.workspace_id)
                .bind(call.live)
                .bind(&call.agent_id)
                .bind(&call.direction)
                .bind(&call.caller)
                .bind(&call.to)
                .bind(&call.carrier_call_id)
                .bind(&call.context)
                .bind(&call.status)
                .bind(&call.created_at)
                .bind(instance_id)
                .bind(heartbeat_at)
                .execute(&mut *tx)
                .await?;
            insert_event!(&mut *tx, &call.workspace_id, call.live, "call.started", &call)?;
            tx.commit().await?;
        });
        Ok(call)
    }

    pub async fn get_call(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM calls WHERE workspace_id = $1 AND live = $2 AND id = $3"
        );
        let call = on_reader!(self, pool => sqlx::query_as::<_, CallRecord>(sqlx::AssertSqlSafe(sql))
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        Ok(call.map(|mut c| {
            self.fill_urls(&mut c);
            c
        }))
    }

    /// A call by id alone (the call path and the dialer, which are not scoped by a key).
    pub async fn get_call_by_id(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM calls WHERE id = $1");
        let call = on_reader!(self, pool => sqlx::query_as::<_, CallRecord>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(pool)
            .await?);
        Ok(call.map(|mut c| {
            self.fill_urls(&mut c);
            c
        }))
    }

    pub async fn list_calls(
        &self,
        scope: &Scope,
        filter: &CallFilter,
        page: PageRequest,
    ) -> Result<Page<CallRecord>, StoreError> {
        let mut f = Filter::scoped(scope);
        if let Some(v) = &filter.agent_id {
            f.push("agent_id", "=", v.clone());
        }
        if let Some(v) = &filter.direction {
            f.push("direction", "=", v.clone());
        }
        if let Some(v) = filter.from {
            f.push("created_at", ">=", format_ts(v));
        }
        if let Some(v) = filter.to {
            f.push("created_at", "<=", format_ts(v));
        }
        let mut page_out = fetch_page!(
            self,
            CallRecord,
            COLUMNS,
            "calls",
            f,
            "created_at DESC, id",
            page
        );
        for call in &mut page_out.items {
            self.fill_urls(call);
        }
        Ok(page_out)
    }

    /// Moves a call to `status` (`in-progress` once answered, …).
    pub async fn set_call_status(&self, call_id: &str, status: &str) -> Result<(), StoreError> {
        let sql = "UPDATE calls SET status = $1, updated_at = $2 WHERE id = $3";
        let done = on_writer!(self, pool => sqlx::query(sql)
            .bind(status)
            .bind(now_ts())
            .bind(call_id)
            .execute(pool)
            .await?
            .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// What answering-machine detection decided (`AnsweredBy::as_str`).
    pub async fn set_call_answered_by(
        &self,
        call_id: &str,
        answered_by: &str,
    ) -> Result<(), StoreError> {
        self.set_call_column(call_id, "answered_by", answered_by)
            .await
    }

    /// The carrier's id of a call placed through a carrier's API (Twilio's CallSid, Telnyx's
    /// call control id, Vonage's uuid), known once the carrier accepted it.
    pub async fn set_call_carrier_id(
        &self,
        call_id: &str,
        carrier_call_id: &str,
    ) -> Result<(), StoreError> {
        self.set_call_column(call_id, "carrier_call_id", carrier_call_id)
            .await
    }

    /// Where the call was transferred, written when the transfer is carried out.
    pub async fn set_call_transferred_to(
        &self,
        call_id: &str,
        target: &str,
    ) -> Result<(), StoreError> {
        self.set_call_column(call_id, "transferred_to", target)
            .await
    }

    async fn set_call_column(
        &self,
        call_id: &str,
        column: &'static str,
        value: &str,
    ) -> Result<(), StoreError> {
        let sql = format!("UPDATE calls SET {column} = $1, updated_at = $2 WHERE id = $3");
        let done = on_writer!(self, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(now_ts())
            .bind(call_id)
            .execute(pool)
            .await?
            .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn finish_call(
        &self,
        call_id: &str,
        outcome: CallOutcome,
    ) -> Result<CallRecord, StoreError> {
        let Some(mut call) = self.get_call_by_id(call_id).await? else {
            return Err(StoreError::NotFound);
        };
        let duration = i64::try_from(outcome.duration_seconds).unwrap_or(i64::MAX);
        call.status = outcome.status;
        call.duration_seconds = Some(duration);
        call.transcript = super::JsonText(outcome.transcript);
        call.summary = outcome.summary;
        call.sentiment = outcome.sentiment;
        call.tags = super::JsonText(outcome.tags);
        call.recording_path = outcome.recording_path;
        call.latency = super::JsonText(outcome.latency);
        call.end_reason = outcome.end_reason;
        call.outcome = super::JsonText(outcome.outcome);
        call.provider_failures = super::JsonText(outcome.provider_failures);
        call.tool_calls = super::JsonText(outcome.tool_calls);
        call.ended_at = Some(format_ts(outcome.ended_at));
        self.fill_urls(&mut call);
        let event = if call.status == "missed" {
            "call.missed"
        } else {
            "call.completed"
        };
        let minutes = duration.saturating_add(59) / 60;
        let day = outcome.ended_at.format("%Y-%m-%d").to_string();
        let sql = "UPDATE calls SET status = $1, duration_seconds = $2, transcript = $3, \
                   summary = $4, sentiment = $5, tags = $6, recording_path = $7, latency = $8, \
                   end_reason = $9, ended_at = $10, updated_at = $11, outcome = $12, \
                   provider_failures = $13, tool_calls = $14 WHERE id = $15 AND ended_at IS NULL";
        let minutes_sql = "INSERT INTO call_minutes (workspace_id, live, day, minutes) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, live, day) \
                           DO UPDATE SET minutes = call_minutes.minutes + excluded.minutes";
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(sql)
                .bind(&call.status)
                .bind(duration)
                .bind(to_json_text(&call.transcript))
                .bind(&call.summary)
                .bind(&call.sentiment)
                .bind(to_json_text(&call.tags))
                .bind(&call.recording_path)
                .bind(to_json_text(&call.latency))
                .bind(&call.end_reason)
                .bind(&call.ended_at)
                .bind(now_ts())
                .bind(to_json_text(&call.outcome))
                .bind(to_json_text(&call.provider_failures))
                .bind(to_json_text(&call.tool_calls))
                .bind(&call.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                // Finished already (a carrier's callback and the session can both try): the
                // first record stands, with its one event and its minutes.
                tx.rollback().await?;
                return Err(StoreError::Conflict(format!("call {} has already ended", call.id)));
            }
            if minutes > 0 {
                sqlx::query(minutes_sql)
                    .bind(&call.workspace_id)
                    .bind(call.live)
                    .bind(&day)
                    .bind(minutes)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_event!(&mut *tx, &call.workspace_id, call.live, event, &call)?;
            tx.commit().await?;
        });
        Ok(call)
    }

    fn fill_urls(&self, call: &mut CallRecord) {
        let base = format!("{}/v1/calls/{}", self.public_url, call.id);
        call.recording_url = call
            .recording_path
            .as_ref()
            .map(|_| format!("{base}/recording"));
        call.transcript_url = format!("{base}/transcript");
    }
}
