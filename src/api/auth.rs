//! The `/v1` gate: Bearer key authentication, rate limits, the free plan's daily quota and
//! usage counting. Adds `X-RateLimit-Remaining` / `X-RateLimit-Reset` to every response.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;
use super::rate_limit::{Bucket, LimitState};
use crate::store::{ApiKey, Plan};

/// The authenticated key, available to handlers as an extension.
#[derive(Clone)]
pub struct Caller(pub ApiKey);

pub async fn gate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v1") {
        return next.run(req).await;
    }
    if req.uri().path() == PUBLIC_DOCUMENT {
        let limit = state
            .config
            .rate_limit
            .then(|| state.limiter.check(Bucket::Anonymous, &client_of(&req)));
        let response = match limit {
            Some(l) if !l.allowed => too_many(l),
            _ => next.run(req).await,
        };
        return with_limit_headers(response, limit);
    }
    let client = client_of(&req);
    // A key the cache does not vouch for costs a database lookup: a client whose anonymous
    // allowance is spent (made-up keys are charged to it) is refused before that lookup.
    let key = match bearer(&req) {
        Some(secret) => match state.store.cached_key(secret) {
            Some(key) => Some(key),
            None => {
                if state.config.rate_limit
                    && let Some(refusal) = state.limiter.anonymous_refusal(&client)
                {
                    return with_limit_headers(too_many(refusal), Some(refusal));
                }
                match state.store.authenticate(secret).await {
                    Ok(key) => key,
                    Err(e) => return ApiError::from(e).into_response(),
                }
            }
        },
        None => None,
    };
    let limit = state.config.rate_limit.then(|| match &key {
        Some(k) => state.limiter.check(Bucket::Plan(k.plan), &k.id),
        None => state.limiter.check(Bucket::Anonymous, &client),
    });
    let response = match (key, limit) {
        (_, Some(l)) if !l.allowed => too_many(l),
        (None, _) => ApiError::invalid_api_key(if bearer(&req).is_some() {
            "The API key provided is invalid or expired."
        } else {
            "Missing API key: send `Authorization: Bearer sk_live_…` or `sk_test_…`."
        })
        .into_response(),
        (Some(key), _) => match count_call(&state, &key).await {
            Err(refusal) => refusal.into_response(),
            Ok(()) => {
                req.extensions_mut().insert(Caller(key));
                next.run(req).await
            }
        },
    };
    with_limit_headers(response, limit)
}

fn too_many(l: LimitState) -> Response {
    ApiError::rate_limited(
        "Too many requests. Back off and retry with exponential delay.",
        l.retry_after_secs,
    )
    .into_response()
}

/// Counts the call for usage; a free key past its daily quota is refused until UTC midnight.
async fn count_call(state: &ApiState, key: &ApiKey) -> Result<(), ApiError> {
    let now = chrono::Utc::now();
    let day = now.format("%Y-%m-%d").to_string();
    let quota = (key.plan == Plan::Free && state.config.rate_limit)
        .then_some(state.limits.free_daily_calls);
    match state.usage.count(&state.store, key, &day, quota).await? {
        super::usage::Counted::Yes => Ok(()),
        super::usage::Counted::OverDailyQuota => {
            let midnight = (now.date_naive() + chrono::Days::new(1))
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or(now);
            let wait = u64::try_from((midnight - now).num_seconds())
                .unwrap_or(0)
                .max(1);
            Err(ApiError::rate_limited(
                format!(
                    "The free plan allows {} API calls per day; the quota resets at 00:00 UTC.",
                    state.limits.free_daily_calls
                ),
                wait,
            ))
        }
    }
}

/// The one `/v1` document readable without a key.
const PUBLIC_DOCUMENT: &str = "/v1/openapi.json";

/// The client's address: the rate-limit bucket of requests without a valid key. An IPv6
/// client is counted by its /64, which one subscriber holds whole.
fn client_of(req: &Request) -> String {
    match req.extensions().get::<ConnectInfo<std::net::SocketAddr>>() {
        Some(ConnectInfo(addr)) => match addr.ip().to_canonical() {
            std::net::IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            v4 => v4.to_string(),
        },
        None => "unknown".into(),
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && (token.starts_with("sk_live_") || token.starts_with("sk_test_")))
    .then_some(token)
}

fn with_limit_headers(mut response: Response, limit: Option<LimitState>) -> Response {
    if let Some(l) = limit {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-remaining", HeaderValue::from(l.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(l.reset_secs));
    }
    response
}
