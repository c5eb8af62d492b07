//! The store: sqlx over SQLite (embedded default) and PostgreSQL (scale-out).
//!
//! `Store` holds an enum over the two native pools rather than an `AnyPool`: `AnyPool` decodes
//! every row through an intermediate value layer and knows only primitive types, while the
//! native drivers keep their own prepared-statement caches and types. The SQL text is shared:
//! `$n` placeholders work on both engines, and the schema uses portable types only (TEXT
//! timestamps in a fixed-width format, TEXT JSON, BIGINT, BOOLEAN), so one migration directory
//! serves both. `on_reader!` / `on_writer!` expand a body once per engine.
//!
//! SQLite gets two pools over one WAL database: readers run concurrently, and every write goes
//! through a single connection, so writers queue in the pool instead of sleeping in SQLite's busy
//! handler (whose back-off sleeps were the POST tail latency) or failing with a busy snapshot.

pub mod keys_cli;

mod agents;
mod analytics;
mod appointments;
mod calls;
mod deliveries;
mod events;
mod ids;
mod key_cache;
mod keys;
mod knowledge;
mod leads;
mod messages;
mod records;
mod recovery;
mod redact;
mod time;
mod usage;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use analytics::{
    AppointmentCounts, CallCounts, LeadCounts, MessageCounts, Overview, Period, Usage,
    billing_period,
};
pub use appointments::AppointmentFilter;
pub use calls::CallFilter;
pub use deliveries::{AttemptOutcome, DeliveryJob, NextStep, WebhookAttempt};
pub use events::{EVENT_TYPES, EventRecord};
pub use ids::new_id;
pub use key_cache::KEY_CACHE_TTL;
pub use keys::{ApiKey, CreatedKey, Plan};
pub use leads::{LEAD_SORT_FIELDS, LeadFilter};
pub use messages::{MessageFilter, StatusChange};
pub use records::*;
pub use redact::redact_url;
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
    Sqlite {
        /// Read-only connections (the same pool as `write` for an in-memory database).
        read: SqlitePool,
        /// The one connection that writes.
        write: SqlitePool,
    },
    Postgres(PgPool),
}

#[derive(Clone)]
pub struct Store {
    db: Db,
    /// Base of `recording_url` / `transcript_url` in call resources and event payloads.
    public_url: Arc<str>,
    keys: Arc<key_cache::KeyCache>,
    /// The engine instance whose calls this store claims (`with_instance_id`).
    instance_id: Arc<str>,
}

/// Runs `$body` with `$pool` bound to the pool for reads of whichever engine the store holds.
macro_rules! on_reader {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite { read: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_reader;

/// Runs `$body` with `$pool` bound to the pool for writes (and reads inside write transactions).
macro_rules! on_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite { write: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_writer;

/// Concurrent SQLite readers: enough to keep both cores busy while some wait on the disk.
const SQLITE_READERS: u32 = 4;

/// A pooled PostgreSQL connection idle longer than this is pinged before use (a server restart
/// or a proxy timeout may have closed it); a busy one is not, which saves a round trip a query.
const PG_PING_AFTER_IDLE: Duration = Duration::from_secs(30);

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
                // Only another process (`boltcall keys`) can hold the write lock now.
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            // An embedded connection has no peer to lose: no ping before each use.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await?;
            MIGRATOR.run(&write).await?;
            let read = if is_in_memory(url) {
                // Each connection to `:memory:` is its own database.
                write.clone()
            } else {
                SqlitePoolOptions::new()
                    .max_connections(SQLITE_READERS)
                    .min_connections(1)
                    .test_before_acquire(false)
                    .connect_with(options.read_only(true))
                    .await?
            };
            Db::Sqlite { read, write }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PG_PING_AFTER_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect(url)
                .await?;
            MIGRATOR.run(&pool).await?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        Ok(Store {
            db,
            public_url: "http://127.0.0.1:8080".into(),
            keys: Arc::new(key_cache::KeyCache::new(KEY_CACHE_TTL)),
            instance_id: "boltcall".into(),
        })
    }

    /// Sets the base URL used in `recording_url` and `transcript_url`.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.public_url = public_url.trim_end_matches('/').into();
        self
    }

    /// SQLite means one engine process owns the database (PostgreSQL may be shared by nodes).
    pub fn is_single_node(&self) -> bool {
        matches!(self.db, Db::Sqlite { .. })
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Closes every pooled connection (used at shutdown so SQLite checkpoints the WAL).
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// Whether a SQLite URL names an in-memory database.
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
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

/// A row of a page query with the filter's total beside it.
pub(crate) struct Counted<T> {
    pub item: T,
    pub total: i64,
}

impl<'r, R, T> sqlx::FromRow<'r, R> for Counted<T>
where
    R: sqlx::Row,
    T: sqlx::FromRow<'r, R>,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Counted {
            item: T::from_row(row)?,
            total: row.try_get("total")?,
        })
    }
}

/// Page `$page` of `SELECT $columns FROM $from WHERE <$filter> ORDER BY $order` as a
/// `Page<$row>`, in one round trip: the total rides along as an uncorrelated scalar subquery,
/// which both engines run once per query. Only a page past the end, which has no row to carry
/// it, counts separately.
macro_rules! fetch_page {
    ($store:expr, $row:ty, $columns:expr, $from:expr, $filter:expr, $order:expr, $page:expr) => {{
        let filter: &$crate::store::Filter = &$filter;
        let page: $crate::store::PageRequest = $page;
        let from_where = format!("{} WHERE {}", $from, filter.where_sql());
        // LIMIT and OFFSET are written into the text, not bound: SQLite's planner reads a bound
        // LIMIT's value, which makes every rebinding expire the statement and re-parse it.
        let sql = format!(
            "SELECT {}, (SELECT COUNT(*) FROM {from_where}) AS total FROM {from_where} \
             ORDER BY {} LIMIT {} OFFSET {}",
            $columns,
            $order,
            page.limit,
            page.offset()
        );
        $crate::store::on_reader!($store, pool => {
            let query = sqlx::query_as::<_, $crate::store::Counted<$row>>(sqlx::AssertSqlSafe(sql));
            let rows = $crate::store::bind_filter!(query, filter)
                .fetch_all(pool)
                .await?;
            let total = match rows.first() {
                Some(row) => row.total,
                None if page.offset() == 0 => 0,
                None => {
                    let count = format!("SELECT COUNT(*) FROM {from_where}");
                    let query = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count));
                    $crate::store::bind_filter!(query, filter).fetch_one(pool).await?.0
                }
            };
            $crate::store::Page {
                items: rows.into_iter().map(|row| row.item).collect::<Vec<$row>>(),
                total,
            }
        })
    }};
}
pub(crate) use fetch_page;

pub(crate) fn to_json_text<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain records and `serde_json::Value`s to a string cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}
