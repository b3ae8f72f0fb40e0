//! The dashboard (issue 16): server-rendered HTML at `/ui/`, no JavaScript build, everything
//! embedded in the binary. Pages call the same services as the API; nothing here decides
//! anything the API would not.
//!
//! - Session: the login form (email and password, or an API token pasted) sets the credential
//!   in an `HttpOnly`, `SameSite=Strict` cookie scoped to `/ui`; every page authenticates it the
//!   way the API authenticates a bearer token, so roles, organisations, expiry and revocation are
//!   the API's. Logout clears it.
//! - CSRF: every form carries a token derived from the session (SHA-256 of a fixed label and the
//!   credential); a POST without the session's token is refused (403) and changes nothing.
//! - Roles: a viewer's pages have no action forms, and each action checks the role again (a
//!   forged post from a viewer is refused, 403). Other organisations' apps never appear (the
//!   services hold callers to their organisation).
//! - Everything shown is escaped ([`esc`]): app names, env values, log lines, event messages.

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use racer_control::service::events::EventQuery;
use racer_control::service::Caller;
use racer_core::api::{App, AppStatus, Event, RerunRequest, RollbackRequest};
use racer_core::auth::Role;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::state::AppState;
use crate::ApiError;

/// The session cookie.
const COOKIE: &str = "racer_ui";

/// The dashboard's routes (outside the API's bearer authentication: the cookie is checked here).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(apps_page))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/apps/{app}", get(app_page))
        .route("/ui/apps/{app}/action", post(app_action))
        .route("/ui/apps/{app}/log", get(app_log))
        .route("/ui/deploy", post(deploy))
        .route("/ui/events", get(events_page))
        .route("/ui/events/stream", get(events_stream))
        .route("/ui/pools", get(pools_page))
        .route("/ui/clusters", get(clusters_page))
        .route("/ui/queue", get(queue_page))
}

/// Escapes text for HTML (element content and quoted attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment.
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The signed-in caller of a page.
struct Session {
    credential: String,
    principal: Principal,
    caller: Caller,
}

impl Session {
    fn csrf(&self) -> String {
        csrf_of(&self.credential)
    }

    fn can(&self, role: Role) -> bool {
        self.principal.role.allows(role)
    }

    fn hidden(&self) -> String {
        format!(
            r#"<input type="hidden" name="_csrf" value="{}">"#,
            self.csrf()
        )
    }
}

fn csrf_of(credential: &str) -> String {
    let d = Sha256::digest(format!("racer-ui-csrf\0{credential}").as_bytes());
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// The page's session, or where to go instead (the login page).
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    let Some(credential) = cookie_value(headers) else {
        return Err(Redirect::to("/ui/login").into_response());
    };
    match state
        .0
        .auth
        .authenticate(state.0.store(), &credential)
        .await
    {
        Ok(principal) => {
            let caller = Caller {
                actor: principal.actor(),
                org: principal.org().map(str::to_owned),
            };
            Ok(Session {
                credential,
                principal,
                caller,
            })
        }
        Err(_) => Err((
            [(header::SET_COOKIE, clear_cookie())],
            Redirect::to("/ui/login?expired=1"),
        )
            .into_response()),
    }
}

/// A page's session as an extractor: without one, the page answers with the login redirect.
impl axum::extract::FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Session, Response> {
        session(state, &parts.headers).await
    }
}

/// A form post's session: signed in, with the session's CSRF token.
async fn post_session(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, Response> {
    let s = session(state, headers).await?;
    let expected = s.csrf();
    let given = csrf.unwrap_or_default();
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(page_error(
            StatusCode::FORBIDDEN,
            "this form is out of date or did not come from this dashboard (CSRF check failed); reload the page and try again",
        ));
    }
    Ok(s)
}

fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn page_error(status: StatusCode, message: &str) -> Response {
    let body = layout(
        None,
        "Error",
        &format!(
            r#"<p class="error" role="alert">{}</p><p><a href="/ui/">Back to the apps</a></p>"#,
            esc(message)
        ),
    );
    (status, html_headers(), body).into_response()
}

