//! `/v1/analytics`: overview counts for a period and the current billing period's usage.

use axum::Json;
use axum::extract::State;
use axum::{Extension, Router, routing::get};
use chrono::Utc;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::QueryMap;
use super::validate::{DayEdge, datetime, required};
use crate::store::{Overview, Period, Usage, billing_period};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/analytics/overview", get(overview))
        .route("/v1/analytics/usage", get(usage))
}

#[utoipa::path(get, path = "/v1/analytics/overview", tag = "analytics",
    params(("from" = String, Query, description = "ISO 8601 start date"),
           ("to" = String, Query, description = "ISO 8601 end date")),
    responses((status = 200, body = Overview), (status = "default", body = ErrorEnvelope)))]
pub async fn overview(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
    q: QueryMap,
) -> ApiResult<Json<Overview>> {
    let from_text = required(q.get("from"), "from")?;
    let to_text = required(q.get("to"), "to")?;
    let from = datetime(from_text, "from", DayEdge::Start)?;
    let to = datetime(to_text, "to", DayEdge::End)?;
    if to < from {
        return Err(ApiError::validation("to", "must not be before `from`"));
    }
    let period = Period {
        from: from.format("%Y-%m-%d").to_string(),
        to: to.format("%Y-%m-%d").to_string(),
    };
    Ok(Json(
        state.store.overview(&key.scope(), from, to, period).await?,
    ))
}

#[utoipa::path(get, path = "/v1/analytics/usage", tag = "analytics",
    responses((status = 200, body = Usage), (status = "default", body = ErrorEnvelope)))]
pub async fn usage(
    State(state): State<ApiState>,
    Extension(Caller(key)): Extension<Caller>,
) -> ApiResult<Json<Usage>> {
    // Count this very call and any other pending ones before reading the totals.
    state.flush_usage().await;
    let period = billing_period(Utc::now().date_naive());
    let (minutes_used, sms_sent, api_calls) = state
        .store
        .usage(&key.scope(), &period.from, &period.to)
        .await?;
    Ok(Json(Usage {
        billing_period: period,
        minutes_used,
        minutes_limit: key.plan.minutes_limit(),
        sms_sent,
        sms_limit: key.plan.sms_limit(),
        api_calls,
    }))
}
