//! Pagination: `page` from 1, `limit` default 20, max 100; lists answer `{data, meta}`.

use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::QueryMap;
use crate::store::{Page, PageRequest};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Serialize, ToSchema)]
pub struct Meta {
    pub page: u32,
    pub limit: u32,
    pub total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub meta: Meta,
}

impl<T> List<T> {
    pub fn new(page: Page<T>, request: PageRequest) -> Self {
        List {
            data: page.items,
            meta: Meta {
                page: request.page,
                limit: request.limit,
                total: page.total,
            },
        }
    }
}

pub fn page_request(q: &QueryMap) -> ApiResult<PageRequest> {
    let page = match q.get("page") {
        None => 1,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(ApiError::validation(
                    "page",
                    "must be an integer of at least 1",
                ));
            }
        },
    };
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::validation(
                    "limit",
                    format!("must be an integer from 1 to {MAX_LIMIT}"),
                ));
            }
        },
    };
    Ok(PageRequest { page, limit })
}