fn html_headers() -> [(header::HeaderName, &'static str); 3] {
    [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    ]
}

fn html(body: String) -> Response {
    (html_headers(), body).into_response()
}

/// An API error as a page: its status and message.
fn api_error(e: impl Into<ApiError>) -> Response {
    let e: ApiError = e.into();
    let status = e.status();
    page_error(status, &e.message())
}

const STYLE: &str = r#"
*{box-sizing:border-box}body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.3rem 1rem;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header a:focus,header a:hover{text-decoration:underline}
header strong{margin-right:1rem}header form{margin-left:auto}
main{padding:1rem;max-width:72rem;margin:0 auto}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.4rem .6rem;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
.scroll{overflow-x:auto}.error{color:#a40000;background:#fde8e8;padding:.6rem;border-radius:4px}
.ok{color:#05691e}.muted{color:#5d6675}button,input,select{font:inherit;padding:.35rem .6rem}
button{cursor:pointer}form.inline{display:inline-flex;gap:.3rem;margin:.2rem .4rem .2rem 0}
pre{background:#10141c;color:#e6e6e6;padding:.8rem;overflow:auto;max-height:28rem;white-space:pre-wrap}
section{margin:1rem 0}@media (max-width:600px){th,td{padding:.3rem}header form{margin-left:0}}
"#;

fn layout(s: Option<&Session>, title: &str, body: &str) -> String {
    let nav = match s {
        Some(s) => format!(
            r#"<nav aria-label="main"><a href="/ui/">Apps</a> · <a href="/ui/events">Events</a> · <a href="/ui/pools">Pools</a> · <a href="/ui/clusters">Clusters</a> · <a href="/ui/queue">Queue</a></nav>
<span class="muted">{} ({})</span>
<form method="post" action="/ui/logout">{}<button type="submit">Log out</button></form>"#,
            esc(&s.caller.actor),
            esc(s.principal.role.as_str()),
            s.hidden()
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{} · racer</title><style>{STYLE}</style></head><body><header><strong>racer</strong>{nav}</header><main><h1>{}</h1>{body}</main></body></html>"#,
        esc(title),
        esc(title)
    )
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    expired: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let note = if q.expired.is_some() {
        r#"<p class="error" role="alert">Your session ended; log in again.</p>"#.to_owned()
    } else if let Some(e) = q.error {
        format!(r#"<p class="error" role="alert">{}</p>"#, esc(&e))
    } else {
        String::new()
    };
    html(layout(
        None,
        "Log in",
        &format!(
            r#"{note}<form method="post" action="/ui/login">
<p><label>Email<br><input name="email" type="email" autocomplete="username"></label></p>
<p><label>Password<br><input name="password" type="password" autocomplete="current-password"></label></p>
<p class="muted">or</p>
<p><label>API token<br><input name="token" type="password" autocomplete="off"></label></p>
<p><button type="submit">Log in</button></p></form>"#
        ),
    ))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
}

fn session_cookie(credential: &str, max_age: u64) -> String {
    format!("{COOKIE}={credential}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let back = |msg: &str| Redirect::to(&format!("/ui/login?error={}", seg(msg))).into_response();
    let (credential, max_age) = if !f.token.trim().is_empty() {
        let token = f.token.trim().to_owned();
        if token.contains([';', ',', ' ', '\n']) {
            return back("that is not an API token");
        }
        if state
            .0
            .auth
            .authenticate(state.0.store(), &token)
            .await
            .is_err()
        {
            return back("that token is not valid (revoked, expired or mistyped)");
        }
        (token, 8 * 3600)
    } else {
        match crate::users::password_login(&state, &f.email, f.password, addr.ip()).await {
            Ok((token, expires, _)) => {
                let left = (expires - chrono::Utc::now()).num_seconds().max(60);
                (token, left.unsigned_abs())
            }
            Err(e) => return back(&e.message()),
        }
    };
    (
        [(header::SET_COOKIE, session_cookie(&credential, max_age))],
        Redirect::to("/ui/"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    csrf: Option<String>,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = post_session(&state, &headers, f.csrf.as_deref()).await {
        return r;
    }
    (
        [(header::SET_COOKIE, clear_cookie())],
        Redirect::to("/ui/login"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

async fn apps_page(
    State(state): State<AppState>,
    s: Session,
    Query(q): Query<ListQuery>,
) -> Response {
    let filter = q.q.clone().unwrap_or_default().trim().to_owned();
    // A filter looks through every app (a page of 200 at a time) and shows the first 50 matches.
    let mut page = racer_core::api::Page::<App> {
        items: Vec::new(),
        next_cursor: q.cursor.clone(),
    };
    let mut found: Vec<App> = Vec::new();
    loop {
        let limit = if filter.is_empty() { 50 } else { 200 };
        page = match state
            .services()
            .list_apps(&s.caller, Some(limit), page.next_cursor.as_deref())
            .await
        {
            Ok(p) => p,
            Err(e) => return api_error(e),
        };
        found.extend(
            page.items
                .drain(..)
                .filter(|a| filter.is_empty() || a.name.contains(filter.as_str())),
        );
        if filter.is_empty() || found.len() >= 50 || page.next_cursor.is_none() {
            break;
        }
    }
    if !filter.is_empty() {
        found.truncate(50);
        page.next_cursor = None;
    }
    let apps: Vec<&App> = found.iter().collect();
    let mut body = format!(
        r#"<form method="get" action="/ui/" role="search"><label>Filter <input name="q" value="{}"></label> <button>Filter</button></form>"#,
        esc(&filter)
    );
    if apps.is_empty() {
        body.push_str(r#"<p class="muted">No apps yet. Deploy one below, or with <code>racer run --project-name NAME --path .</code></p>"#);
    } else {
        body.push_str(r#"<div class="scroll"><table><thead><tr><th>App</th><th>State</th><th>Release</th><th>Replicas (desired)</th><th>URL</th><th>Updated</th></tr></thead><tbody>"#);
        let urls = state.0.proxy_url.trim_end_matches('/');
        for a in apps {
            let st = if a.release.is_none() {
                "no release"
            } else if a.instances == 0 {
                "stopped"
            } else {
                "running"
            };
            let _ = write!(
                body,
                r#"<tr><td><a href="/ui/apps/{}">{}</a></td><td>{st}</td><td>{}</td><td>{}</td><td><a href="{urls}/apps/{}/">{urls}/apps/{}/</a></td><td>{}</td></tr>"#,
                seg(&a.name),
                esc(&a.name),
                a.release.map(|r| r.to_string()).unwrap_or("—".into()),
                a.instances,
                seg(&a.name),
                esc(&a.name),
                a.updated_at.format("%Y-%m-%d %H:%M")
            );
        }
        body.push_str("</tbody></table></div>");
    }
    if let Some(next) = &page.next_cursor {
        let _ = write!(
            body,
            r#"<p><a href="/ui/?cursor={}">Next page</a></p>"#,
            seg(next)
        );
    }
    if s.can(Role::Developer) {
        let _ = write!(
            body,
            r#"<section><h2>Deploy</h2><form method="post" action="/ui/deploy">{}
<p><label>Name <input name="name" required pattern="[a-z0-9-]+"></label></p>
<p><label>Git URL <input name="git" placeholder="https://host/repo.git#main"></label> or
<label>Image <input name="image" placeholder="myimage:tag"></label></p>
<p><button type="submit">Deploy</button></p></form></section>"#,
            s.hidden()
        );
    }
    html(layout(Some(&s), "Apps", &body))
}

/// A line chart as inline SVG: `points` are (unix seconds, value), oldest first.
fn line_chart(title: &str, unit: &str, points: &[(i64, f64)]) -> String {
    // One point is drawn as a step of one sample's length.
    let one;
    let points = match points {
        [p] => {
            one = [(p.0 - crate::history::EVERY.as_secs() as i64, p.1), *p];
            &one[..]
        }
        _ => points,
    };
    if points.len() < 2 {
        return format!(
            r#"<p class="muted">{}: not enough samples yet (one every {} s).</p>"#,
            esc(title),
            crate::history::EVERY.as_secs()
        );
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0.max(points[0].0 + 1));
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1e-9);
    let (w, h) = (600.0, 120.0);
    let mut d = String::new();
    for (i, (t, v)) in points.iter().enumerate() {
        let x = (t - t0) as f64 / (t1 - t0) as f64 * (w - 20.0) + 10.0;
        let y = h - 10.0 - v / max * (h - 30.0);
        let _ = write!(d, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" });
    }
    let last = points[points.len() - 1].1;
    format!(
        r##"<figure><svg viewBox="0 0 {w} {h}" width="100%" height="{h}" preserveAspectRatio="none" role="img" aria-label="{0} over time: now {last:.1} {1}, at most {max:.1} {1}"><rect width="{w}" height="{h}" fill="#fff"/><path d="{d}" fill="none" stroke="#2456c5" stroke-width="2"/></svg><figcaption>{0}: now {last:.1} {1} (at most {max:.1})</figcaption></figure>"##,
        esc(title),
        esc(unit)
    )
}

/// The replica count over time, from the scaling history and the count now.
fn replica_points(history: &[Event], now_count: u32) -> Vec<(i64, f64)> {
    let mut points: Vec<(i64, f64)> = history
        .iter()
        .filter_map(|e| {
            let to = e.message.split(" to ").nth(1)?;
            let n: u32 = to
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()?;
            Some((e.at.timestamp(), f64::from(n)))
        })
        .collect();
    points.sort_by_key(|p| p.0);
    let now = chrono::Utc::now().timestamp();
    if points.is_empty() {
        points.push((now - 600, f64::from(now_count)));
    }
    points.push((now, f64::from(now_count)));
    points
}

async fn app_page(State(state): State<AppState>, s: Session, Path(app): Path<String>) -> Response {
    let services = state.services();
    let st: AppStatus = match services.app_status(&s.caller, &app).await {
        Ok(st) => st,
        Err(e) => return api_error(e),
    };
    let releases = services.releases(&s.caller, &app).await.unwrap_or_default();
    let metrics = services.app_metrics(&s.caller, &app).await.ok();
    let a = &st.app;
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<p>Release <strong>{}</strong> · {} replica(s) desired · {}</p>"#,
        a.release.map(|r| r.to_string()).unwrap_or("none".into()),
        a.instances,
        st.urls
            .iter()
            .map(|u| format!(r#"<a href="{0}">{0}</a>"#, esc(u)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(w) = &st.waiting {
        let _ = write!(body, r#"<p class="error">Waiting: {}</p>"#, esc(w));
    }
    if let Some(d) = &st.deployment {
        let _ = write!(
            body,
            r#"<p>Last deployment: {} ({})</p>"#,
            esc(&format!("{:?}", d.status)),
            d.updated_at.format("%Y-%m-%d %H:%M:%S")
        );
        if let Some(e) = &d.error {
            let _ = write!(body, r#"<p class="error">{}</p>"#, esc(e));
        }
    }
    if s.can(Role::Developer) {
        let h = s.hidden();
        let name = seg(&a.name);
        let _ = write!(
            body,
            r#"<section aria-label="actions"><form class="inline" method="post" action="/ui/apps/{name}/action">{h}<input type="hidden" name="action" value="scale"><label>Replicas <input name="instances" type="number" min="0" max="100" value="{}" style="width:5rem"></label><button>Scale</button></form>
<form class="inline" method="post" action="/ui/apps/{name}/action">{h}<input type="hidden" name="action" value="up"><button>Up</button></form>
<form class="inline" method="post" action="/ui/apps/{name}/action">{h}<input type="hidden" name="action" value="down"><button>Down</button></form>
<form class="inline" method="post" action="/ui/apps/{name}/action">{h}<input type="hidden" name="action" value="rerun"><button>Redeploy</button></form></section>"#,
            a.instances
        );
    }
    body.push_str(r#"<section><h2>Replicas</h2><div class="scroll"><table><thead><tr><th>Container</th><th>Release</th><th>State</th><th>Health</th><th>Port</th><th>Cluster</th><th>Uptime</th></tr></thead><tbody>"#);
    for c in &st.containers {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            c.release.map(|r| r.to_string()).unwrap_or_default(),
            esc(&c.state),
            esc(&c.health),
            c.host_port.map(|p| p.to_string()).unwrap_or_default(),
            esc(&c.cluster),
            c.uptime_seconds.map(|s| format!("{s} s")).unwrap_or_default()
        );
    }
    body.push_str("</tbody></table></div></section>");
    if let Some(m) = &metrics {
        let total: u64 = m.requests.values().sum();
        let series = state.0.history.series(&a.name);
        let rps: Vec<(i64, f64)> = series.iter().map(|p| (p.0, p.1)).collect();
        let p95: Vec<(i64, f64)> = series.iter().filter_map(|p| Some((p.0, p.2?))).collect();
        let _ = write!(
            body,
            r#"<section><h2>Traffic</h2><p>{total} requests · {} in flight · p95 {}</p>{}{}{}</section>"#,
            m.active_requests,
            m.p95_ms.map(|p| format!("{p:.1} ms")).unwrap_or("—".into()),
            line_chart("requests/s", "req/s", &rps),
            line_chart("p95 latency", "ms", &p95),
            line_chart(
                "replicas",
                "",
                &replica_points(&m.scaling_history, m.replicas_ready)
            )
        );
    }
    body.push_str(r#"<section><h2>Releases</h2><div class="scroll"><table><thead><tr><th>#</th><th>Image</th><th>Created</th><th></th></tr></thead><tbody>"#);
    for r in &releases {
        let action = if s.can(Role::Developer) && Some(r.number) != a.release {
            format!(
                r#"<form class="inline" method="post" action="/ui/apps/{}/action">{}<input type="hidden" name="action" value="rollback"><input type="hidden" name="to" value="{}"><button>Roll back to {}</button></form>"#,
                seg(&a.name),
                s.hidden(),
                r.number,
                r.number
            )
        } else if Some(r.number) == a.release {
            "current".into()
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            r.number,
            esc(&r.image),
            r.created_at.format("%Y-%m-%d %H:%M")
        );
    }
    body.push_str("</tbody></table></div></section>");
    let _ = write!(
        body,
        r#"<section><h2>Deployment log</h2><pre id="log" aria-live="polite"></pre>
<script>(async()=>{{const r=await fetch("/ui/apps/{}/log");if(!r.body)return;const d=new TextDecoder(),el=document.getElementById("log"),rd=r.body.getReader();for(;;){{const{{value,done}}=await rd.read();if(done)break;el.textContent+=d.decode(value);el.scrollTop=el.scrollHeight}}}})()</script></section>"#,
        seg(&a.name)
    );
    if s.can(Role::Admin) {
        let _ = write!(
            body,
            r#"<section><h2>Delete</h2><form method="post" action="/ui/apps/{}/action">{}<input type="hidden" name="action" value="delete"><label>Type the app's name to confirm <input name="confirm" autocomplete="off"></label> <button>Delete</button></form></section>"#,
            seg(&a.name),
            s.hidden()
        );
    }
    html(layout(Some(&s), &a.name, &body))
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(rename = "_csrf", default)]
    csrf: Option<String>,
    action: String,
    #[serde(default)]
    instances: Option<u32>,
    #[serde(default)]
    to: Option<i64>,
    #[serde(default)]
    confirm: Option<String>,
}

async fn app_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let s = match post_session(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let need = if f.action == "delete" {
        Role::Admin
    } else {
        Role::Developer
    };
    if !s.can(need) {
        return page_error(
            StatusCode::FORBIDDEN,
            &format!(
                "your role ({}) may not {} apps",
                s.principal.role.as_str(),
                f.action
            ),
        );
    }
    let services = state.services();
    let done = match f.action.as_str() {
        "scale" => match f.instances {
            Some(n) => services.scale(&s.caller, &app, n).await.map(|_| ()),
            None => {
                return page_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "give the number of replicas",
                )
            }
        },
        "up" => services
            .set_running(&s.caller, &app, true)
            .await
            .map(|_| ()),
        "down" => services
            .set_running(&s.caller, &app, false)
            .await
            .map(|_| ()),
        "rerun" => services
            .rerun(&s.caller, &app, &RerunRequest::default())
            .await
            .map(|_| ()),
        "rollback" => services
            .rollback(&s.caller, &app, &RollbackRequest { to: f.to })
            .await
            .map(|_| ()),
        "delete" => {
            if f.confirm.as_deref().map(str::trim) != Some(app.as_str()) {
                return page_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "type the app's name to confirm the delete",
                );
            }
            return match services.delete_app(&s.caller, &app).await {
                Ok(_) => Redirect::to("/ui/").into_response(),
                Err(e) => api_error(e),
            };
        }
        other => {
            return page_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("unknown action {other:?}"),
            )
        }
    };
    match done {
        Ok(()) => Redirect::to(&format!("/ui/apps/{}", seg(&app))).into_response(),
        Err(e) => api_error(e),
    }
}

async fn app_log(State(state): State<AppState>, s: Session, Path(app): Path<String>) -> Response {
    let services = state.services();
    let st = match services.app_status(&s.caller, &app).await {
        Ok(st) => st,
        Err(e) => return api_error(e),
    };
    let Some(d) = st.deployment else {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no deployment yet\n",
        )
            .into_response();
    };
    match services
        .deployment_log(&s.caller, &d.id.to_string(), true)
        .await
    {
        Ok(text) => crate::extract::text(text),
        Err(e) => api_error(e),
    }
}

#[derive(Deserialize)]
struct DeployForm {
    #[serde(rename = "_csrf", default)]
    csrf: Option<String>,
    name: String,
    #[serde(default)]
    git: String,
    #[serde(default)]
    image: String,
}

async fn deploy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<DeployForm>,
) -> Response {
    let s = match post_session(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !s.can(Role::Developer) {
        return page_error(StatusCode::FORBIDDEN, "your role may not deploy");
    }
    let source = match (f.git.trim(), f.image.trim()) {
        (g, "") if !g.is_empty() => {
            let (url, reference) = g.split_once('#').unwrap_or((g, ""));
            racer_core::api::Source::Git {
                url: url.to_owned(),
                reference: (!reference.is_empty()).then(|| reference.to_owned()),
            }
        }
        ("", i) if !i.is_empty() => racer_core::api::Source::Image {
            image: i.to_owned(),
        },
        _ => {
            return page_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give a git URL or an image, not both",
            )
        }
    };
    let req = racer_core::api::DeployRequest {
        app: f.name.trim().to_owned(),
        source,
        config: Default::default(),
        instances: None,
    };
    match state.services().deploy(&s.caller, &req).await {
        Ok(_) => Redirect::to(&format!("/ui/apps/{}", seg(req.app.as_str()))).into_response(),
        Err(e) => api_error(e),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

async fn events_page(
    State(state): State<AppState>,
    s: Session,
    Query(q): Query<EventsQuery>,
) -> Response {
    let app = q.app.clone().filter(|a| !a.is_empty());
    let kind = q.kind.clone().filter(|k| !k.is_empty());
    let query = EventQuery {
        app: app.clone(),
        kind: kind.clone(),
        ..Default::default()
    };
    let events = match state.services().recent_events(&s.caller, query, 200).await {
        Ok(e) => e,
        Err(e) => return api_error(e),
    };
    let mut body = format!(
        r#"<form method="get" action="/ui/events"><label>App <input name="app" value="{}"></label> <label>Kind <input name="kind" value="{}" placeholder="deployment."></label> <button>Filter</button></form>
<div class="scroll"><table><thead><tr><th>When</th><th>Kind</th><th>App</th><th>Who</th><th>What</th></tr></thead><tbody id="events">"#,
        esc(app.as_deref().unwrap_or_default()),
        esc(kind.as_deref().unwrap_or_default())
    );
    for e in &events {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            esc(&e.kind),
            esc(e.app_name.as_deref().unwrap_or_default()),
            esc(&e.actor),
            esc(&e.message)
        );
    }
    body.push_str("</tbody></table></div>");
    // Live: new events are added at the top as they happen (cells filled as text, never HTML).
    let _ = write!(
        body,
        r#"<p class="muted" id="live">Live: new events appear at the top.</p><script>(()=>{{const es=new EventSource("/ui/events/stream?app={}&kind={}");
es.onmessage=m=>{{const e=JSON.parse(m.data),tr=document.createElement("tr");for(const v of [e.at.replace("T"," ").slice(0,19),e.kind,e.app_name||"",e.actor,e.message]){{const td=document.createElement("td");td.textContent=v;tr.appendChild(td)}}const tb=document.getElementById("events");tb.insertBefore(tr,tb.firstChild)}};}})()</script>"#,
        seg(app.as_deref().unwrap_or_default()),
        seg(kind.as_deref().unwrap_or_default())
    );
    html(layout(Some(&s), "Events", &body))
}

async fn events_stream(
    State(state): State<AppState>,
    s: Session,
    Query(q): Query<EventsQuery>,
) -> Response {
    let query = EventQuery {
        app: q.app.filter(|a| !a.is_empty()),
        kind: q.kind.filter(|k| !k.is_empty()),
        ..Default::default()
    };
    match state.services().follow_events(&s.caller, query, None).await {
        Ok(events) => crate::events::sse_of(events, false),
        Err(e) => api_error(e),
    }
}

async fn pools_page(State(state): State<AppState>, s: Session) -> Response {
    let pools = match state.services().pools(&s.caller).await {
        Ok(p) => p,
        Err(e) => return api_error(e),
    };
    let claims = state
        .services()
        .claims(&s.caller, false)
        .await
        .unwrap_or_default();
    let mut body = String::new();
    if pools.is_empty() {
        body.push_str(r#"<p class="muted">No warm pools. Create one with <code>racer pools create NAME --image IMAGE --size 3</code>.</p>"#);
    } else {
        body.push_str(r#"<div class="scroll"><table><thead><tr><th>Pool</th><th>Image</th><th>Size</th><th>Ready</th><th>Starting</th><th>Claimed</th><th>Held</th></tr></thead><tbody>"#);
        for p in &pools {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.name),
                esc(&p.image),
                p.size,
                p.ready,
                p.starting,
                p.claimed,
                esc(p.held.as_deref().unwrap_or_default())
            );
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str(r#"<h2>Active claims</h2>"#);
    if claims.is_empty() {
        body.push_str(r#"<p class="muted">No active claims.</p>"#);
    } else {
        body.push_str(r#"<div class="scroll"><table><thead><tr><th>Claim</th><th>Pool</th><th>By</th><th>Warm</th><th>Expires</th></tr></thead><tbody>"#);
        for c in &claims {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.id),
                esc(&c.pool),
                esc(&c.actor),
                if c.warm { "yes" } else { "no" },
                c.expires_at.format("%Y-%m-%d %H:%M")
            );
        }
        body.push_str("</tbody></table></div>");
    }
    html(layout(Some(&s), "Pools", &body))
}

async fn clusters_page(State(state): State<AppState>, s: Session) -> Response {
    if !s.can(Role::Admin) {
        return html(layout(
            Some(&s),
            "Clusters",
            r#"<p class="muted">Clusters are shown to admins.</p>"#,
        ));
    }
    let clusters = match state.services().clusters().await {
        Ok(c) => c,
        Err(e) => return api_error(e),
    };
    let mut body = String::from(
        r#"<div class="scroll"><table><thead><tr><th>Cluster</th><th>State</th><th>CPU</th><th>Memory</th><th>GPU</th><th>Containers</th><th>Engine</th></tr></thead><tbody>"#,
    );
    for c in &clusters {
        let (cpu, mem, gpu) = c
            .capacity
            .as_ref()
            .map(|k| {
                (
                    format!("{:.1}", k.cpu_milli as f64 / 1000.0),
                    format!("{} MiB", k.memory_mb),
                    k.gpu.to_string(),
                )
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}{}</td><td>{cpu}</td><td>{mem}</td><td>{gpu}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.state),
            c.error
                .as_deref()
                .map(|e| format!(r#"<br><span class="error">{}</span>"#, esc(e)))
                .unwrap_or_default(),
            c.containers,
            esc(c.docker_host.as_deref().unwrap_or("the server's"))
        );
    }
    body.push_str("</tbody></table></div>");
    html(layout(Some(&s), "Clusters", &body))
}

async fn queue_page(State(state): State<AppState>, s: Session) -> Response {
    if !s.can(Role::Admin) {
        return html(layout(
            Some(&s),
            "Queue",
            r#"<p class="muted">The queue is shown to admins.</p>"#,
        ));
    }
    let kinds = match state.services().queue_status().await {
        Ok(k) => k,
        Err(e) => return api_error(e),
    };
    let mut body = String::from(
        r#"<div class="scroll"><table><thead><tr><th>Kind</th><th>Pending</th><th>Running</th><th>Deferred</th><th>Failed</th><th>Dead</th></tr></thead><tbody>"#,
    );
    for k in &kinds {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&k.kind),
            k.pending,
            k.running,
            k.deferred,
            k.failed,
            k.dead
        );
    }
    body.push_str("</tbody></table></div>");
    html(layout(Some(&s), "Queue", &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_every_html_special_character() {
        assert_eq!(
            esc(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
    }

    #[test]
    fn csrf_tokens_depend_on_the_session() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert_eq!(csrf_of("a").len(), 32);
    }
}
