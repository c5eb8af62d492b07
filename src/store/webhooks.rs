//! Webhook subscriptions. The secret is kept for signing and shown only at creation.

use super::{
    JsonText, Page, Scope, Store, StoreError, WebhookRecord, new_id, now_ts, on_reader, on_writer,
    to_json_text,
};

impl Store {
    pub async fn create_webhook(
        &self,
        scope: &Scope,
        url: String,
        events: Vec<String>,
        secret: String,
    ) -> Result<WebhookRecord, StoreError> {
        let hook = WebhookRecord {
            id: new_id("wh_"),
            workspace_id: scope.workspace_id.clone(),
            live: scope.live,
            url,
            events: JsonText(events),
            secret: Some(secret),
            status: "active".into(),
            disabled_reason: None,
            created_at: now_ts(),
        };
        let sql = "INSERT INTO webhooks (id, workspace_id, live, url, events, secret, status, \
                   created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_writer!(self, pool => sqlx::query(sql)
            .bind(&hook.id)
            .bind(&hook.workspace_id)
            .bind(hook.live)
            .bind(&hook.url)
            .bind(to_json_text(&hook.events))
            .bind(&hook.secret)
            .bind(&hook.status)
            .bind(&hook.created_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(hook)
    }

    /// Every webhook of the scope, oldest first, without secrets.
    pub async fn list_webhooks(&self, scope: &Scope) -> Result<Page<WebhookRecord>, StoreError> {
        let sql = "SELECT id, workspace_id, live, url, events, CAST(NULL AS TEXT) AS secret, \
                   status, disabled_reason, created_at FROM webhooks WHERE workspace_id = $1 AND live = $2 \
                   ORDER BY created_at, id";
        let items = on_reader!(self, pool => sqlx::query_as::<_, WebhookRecord>(sql)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .fetch_all(pool)
            .await?);
        let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
        Ok(Page { items, total })
    }

    /// One webhook of the scope, with its secret (for signing; never shown again).
    pub async fn get_webhook(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let sql = "SELECT id, workspace_id, live, url, events, secret, status, disabled_reason, \
                   created_at FROM webhooks WHERE id = $1 AND workspace_id = $2 AND live = $3";
        Ok(
            on_writer!(self, pool => sqlx::query_as::<_, WebhookRecord>(sql)
            .bind(id)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .fetch_optional(pool)
            .await?),
        )
    }

    /// Saves a webhook's url, events, status and disabled reason as `hook` holds them.
    pub async fn update_webhook(&self, hook: &WebhookRecord) -> Result<(), StoreError> {
        let sql = "UPDATE webhooks SET url = $1, events = $2, status = $3, disabled_reason = $4 \
                   WHERE id = $5 AND workspace_id = $6 AND live = $7";
        on_writer!(self, pool => sqlx::query(sql)
            .bind(&hook.url)
            .bind(to_json_text(&hook.events))
            .bind(&hook.status)
            .bind(&hook.disabled_reason)
            .bind(&hook.id)
            .bind(&hook.workspace_id)
            .bind(hook.live)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Deletes a webhook and its deliveries (its attempts stay until pruned).
    pub async fn delete_webhook(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM webhooks WHERE id = $1 AND workspace_id = $2 AND live = $3";
        let done = on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql)
                .bind(id)
                .bind(&scope.workspace_id)
                .bind(scope.live)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done > 0 {
                sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            done
        });
        Ok(done > 0)
    }
}
