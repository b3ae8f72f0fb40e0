//! Issue 7: who may do what, over real HTTP against the real server binary. Every endpoint is
//! called as every kind of caller, the exact status is asserted, and a refused write changes
//! nothing.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use racer_core::api::{App, ContainerInfo, Page};
use racer_core::auth::{CreatedToken, LoginResponse, User};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::util::{hello_app, http, path_str, Env};

const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    Viewer,
    Developer,
    Admin,
    OtherOrgAdmin,
    RevokedToken,
    ExpiredToken,
    TamperedJwt,
}

const EVERYONE: [Who; 8] = [
    Who::Anonymous,
    Who::Viewer,
    Who::Developer,
    Who::Admin,
    Who::OtherOrgAdmin,
    Who::RevokedToken,
    Who::ExpiredToken,
    Who::TamperedJwt,
];

/// What an endpoint needs and how it answers a caller who has it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Need {
    Viewer,
    Developer,
    Admin,
    Superuser,
}

/// Whether another organisation's admin sees the resource (lists answer with their own org's
/// items) or gets a 404 (a named resource of acme).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    /// Not tied to acme's resources: the other org's admin gets the same answer.
    Own,
    /// Names an acme resource: the other org's admin gets 404.
    Acme,
}

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    need: Need,
    scope: Scope,
    /// The status for callers who may do it.
    ok: StatusCode,
    /// Per-caller exceptions (e.g. only the owner may revoke a token).
    except: Vec<(Who, StatusCode)>,
    /// Whether the request writes (refused writes must change nothing).
    write: bool,
}

fn case(method: Method, path: &str, need: Need, scope: Scope, ok: u16) -> Case {
    let write = method != Method::GET;
    Case {
        method,
        path: path.to_owned(),
        body: None,
        need,
        scope,
        ok: StatusCode::from_u16(ok).unwrap(),
        except: Vec::new(),
        write,
    }
}

impl Case {
    fn body(mut self, b: Value) -> Case {
        self.body = Some(b);
        self
    }
    fn except(mut self, who: Who, status: u16) -> Case {
        self.except
            .push((who, StatusCode::from_u16(status).unwrap()));
        self
    }

    /// Whether `who` is refused (401, 403, or 404 for a resource they may not see).
    fn refuses(&self, who: Who) -> bool {
        let want = self.expected(who);
        want == StatusCode::UNAUTHORIZED
            || want == StatusCode::FORBIDDEN
            || (want == StatusCode::NOT_FOUND && self.ok != StatusCode::NOT_FOUND)
    }

    fn expected(&self, who: Who) -> StatusCode {
        if let Some((_, s)) = self.except.iter().find(|(w, _)| *w == who) {
            return *s;
        }
        let role = match who {
            Who::Anonymous | Who::RevokedToken | Who::ExpiredToken | Who::TamperedJwt => {
                return StatusCode::UNAUTHORIZED
            }
            Who::Viewer => 1,
            Who::Developer => 2,
            Who::Admin | Who::OtherOrgAdmin => 3,
        };
        let needed = match self.need {
            Need::Viewer => 1,
            Need::Developer => 2,
            Need::Admin => 3,
            Need::Superuser => 4,
        };
        if role < needed {
            return StatusCode::FORBIDDEN;
        }
        if who == Who::OtherOrgAdmin && self.scope == Scope::Acme {
            return StatusCode::NOT_FOUND;
        }
        self.ok
    }
}

struct Api {
    url: String,
    admin: String,
    c: reqwest::Client,
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, String) {
        let mut r = self.c.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        // Streams (SSE) never end: the status is all that matters.
        let text = if path.ends_with("/stream") {
            String::new()
        } else {
            resp.text().await.unwrap_or_default()
        };
        (status, text)
    }

    async fn admin_json(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, text) = self
            .send(method, path, Some(&self.admin), body.as_ref())
            .await;
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn login(&self, email: &str) -> String {
        let (status, text) = self
            .send(
                Method::POST,
                "/auth/login",
                None,
                Some(&json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str::<LoginResponse>(&text).unwrap().token
    }

    /// Everything a write could change, as the install's admin sees it (controller events
    /// excluded: the reconciler records health changes on its own).
    async fn snapshot(&self) -> Value {
        let mut s = BTreeMap::new();
        for p in [
            "/api/v1/apps?limit=200",
            "/api/v1/users",
            "/api/v1/invites",
            "/api/v1/tokens",
            "/api/v1/orgs",
            "/api/v1/apps/shop/deployments",
            "/api/v1/apps/shop/releases",
        ] {
            s.insert(p.to_owned(), self.admin_json(Method::GET, p, None).await);
        }
        let events = self
            .admin_json(Method::GET, "/api/v1/events?limit=200", None)
            .await;
        let by_people: Vec<Value> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] != "racer")
            .cloned()
            .collect();
        s.insert("events".into(), Value::Array(by_people));
        let containers: Page<ContainerInfo> = serde_json::from_value(
            self.admin_json(Method::GET, "/api/v1/containers", None)
                .await,
        )
        .unwrap();
        let mut ids: Vec<String> = containers.items.into_iter().map(|c| c.id).collect();
        ids.sort();
        s.insert("containers".into(), json!(ids));
        serde_json::to_value(s).unwrap()
    }
}

