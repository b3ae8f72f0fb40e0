//! Warm pools through the API (issue 15): a claim records who made it, and pools and claims are
//! visible only to their organisation; a viewer cannot claim; bad input names its field.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::util::{eventually, TestServer};

async fn login(s: &TestServer, email: &str, org: &str, role: &str) -> String {
    let _: serde_json::Value = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": email, "org": org, "role": role, "password": "correct horse battery"})),
        )
        .await;
    let r: serde_json::Value = s
        .http
        .post(s.url("/auth/login"))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}

async fn as_user(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut req = s.http.request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn pools_and_claims_stay_in_their_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start(dir.path()).await;
    let image = s.hello_image();
    let acme_admin = login(&s, "admin@acme.io", "acme", "admin").await;
    let acme_dev = login(&s, "dev@acme.io", "acme", "developer").await;
    let acme_viewer = login(&s, "viewer@acme.io", "acme", "viewer").await;
    let beta = login(&s, "admin@beta.io", "beta", "admin").await;

    // Bad input names its field.
    let (st, body) = as_user(
        &s,
        &acme_admin,
        Method::POST,
        "/api/v1/pools",
        Some(json!({"name": "ide", "image": image, "size": 1, "ports": ["web=0"]})),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "ports", "{body}");
    let (st, body) = as_user(&s, &acme_admin, Method::POST, "/api/v1/pools",
        Some(json!({"name": "ide", "image": image, "size": 1, "ports": ["web=8000"], "claim_ttl": "soon"}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "claim_ttl", "{body}");
    // A developer may not create a pool (admins do).
    let (st, _) = as_user(
        &s,
        &acme_dev,
        Method::POST,
        "/api/v1/pools",
        Some(json!({"name": "ide", "image": image, "size": 1, "ports": ["web=8000"]})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, body) = as_user(&s, &acme_admin, Method::POST, "/api/v1/pools",
        Some(json!({"name": "ide", "image": image, "size": 1, "ports": ["web=8000"], "health_path": "/health"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    eventually(60, "a ready container", || async {
        as_user(&s, &acme_admin, Method::GET, "/api/v1/pools/ide", None)
            .await
            .1["ready"]
            == 1
    })
    .await;

    // Another organisation sees neither the pool nor, below, the claim.
    let (st, list) = as_user(&s, &beta, Method::GET, "/api/v1/pools", None).await;
    assert_eq!((st, list), (StatusCode::OK, json!([])));
    let (st, _) = as_user(&s, &beta, Method::GET, "/api/v1/pools/ide", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = as_user(
        &s,
        &beta,
        Method::POST,
        "/api/v1/pools/ide/claims",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A viewer may not claim.
    let (st, _) = as_user(
        &s,
        &acme_viewer,
        Method::POST,
        "/api/v1/pools/ide/claims",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // A developer's claim records who made it, in their organisation.
    let (st, claim) = as_user(
        &s,
        &acme_dev,
        Method::POST,
        "/api/v1/pools/ide/claims",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{claim}");
    assert_eq!(claim["actor"], "dev@acme.io");
    assert_eq!(claim["org"], "acme");
    let id = claim["id"].as_str().unwrap();
    let (_, mine) = as_user(&s, &acme_viewer, Method::GET, "/api/v1/claims", None).await;
    assert_eq!(
        mine.as_array().unwrap().len(),
        1,
        "visible to its organisation"
    );
    let (_, theirs) = as_user(&s, &beta, Method::GET, "/api/v1/claims", None).await;
    assert_eq!(theirs, json!([]), "invisible to another");
    let (st, _) = as_user(
        &s,
        &beta,
        Method::GET,
        &format!("/api/v1/claims/{id}"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = as_user(
        &s,
        &beta,
        Method::POST,
        &format!("/api/v1/claims/{id}/release"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, body) = as_user(
        &s,
        &acme_dev,
        Method::POST,
        &format!("/api/v1/claims/{id}/release"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "released");
    let (st, _) = as_user(&s, &acme_admin, Method::DELETE, "/api/v1/pools/ide", None).await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}
