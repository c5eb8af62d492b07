//! Messages (SMS, WhatsApp): stored when sent, with their delivery events.

use super::events::insert_event;
use super::{
    Filter, JsonText, MessageRecord, NewMessage, Page, PageRequest, Scope, Store, StoreError,
    fetch_page, new_id, now_ts, on_reader, on_writer, to_json_text,
};

const COLUMNS: &str = "id, workspace_id, live, channel, direction, to_number, from_number, body, \
                       template, variables, lead_id, status, created_at";

#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub channel: Option<String>,
    pub lead_id: Option<String>,
}

impl Store {
    /// Stores an outbound message with status `sent`. When no lead is given, the newest lead of
    /// the scope with the recipient's phone number is linked.
    pub async fn create_message(
        &self,
        scope: &Scope,
        new: NewMessage,
    ) -> Result<MessageRecord, StoreError> {
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
            status: "sent".into(),
            created_at: now_ts(),
        };
        let sql = format!(
            "INSERT INTO messages ({COLUMNS}, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)"
        );
        on_writer!(self, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
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
            .bind(&msg.created_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(msg)
    }

    /// Records delivery of a sent message and its `message.delivered` event in one transaction.
    pub async fn mark_message_delivered(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<MessageRecord, StoreError> {
        let Some(mut msg) = self.get_message(scope, id).await? else {
            return Err(StoreError::NotFound);
        };
        msg.status = "delivered".into();
        let sql = "UPDATE messages SET status = 'delivered', updated_at = $1 \
                   WHERE id = $2 AND workspace_id = $3 AND live = $4";
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql)
                .bind(now_ts())
                .bind(id)
                .bind(&scope.workspace_id)
                .bind(scope.live)
                .execute(&mut *tx)
                .await?;
            insert_event!(&mut *tx, &msg.workspace_id, msg.live, "message.delivered", &msg)?;
            tx.commit().await?;
        });
        Ok(msg)
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

    async fn lead_id_by_phone(
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
