//! The seeds' own requests, as their READMEs write them: the alias routes without `/api/v1`,
//! and the request bodies of each seed (issue 18).

use std::path::Path;
use std::process::Command;

use racer_core::api::{App, ApplyResult, Deployed, Deployment, DeploymentStatus, Event, Page};
use racer_core::auth::{CreatedInvite, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::util::{eventually, TestServer};

fn ok<T: serde::de::DeserializeOwned>(what: &str, (status, body): (StatusCode, Vec<u8>)) -> T {
    assert!(
        status.is_success(),
        "{what}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoserve_and_deployer_curl_examples_work_on_their_alias_routes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start(dir.path()).await;
    let image = s.hello_image();
    // The AutoServe seed registers a spec at /apps/register (here with a local image).
    let spec = json!({
        "apiVersion": "v1", "kind": "App",
        "metadata": {"name": "my-app"},
        "spec": {"type": "http", "image": image, "ports": [{"containerPort": 8000}],
                 "scaling": {"minReplicas": 1, "maxReplicas": 10}}
    });
    let applied: ApplyResult = ok(
        "register",
        s.send(Method::POST, "/apps/register", Some(spec)).await,
    );
    assert!(applied.changed);
    let deployment = applied.deployment.expect("a first release");

    // GET /apps and the deployer's GET /projects list it.
    for path in ["/apps", "/projects"] {
        let page: Page<App> = ok(path, s.send(Method::GET, path, None).await);
        assert_eq!(page.items.len(), 1, "{path}");
        assert_eq!(page.items[0].name, "my-app");
    }
    // Its policy with POST (racer's own verb is PUT; both work). Applying a policy re-applies
    // the spec, replica count included, so it comes before the manual scale.
    let policy = "mode: manual\nhttp:\n  targetRPSPerReplica: 50\n";
    let r = s
        .http
        .post(s.url("/apps/my-app/policy"))
        .bearer_auth(&s.token)
        .header("content-type", "application/yaml")
        .body(policy)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.bytes().await.unwrap().to_vec();
    let applied: ApplyResult = ok("policy", (status, body));
    assert!(applied.changed);

    // Scale with the seed's body: {"replicas": 3}.
    let scaled: App = ok(
        "scale",
        s.send(
            Method::POST,
            "/apps/my-app/scale",
            Some(json!({"replicas": 3})),
        )
        .await,
    );
    assert_eq!(scaled.instances, 3);
    // Down and up, status, metrics, events, the deployments across apps.
    let down: App = ok(
        "down",
        s.send(Method::POST, "/apps/my-app/down", None).await,
    );
    assert_eq!(down.instances, 0);
    let up: App = ok("up", s.send(Method::POST, "/apps/my-app/up", None).await);
    assert_eq!(up.instances, 3);
    let status: racer_core::api::AppStatus = ok(
        "status",
        s.send(Method::GET, "/apps/my-app/status", None).await,
    );
    assert_eq!(status.app.name, "my-app");
    let metrics: racer_core::api::AppMetrics = ok(
        "metrics",
        s.send(Method::GET, "/apps/my-app/metrics", None).await,
    );
    assert_eq!(metrics.replicas_desired, 3);
    let events: Page<Event> = ok("events", s.send(Method::GET, "/events", None).await);
    assert!(
        events.items.iter().any(|e| e.kind == "app.scaled"),
        "{:?}",
        events.items
    );
    for path in ["/deployments/", "/deployments", "/api/v1/deployments"] {
        let page: Page<Deployment> = ok(path, s.send(Method::GET, path, None).await);
        assert!(page.items.iter().any(|d| d.id == deployment.id), "{path}");
    }
    let one: Deployment = ok(
        "one deployment",
        s.send(
            Method::GET,
            &format!("/deployments/{}", deployment.id),
            None,
        )
        .await,
    );
    assert_eq!(one.app_name, "my-app");
    // The deployer's container routes.
    eventually(60, "3 running replicas", || async {
        let page: Page<racer_core::api::ContainerInfo> =
            ok("containers", s.send(Method::GET, "/containers", None).await);
        page.items.iter().filter(|c| c.state == "running").count() == 3
    })
    .await;
    let page: Page<racer_core::api::ContainerInfo> =
        ok("containers", s.send(Method::GET, "/containers", None).await);
    let id = &page.items[0].id;
    let one: racer_core::api::ContainerInfo = ok(
        "container status",
        s.send(Method::GET, &format!("/containers/{id}/status"), None)
            .await,
    );
    assert_eq!(&one.id, id);
    let (status, _) = s
        .send(Method::GET, &format!("/containers/{id}/logs"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let cleaned: racer_core::api::ContainerAction = ok(
        "cleanup",
        s.send(Method::POST, "/containers/cleanup", None).await,
    );
    // Only stopped containers go (a replica the down left behind may be one of them).
    assert!(cleaned.message.starts_with("removed "), "{cleaned:?}");
    eventually(60, "3 running replicas after the cleanup", || async {
        let page: Page<racer_core::api::ContainerInfo> =
            ok("containers", s.send(Method::GET, "/containers", None).await);
        page.items.iter().filter(|c| c.state == "running").count() == 3
    })
    .await;

    // Same authentication as the routes they alias.
    let r = s
        .http
        .get(s.url("/apps/my-app/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Documented in the OpenAPI document.
    let doc: serde_json::Value = s.get("/openapi.json").await;
    for alias in [
        "/apps/register",
        "/apps/{app}/scale",
        "/projects",
        "/deployments/",
    ] {
        assert!(doc["paths"].get(alias).is_some(), "{alias} undocumented");
    }
    s.send(Method::DELETE, "/api/v1/apps/my-app", None).await;
    s.stop().await;
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paas_seed_creates_an_app_from_its_repo_and_registers_with_an_invite_code() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // A repository holding the example app.
    let repo = tempfile::tempdir().unwrap();
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    for f in ["Dockerfile", ".dockerignore", "hello"] {
        std::fs::copy(hello.join(f), repo.path().join(f)).unwrap();
    }
    git(repo.path(), &["init", "-q", "-b", "main"]);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-qm", "first"]);
    let url = format!("file://{}", repo.path().display());

    // POST /api/v1/apps {"name", "repo_url"}: the app and its first deployment.
    let (status, body) = s
        .send(
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "paas-app", "repo_url": url})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let deployed: Deployed = serde_json::from_slice(&body).unwrap();
    assert_eq!(deployed.app.name, "paas-app");
    let path = format!("/api/v1/deployments/{}", deployed.deployment.id);
    eventually(120, "the repository's deployment to run", || async {
        let d: Deployment = s.get(&path).await;
        assert_ne!(d.status, DeploymentStatus::Failed, "{d:?}");
        d.status == DeploymentStatus::Running
    })
    .await;
    let d: Deployment = s.get(&path).await;
    assert!(
        matches!(&d.source, racer_core::api::Source::Git { url: u, .. } if *u == url),
        "{:?}",
        d.source
    );
    // The name is taken now; a repository that cannot be cloned names repo_url; neither records.
    let (status, err) = s
        .refused(
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "paas-app", "repo_url": url})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err:?}");
    assert_eq!(err.error.field.as_deref(), Some("name"));
    let (status, err) = s
        .refused(
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "paas-two", "repo_url": "file:///nowhere/at/all"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err:?}");
    assert_eq!(err.error.field.as_deref(), Some("repo_url"));
    let (status, _) = s.refused(Method::GET, "/api/v1/apps/paas-two", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A plain create (no repo) still answers 201 with the app.
    let _: App = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "paas-plain"})),
        )
        .await;

    // An invite with the seed's role "dev", used with the seed's "invite_code" field.
    let invite: CreatedInvite = ok(
        "invite",
        s.send(
            Method::POST,
            "/api/v1/invites",
            Some(json!({"email": "user@test.com", "role": "dev"})),
        )
        .await,
    );
    assert_eq!(invite.invite.role, Role::Developer);
    let r = s
        .http
        .post(s.url("/auth/register"))
        .json(&json!({
            "email": "user@test.com",
            "password": "password123",
            "invite_code": invite.code,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let r = s
        .http
        .post(s.url("/auth/login"))
        .json(&json!({"email": "user@test.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.send(Method::DELETE, "/api/v1/apps/paas-app", None).await;
    s.stop().await;
}
