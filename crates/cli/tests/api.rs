//! Issue 3: the HTTP API's contract, over real HTTP against the real server binary.

use racer_core::api::{ApiInfo, App, ErrorBody, Page};
use reqwest::StatusCode;
use serde_json::json;

use crate::util::{http, Env};

async fn error_of(resp: reqwest::Response) -> (StatusCode, ErrorBody) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body: ErrorBody = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status} not an error body: {e}: {text}"));
    (status, body)
}

#[tokio::test]
async fn f3_auth_status_codes_and_error_bodies() {
    let env = Env::new();
    let url = env.start(&[]).api_url;
    let token = env.token();
    let c = http();

    // Public: /, /health, /liveness, /ready.
    let root: ApiInfo = c
        .get(format!("{url}/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root.name, "racer");
    assert_eq!(root.links["apps"], "/api/v1/apps");
    for p in ["/health", "/liveness", "/ready"] {
        let r = c.get(format!("{url}{p}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{p}");
    }

    // Everything else needs the token: 401 with a JSON body.
    for p in [
        "/api/v1/apps",
        "/api/v1/events",
        "/api/v1/info",
        "/openapi.json",
    ] {
        let (status, body) = error_of(c.get(format!("{url}{p}")).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{p}");
        assert_eq!(body.error.code, "unauthenticated");
    }
    let r = c
        .post(format!("{url}/api/v1/apps"))
        .bearer_auth("racer_admin_wrong")
        .json(&json!({"name": "web"}))
        .send()
        .await
        .unwrap();
    let (status, _) = error_of(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // 201, then 409 for the duplicate.
    let post = |body: serde_json::Value| {
        c.post(format!("{url}/api/v1/apps"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = post(json!({"name": "web"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let web: App = r.json().await.unwrap();
    let (status, body) = error_of(post(json!({"name": "web"})).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body.error.code, "conflict");
    assert_eq!(body.error.field.as_deref(), Some("name"));

    // 422 for a bad name, naming the field.
    for bad in ["Web", "-web", "web-", "", "a_b", &"x".repeat(64)] {
        let (status, body) = error_of(post(json!({ "name": bad })).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert_eq!(body.error.field.as_deref(), Some("name"), "{bad:?}");
    }
    // 422 for a missing or unknown field, naming it; 400 for broken JSON.
    let (status, body) = error_of(post(json!({})).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body.error.field.as_deref(), Some("name"));
    let (status, body) = error_of(post(json!({"name": "x", "colour": 1})).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body.error.field.as_deref(), Some("colour"));
    let r = c
        .post(format!("{url}/api/v1/apps"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body.error.code, "bad_request");

    // 413 for an oversized body; nothing created. (The server closes that connection without
    // reading the rest, so it goes on a client of its own.)
    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let r = http()
        .post(format!("{url}/api/v1/apps"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body.error.code, "payload_too_large");

    // 404s are JSON too.
    let (status, body) = error_of(
        c.get(format!("{url}/api/v1/apps/nope"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body.error.code, "not_found");
    let (status, _) = error_of(c.get(format!("{url}/no/such/route")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bad query parameters name the parameter.
    let (status, body) = error_of(
        c.get(format!("{url}/api/v1/apps?limit=lots"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body.error.field.as_deref(), Some("limit"));
    let (status, body) = error_of(
        c.get(format!("{url}/api/v1/apps?cursor=garbage"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body.error.field.as_deref(), Some("cursor"));

    // Only the one app exists after all the refused writes.
    let page: Page<App> = c
        .get(format!("{url}/api/v1/apps"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page.items, vec![web]);
}

#[tokio::test]
async fn f3_pagination_and_openapi() {
    let env = Env::new();
    let url = env.start(&[]).api_url;
    let token = env.token();
    let c = http();
    for i in 0..120 {
        let r = c
            .post(format!("{url}/api/v1/apps"))
            .bearer_auth(&token)
            .json(&json!({ "name": format!("app-{i:03}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Default page is 50; walking the cursor visits every app once.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let q = next
            .as_ref()
            .map(|c| format!("?cursor={c}"))
            .unwrap_or_default();
        let page: Page<App> = c
            .get(format!("{url}/api/v1/apps{q}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(page.items.len() <= 50);
        seen.extend(page.items.into_iter().map(|a| a.name));
        match page.next_cursor {
            Some(c) => next = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..120).map(|i| format!("app-{i:03}")).collect();
    assert_eq!(seen, expected);

    let doc: serde_json::Value = c
        .get(format!("{url}/openapi.json"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/apps/{app}"]["delete"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // Login is public; token management is authenticated.
    assert_eq!(
        doc["paths"]["/auth/login"]["post"]["security"],
        serde_json::json!([])
    );
    assert!(doc["paths"]["/api/v1/tokens/{id}"]["delete"].is_object());
}
