//! The store: sqlx over SQLite (embedded default) and PostgreSQL (scale-out).

pub mod keys_cli;

#[derive(Clone)]
pub struct Store {}

impl Store {
    pub async fn connect(_url: &str) -> Result<Self, sqlx::Error> {
        Ok(Store {})
    }
}
