//! `/v1/appointments`: list, get, book, cancel.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Router, routing::get};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{ApiJson, PathId, QueryMap};
use super::page::{List, page_request};
use super::validate::{DayEdge, datetime, one_of, required, text};
use crate::store::{AppointmentFilter, AppointmentRecord, NewAppointment};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/appointments", get(list).post(create))
        .route("/v1/appointments/{id}", get(fetch).delete(cancel))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateAppointment {
    lead_id: Option<String>,
    agent_id: Option<String>,
    /// Required.
    title: Option<String>,
    /// ISO 8601 (required).
    start_time: Option<String>,
    /// ISO 8601, after `start_time` (required).
    end_time: Option<String>,
}

/// `DELETE /v1/appointments/:id`.
#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    pub id: String,
    pub status: String,
}

#[utoipa::path(get, path = "/v1/appointments", tag = "appointments",
    params(("status" = Option<String>, Query), ("agent_id" = Option<String>, Query),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query),
           ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = List<AppointmentRecord>), (status = "default", body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    q: QueryMap,
) -> ApiResult<Json<List<AppointmentRecord>>> {
    let page = page_request(&q)?;
    if let Some(s) = q.get("status") {
        one_of(s, "status", &["upcoming", "completed", "cancelled"])?;
    }
    let filter = AppointmentFilter {
        status: q.get("status").map(str::to_string),
        agent_id: q.get("agent_id").map(str::to_string),
        from: q
            .get("from")
            .map(|v| datetime(v, "from", DayEdge::Start))
            .transpose()?,
        to: q
            .get("to")
            .map(|v| datetime(v, "to", DayEdge::End))
            .transpose()?,
    };
    let items = state
        .store
        .list_appointments(&key.scope(), &filter, page)
        .await?;
    Ok(Json(List::new(items, page)))
}

#[utoipa::path(get, path = "/v1/appointments/{id}", tag = "appointments", params(("id" = String, Path)),
    responses((status = 200, body = AppointmentRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn fetch(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<AppointmentRecord>> {
    state
        .store
        .get_appointment(&key.scope(), &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("No appointment {id}.")))
}

#[utoipa::path(post, path = "/v1/appointments", tag = "appointments", request_body = CreateAppointment,
    responses((status = 201, body = AppointmentRecord), (status = "default", body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    ApiJson(body): ApiJson<CreateAppointment>,
) -> ApiResult<(StatusCode, Json<AppointmentRecord>)> {
    let title = required(body.title, "title")?;
    let start = required(body.start_time, "start_time")?;
    let end = required(body.end_time, "end_time")?;
    text(&title, "title", 200)?;
    let start_time = datetime(&start, "start_time", DayEdge::Start)?;
    let end_time = datetime(&end, "end_time", DayEdge::Start)?;
    if end_time <= start_time {
        return Err(ApiError::validation(
            "end_time",
            "must be after `start_time`",
        ));
    }
    let scope = key.scope();
    if let Some(id) = &body.lead_id
        && state.store.get_lead(&scope, id).await?.is_none()
    {
        return Err(ApiError::validation(
            "lead_id",
            format!("{id:?} is not a lead of this workspace"),
        ));
    }
    if let Some(id) = &body.agent_id
        && state.store.get_agent(&scope, id).await?.is_none()
    {
        return Err(ApiError::validation(
            "agent_id",
            format!("{id:?} is not an agent of this workspace"),
        ));
    }
    let apt = state
        .store
        .create_appointment(
            &scope,
            NewAppointment {
                lead_id: body.lead_id,
                agent_id: body.agent_id,
                title,
                start_time,
                end_time,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(apt)))
}

#[utoipa::path(delete, path = "/v1/appointments/{id}", tag = "appointments", params(("id" = String, Path)),
    responses((status = 200, body = Cancelled), (status = "default", body = ErrorEnvelope)))]
pub async fn cancel(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    PathId(id): PathId,
) -> ApiResult<Json<Cancelled>> {
    match state.store.cancel_appointment(&key.scope(), &id).await {
        Ok(apt) => Ok(Json(Cancelled {
            id: apt.id,
            status: apt.status,
        })),
        Err(crate::store::StoreError::NotFound) => {
            Err(ApiError::not_found(format!("No appointment {id}.")))
        }
        Err(e) => Err(e.into()),
    }
}
