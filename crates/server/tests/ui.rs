//! The dashboard without a browser (issue 16): the session cookie's flags, CSRF refusal, roles
//! (a viewer's page has no actions, a forged post from a viewer changes nothing), escaping of
//! hostile names, values and log lines, and an ended session.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, Client, StatusCode};

use crate::util::TestServer;

fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with a form and returns the session cookie (`racer_ui=…`) and its Set-Cookie line.
async fn login(s: &TestServer, form: &[(&str, &str)]) -> (String, String) {
    let r = browser()
        .post(s.url("/ui/login"))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "login answers a redirect"
    );
    let set = r
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    (cookie, set)
}

async fn page(cookie: &str, url: &str) -> (StatusCode, String) {
    let r = browser()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

fn csrf_in(html: &str) -> String {
    let at = html.find(r#"name="_csrf" value=""#).expect("a CSRF field") + 20;
    html[at..at + 32].to_owned()
}

#[tokio::test]
async fn sessions_csrf_roles_and_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;

    // Without a session: the login page.
    let r = browser().get(s.url("/ui/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/ui/login");
    let root: serde_json::Value = s.get("/").await;
    assert_eq!(root["links"]["dashboard"], "/ui/");

    // An app with a hostile name is impossible (names are checked); hostile env values and
    // event messages are data: they must come back escaped.
    let hostile = "<script>alert(1)</script>";
    let _: serde_json::Value = s
        .expect(
            StatusCode::CREATED,
            reqwest::Method::POST,
            "/api/v1/apps",
            Some(serde_json::json!({"name": "web"})),
        )
        .await;
    let (status, _) = s
        .send(
            reqwest::Method::POST,
            "/api/v1/apps",
            Some(serde_json::json!({"name": hostile})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Log in with the admin token pasted: HttpOnly, SameSite=Strict, scoped to /ui.
    let (admin, set) = login(&s, &[("token", s.token.as_str())]).await;
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/ui"), "{set}");
    let (status, html) = page(&admin, &s.url("/ui/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"href="/ui/apps/web""#), "{html}");
    assert!(html.contains("Deploy"), "an admin sees the deploy form");
    // A failed login (the app name in the events is escaped too: the login's email is).
    let r = browser()
        .post(s.url("/ui/login"))
        .form(&[("email", hostile), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, events) = page(&admin, &s.url("/ui/events")).await;
    assert!(
        events.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{events}"
    );
    assert!(!events.contains(hostile), "no raw markup from an event");

    // CSRF: a post without the page's token changes nothing.
    let (_, app_page) = page(&admin, &s.url("/ui/apps/web")).await;
    let token = csrf_in(&app_page);
    let r = browser()
        .post(s.url("/ui/apps/web/action"))
        .header(COOKIE, &admin)
        .form(&[("action", "scale"), ("instances", "4"), ("_csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let app: racer_core::api::App = s.get("/api/v1/apps/web").await;
    assert_eq!(app.instances, 1, "nothing changed");
    // With it: the action happens and the page shows it.
    let r = browser()
        .post(s.url("/ui/apps/web/action"))
        .header(COOKIE, &admin)
        .form(&[
            ("action", "scale"),
            ("instances", "0"),
            ("_csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let app: racer_core::api::App = s.get("/api/v1/apps/web").await;
    assert_eq!(app.instances, 0);

    // A viewer: no action forms, and a forged post (with their own CSRF token) is refused.
    let _: serde_json::Value = s
        .expect(
            StatusCode::CREATED,
            reqwest::Method::POST,
            "/api/v1/users",
            Some(serde_json::json!({"email": "v@acme.io", "org": "default", "role": "viewer", "password": "correct horse battery"})),
        )
        .await;
    let (viewer, _) = login(
        &s,
        &[
            ("email", "v@acme.io"),
            ("password", "correct horse battery"),
        ],
    )
    .await;
    let (status, html) = page(&viewer, &s.url("/ui/apps/web")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        !html.contains("/action"),
        "a viewer's page has no action forms"
    );
    let token = csrf_in(&html);
    let r = browser()
        .post(s.url("/ui/apps/web/action"))
        .header(COOKIE, &viewer)
        .form(&[
            ("action", "delete"),
            ("confirm", "web"),
            ("_csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let _: racer_core::api::App = s.get("/api/v1/apps/web").await;

    // A pasted token that expires ends the session when it does.
    let viewer_jwt = viewer.trim_start_matches("racer_ui=").to_owned();
    let made: serde_json::Value = s
        .http
        .post(s.url("/api/v1/tokens"))
        .bearer_auth(&viewer_jwt)
        .json(&serde_json::json!({"name": "short", "expires": "1s"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let short = made["secret"].as_str().expect("a token secret").to_owned();
    let (short_cookie, _) = login(&s, &[("token", short.as_str())]).await;
    assert_eq!(page(&short_cookie, &s.url("/ui/")).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = browser()
        .get(s.url("/ui/"))
        .header(COOKIE, &short_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "an expired session goes to the login"
    );
    assert_eq!(r.headers()[LOCATION], "/ui/login?expired=1");

    // A session ends when its user is disabled: the next page goes to the login, saying so,
    // and the cookie is cleared.
    let users: Vec<serde_json::Value> = s.get("/api/v1/users").await;
    let viewer_id = users.iter().find(|u| u["email"] == "v@acme.io").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = s
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/users/{viewer_id}/disable"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = browser()
        .get(s.url("/ui/"))
        .header(COOKIE, &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/ui/login?expired=1");
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    // Logout ends the session in the browser; a made-up or ended credential goes to login.
    let (_, html) = page(&admin, &s.url("/ui/")).await;
    let token = csrf_in(&html);
    let r = browser()
        .post(s.url("/ui/logout"))
        .header(COOKIE, &admin)
        .form(&[("_csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = browser()
        .get(s.url("/ui/"))
        .header(COOKIE, "racer_ui=rcr_not_a_real_token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/ui/login?expired=1");
    s.stop().await;
}
