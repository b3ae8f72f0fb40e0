//! The API over HTTP: probes, bad input, a deploy through to the proxy, and restarts.

use std::time::Duration;

use racer_core::api::{
    App, AppStatus, Deployed, Deployment, DeploymentStatus, ErrorBody, Health, Page,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::util::{engine_containers, eventually, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_info_and_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let health: Health = s
        .http
        .get(s.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health.status, "ok", "{health:?}");
    assert!(health.components.iter().all(|c| c.healthy), "{health:?}");
    let ready = s.http.get(s.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let doc: serde_json::Value = s.get("/openapi.json").await;
    for p in [
        "/api/v1/deployments",
        "/api/v1/apps/{app}/scale",
        "/api/v1/containers/cleanup",
    ] {
        assert!(doc["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    // No token, a wrong token: 401 with the error body and a challenge.
    let r = s.http.get(s.url("/api/v1/apps")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let err: ErrorBody = r.json().await.unwrap();
    assert_eq!(err.error.code, "unauthenticated", "{err:?}");
    let r = s
        .http
        .get(s.url("/api/v1/apps"))
        .bearer_auth("racer_tok_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_naming_the_field_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let image = |app: &str, instances: u32| json!({"app": app, "source": {"kind": "image", "image": "x"}, "instances": instances});
    let cases = [
        (image("Bad_Name", 1), "app"),
        (image("web", 0), "instances"),
        (image("web", 101), "instances"),
        (
            json!({"app": "web", "source": {"image": "x"}}),
            "source.kind",
        ),
        (
            json!({"app": "web", "source": {"kind": "image", "image": "x"}, "config": {"colour": 1}}),
            "config.colour",
        ),
        (
            json!({"app": "web", "source": {"kind": "image", "image": "x"}, "config": {"env": {"1X": "v"}}}),
            "config.env.1X",
        ),
        (
            json!({"app": "web", "source": {"kind": "image", "image": "racer-nothing-to-pull:1"}}),
            "source.image",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = s
            .refused(Method::POST, "/api/v1/deployments", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err:?}");
        assert_eq!(err.error.field.as_deref(), Some(field), "{body}: {err:?}");
        assert_eq!(err.error.code, "invalid", "{body}: {err:?}");
        assert!(!err.error.message.is_empty());
    }
    let apps: Page<App> = s.get("/api/v1/apps").await;
    assert!(
        apps.items.is_empty(),
        "a refused deploy recorded {:?}",
        apps.items
    );
    let (status, err) = s
        .refused(Method::GET, "/api/v1/apps/nope/status", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err:?}");
    let (status, _) = s
        .refused(
            Method::POST,
            "/api/v1/apps/nope/scale",
            Some(json!({"instances": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Scaling an app that exists past the cap is a 422 naming `instances`, and changes nothing.
    let _: App = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "srv-capped"})),
        )
        .await;
    let (status, err) = s
        .refused(
            Method::POST,
            "/api/v1/apps/srv-capped/scale",
            Some(json!({"instances": 1000})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err:?}");
    assert_eq!(err.error.field.as_deref(), Some("instances"), "{err:?}");
    let capped: App = s.get("/api/v1/apps/srv-capped").await;
    assert_ne!(capped.instances, 1000);
    // Broken JSON is 400; no JSON content type is 415.
    let r = s
        .http
        .post(s.url("/api/v1/apps"))
        .bearer_auth(&s.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .http
        .post(s.url("/api/v1/apps"))
        .bearer_auth(&s.token)
        .body("{\"name\": \"web\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_deploys_answers_through_the_proxy_scales_and_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start(dir.path()).await;
    let image = s.hello_image();
    let (status, body) = s
        .send(
            Method::POST,
            "/api/v1/deployments",
            Some(json!({"app": "srv-web", "source": {"kind": "image", "image": image}})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let deployed: Deployed = serde_json::from_slice(&body).unwrap();
    let path = format!("/api/v1/deployments/{}", deployed.deployment.id);
    eventually(60, "the deployment to run", || async {
        let d: Deployment = s.get(&path).await;
        assert_ne!(d.status, DeploymentStatus::Failed, "{d:?}");
        d.status == DeploymentStatus::Running
    })
    .await;
    let app_id = deployed.app.id;
    let st: AppStatus = s.get("/api/v1/apps/srv-web/status").await;
    assert_eq!(st.app.id, app_id);
    assert_eq!(st.containers.len(), 1, "{:?}", st.containers);
    assert!(
        st.containers
            .iter()
            .all(|c| c.app_id == Some(app_id) && c.state == "running"),
        "{:?}",
        st.containers
    );
    assert_eq!(engine_containers(app_id).len(), 1);
    // The proxy routes to it.
    let via_proxy = format!("{}/apps/srv-web/", s.proxy);
    eventually(30, "the proxy to answer for srv-web", || async {
        s.http
            .get(&via_proxy)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    // Scale to 2: desired state now, both replicas healthy soon.
    let (status, body) = s
        .send(
            Method::POST,
            "/api/v1/apps/srv-web/scale",
            Some(json!({"instances": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let app: App = serde_json::from_slice(&body).unwrap();
    assert_eq!(app.instances, 2);
    eventually(60, "2 healthy replicas", || async {
        let st: AppStatus = s.get("/api/v1/apps/srv-web/status").await;
        st.containers.len() == 2 && st.containers.iter().all(|c| c.health == "healthy")
    })
    .await;
    // Delete: gone from the API at once, from the engine soon.
    let (status, _) = s.send(Method::DELETE, "/api/v1/apps/srv-web", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.refused(Method::GET, "/api/v1/apps/srv-web", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    eventually(60, "no container left", || async {
        let page: Page<racer_core::api::ContainerInfo> = s.get("/api/v1/containers").await;
        page.items.is_empty()
    })
    .await;
    assert!(engine_containers(app_id).is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_survive_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let created: App = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "srv-kept"})),
        )
        .await;
    s.stop().await;
    let s = TestServer::start(dir.path()).await;
    let again: App = s.get("/api/v1/apps/srv-kept").await;
    assert_eq!(again.id, created.id);
    let by_id: App = s.get(&format!("/api/v1/apps/{}", created.id)).await;
    assert_eq!(by_id.name, "srv-kept");
    s.stop().await;
}

/// What schemathesis (`scripts/schemathesis.sh`) found, each checked on its own.
/// See: issue 19 (Hardening: the API fuzzed, stateful, against its OpenAPI document).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_schemathesis_findings() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // Releasing a claim with the body `null` (the document's body is optional and nullable) is
    // a release with the defaults: here a 404 for a claim that does not exist, not a 422 about
    // the body.
    let r = s
        .http
        .post(s.url(&format!("/api/v1/claims/{}/release", uuid::Uuid::new_v4())))
        .bearer_auth(&s.token)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let err: ErrorBody = r.json().await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{err:?}");
    // An empty upload is no archive: 422 naming the body, not an upload that fails later.
    let r = s
        .http
        .post(s.url("/api/v1/uploads"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let err: ErrorBody = r.json().await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err:?}");
    assert_eq!(err.error.field.as_deref(), Some("body"), "{err:?}");
    // An image reference the engine cannot parse (it answers 400) is the request's fault: a
    // 422 naming the field, for a deploy and for a pool (it was a 500).
    for (path, body, field) in [
        (
            "/api/v1/deployments",
            json!({"app": "srv-bad-ref", "source": {"kind": "image", "image": "Not A Reference!"}}),
            "source.image",
        ),
        (
            "/api/v1/pools",
            json!({"name": "srv-bad-ref", "image": "Not A Reference!", "size": 1}),
            "image",
        ),
    ] {
        let (status, err) = s.refused(Method::POST, path, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {err:?}");
        assert_eq!(err.error.field.as_deref(), Some(field), "{path}: {err:?}");
    }
    // A query parameter of the wrong type is the JSON error body naming it (it was text/plain).
    let (status, err) = s
        .refused(Method::GET, "/api/v1/claims?all=maybe", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err:?}");
    assert_eq!(err.error.field.as_deref(), Some("all"), "{err:?}");
    // The document says what the server does: the policy takes POST as `Allow` says, every
    // operation id is unique, and creating an app links to its status by the name it answers.
    let doc: serde_json::Value = s.get("/openapi.json").await;
    let policy = &doc["paths"]["/api/v1/apps/{app}/policy"];
    assert!(
        policy["put"].is_object() && policy["post"].is_object(),
        "{policy}"
    );
    let link = &doc["paths"]["/api/v1/apps"]["post"]["responses"]["201"]["links"]["GetAppStatus"];
    assert_eq!(link["operationId"], "app_status", "{link}");
    assert_eq!(link["parameters"]["app"], "$response.body#/name", "{link}");
    let unauthorized = &doc["paths"]["/api/v1/apps/{app}/releases"]["get"]["responses"]["401"];
    assert!(
        unauthorized.is_object(),
        "no 401 declared for a route behind the token"
    );
    // The stateful run's one finding not reproduced (docs/API-FUZZING.md): an app created
    // through the seed alias `/apps` scales through the alias by its id and by its name, and a
    // 404 there follows only a delete, here through the canonical path (which schemathesis does
    // not match against the alias when it looks for a delete before a 404).
    let app: serde_json::Value = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/apps",
            Some(json!({"name": "srv-alias-made"})),
        )
        .await;
    let id = app["id"].as_str().unwrap().to_string();
    for key in [id.as_str(), "srv-alias-made"] {
        let scaled: serde_json::Value = s
            .expect(
                StatusCode::OK,
                Method::POST,
                &format!("/apps/{key}/scale"),
                Some(json!({"instances": 2})),
            )
            .await;
        assert_eq!(scaled["id"], app["id"], "{scaled}");
        assert_eq!(scaled["instances"], 2, "{scaled}");
    }
    let _: serde_json::Value = s
        .expect(
            StatusCode::OK,
            Method::DELETE,
            &format!("/api/v1/apps/{id}"),
            None,
        )
        .await;
    let (status, err) = s
        .refused(
            Method::POST,
            &format!("/apps/{id}/scale"),
            Some(json!({"instances": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err:?}");
    s.stop().await;
}