/// Re-signs nothing: changes the payload of a valid JWT (org acme -> beta) and keeps its
/// signature.
fn tamper(jwt: &str) -> String {
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    assert!(payload.contains("\"acme\""), "{payload}");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.replace("\"acme\"", "\"beta\""));
    parts.join(".")
}

#[tokio::test]
async fn rbac_matrix_every_endpoint_every_caller() {
    let env = Env::new();
    let url = env.start(&[]).api_url;
    let api = Api {
        url,
        admin: env.token(),
        c: http(),
    };

    // Bootstrap with the install's admin token: two orgs and their people.
    let mut users: BTreeMap<&str, User> = BTreeMap::new();
    for (email, org, role) in [
        ("viewer@acme.io", "acme", "viewer"),
        ("dev@acme.io", "acme", "developer"),
        ("admin@acme.io", "acme", "admin"),
        ("spare@acme.io", "acme", "viewer"),
        ("admin@beta.io", "beta", "admin"),
    ] {
        let u = api
            .admin_json(
                Method::POST,
                "/api/v1/users",
                Some(json!({"email": email, "org": org, "role": role, "password": PASSWORD})),
            )
            .await;
        users.insert(email, serde_json::from_value(u).unwrap());
    }
    let viewer = api.login("viewer@acme.io").await;
    let dev = api.login("dev@acme.io").await;
    let admin = api.login("admin@acme.io").await;
    let other = api.login("admin@beta.io").await;

    let token = |jwt: &str, name: &str, expires: Option<&str>| {
        let body = match expires {
            Some(e) => json!({"name": name, "expires": e}),
            None => json!({"name": name}),
        };
        let api = &api;
        let jwt = jwt.to_owned();
        async move {
            let (s, t) = api
                .send(Method::POST, "/api/v1/tokens", Some(&jwt), Some(&body))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{t}");
            serde_json::from_str::<CreatedToken>(&t).unwrap()
        }
    };
    let revoked = token(&dev, "revoked", None).await;
    let (s, t) = api
        .send(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", revoked.token.id),
            Some(&dev),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let expired = token(&dev, "short", Some("1s")).await;
    let victim = token(&dev, "victim", None).await;

    // acme's app `shop`, deployed by the developer through the CLI with an API token.
    let dev_token = token(&dev, "deploy", None).await;
    let dir = hello_app(&env, "shop");
    let out = std::process::Command::new(crate::util::bin("racer"))
        .args(["run", "--path", path_str(&dir), "--project-name", "shop"])
        .env("RACER_URL", &api.url)
        .env("RACER_TOKEN", &dev_token.secret)
        .env("RACER_CONFIG_DIR", env.dir.path().join("cfg"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shop: App =
        serde_json::from_value(api.admin_json(Method::GET, "/api/v1/apps/shop", None).await)
            .unwrap();
    assert_eq!(shop.org, "acme");
    let deployment = api
        .admin_json(Method::GET, "/api/v1/apps/shop/deployments", None)
        .await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let containers: Page<ContainerInfo> = serde_json::from_value(
        api.admin_json(Method::GET, "/api/v1/containers", None)
            .await,
    )
    .unwrap();
    let cid = containers.items[0].id.clone();
    for name in ["idle", "doomed"] {
        let (s, t) = api
            .send(
                Method::POST,
                "/api/v1/apps",
                Some(&admin),
                Some(&json!({ "name": name })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
    }
    let spare = users["spare@acme.io"].id;
    // Past the short token's expiry.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let tampered = tamper(&dev);
    let cred = |who: Who| -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::Viewer => Some(viewer.clone()),
            Who::Developer => Some(dev.clone()),
            Who::Admin => Some(admin.clone()),
            Who::OtherOrgAdmin => Some(other.clone()),
            Who::RevokedToken => Some(revoked.secret.clone()),
            Who::ExpiredToken => Some(expired.secret.clone()),
            Who::TamperedJwt => Some(tampered.clone()),
        }
    };

    use Method as M;
    use Need::*;
    use Scope::*;
    let bad_spec = "apiVersion: racer/v1\nkind: App\nmetadata: {name: shop}\nspec: {bogus: 1}\n";
    let cases = vec![
        case(M::GET, "/api/v1/info", Viewer, Own, 200),
        case(M::GET, "/api/v1/whoami", Viewer, Own, 200),
        case(M::GET, "/openapi.json", Viewer, Own, 200),
        case(M::GET, "/api/v1/apps", Viewer, Own, 200),
        case(M::GET, "/api/v1/apps/shop", Viewer, Acme, 200),
        case(M::GET, "/api/v1/events", Viewer, Own, 200),
        case(M::GET, "/api/v1/events?app=shop", Viewer, Own, 200),
        case(M::GET, "/api/v1/events/stream", Viewer, Own, 200),
        case(
            M::GET,
            &format!("/api/v1/deployments/{deployment}"),
            Viewer,
            Acme,
            200,
        ),
        case(M::GET, "/api/v1/apps/shop/status", Viewer, Acme, 200),
        case(M::GET, "/api/v1/apps/shop/releases", Viewer, Acme, 200),
        case(M::GET, "/api/v1/apps/shop/deployments", Viewer, Acme, 200),
        case(M::GET, "/api/v1/apps/shop/metrics", Viewer, Acme, 200),
        case(M::GET, "/api/v1/containers", Viewer, Own, 200),
        case(
            M::GET,
            &format!("/api/v1/containers/{cid}"),
            Viewer,
            Acme,
            200,
        ),
        case(M::GET, "/api/v1/tokens", Viewer, Own, 200),
        case(M::POST, "/api/v1/tokens", Viewer, Own, 201).body(json!({"name": "m"})),
        case(
            M::DELETE,
            &format!("/api/v1/tokens/{}", victim.token.id),
            Viewer,
            Acme,
            200,
        )
        .except(Who::Viewer, 404),
        // Swarm endpoints on a local-cluster server: 409 once the app is found.
        case(M::GET, "/api/v1/apps/shop/swarm", Viewer, Acme, 409),
        case(M::GET, "/api/v1/apps/shop/swarm/logs", Developer, Acme, 409),
        case(M::DELETE, "/api/v1/apps/shop/swarm", Developer, Acme, 409),
        // Developer: build, deploy, scale, roll back, read logs.
        case(M::POST, "/api/v1/apps", Developer, Own, 409).body(json!({"name": "shop"})),
        case(M::POST, "/api/v1/validate", Developer, Own, 422).body(json!({})),
        case(M::POST, "/api/v1/dockerfile", Developer, Own, 422).body(json!({})),
        case(M::POST, "/api/v1/deployments", Developer, Own, 422).body(json!({})),
        // An empty upload: allowed callers get as far as the check of the body.
        case(M::POST, "/api/v1/uploads", Developer, Own, 422),
        case(
            M::GET,
            &format!("/api/v1/deployments/{deployment}/log"),
            Developer,
            Acme,
            200,
        ),
        case(M::GET, "/api/v1/apps/shop/logs", Developer, Acme, 200),
        case(
            M::GET,
            &format!("/api/v1/containers/{cid}/logs"),
            Developer,
            Acme,
            200,
        ),
        case(M::POST, "/api/v1/apps/shop/rerun", Developer, Acme, 422)
            .body(json!({"no_rebuild": true, "env": {"1BAD": "x"}})),
        case(M::POST, "/api/v1/apps/shop/rollback", Developer, Acme, 422).body(json!({"to": 99})),
        case(M::POST, "/api/v1/apps/idle/scale", Developer, Acme, 200)
            .body(json!({"instances": 0})),
        case(M::POST, "/api/v1/apps/idle/down", Developer, Acme, 200),
        case(M::POST, "/api/v1/apps/idle/up", Developer, Acme, 200),
        case(M::PUT, "/api/v1/apps/idle/policy", Developer, Acme, 422)
            .body(json!({"mode": "manual"})),
        case(M::POST, "/api/v1/apps/register", Developer, Own, 422).body(json!(bad_spec)),
        case(M::PUT, "/api/v1/apps/shop/spec", Developer, Own, 422).body(json!(bad_spec)),
        // Admin: people, invites, destructive operations.
        case(M::GET, "/api/v1/users", Admin, Own, 200),
        case(M::POST, "/api/v1/users", Admin, Own, 201)
            .body(json!({"email": "new@acme.io", "role": "viewer"}))
            // The other org's admin creates the user in their own org first; acme's admin then
            // finds the email taken.
            .except(Who::Admin, 409),
        case(
            M::POST,
            &format!("/api/v1/users/{spare}/disable"),
            Admin,
            Acme,
            200,
        ),
        case(
            M::POST,
            &format!("/api/v1/users/{spare}/enable"),
            Admin,
            Acme,
            200,
        ),
        case(M::GET, "/api/v1/invites", Admin, Own, 200),
        case(M::POST, "/api/v1/invites", Admin, Own, 201)
            .body(json!({"email": "inv@acme.io", "role": "viewer"})),
        case(M::DELETE, "/api/v1/apps/doomed", Admin, Acme, 200),
        case(
            M::POST,
            &format!("/api/v1/containers/{cid}/stop"),
            Admin,
            Acme,
            200,
        ),
        case(
            M::DELETE,
            &format!("/api/v1/containers/{cid}"),
            Admin,
            Acme,
            200,
        ),
        // The install's admin token only.
        case(M::GET, "/api/v1/orgs", Superuser, Own, 200),
        case(M::POST, "/api/v1/orgs", Superuser, Own, 201).body(json!({"name": "gamma"})),
        case(M::POST, "/api/v1/containers/cleanup", Superuser, Own, 200),
        case(M::GET, "/metrics", Superuser, Own, 200),
    ];

    // Refused calls first, every one of them, checking after each write that nothing changed.
    let mut failures = Vec::new();
    let mut before = api.snapshot().await;
    for c in &cases {
        for who in EVERYONE {
            let want = c.expected(who);
            if !c.refuses(who) {
                continue;
            }
            let (got, text) = api
                .send(
                    c.method.clone(),
                    &c.path,
                    cred(who).as_deref(),
                    c.body.as_ref(),
                )
                .await;
            if got != want {
                failures.push(format!(
                    "{who:?} {} {}: want {want}, got {got}: {text}",
                    c.method, c.path
                ));
            }
            if c.write {
                let after = api.snapshot().await;
                if after != before {
                    failures.push(format!(
                        "{who:?} {} {} was refused ({got}) but changed state",
                        c.method, c.path
                    ));
                    before = after;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "refused calls:\n{}",
        failures.join("\n")
    );

    // Then the allowed calls, in order (the other org's admin acts first where both may).
    let order = [Who::OtherOrgAdmin, Who::Viewer, Who::Developer, Who::Admin];
    for c in &cases {
        for who in order {
            let want = c.expected(who);
            if c.refuses(who) {
                continue;
            }
            let (got, text) = api
                .send(
                    c.method.clone(),
                    &c.path,
                    cred(who).as_deref(),
                    c.body.as_ref(),
                )
                .await;
            if got != want {
                failures.push(format!(
                    "{who:?} {} {}: want {want}, got {got}: {text}",
                    c.method, c.path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "allowed calls:\n{}",
        failures.join("\n")
    );

    // Lists are scoped: the other org sees none of acme's apps, events or containers.
    let (_, text) = api
        .send(Method::GET, "/api/v1/apps", Some(&other), None)
        .await;
    let page: Page<App> = serde_json::from_str(&text).unwrap();
    assert!(page.items.iter().all(|a| a.org == "beta"), "{text}");
    let (_, text) = api
        .send(Method::GET, "/api/v1/events?limit=200", Some(&other), None)
        .await;
    assert!(
        !text.contains(r#""org":"acme""#) && !text.contains(r#""shop""#),
        "{text}"
    );
    let (_, text) = api
        .send(Method::GET, "/api/v1/containers", Some(&other), None)
        .await;
    assert!(!text.contains(&cid), "{text}");
    // The disabled-then-enabled user's session works; the token revoked by the viewer case
    // (by its owner) no longer does.
    let (s, _) = api
        .send(Method::GET, "/api/v1/whoami", Some(&victim.secret), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Events record the acting user or token.
    let ev = api
        .admin_json(Method::GET, "/api/v1/events?app=shop&limit=200", None)
        .await;
    let actors: Vec<&str> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(actors.contains(&"dev@acme.io (token deploy)"), "{actors:?}");
}
