//! Agents: the call path looks them up by phone number; the API manages them per scope.

use crate::agent::tools::http_tool::stored_json;

use super::{
    AgentPatch, AgentRecord, Filter, JsonText, NewAgent, Page, PageRequest, Scope, Store,
    StoreError, fetch_page, new_id, now_ts, on_reader, on_writer, to_json_text,
};

const COLUMNS: &str = "id, workspace_id, live, name, voice_id, greeting, prompt, \
                       knowledge_base_id, phone_number, transfer_targets, llm, tools, status, \
                       created_at, updated_at";

impl Store {
    /// The agent of mode `live` that owns `phone` (the unique index `agents_phone_per_mode`
    /// allows one). Carriers' calls are live: they never reach a test-mode agent.
    pub async fn find_agent_by_phone(
        &self,
        phone: &str,
        live: bool,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM agents WHERE phone_number = $1 AND live = $2");
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, AgentRecord>(sqlx::AssertSqlSafe(sql))
            .bind(phone)
            .bind(live)
            .fetch_optional(pool)
            .await?),
        )
    }

    pub async fn get_agent(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM agents WHERE workspace_id = $1 AND live = $2 AND id = $3"
        );
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, AgentRecord>(sqlx::AssertSqlSafe(sql))
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(id)
            .fetch_optional(pool)
            .await?),
        )
    }

    pub async fn list_agents(
        &self,
        scope: &Scope,
        page: PageRequest,
    ) -> Result<Page<AgentRecord>, StoreError> {
        let f = Filter::scoped(scope);
        Ok(fetch_page!(
            self,
            AgentRecord,
            COLUMNS,
            "agents",
            f,
            "created_at DESC, id",
            page
        ))
    }

    /// Creates an agent; a phone number another agent of the same mode owns, in any workspace,
    /// is a conflict (the database's unique index decides, so racing claims get one winner).
    pub async fn create_agent(
        &self,
        scope: &Scope,
        new: NewAgent,
    ) -> Result<AgentRecord, StoreError> {
        let now = now_ts();
        let record = AgentRecord {
            id: new_id("agent_"),
            workspace_id: scope.workspace_id.clone(),
            live: scope.live,
            name: new.name,
            voice_id: new.voice_id,
            greeting: new.greeting,
            prompt: new.prompt,
            knowledge_base_id: new.knowledge_base_id,
            phone_number: new.phone_number,
            transfer_targets: JsonText(new.transfer_targets),
            llm: JsonText(new.llm),
            tools: JsonText(new.tools),
            status: "active".into(),
            created_at: now.clone(),
            updated_at: now,
        };
        let sql = format!(
            "INSERT INTO agents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        on_writer!(self, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&record.id)
            .bind(&record.workspace_id)
            .bind(record.live)
            .bind(&record.name)
            .bind(&record.voice_id)
            .bind(&record.greeting)
            .bind(&record.prompt)
            .bind(&record.knowledge_base_id)
            .bind(&record.phone_number)
            .bind(to_json_text(&record.transfer_targets))
            .bind(to_json_text(&record.llm))
            .bind(stored_json(&record.tools))
            .bind(&record.status)
            .bind(&record.created_at)
            .bind(&record.updated_at)
            .execute(pool)
            .await
            .map_err(|e| phone_taken(e, record.phone_number.as_deref()))?
            .rows_affected());
        Ok(record)
    }

    /// Applies `patch`; `None` when the agent does not exist in `scope`.
    pub async fn update_agent(
        &self,
        scope: &Scope,
        id: &str,
        patch: AgentPatch,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let Some(mut agent) = self.get_agent(scope, id).await? else {
            return Ok(None);
        };
        if let Some(v) = patch.name {
            agent.name = v;
        }
        if let Some(v) = patch.voice_id {
            agent.voice_id = v;
        }
        if let Some(v) = patch.greeting {
            agent.greeting = v;
        }
        if let Some(v) = patch.prompt {
            agent.prompt = v;
        }
        if let Some(v) = patch.knowledge_base_id {
            agent.knowledge_base_id = v;
        }
        if let Some(v) = patch.phone_number {
            agent.phone_number = v;
        }
        if let Some(v) = patch.transfer_targets {
            agent.transfer_targets = JsonText(v);
        }
        if let Some(v) = patch.llm {
            agent.llm = JsonText(v);
        }
        if let Some(v) = patch.tools {
            agent.tools = JsonText(v);
        }
        if let Some(v) = patch.status {
            agent.status = v;
        }
        agent.updated_at = now_ts();
        let sql = "UPDATE agents SET name = $1, voice_id = $2, greeting = $3, prompt = $4, \
                   knowledge_base_id = $5, phone_number = $6, transfer_targets = $7, llm = $8, \
                   tools = $9, status = $10, updated_at = $11 \
                   WHERE id = $12 AND workspace_id = $13 AND live = $14";
        on_writer!(self, pool => sqlx::query(sql)
            .bind(&agent.name)
            .bind(&agent.voice_id)
            .bind(&agent.greeting)
            .bind(&agent.prompt)
            .bind(&agent.knowledge_base_id)
            .bind(&agent.phone_number)
            .bind(to_json_text(&agent.transfer_targets))
            .bind(to_json_text(&agent.llm))
            .bind(stored_json(&agent.tools))
            .bind(&agent.status)
            .bind(&agent.updated_at)
            .bind(id)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .execute(pool)
            .await
            .map_err(|e| phone_taken(e, agent.phone_number.as_deref()))?
            .rows_affected());
        Ok(Some(agent))
    }

    /// Deletes an agent; `false` when it did not exist in `scope`. Its calls stay on record.
    pub async fn delete_agent(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM agents WHERE id = $1 AND workspace_id = $2 AND live = $3";
        let done = on_writer!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done > 0)
    }

    /// Active agents of every workspace, most recently changed first: whose fixed lines are
    /// prepared at start.
    pub async fn recent_active_agents(&self, limit: i64) -> Result<Vec<AgentRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM agents WHERE status = 'active' ORDER BY updated_at DESC LIMIT $1"
        );
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, AgentRecord>(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(pool)
            .await?),
        )
    }
}

/// A write refused by `agents_phone_per_mode` (the only unique constraint an agent write can
/// break: ids are random) is a conflict over the number.
fn phone_taken(error: sqlx::Error, phone: Option<&str>) -> StoreError {
    match (error.as_database_error(), phone) {
        (Some(db), Some(phone)) if db.is_unique_violation() => StoreError::Conflict(format!(
            "phone_number {phone} is already assigned to another agent"
        )),
        _ => StoreError::Database(error),
    }
}
