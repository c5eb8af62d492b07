//! `/v1/agents` over real HTTP: shapes, validation, isolation, test/live separation.

mod common;

use common::{TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_list_get_update_delete() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let (status, agent) = s
        .post(
            "/v1/agents",
            &key,
            json!({"name": "After-Hours Agent", "voice_id": "voice_james", "greeting": "Hi!",
                   "phone_number": "+15550001111"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let id = agent["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("agent_"));
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["voice_id"], "voice_james");
    assert!(agent["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, list) = s.get("/v1/agents", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["meta"], json!({"page": 1, "limit": 20, "total": 1}));
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["phone_number"], "+15550001111");

    let (status, patched) = s
        .patch(
            &format!("/v1/agents/{id}"),
            &key,
            json!({"name": "After-Hours Agent v2", "status": "paused"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "After-Hours Agent v2");
    assert_eq!(patched["status"], "paused");
    assert!(patched["updated_at"].is_string());

    let (status, got) = s.get(&format!("/v1/agents/{id}"), &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["greeting"], "Hi!");

    let (status, deleted) = s.delete(&format!("/v1/agents/{id}"), &key).await;
    assert_eq!(
        (status, deleted),
        (StatusCode::OK, json!({"deleted": true}))
    );
    let (status, body) = s.get(&format!("/v1/agents/{id}"), &key).await;
    assert_error(status, &body, "not_found");
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let cases = [
        (
            json!({"voice_id": "voice_sarah"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "name",
        ),
        (
            json!({"name": "A"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "voice_id",
        ),
        (
            json!({"name": "A", "voice_id": "voice_nobody"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "voice_id",
        ),
        (
            json!({"name": 5, "voice_id": "voice_sarah"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "name",
        ),
        (
            json!({"name": "A", "voice_id": "voice_sarah", "phone_number": "555"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "phone_number",
        ),
        (
            json!({"name": "A", "voice_id": "voice_sarah", "knowledge_base_id": "kb_nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "knowledge_base_id",
        ),
        (
            json!({"name": "  ", "voice_id": "voice_sarah"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "name",
        ),
    ];
    for (body, want_status, code, field) in cases {
        let (status, err) = s.post("/v1/agents", &key, body.clone()).await;
        assert_eq!(status, want_status, "{body} -> {err}");
        assert_error(status, &err, code);
        assert!(
            err["error"]["message"].as_str().unwrap().contains(field),
            "{err}"
        );
    }
    let (_, agent) = s
        .post(
            "/v1/agents",
            &key,
            json!({"name": "A", "voice_id": "voice_sarah"}),
        )
        .await;
    let (status, err) = s
        .patch(
            &format!("/v1/agents/{}", agent["id"].as_str().unwrap()),
            &key,
            json!({"status": "sleeping"}),
        )
        .await;
    assert_error(status, &err, "validation_error");
    let (status, err) = s.get("/v1/agents?limit=101", &key).await;
    assert_error(status, &err, "validation_error");
    assert!(err["error"]["message"].as_str().unwrap().contains("limit"));
}

#[tokio::test]
async fn phone_numbers_route_to_one_agent() {
    let s = TestServer::start().await;
    let key = s.key("pro", true, "acme").await;
    let body = json!({"name": "A", "voice_id": "voice_sarah", "phone_number": "+15550001111"});
    let (status, _) = s.post("/v1/agents", &key, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, err) = s.post("/v1/agents", &key, body).await;
    assert_error(status, &err, "conflict");
    let found = s
        .store
        .find_agent_by_phone("+15550001111", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.name, "A");
    assert!(found.live);
}

#[tokio::test]
async fn workspaces_and_modes_are_isolated() {
    let s = TestServer::start().await;
    let acme_live = s.key("pro", true, "acme").await;
    let acme_test = s.key("pro", false, "acme").await;
    let other = s.key("pro", true, "globex").await;
    let (_, agent) = s
        .post(
            "/v1/agents",
            &acme_live,
            json!({"name": "A", "voice_id": "voice_sarah"}),
        )
        .await;
    let path = format!("/v1/agents/{}", agent["id"].as_str().unwrap());
    for key in [&acme_test, &other] {
        let (status, err) = s.get(&path, key).await;
        assert_error(status, &err, "not_found");
        let (status, err) = s.patch(&path, key, json!({"name": "stolen"})).await;
        assert_error(status, &err, "not_found");
        let (status, err) = s.delete(&path, key).await;
        assert_error(status, &err, "not_found");
        let (_, list) = s.get("/v1/agents", key).await;
        assert_eq!(list["meta"]["total"], 0);
    }
    let (status, _) = s.get(&path, &acme_live).await;
    assert_eq!(status, StatusCode::OK);
}
