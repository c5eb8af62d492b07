//! `/v1/analytics`: overview counts for a period and the current billing period's usage.

use axum::Json;
use axum::extract::State;
use axum::{Extension, Router, routing::get};
use chrono::{Datelike, NaiveDate, Utc};

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::QueryMap;
use super::validate::{DayEdge, datetime, required};
use crate::store::{Overview, Period, Usage};

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
    let today = Utc::now().date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(today);
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let (minutes_used, sms_sent, api_calls) = state
        .store
        .usage(&key.scope(), &day(first), &day(last))
        .await?;
    Ok(Json(Usage {
        billing_period: Period {
            from: day(first),
            to: day(last),
        },
        minutes_used,
        minutes_limit: key.plan.minutes_limit(),
        sms_sent,
        sms_limit: key.plan.sms_limit(),
        api_calls,
    }))
}
