//! The real binary: `boltcall migrate`, `keys create|list|revoke`, and `serve` answering the
//! reference's curl example with a key from `keys create`.

mod common;

use common::{TestDb, run_cli, spawn_binary};
use reqwest::StatusCode;

#[tokio::test]
async fn keys_cli_and_serve_work_together() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(dir.path()).await;
    let data_dir = dir.path().join("data").display().to_string();
    let env = [
        ("BOLTCALL_DATABASE_URL", db.url.as_str()),
        ("BOLTCALL_DATA_DIR", data_dir.as_str()),
    ];

    let (ok, _, stderr) = run_cli(&["migrate"], &env);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = run_cli(
        &["keys", "create", "--plan", "pro", "--workspace", "acme"],
        &env,
    );
    assert!(ok, "{stderr}");
    let live = stdout.trim().to_string();
    assert!(live.starts_with("sk_live_") && live.len() > 40, "{stdout}");
    let (ok, stdout, _) = run_cli(
        &[
            "keys",
            "create",
            "--plan",
            "starter",
            "--test",
            "--workspace",
            "acme",
        ],
        &env,
    );
    assert!(ok);
    let test = stdout.trim().to_string();
    assert!(test.starts_with("sk_test_"));
    let (ok, _, stderr) = run_cli(&["keys", "create", "--plan", "platinum"], &env);
    assert!(!ok && stderr.contains("platinum"), "{stderr}");

    let (ok, listing, _) = run_cli(&["keys", "list"], &env);
    assert!(ok);
    assert!(!listing.contains(&live), "secrets must never be listed");
    assert_eq!(
        listing.lines().filter(|l| l.starts_with("key_")).count(),
        2,
        "{listing}"
    );
    let live_id = listing
        .lines()
        .find(|l| l.contains(" live "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();

    let server = spawn_binary(&env).await;
    let http = reqwest::Client::new();
    // The reference's example, verbatim but for the host.
    let response = http
        .get(format!("{}/v1/agents", server.base))
        .header("Authorization", format!("Bearer {live}"))
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-ratelimit-remaining"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["meta"]["total"], 0);

    let (ok, out, _) = run_cli(&["keys", "revoke", &live_id], &env);
    assert!(ok, "{out}");
    let response = http
        .get(format!("{}/v1/agents", server.base))
        .bearer_auth(&live)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (ok, _, stderr) = run_cli(&["keys", "revoke", &live_id], &env);
    assert!(!ok && stderr.contains(&live_id));
    let response = http
        .get(format!("{}/v1/agents", server.base))
        .bearer_auth(&test)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
