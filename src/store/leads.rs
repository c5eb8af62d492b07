//! Leads: captured by calls (tools) and the API; every change writes its event.

use super::events::insert_event;
use super::{
    Filter, JsonText, LeadPatch, LeadRecord, NewLead, Page, PageRequest, Scope, Store, StoreError,
    fetch_page, new_id, now_ts, on_reader, on_writer, to_json_text,
};

const COLUMNS: &str = "id, workspace_id, live, name, phone, email, status, source, score, tags, created_at, updated_at";

/// Columns `GET /v1/leads?sort=` accepts.
pub const LEAD_SORT_FIELDS: &[&str] = &["created_at", "updated_at", "name", "score", "status"];

#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub status: Option<String>,
    pub source: Option<String>,
    /// One of `LEAD_SORT_FIELDS` (checked by the caller); default `created_at`.
    pub sort: Option<String>,
    pub ascending: bool,
}

impl Store {
    /// Creates a lead with status `new` and its `lead.created` event in one transaction.
    pub async fn create_lead(&self, scope: &Scope, new: NewLead) -> Result<LeadRecord, StoreError> {
        let now = now_ts();
        let lead = LeadRecord {
            id: new_id("lead_"),
            workspace_id: scope.workspace_id.clone(),
            live: scope.live,
            name: new.name,
            phone: new.phone,
            email: new.email,
            status: "new".into(),
            source: new.source,
            score: None,
            tags: JsonText(new.tags),
            created_at: now.clone(),
            updated_at: now,
        };
        let sql = format!(
            "INSERT INTO leads ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&lead.id)
                .bind(&lead.workspace_id)
                .bind(lead.live)
                .bind(&lead.name)
                .bind(&lead.phone)
                .bind(&lead.email)
                .bind(&lead.status)
                .bind(&lead.source)
                .bind(lead.score)
                .bind(to_json_text(&lead.tags))
                .bind(&lead.created_at)
                .bind(&lead.updated_at)
                .execute(&mut *tx)
                .await?;
            insert_event!(&mut *tx, &lead.workspace_id, lead.live, "lead.created", &lead)?;
            tx.commit().await?;
        });
        Ok(lead)
    }

    pub async fn get_lead(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<LeadRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM leads WHERE workspace_id = $1 AND live = $2 AND id = $3"
        );
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, LeadRecord>(sqlx::AssertSqlSafe(sql))
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(id)
            .fetch_optional(pool)
            .await?),
        )
    }

    /// Applies `patch` and writes `lead.updated` in one transaction; `NotFound` when the lead is
    /// not in `scope`. A patch that changes nothing writes no event.
    pub async fn update_lead(
        &self,
        scope: &Scope,
        id: &str,
        patch: LeadPatch,
    ) -> Result<LeadRecord, StoreError> {
        let Some(before) = self.get_lead(scope, id).await? else {
            return Err(StoreError::NotFound);
        };
        let mut lead = before.clone();
        if let Some(v) = patch.name {
            lead.name = v;
        }
        if let Some(v) = patch.phone {
            lead.phone = Some(v);
        }
        if let Some(v) = patch.email {
            lead.email = Some(v);
        }
        if let Some(v) = patch.status {
            lead.status = v;
        }
        if let Some(v) = patch.source {
            lead.source = Some(v);
        }
        if let Some(v) = patch.score {
            lead.score = Some(v);
        }
        if let Some(v) = patch.tags {
            lead.tags = JsonText(v);
        }
        let changed = lead.name != before.name
            || lead.phone != before.phone
            || lead.email != before.email
            || lead.status != before.status
            || lead.source != before.source
            || lead.score != before.score
            || lead.tags != before.tags;
        if !changed {
            return Ok(before);
        }
        lead.updated_at = now_ts();
        let sql = "UPDATE leads SET name = $1, phone = $2, email = $3, status = $4, source = $5, \
                   score = $6, tags = $7, updated_at = $8 \
                   WHERE id = $9 AND workspace_id = $10 AND live = $11";
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql)
                .bind(&lead.name)
                .bind(&lead.phone)
                .bind(&lead.email)
                .bind(&lead.status)
                .bind(&lead.source)
                .bind(lead.score)
                .bind(to_json_text(&lead.tags))
                .bind(&lead.updated_at)
                .bind(&lead.id)
                .bind(&scope.workspace_id)
                .bind(scope.live)
                .execute(&mut *tx)
                .await?;
            insert_event!(&mut *tx, &lead.workspace_id, lead.live, "lead.updated", &lead)?;
            tx.commit().await?;
        });
        Ok(lead)
    }

    pub async fn list_leads(
        &self,
        scope: &Scope,
        filter: &LeadFilter,
        page: PageRequest,
    ) -> Result<Page<LeadRecord>, StoreError> {
        let mut f = Filter::scoped(scope);
        if let Some(v) = &filter.status {
            f.push("status", "=", v.clone());
        }
        if let Some(v) = &filter.source {
            f.push("source", "=", v.clone());
        }
        // Only whitelisted column names reach the SQL text.
        let sort = filter
            .sort
            .as_deref()
            .and_then(|s| LEAD_SORT_FIELDS.iter().find(|f| **f == s))
            .copied()
            .unwrap_or("created_at");
        let order = if filter.ascending { "ASC" } else { "DESC" };
        let order = format!("{sort} {order}, id");
        Ok(fetch_page!(
            self, LeadRecord, COLUMNS, "leads", f, order, page
        ))
    }
}
