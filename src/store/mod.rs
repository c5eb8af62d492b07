//! The store: sqlx over SQLite (embedded default) and PostgreSQL (scale-out).
//!
//! `Store` holds an enum over the two native pools rather than an `AnyPool`: `AnyPool` decodes
//! every row through an intermediate value layer and knows only primitive types, while the
//! native drivers keep their own prepared-statement caches and types. The SQL text is shared:
//! `$n` placeholders work on both engines, and the schema uses portable types only (TEXT
//! timestamps in a fixed-width format, TEXT JSON, BIGINT, BOOLEAN), so one migration directory
//! serves both. `on_pool!` expands a body once per engine.

pub mod keys_cli;

mod agents;
mod analytics;
mod appointments;
mod calls;
mod events;
mod ids;
mod keys;
mod knowledge;
mod leads;
mod messages;
mod records;
mod time;
mod usage;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use analytics::{
    AppointmentCounts, CallCounts, LeadCounts, MessageCounts, Overview, Period, Usage,
};
pub use appointments::AppointmentFilter;
pub use calls::CallFilter;
pub use events::{EVENT_TYPES, EventRecord};
pub use ids::new_id;
pub use keys::{ApiKey, CreatedKey, Plan};
pub use leads::{LEAD_SORT_FIELDS, LeadFilter};
pub use messages::MessageFilter;
pub use records::*;
pub use time::{format_ts, now_ts, parse_ts};

/// Every API query runs inside one workspace and one mode: a test key sees only `live = false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub workspace_id: String,
    pub live: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: expected sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("corrupt stored value in {column}: {reason}")]
    Corrupt {
        column: &'static str,
        reason: String,
    },
}

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Clone)]
pub struct Store {
    db: Db,
    /// Base of `recording_url` / `transcript_url` in call resources and event payloads.
    public_url: std::sync::Arc<str>,
}

/// Runs `$body` with `$pool` bound to whichever native pool the store holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let db = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                // WAL lets readers proceed while one writer commits; NORMAL sync is durable
                // across application crashes, which is what WAL mode is designed for.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            // One connection per core-ish for reads; SQLite serialises writers itself.
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .min_connections(1)
                .connect_with(options)
                .await?;
            MIGRATOR.run(&pool).await?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await?;
            MIGRATOR.run(&pool).await?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        Ok(Store {
            db,
            public_url: "http://127.0.0.1:8080".into(),
        })
    }

    /// Sets the base URL used in `recording_url` and `transcript_url`.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.public_url = public_url.trim_end_matches('/').into();
        self
    }

    /// SQLite means one engine process owns the database (PostgreSQL may be shared by nodes).
    pub fn is_single_node(&self) -> bool {
        matches!(self.db, Db::Sqlite(_))
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Closes every pooled connection (used at shutdown so SQLite checkpoints the WAL).
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Page request: `page` from 1.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
}

impl PageRequest {
    fn offset(&self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.limit)
    }
}

/// One page of rows and the total count matching the filter.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// Builds a `WHERE` clause with numbered placeholders; values are bound in order.
pub(crate) struct Filter {
    clauses: Vec<String>,
    values: Vec<FilterValue>,
}

pub(crate) enum FilterValue {
    Text(String),
    Bool(bool),
}

impl Filter {
    fn scoped(scope: &Scope) -> Self {
        Filter {
            clauses: vec!["workspace_id = $1".into(), "live = $2".into()],
            values: vec![
                FilterValue::Text(scope.workspace_id.clone()),
                FilterValue::Bool(scope.live),
            ],
        }
    }

    /// Adds `column op $n` bound to `value`.
    fn push(&mut self, column: &str, op: &str, value: String) {
        self.values.push(FilterValue::Text(value));
        self.clauses
            .push(format!("{column} {op} ${}", self.values.len()));
    }

    fn where_sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

/// Binds a `Filter`'s values onto a query, for either engine.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {{
        let mut q = $query;
        for value in &$filter.values {
            q = match value {
                $crate::store::FilterValue::Text(s) => q.bind(s.clone()),
                $crate::store::FilterValue::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}
pub(crate) use bind_filter;

pub(crate) fn to_json_text<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain records and `serde_json::Value`s to a string cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}
