//! Rate limits per plan with a short window, headers on every response, the free plan's daily
//! quota. Quotas are injected: a burst of a few requests refilled once an hour, so refusals are
//! deterministic without waiting.

mod common;

use std::time::Duration;

use boltcall::api::RateLimits;
use common::{Options, TestServer, assert_error};
use reqwest::StatusCode;

fn tiny_limits() -> RateLimits {
    let hourly = |burst| RateLimits::quota(burst, Duration::from_secs(3600));
    RateLimits {
        free: hourly(50),
        starter: hourly(3),
        pro: hourly(5),
        elite: hourly(8),
        anonymous: hourly(2),
        free_daily_calls: 4,
    }
}

async fn limited() -> TestServer {
    TestServer::start_with(Options {
        rate_limit: true,
        limits: tiny_limits(),
        ..Options::default()
    })
    .await
}

/// (status, remaining, reset, retry-after) of one GET.
async fn hit(s: &TestServer, key: &str) -> (StatusCode, u64, u64, Option<u64>) {
    let r = s
        .http
        .get(s.url("/v1/agents"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
    };
    (
        r.status(),
        header("x-ratelimit-remaining").expect("remaining header"),
        header("x-ratelimit-reset").expect("reset header"),
        header("retry-after"),
    )
}

#[tokio::test]
async fn each_plan_gets_its_burst_then_429_with_retry_after() {
    let s = limited().await;
    for (plan, burst) in [("starter", 3u64), ("pro", 5), ("elite", 8)] {
        let key = s.key(plan, true, plan).await;
        for i in 1..=burst {
            let (status, remaining, reset, retry) = hit(&s, &key).await;
            assert_eq!(status, StatusCode::OK, "{plan} request {i}");
            assert_eq!(remaining, burst - i);
            assert!(reset > 0 && reset <= i * 3600);
            assert_eq!(retry, None);
        }
        let (status, remaining, _, retry) = hit(&s, &key).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{plan}");
        assert_eq!(remaining, 0);
        assert!(retry.unwrap() > 3500);
        let body: serde_json::Value = s
            .http
            .get(s.url("/v1/agents"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_error(StatusCode::TOO_MANY_REQUESTS, &body, "rate_limited");
    }
}

#[tokio::test]
async fn errors_carry_the_headers_too() {
    let s = limited().await;
    let key = s.key("starter", true, "acme").await;
    let r = s
        .http
        .get(s.url("/v1/agents/agent_missing"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "2");
    assert!(r.headers().contains_key("x-ratelimit-reset"));
    // Without a key, the client address has its own small bucket.
    for remaining in ["1", "0"] {
        let r = s.http.get(s.url("/v1/agents")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining);
    }
    let r = s.http.get(s.url("/v1/agents")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn free_plan_has_a_daily_quota() {
    let s = limited().await;
    let key = s.key("free", true, "acme").await;
    for _ in 0..4 {
        assert_eq!(hit(&s, &key).await.0, StatusCode::OK);
    }
    let r = s
        .http
        .get(s.url("/v1/agents"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_error(StatusCode::TOO_MANY_REQUESTS, &body, "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per day")
    );
    // The count survives a restart: it is flushed to the store.
    s.state.flush_usage().await;
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let key_id = s.store.list_keys().await.unwrap()[0].id.clone();
    assert_eq!(s.store.api_calls_on(&key_id, &day).await.unwrap(), 4);
}

#[tokio::test]
async fn limiter_off_sends_no_limit_headers() {
    let s = TestServer::start().await;
    let key = s.key("starter", true, "acme").await;
    for _ in 0..20 {
        let r = s
            .http
            .get(s.url("/v1/agents"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(!r.headers().contains_key("x-ratelimit-remaining"));
    }
}
