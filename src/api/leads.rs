//! `/v1/leads`: list with filters and sorting, create, get, update.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Router, routing::get};
use serde::Deserialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{ApiJson, PathId, QueryMap};
use super::page::{List, page_request};
use super::validate::{email, one_of, phone, required, tags, text};
use crate::store::{LEAD_SORT_FIELDS, LeadFilter, LeadPatch, LeadRecord, NewLead};

pub const LEAD_STATUSES: &[&str] = &["new", "contacted", "qualified", "converted"];
pub const LEAD_SOURCES: &[&str] = &["call", "sms", "form", "facebook", "google"];

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/leads", get(list).post(create))
        .route("/v1/leads/{id}", get(fetch).patch(update))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateLead {
    /// Full name (required).
    name: Option<String>,
    /// E.164.
    phone: Option<String>,
    email: Option<String>,
    /// `call`, `sms`, `form`, `facebook` or `google`.
    source: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateLead {
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    /// `new`, `contacted`, `qualified` or `converted`.
    status: Option<String>,
    source: Option<String>,
    /// 0–100.
    score: Option<i64>,
    tags: Option<Vec<String>>,
}

fn check_details(
    phone_number: Option<&str>,
    mail: Option<&str>,
    source: Option<&str>,
    tag_list: Option<&[String]>,
) -> ApiResult<()> {
    if let Some(p) = phone_number {
        phone(p, "phone")?;
    }
    if let Some(m) = mail {
        email(m, "email")?;
    }
    if let Some(s) = source {
        one_of(s, "source", LEAD_SOURCES)?;
    }
    if let Some(t) = tag_list {
        tags(t, "tags")?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/leads", tag = "leads",
    params(("status" = Option<String>, Query), ("source" = Option<String>, Query),
           ("sort" = Option<String>, Query, description = "created_at (default), updated_at, name, score or status"),
           ("order" = Option<String>, Query, description = "asc or desc (default)"),
           ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = List<LeadRecord>), (status = "default", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    q: QueryMap,
) -> ApiResult<Json<List<LeadRecord>>> {
    let page = page_request(&q)?;
    if let Some(v) = q.get("status") {
        one_of(v, "status", LEAD_STATUSES)?;
    }
    if let Some(v) = q.get("source") {
        one_of(v, "source", LEAD_SOURCES)?;
    }
    if let Some(v) = q.get("sort") {
        one_of(v, "sort", LEAD_SORT_FIELDS)?;
    }
    let ascending = match q.get("order") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => return Err(one_of(other, "order", &["asc", "desc"]).unwrap_err()),
    };
    let filter = LeadFilter {
        status: q.get("status").map(str::to_string),
        source: q.get("source").map(str::to_string),
        sort: q.get("sort").map(str::to_string),
        ascending,
    };
    let leads = state.store.list_leads(&key.scope(), &filter, page).await?;
    Ok(Json(List::new(leads, page)))
}

#[utoipa::path(post, path = "/v1/leads", tag = "leads", request_body = CreateLead,
    responses((status = 201, body = LeadRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    ApiJson(body): ApiJson<CreateLead>,
) -> ApiResult<(StatusCode, Json<LeadRecord>)> {
    let name = required(body.name, "name")?;
    text(&name, "name", 200)?;
    check_details(
        body.phone.as_deref(),
        body.email.as_deref(),
        body.source.as_deref(),
        body.tags.as_deref(),
    )?;
    let lead = state
        .store
        .create_lead(
            &key.scope(),
            NewLead {
                name,
                phone: body.phone,
                email: body.email,
                source: body.source,
                tags: body.tags.unwrap_or_default(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(lead)))
}

#[utoipa::path(get, path = "/v1/leads/{id}", tag = "leads", params(("id" = String, Path)),
    responses((status = 200, body = LeadRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn fetch(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<LeadRecord>> {
    state
        .store
        .get_lead(&key.scope(), &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("No lead {id}.")))
}

#[utoipa::path(patch, path = "/v1/leads/{id}", tag = "leads", params(("id" = String, Path)),
    request_body = UpdateLead,
    responses((status = 200, body = LeadRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateLead>,
) -> ApiResult<Json<LeadRecord>> {
    if let Some(n) = &body.name {
        text(n, "name", 200)?;
    }
    if let Some(s) = &body.status {
        one_of(s, "status", LEAD_STATUSES)?;
    }
    if let Some(score) = body.score
        && !(0..=100).contains(&score)
    {
        return Err(ApiError::validation("score", "must be from 0 to 100"));
    }
    check_details(
        body.phone.as_deref(),
        body.email.as_deref(),
        body.source.as_deref(),
        body.tags.as_deref(),
    )?;
    let patch = LeadPatch {
        name: body.name,
        phone: body.phone,
        email: body.email,
        status: body.status,
        source: body.source,
        score: body.score,
        tags: body.tags,
    };
    match state.store.update_lead(&key.scope(), &id, patch).await {
        Ok(lead) => Ok(Json(lead)),
        Err(crate::store::StoreError::NotFound) => {
            Err(ApiError::not_found(format!("No lead {id}.")))
        }
        Err(e) => Err(e.into()),
    }
}
