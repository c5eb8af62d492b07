//! API keys: stored as SHA-256 hashes of high-entropy secrets, shown once at creation.

use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ids::random_token;
use super::key_cache::SecretHash;
use super::{Scope, Store, StoreError, new_id, now_ts, on_reader, on_writer};

/// A key's plan: its rate limit and quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Starter,
    Pro,
    Elite,
}

impl Plan {
    pub fn parse(name: &str) -> Option<Plan> {
        match name {
            "free" => Some(Plan::Free),
            "starter" => Some(Plan::Starter),
            "pro" => Some(Plan::Pro),
            "elite" => Some(Plan::Elite),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Elite => "elite",
        }
    }

    /// Call minutes included per billing period.
    pub fn minutes_limit(self) -> i64 {
        match self {
            Plan::Free => 60,
            Plan::Starter => 500,
            Plan::Pro => 2000,
            Plan::Elite => 10000,
        }
    }

    /// SMS included per billing period.
    pub fn sms_limit(self) -> i64 {
        match self {
            Plan::Free => 50,
            Plan::Starter => 200,
            Plan::Pro => 500,
            Plan::Elite => 5000,
        }
    }
}

/// An authenticated key (never its secret).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub live: bool,
    pub plan: Plan,
    /// `sk_live_…abcd`: enough to recognise a key in `boltcall keys list`.
    pub hint: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl ApiKey {
    pub fn scope(&self) -> Scope {
        Scope {
            workspace_id: self.workspace_id.clone(),
            live: self.live,
        }
    }
}

/// A new key and its secret, which exists nowhere else once printed.
#[derive(Debug)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    workspace_id: String,
    workspace_name: String,
    live: bool,
    plan: String,
    secret_hash: String,
    hint: String,
    created_at: String,
    revoked_at: Option<String>,
}

impl KeyRow {
    fn into_key(self) -> Result<ApiKey, StoreError> {
        let plan = Plan::parse(&self.plan).ok_or_else(|| StoreError::Corrupt {
            column: "api_keys.plan",
            reason: format!("unknown plan {:?}", self.plan),
        })?;
        Ok(ApiKey {
            id: self.id,
            workspace_id: self.workspace_id,
            workspace_name: self.workspace_name,
            live: self.live,
            plan,
            hint: self.hint,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

const KEY_SELECT: &str = "SELECT k.id, k.workspace_id, w.name AS workspace_name, k.live, k.plan, \
     k.secret_hash, k.hint, k.created_at, k.revoked_at FROM api_keys k \
     JOIN workspaces w ON w.id = k.workspace_id";

fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// The stored form of a secret's hash: lowercase hex.
fn hash_hex(hash: &SecretHash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for b in hash {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    hex
}

impl Store {
    /// Creates a key in workspace `workspace_name` (created when new).
    pub async fn create_key(
        &self,
        workspace_name: &str,
        plan: Plan,
        live: bool,
    ) -> Result<CreatedKey, StoreError> {
        let prefix = if live { "sk_live_" } else { "sk_test_" };
        // 40 base62 characters: ~238 bits, so a fast unsalted hash is enough.
        let secret = random_token(prefix, 40);
        let hint = format!("{prefix}…{}", &secret[secret.len() - 4..]);
        let now = now_ts();
        let key_id = new_id("key_");
        let find_ws = "SELECT id FROM workspaces WHERE name = $1";
        let insert_ws = "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO NOTHING";
        let insert_key = "INSERT INTO api_keys (id, workspace_id, live, plan, secret_hash, hint, \
                          created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)";
        let workspace_id = on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(insert_ws)
                .bind(new_id("ws_"))
                .bind(workspace_name)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            let (workspace_id,): (String,) =
                sqlx::query_as(find_ws).bind(workspace_name).fetch_one(&mut *tx).await?;
            sqlx::query(insert_key)
                .bind(&key_id)
                .bind(&workspace_id)
                .bind(live)
                .bind(plan.name())
                .bind(hash_hex(&hash_secret(&secret)))
                .bind(&hint)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            workspace_id
        });
        Ok(CreatedKey {
            key: ApiKey {
                id: key_id,
                workspace_id,
                workspace_name: workspace_name.to_string(),
                live,
                plan,
                hint,
                created_at: now,
                revoked_at: None,
            },
            secret,
        })
    }

    /// The unrevoked key whose secret is `secret`: from the key cache when verified less than
    /// `KEY_CACHE_TTL` ago, else from the database.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        self.authenticate_at(secret, Instant::now()).await
    }

    /// The key whose secret is `secret` when the cache vouches for it: no database lookup.
    pub fn cached_key(&self, secret: &str) -> Option<ApiKey> {
        self.keys.get(&hash_secret(secret), Instant::now())
    }

    /// `authenticate` at time `now` (tests pass virtual instants).
    pub(crate) async fn authenticate_at(
        &self,
        secret: &str,
        now: Instant,
    ) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash_secret(secret);
        // Keyed by the secret's hash, like the database index: no comparison ever runs on the
        // secret itself.
        if let Some(key) = self.keys.get(&hash, now) {
            return Ok(Some(key));
        }
        let generation = self.keys.generation();
        let hex = hash_hex(&hash);
        let sql = format!("{KEY_SELECT} WHERE k.secret_hash = $1 AND k.revoked_at IS NULL");
        let row = on_reader!(self, pool => sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(sql))
            .bind(&hex)
            .fetch_optional(pool)
            .await?);
        match row {
            // The index lookup found it; compare again in constant time so no early-exit
            // string comparison ever runs on secret-derived data.
            Some(row) if bool::from(row.secret_hash.as_bytes().ct_eq(hex.as_bytes())) => {
                let key = row.into_key()?;
                // Trusted from `now`, taken before the lookup: a revocation committed after it
                // started is seen within the TTL of that instant.
                self.keys.insert(hash, key.clone(), now, generation);
                Ok(Some(key))
            }
            _ => Ok(None),
        }
    }

