//! The error envelope on every kind of failure, and authentication.

mod common;

use common::{TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn keys_are_required_valid_and_unrevoked() {
    let s = TestServer::start().await;
    let (status, err) = s.send(s.http.get(s.url("/v1/agents"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(status, &err, "invalid_api_key");
    for bad in ["sk_live_nope", "Bearer", "pk_live_abc", "sk_test_"] {
        let (status, err) = s.get("/v1/agents", bad).await;
        assert_error(status, &err, "invalid_api_key");
    }
    let (status, err) = s
        .send(
            s.http
                .get(s.url("/v1/agents"))
                .header("authorization", "Basic dXNlcjpwYXNz"),
        )
        .await;
    assert_error(status, &err, "invalid_api_key");

    let secret = s.key("starter", true, "acme").await;
    let (status, _) = s.get("/v1/agents", &secret).await;
    assert_eq!(status, StatusCode::OK);
    let key_id = s.store.list_keys().await.unwrap()[0].id.clone();
    s.store.revoke_key(&key_id).await.unwrap();
    let (status, err) = s.get("/v1/agents", &secret).await;
    assert_error(status, &err, "invalid_api_key");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (status, err) = s.get("/v1/nothing-here", &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(status, &err, "not_found");
    let (status, err) = s.get("/nothing", &key).await;
    assert_error(status, &err, "not_found");
    let (status, err) = s
        .send(s.http.put(s.url("/v1/agents")).bearer_auth(&key))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(status, &err, "bad_request");
    let (status, err) = s.delete("/v1/leads/lead_x", &key).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(status, &err, "bad_request");
}

#[tokio::test]
async fn bad_bodies_use_the_envelope() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let post = |body: &'static str, content_type: &'static str| {
        s.http
            .post(s.url("/v1/leads"))
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(body)
    };
    let (status, err) = s.send(post("{\"name\": ", "application/json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(status, &err, "bad_request");
    let (status, err) = s.send(post("[]", "application/json")).await;
    assert_error(status, &err, "bad_request");
    let (status, err) = s.send(post("", "application/json")).await;
    assert_error(status, &err, "bad_request");
    let (status, err) = s
        .send(post("name=Jane", "application/x-www-form-urlencoded"))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(status, &err, "bad_request");
    let (status, ok) = s
        .send(post(
            "{\"name\": \"Jane\"}",
            "application/json; charset=utf-8",
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ok}");

    let huge = json!({"name": "x".repeat(2 * 1024 * 1024)});
    let (status, err) = s.post("/v1/leads", &key, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(status, &err, "bad_request");
}

#[tokio::test]
async fn openapi_document_is_public() {
    let s = TestServer::start().await;
    let (status, doc) = s.send(s.http.get(s.url("/v1/openapi.json"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/v1/calls/outbound"]["post"].is_object());
}
