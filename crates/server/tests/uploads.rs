//! Issue 19 (ownership): an upload is bound to the organisation that sent it; another
//! organisation's use of its id is a 404 naming `source.upload`, and nothing is built.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::util::TestServer;

async fn user(s: &TestServer, email: &str, org: &str) -> String {
    let _: serde_json::Value = s
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": email, "org": org, "role": "developer", "password": "correct horse battery"})),
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

#[tokio::test]
async fn another_organisations_upload_id_is_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let acme = user(&s, "dev@acme.io", "acme").await;
    let beta = user(&s, "dev@beta.io", "beta").await;

    // A folder with a Dockerfile, as a tarball.
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("Dockerfile"), "FROM scratch\nCOPY Dockerfile /\n").unwrap();
    let out = std::process::Command::new("tar")
        .args(["-c", "-C", src.to_str().unwrap(), "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    let up: serde_json::Value = s
        .http
        .post(s.url("/api/v1/uploads"))
        .bearer_auth(&acme)
        .header("content-type", "application/x-tar")
        .body(out.stdout)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = up["id"].as_str().unwrap();
    let req = json!({"source": {"kind": "path", "path": "/home/me/src", "upload": id}});

    for path in ["/api/v1/validate", "/api/v1/dockerfile"] {
        let r = s
            .http
            .post(s.url(path))
            .bearer_auth(&beta)
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["field"], "source.upload", "{body}");
    }
    let r = s
        .http
        .post(s.url("/api/v1/deployments"))
        .bearer_auth(&beta)
        .json(&json!({"app": "stolen", "source": {"kind": "path", "path": "/home/me/src", "upload": id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (st, _) = s.send(Method::GET, "/api/v1/apps/stolen", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing recorded");

    // Its own organisation uses it.
    let r = s
        .http
        .post(s.url("/api/v1/dockerfile"))
        .bearer_auth(&acme)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    s.stop().await;
}