    /// Every key, oldest first (revoked ones included, marked).
    /// The plan a scope's calls are billed under when no key is at hand (inbound calls): the
    /// largest plan among its unrevoked keys; the free plan when it has none.
    pub async fn scope_plan(&self, scope: &Scope) -> Result<Plan, StoreError> {
        let sql = "SELECT DISTINCT plan FROM api_keys \
                   WHERE workspace_id = $1 AND live = $2 AND revoked_at IS NULL";
        let plans: Vec<(String,)> = on_reader!(self, pool => sqlx::query_as(sql)
            .bind(&scope.workspace_id)
            .bind(scope.live)
            .fetch_all(pool)
            .await?);
        Ok(plans
            .iter()
            .filter_map(|(name,)| Plan::parse(name))
            .max_by_key(|plan| plan.minutes_limit())
            .unwrap_or(Plan::Free))
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!("{KEY_SELECT} ORDER BY k.created_at, k.id");
        let rows = on_reader!(self, pool => sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    /// Revokes a key; `NotFound` when no unrevoked key has that id.
    pub async fn revoke_key(&self, id: &str) -> Result<(), StoreError> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        let done = on_writer!(self, pool => sqlx::query(sql)
            .bind(now_ts())
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.keys.forget(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::KEY_CACHE_TTL;

    async fn two_processes() -> (tempfile::TempDir, Store, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        let server = Store::connect(&url).await.expect("server store");
        let cli = Store::connect(&url).await.expect("cli store");
        (dir, server, cli)
    }

    #[tokio::test]
    async fn another_process_revocation_is_in_force_within_the_cache_ttl() {
        let (_dir, server, cli) = two_processes().await;
        let created = cli.create_key("acme", Plan::Pro, true).await.unwrap();
        let t0 = Instant::now();
        let found = server.authenticate_at(&created.secret, t0).await.unwrap();
        assert_eq!(found.map(|k| k.id), Some(created.key.id.clone()));
        cli.revoke_key(&created.key.id).await.unwrap();
        // Still trusted from the cache inside the bound, refused from its end on.
        let inside = t0 + KEY_CACHE_TTL - Duration::from_millis(1);
        let cached = server
            .authenticate_at(&created.secret, inside)
            .await
            .unwrap();
        assert!(cached.is_some());
        let after = server.authenticate_at(&created.secret, t0 + KEY_CACHE_TTL);
        assert!(after.await.unwrap().is_none());
    }

    #[tokio::test]
    async fn own_revocation_is_in_force_at_once() {
        let (_dir, server, _cli) = two_processes().await;
        let created = server.create_key("acme", Plan::Pro, true).await.unwrap();
        let t0 = Instant::now();
        assert!(
            server
                .authenticate_at(&created.secret, t0)
                .await
                .unwrap()
                .is_some()
        );
        server.revoke_key(&created.key.id).await.unwrap();
        assert!(
            server
                .authenticate_at(&created.secret, t0)
                .await
                .unwrap()
                .is_none()
        );
    }
}
