//! Knowledge bases and their text documents, which agents' prompts draw on.

use super::{
    Filter, KnowledgeBaseRecord, KnowledgeDocument, Page, PageRequest, Scope, Store, StoreError,
    fetch_page, new_id, now_ts, on_reader, on_writer,
};

const KB_COLUMNS: &str = "kb.id, kb.workspace_id, kb.live, kb.name, kb.description, \
     (SELECT COUNT(*) FROM knowledge_documents d WHERE d.knowledge_base_id = kb.id) AS document_count, \
     kb.created_at, kb.updated_at";

impl Store {
    pub async fn create_knowledge_base(
        &self,
        scope: &Scope,
        name: String,
        description: Option<String>,
    ) -> Result<KnowledgeBaseRecord, StoreError> {
        let now = now_ts();
        let kb = KnowledgeBaseRecord {
            id: new_id("kb_"),
            workspace_id: scope.workspace_id.clone(),
            live: scope.live,
            name,
            description,
            document_count: 0,
            created_at: now.clone(),
            updated_at: now,
        };
        let sql = "INSERT INTO knowledge_bases (id, workspace_id, live, name, description, \
                   created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";
        on_writer!(self, pool => sqlx::query(sql)
            .bind(&kb.id)
            .bind(&kb.workspace_id)
            .bind(kb.live)
            .bind(&kb.name)
            .bind(&kb.description)
            .bind(&kb.created_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(kb)
    }

    pub async fn get_knowledge_base(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<KnowledgeBaseRecord>, StoreError> {
        let sql = format!(
            "SELECT {KB_COLUMNS} FROM knowledge_bases kb \
             WHERE kb.workspace_id = $1 AND kb.live = $2 AND kb.id = $3"
        );
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, KnowledgeBaseRecord>(sqlx::AssertSqlSafe(sql))
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(id)
            .fetch_optional(pool)
            .await?),
        )
    }

    pub async fn list_knowledge_bases(
        &self,
        scope: &Scope,
        page: PageRequest,
    ) -> Result<Page<KnowledgeBaseRecord>, StoreError> {
        let f = Filter::scoped(scope);
        Ok(fetch_page!(
            self,
            KnowledgeBaseRecord,
            KB_COLUMNS,
            "knowledge_bases kb",
            f,
            "kb.created_at DESC, kb.id",
            page
        ))
    }

    /// Deletes a knowledge base with its documents and unlinks it from agents.
    pub async fn delete_knowledge_base(&self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        let unlink = "UPDATE agents SET knowledge_base_id = NULL, updated_at = $1 \
                      WHERE knowledge_base_id = $2 AND workspace_id = $3 AND live = $4";
        let docs = "DELETE FROM knowledge_documents WHERE knowledge_base_id = $1";
        let kb = "DELETE FROM knowledge_bases WHERE id = $1 AND workspace_id = $2 AND live = $3";
        if self.get_knowledge_base(scope, id).await?.is_none() {
            return Ok(false);
        }
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(unlink)
                .bind(now_ts())
                .bind(id)
                .bind(&scope.workspace_id)
                .bind(scope.live)
                .execute(&mut *tx)
                .await?;
            sqlx::query(docs).bind(id).execute(&mut *tx).await?;
            sqlx::query(kb)
                .bind(id)
                .bind(&scope.workspace_id)
                .bind(scope.live)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Adds a document; `NotFound` when the knowledge base is not in `scope`.
    pub async fn add_knowledge_document(
        &self,
        scope: &Scope,
        kb_id: &str,
        title: String,
        text: String,
    ) -> Result<KnowledgeDocument, StoreError> {
        if self.get_knowledge_base(scope, kb_id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let doc = KnowledgeDocument {
            id: new_id("doc_"),
            knowledge_base_id: kb_id.to_string(),
            title,
            text,
            created_at: now_ts(),
        };
        let insert = "INSERT INTO knowledge_documents (id, knowledge_base_id, title, body, \
                      created_at) VALUES ($1, $2, $3, $4, $5)";
        let touch = "UPDATE knowledge_bases SET updated_at = $1 WHERE id = $2";
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(insert)
                .bind(&doc.id)
                .bind(&doc.knowledge_base_id)
                .bind(&doc.title)
                .bind(&doc.text)
                .bind(&doc.created_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(touch).bind(&doc.created_at).bind(kb_id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(doc)
    }

    /// The documents of a knowledge base in `scope`, oldest first (empty when it does not exist).
    pub async fn knowledge_documents(
        &self,
        scope: &Scope,
        kb_id: &str,
    ) -> Result<Vec<KnowledgeDocument>, StoreError> {
        let sql = "SELECT d.id, d.knowledge_base_id, d.title, d.body, d.created_at \
                   FROM knowledge_documents d JOIN knowledge_bases kb ON kb.id = d.knowledge_base_id \
                   WHERE kb.workspace_id = $1 AND kb.live = $2 AND kb.id = $3 \
                   ORDER BY d.created_at, d.id";
        Ok(
            on_reader!(self, pool => sqlx::query_as::<_, KnowledgeDocument>(sql)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .bind(kb_id)
            .fetch_all(pool)
            .await?),
        )
    }

    /// Deletes one document; `false` when it is not in that knowledge base of `scope`.
    pub async fn delete_knowledge_document(
        &self,
        scope: &Scope,
        kb_id: &str,
        doc_id: &str,
    ) -> Result<bool, StoreError> {
        if self.get_knowledge_base(scope, kb_id).await?.is_none() {
            return Ok(false);
        }
        let sql = "DELETE FROM knowledge_documents WHERE id = $1 AND knowledge_base_id = $2";
        let done = on_writer!(self, pool => sqlx::query(sql)
            .bind(doc_id)
            .bind(kb_id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done > 0)
    }
}
