//! The `/v1` REST API: axum routers, one file per resource.

use axum::Router;

use crate::store::Store;

pub fn router(store: Store) -> Router {
    Router::new().with_state(store)
}
