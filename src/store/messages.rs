//! Messages (SMS, WhatsApp), outbound and inbound, with the provider's status reports and their
//! events.

use super::events::insert_event;
use super::{
    Filter, InboundMessage, JsonText, MessageRecord, NewMessage, Page, PageRequest, Plan, Scope,
    Store, StoreError, fetch_page, new_id, now_ts, on_reader, on_writer, to_json_text,
};

const COLUMNS: &str = "id, workspace_id, live, channel, direction, to_number, from_number, body, \
                       template, variables, lead_id, status, segments, provider_sid, error_code, \
                       error_message, sent_at, delivered_at, failed_at, created_at";

/// Outbound SMS that count against the plan's `sms_limit`: all but those the provider refused
/// before sending (failed without ever getting a provider id).
pub(crate) const COUNTED_SMS: &str = "channel = 'sms' AND direction = 'outbound' \
                                      AND NOT (status = 'failed' AND provider_sid IS NULL)";

#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub channel: Option<String>,
    pub lead_id: Option<String>,
}

/// A provider's report on an outbound message.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub status: String,
    /// Statuses the message may move from; a report that arrives late changes nothing.
    pub from: &'static [&'static str],
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl Store {
    /// Stores an outbound message with status `queued`, before it is handed to a provider. When
    /// no lead is given, the newest lead of the scope with the recipient's phone number is
    /// linked. With `sms_limit`, the insert happens only while fewer SMS than that were counted
    /// in the billing period starting at `period_start` (`None` back: the limit is reached).
    pub async fn create_message(
        &self,
        scope: &Scope,
        new: NewMessage,
        sms_limit: Option<(i64, &str)>,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let lead_id = match new.lead_id {
            Some(id) => Some(id),
            None => self.lead_id_by_phone(scope, &new.to).await?,
        };
        let msg = MessageRecord {
            id: new_id("msg_"),
            workspace_id: scope.workspace_id.clone(),
            live: scope.live,
            channel: new.channel,
            direction: "outbound".into(),
            to: new.to,
            from_number: new.from_number,
            body: new.body,
            template: new.template,
            variables: JsonText(new.variables),
            lead_id,
            status: "queued".into(),
            segments: new.segments,
            provider_sid: None,
            error_code: None,
            error_message: None,
            sent_at: None,
            delivered_at: None,
            failed_at: None,
            created_at: now_ts(),
        };
        // One statement, so two sends cannot both take the last SMS of the plan (SQLite has one
        // writer; on PostgreSQL concurrent requests may overshoot by the few in flight).
        let (limit, period_start) = sms_limit.unwrap_or((i64::MAX, ""));
        let sql = format!(
            "INSERT INTO messages ({COLUMNS}, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL, NULL, \
                    NULL, NULL, NULL, $14, $14 \
             WHERE (SELECT COUNT(*) FROM messages WHERE workspace_id = $2 AND live = $3 \
                    AND {COUNTED_SMS} AND created_at >= $15) < $16"
        );
        let inserted = on_writer!(self, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&msg.id)
            .bind(&msg.workspace_id)
            .bind(msg.live)
            .bind(&msg.channel)
            .bind(&msg.direction)
            .bind(&msg.to)
            .bind(&msg.from_number)
            .bind(&msg.body)
            .bind(&msg.template)
            .bind(to_json_text(&msg.variables))
            .bind(&msg.lead_id)
            .bind(&msg.status)
            .bind(msg.segments)
            .bind(&msg.created_at)
            .bind(period_start)
            .bind(limit)
            .execute(pool)
            .await?
            .rows_affected());
        Ok((inserted == 1).then_some(msg))
    }

    /// Records what the provider said when it took a message: its id and the sender it used.
    pub async fn record_acceptance(
        &self,
        id: &str,
        provider_sid: Option<&str>,
        from_number: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE messages SET provider_sid = COALESCE($1, provider_sid), \
                   from_number = COALESCE(from_number, $2), updated_at = $3 WHERE id = $4";
        on_writer!(self, pool => sqlx::query(sql)
            .bind(provider_sid)
            .bind(from_number)
            .bind(now_ts())
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Moves a message to `change.status` if it is in one of `change.from`, stamping the
    /// status's time; `delivered` writes `message.delivered` in the same transaction. Returns the
    /// updated message, or `None` when the message is unknown or already past that status.
    pub async fn change_message_status(
        &self,
        id: &str,
        change: &StatusChange,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let Some(mut msg) = self.message_by("id", id).await? else {
            return Ok(None);
        };
        if !change.from.contains(&msg.status.as_str()) {
            return Ok(None);
        }
        let now = now_ts();
        let stamp = match change.status.as_str() {
            "sent" => "sent_at",
            "delivered" => "delivered_at",
            _ => "failed_at",
        };
        let previous = std::mem::replace(&mut msg.status, change.status.clone());
        match stamp {
            "sent_at" => msg.sent_at = Some(now.clone()),
            "delivered_at" => msg.delivered_at = Some(now.clone()),
            _ => msg.failed_at = Some(now.clone()),
        }
        if change.error_code.is_some() {
            msg.error_code.clone_from(&change.error_code);
            msg.error_message.clone_from(&change.error_message);
        }
        // Compare and set on the status read above: a concurrent report wins or loses whole.
        let sql = format!(
            "UPDATE messages SET status = $1, {stamp} = $2, updated_at = $2, error_code = $3, \
             error_message = $4 WHERE id = $5 AND status = $6"
        );
        let changed = on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&msg.status)
                .bind(&now)
                .bind(&msg.error_code)
                .bind(&msg.error_message)
                .bind(id)
                .bind(&previous)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 1 && msg.status == "delivered" {
                insert_event!(&mut *tx, &msg.workspace_id, msg.live, "message.delivered", &msg)?;
            }
            tx.commit().await?;
            changed
        });
        Ok((changed == 1).then_some(msg))
    }

    /// The message a provider knows by `provider_sid`, in whichever workspace it is.
    pub async fn message_by_provider_sid(
        &self,
        provider_sid: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        self.message_by("provider_sid", provider_sid).await
    }

    async fn message_by(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE {column} = $1");
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, MessageRecord>(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .fetch_optional(pool)
            .await?),
        )
    }

    /// Stores a received message with its `message.received` event in one transaction. A
    /// provider retrying a message already stored (same `provider_sid`) gets `None`.
    pub async fn create_inbound_message(
        &self,
        scope: &Scope,
        new: InboundMessage,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let msg = MessageRecord {
            id: new_id("msg_"),
            workspace_id: scope.workspace_id.clone(),
            live: scope.live,
            channel: new.channel,
            direction: "inbound".into(),
            to: new.to,
            from_number: Some(new.from_number),
            body: new.body,
            template: None,
            variables: JsonText(None),
            lead_id: Some(new.lead_id),
            status: "received".into(),
            segments: new.segments,
            provider_sid: Some(new.provider_sid),
            error_code: None,
            error_message: None,
            sent_at: None,
            delivered_at: None,
            failed_at: None,
            created_at: now_ts(),
        };
        let sql = format!(
            "INSERT INTO messages ({COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, NULL, 'null', $9, $10, $11, $12, NULL, NULL, NULL, NULL, NULL, $13, $13) \
             ON CONFLICT (provider_sid) DO NOTHING"
        );
        let inserted = on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&msg.id)
                .bind(&msg.workspace_id)
                .bind(msg.live)
                .bind(&msg.channel)
                .bind(&msg.direction)
                .bind(&msg.to)
                .bind(&msg.from_number)
                .bind(&msg.body)
                .bind(&msg.lead_id)
                .bind(&msg.status)
                .bind(msg.segments)
                .bind(&msg.provider_sid)
                .bind(&msg.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 1 {
                insert_event!(&mut *tx, &msg.workspace_id, msg.live, "message.received", &msg)?;
            }
            tx.commit().await?;
            inserted
        });
        Ok((inserted == 1).then_some(msg))
    }

    /// The plan a scope's messages count against when no key is at hand (a call's tools): its
    /// newest unrevoked key's, the free plan when it has none.
    pub async fn workspace_plan(&self, scope: &Scope) -> Result<Plan, StoreError> {
        let sql = "SELECT plan FROM api_keys WHERE workspace_id = $1 AND live = $2 \
                   AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1";
        let row: Option<(String,)> = on_reader!(self, pool => sqlx::query_as(sql)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .fetch_optional(pool)
            .await?);
        Ok(row.and_then(|(p,)| Plan::parse(&p)).unwrap_or(Plan::Free))
    }

    /// When `from` last sent the scope a message on `channel` (WhatsApp's 24-hour window).
    pub async fn last_inbound_at(
        &self,
        scope: &Scope,
        channel: &str,
        from: &str,
    ) -> Result<Option<String>, StoreError> {
        let sql = "SELECT MAX(created_at) FROM messages WHERE workspace_id = $1 AND live = $2 \
                   AND from_number = $3 AND direction = 'inbound' AND channel = $4";
        let row: (Option<String>,) = on_reader!(self, pool => sqlx::query_as(sql)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(from)
            .bind(channel)
            .fetch_one(pool)
            .await?);
        Ok(row.0)
    }

    pub async fn get_message(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE workspace_id = $1 AND live = $2 AND id = $3"
        );
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, MessageRecord>(sqlx::AssertSqlSafe(sql))
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(id)
            .fetch_optional(pool)
            .await?),
        )
    }

    pub async fn list_messages(
        &self,
        scope: &Scope,
        filter: &MessageFilter,
        page: PageRequest,
    ) -> Result<Page<MessageRecord>, StoreError> {
        let mut f = Filter::scoped(scope);
        if let Some(v) = &filter.channel {
            f.push("channel", "=", v.clone());
        }
        if let Some(v) = &filter.lead_id {
            f.push("lead_id", "=", v.clone());
        }
        Ok(fetch_page!(
            self,
            MessageRecord,
            COLUMNS,
            "messages",
            f,
            "created_at DESC, id",
            page
        ))
    }

    pub async fn lead_id_by_phone(
        &self,
        scope: &Scope,
        phone: &str,
    ) -> Result<Option<String>, StoreError> {
        let sql = "SELECT id FROM leads WHERE workspace_id = $1 AND live = $2 AND phone = $3 \
                   ORDER BY created_at DESC LIMIT 1";
        let row: Option<(String,)> = on_reader!(self, pool => sqlx::query_as(sql)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(phone)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|(id,)| id))
    }
}
