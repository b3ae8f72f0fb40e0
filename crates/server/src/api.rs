//! The HTTP API: one function builds the router; handlers record desired state and read it back.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Extension, Router};
use racer_core::api::{
    ApiInfo, App, ComponentHealth, CreateApp, ErrorBody, Event, Health, Page, Probe, ServerInfo,
};
use racer_core::{AppName, AppRef, ErrorKind};
use racer_store::EventFilter;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::auth::{need, require_token, Actor, Need, Principal};
use crate::error::chain;
use crate::state::AppState;
use crate::{deploy, swarm, users, ApiError};
use racer_core::auth::Role;

/// The largest JSON body the API accepts.
pub(crate) const MAX_JSON_BODY: usize = 1024 * 1024;

/// `Json` that turns every rejection into our error body (400, 413, 415, 422 with the field).
pub(crate) struct Json<T>(pub(crate) T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field: "missing field `name`", "unknown field `x`".
            let msg = chain(&e);
            let field = serde_field(&msg);
            let err = ApiError::with_status(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg);
            match field {
                Some(f) => err.field(f),
                None => err,
            }
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::with_status(StatusCode::BAD_REQUEST, "bad_request", chain(&e))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a JSON body with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than the {MAX_JSON_BODY} bytes allowed"),
            )
        }
        other => ApiError::with_status(other.status(), "bad_request", other.body_text()),
    }
}

/// Pulls the field name out of serde's messages ("missing field `x`", "unknown field `x`",
/// "x: invalid type", "at line 1 column 5" paths are not fields).
fn serde_field(msg: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `"] {
        if let Some(rest) = msg.split(marker).nth(1) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    let first = msg.split(": ").next()?;
    (!first.contains(' ') && !first.is_empty()).then(|| first.to_owned())
}

/// `Query` whose rejection is our error body, naming the parameter.
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let msg = chain(&e);
                let field =
                    serde_field(msg.trim_start_matches("Failed to deserialize query string: "));
                let err = ApiError::with_status(StatusCode::BAD_REQUEST, "bad_request", msg);
                Err(match field {
                    Some(f) => err.field(f),
                    None => err,
                })
            }
            Err(other) => Err(ApiError::with_status(
                other.status(),
                "bad_request",
                other.body_text(),
            )),
        }
    }
}

/// Builds the API router: public probes and login, then `/api/v1` in groups by the role each
/// route needs (viewer < developer < admin < the install's admin token). Every group sits behind
/// authentication; handlers then hold non-superusers to their own organisation.
pub(crate) fn router(state: AppState) -> Router {
    use axum::routing::{delete, put};
    let role = |r: Role| middleware::from_fn(move |req, next| need(Need::Role(r), req, next));
    let viewer = Router::new()
        .route("/api/v1/info", get(info))
        .route("/api/v1/whoami", get(users::whoami))
        .route("/api/v1/apps", get(list_apps))
        .route("/api/v1/apps/{app}", get(get_app))
        .route("/api/v1/events", get(list_events))
        .route("/api/v1/events/stream", get(stream_events))
        .route("/api/v1/deployments/{id}", get(deploy::get_deployment))
        .route("/api/v1/apps/{app}/status", get(deploy::app_status))
        .route("/api/v1/apps/{app}/releases", get(deploy::releases))
        .route(
            "/api/v1/apps/{app}/deployments",
            get(deploy::app_deployments),
        )
        .route("/api/v1/apps/{app}/metrics", get(deploy::app_metrics))
        .route("/api/v1/apps/{app}/swarm", get(swarm::swarm_status))
        .route("/api/v1/containers", get(deploy::list_containers))
        .route("/api/v1/containers/{id}", get(deploy::get_container))
        .route(
            "/api/v1/tokens",
            get(users::list_tokens).post(users::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(users::revoke_token))
        .route("/openapi.json", get(openapi))
        .route_layer(role(Role::Viewer));
    let developer = Router::new()
        .route("/api/v1/apps", post(create_app))
        .route("/api/v1/validate", post(deploy::validate))
        .route("/api/v1/dockerfile", post(deploy::dockerfile))
        .route("/api/v1/deployments", post(deploy::deploy))
        .route("/api/v1/deployments/{id}/log", get(deploy::deployment_log))
        .route("/api/v1/apps/{app}/rerun", post(deploy::rerun))
        .route("/api/v1/apps/{app}/scale", post(deploy::scale))
        .route("/api/v1/apps/{app}/rollback", post(deploy::rollback))
        .route("/api/v1/apps/register", post(deploy::register))
        .route("/api/v1/apps/{app}/spec", put(deploy::put_spec))
        .route("/api/v1/apps/{app}/up", post(deploy::up))
        .route("/api/v1/apps/{app}/down", post(deploy::down))
        .route("/api/v1/apps/{app}/policy", put(deploy::put_policy))
        .route("/api/v1/apps/{app}/logs", get(deploy::app_logs))
        .route(
            "/api/v1/apps/{app}/swarm",
            axum::routing::delete(swarm::swarm_remove),
        )
        .route("/api/v1/apps/{app}/swarm/logs", get(swarm::swarm_logs))
        .route("/api/v1/containers/{id}/logs", get(deploy::container_logs))
        .route(
            "/api/v1/uploads",
            post(deploy::upload).layer(DefaultBodyLimit::disable()),
        )
        .route_layer(role(Role::Developer));
    let admin = Router::new()
        .route("/api/v1/apps/{app}", delete(delete_app))
        .route("/api/v1/containers/{id}", delete(deploy::remove_container))
        .route("/api/v1/containers/{id}/stop", post(deploy::stop_container))
        .route(
            "/api/v1/users",
            get(users::list_users).post(users::create_user),
        )
        .route("/api/v1/users/{id}/disable", post(users::disable_user))
        .route("/api/v1/users/{id}/enable", post(users::enable_user))
        .route(
            "/api/v1/invites",
            get(users::list_invites).post(users::create_invite),
        )
        .route_layer(role(Role::Admin));
    let superuser = Router::new()
        .route(
            "/api/v1/orgs",
            get(users::list_orgs).post(users::create_org),
        )
        .route("/api/v1/containers/cleanup", post(deploy::cleanup))
        .route("/metrics", get(crate::metrics::metrics))
        .route_layer(middleware::from_fn(|req, next| {
            need(Need::Superuser, req, next)
        }));
    let authed = viewer
        .merge(developer)
        .merge(admin)
        .merge(superuser)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_ready));
    let public = Router::new()
        .route("/auth/login", post(users::login))
        .route("/auth/register", post(users::register))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_ready));
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/liveness", get(liveness))
        .route("/ready", get(ready))
        .merge(public)
        .merge(authed)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

async fn require_ready(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if state.0.ready.load(Ordering::SeqCst) {
        next.run(req).await
    } else {
        ApiError::new(
            ErrorKind::Unavailable,
            "server is starting: migrations are running",
        )
        .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "no such endpoint; GET / lists them")
}

async fn method_not_allowed() -> ApiError {
    ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

#[derive(OpenApi)]
#[openapi(
    info(title = "racer", description = "Self-hosted deployment platform API"),
    paths(root, health, liveness, ready, info, list_apps, create_app, get_app, delete_app, list_events,
        deploy::upload, deploy::validate, deploy::dockerfile, deploy::deploy, deploy::get_deployment,
        deploy::deployment_log, deploy::app_status, deploy::releases, deploy::app_deployments,
        deploy::rerun, deploy::rollback, deploy::register, deploy::put_spec, deploy::up, deploy::down, deploy::app_metrics, deploy::put_policy, deploy::scale, deploy::app_logs, deploy::list_containers, deploy::get_container,
        stream_events, deploy::container_logs, deploy::stop_container, deploy::remove_container, deploy::cleanup,
        swarm::swarm_status, swarm::swarm_logs, swarm::swarm_remove,
        users::login, users::register, users::whoami, users::list_orgs, users::create_org, users::list_users,
        users::create_user, users::disable_user, users::enable_user, users::list_invites, users::create_invite,
        users::list_tokens, users::create_token, users::revoke_token),
    components(schemas(ErrorBody, App, CreateApp, Event, Page<App>, Page<Event>, Health, Probe, ApiInfo, ServerInfo)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document of this API, generated from the handlers.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}

/// Describes the API.
#[utoipa::path(get, path = "/", security(), responses((status = 200, body = ApiInfo)))]
async fn root() -> Json<ApiInfo> {
    let links = [
        ("health", "/health"),
        ("liveness", "/liveness"),
        ("ready", "/ready"),
        ("openapi", "/openapi.json"),
        ("info", "/api/v1/info"),
        ("apps", "/api/v1/apps"),
        ("events", "/api/v1/events"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect::<BTreeMap<_, _>>();
    Json(ApiInfo {
        name: "racer".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        links,
    })
}

/// Checks the store and the Docker engine and says which part is unhealthy.
#[utoipa::path(get, path = "/health", security(), responses(
    (status = 200, body = Health, description = "everything required is healthy"),
    (status = 503, body = Health, description = "a required part is unhealthy")))]
async fn health(State(state): State<AppState>) -> Response {
    let s = &state.0;
    let store = match s.store.ping().await {
        Ok(()) => ComponentHealth {
            name: "store".into(),
            healthy: true,
            detail: s.store.backend().as_str().into(),
        },
        Err(e) => ComponentHealth {
            name: "store".into(),
            healthy: false,
            detail: chain(&e),
        },
    };
    let docker = match &s.runtime {
        None => ComponentHealth {
            name: "docker".into(),
            healthy: false,
            detail: "no docker engine configured (DOCKER_HOST)".into(),
        },
        Some(rt) => match rt.version().await {
            Ok(v) => ComponentHealth {
                name: "docker".into(),
                healthy: true,
                detail: format!("engine {} (api {}, {})", v.version, v.api_version, v.os),
            },
            Err(e) => ComponentHealth {
                name: "docker".into(),
                healthy: false,
                detail: chain(&e),
            },
        },
    };
    let ready = s.ready.load(Ordering::SeqCst);
    let status = if !store.healthy || !ready {
        "unhealthy"
    } else if !docker.healthy {
        "degraded"
    } else {
        "ok"
    };
    let code = if store.healthy && ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: status.into(),
        components: vec![store, docker],
    };
    (code, axum::Json(body)).into_response()
}

/// The process is alive.
#[utoipa::path(get, path = "/liveness", security(), responses((status = 200, body = Probe)))]
async fn liveness() -> Json<Probe> {
    Json(Probe {
        status: "ok".into(),
    })
}

/// 200 once migrations ran and the server accepts requests; 503 before.
#[utoipa::path(get, path = "/ready", security(), responses(
    (status = 200, body = Probe), (status = 503, body = ErrorBody)))]
async fn ready(State(state): State<AppState>) -> Response {
    if state.0.ready.load(Ordering::SeqCst) {
        Json(Probe {
            status: "ok".into(),
        })
        .into_response()
    } else {
        ApiError::new(
            ErrorKind::Unavailable,
            "server is starting: migrations are running",
        )
        .into_response()
    }
}

/// Facts about the running server.
#[utoipa::path(get, path = "/api/v1/info", responses(
    (status = 200, body = ServerInfo), (status = 401, body = ErrorBody)))]
async fn info(State(state): State<AppState>) -> Json<ServerInfo> {
    let s = &state.0;
    let docker_version = match &s.runtime {
        Some(rt) => rt.version().await.ok().map(|v| v.version),
        None => None,
    };
    let uptime = (chrono::Utc::now() - s.started_at).num_seconds().max(0) as u64;
    Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        started_at: s.started_at,
        uptime_seconds: uptime,
        api_url: format!("http://{}", s.api_addr),
        data_dir: s.data_dir.display().to_string(),
        store: s.store.backend().as_str().into(),
        docker_version,
        install_id: s.runtime.as_ref().map(|r| r.install().to_owned()),
        proxy_url: Some(s.proxy.url.clone()),
    })
}

/// Page parameters of every list endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct PageParams {
    /// Items per page: default 50, at most 200.
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists apps in name order, one page at a time.
#[utoipa::path(get, path = "/api/v1/apps", params(PageParams), responses(
    (status = 200, body = Page<App>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_apps(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<App>>, ApiError> {
    let page = state
        .0
        .store
        .apps()
        .list(
            who.org(),
            racer_store::page_limit(p.limit),
            p.cursor.as_deref(),
        )
        .await?;
    Ok(Json(page))
}

/// Creates an app.
#[utoipa::path(post, path = "/api/v1/apps", request_body = CreateApp, responses(
    (status = 201, body = App), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_app(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<CreateApp>,
) -> Result<(StatusCode, Json<App>), ApiError> {
    let name = AppName::parse(&req.name).map_err(|e| {
        ApiError::new(
            ErrorKind::Invalid,
            format!("invalid app name {:?}: {e}", req.name),
        )
        .field("name")
    })?;
    let app = state
        .0
        .store
        .apps()
        .create(&name, who.home_org(), &actor.0)
        .await?;
    Ok((StatusCode::CREATED, Json(app)))
}

/// Shows one app, by name or UUID.
#[utoipa::path(get, path = "/api/v1/apps/{app}",
    params(("app" = String, Path, description = "app name or UUID")),
    responses((status = 200, body = App), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_app(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(app): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(deploy::find_app(&state, &who, &app).await?))
}

/// Deletes an app, by name or UUID.
#[utoipa::path(delete, path = "/api/v1/apps/{app}",
    params(("app" = String, Path, description = "app name or UUID")),
    responses((status = 200, body = App), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_app(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(app): Path<String>,
) -> Result<Json<App>, ApiError> {
    let found = deploy::find_app(&state, &who, &app).await?;
    let app = state
        .0
        .store
        .apps()
        .delete(&AppRef::Id(found.id), &actor.0)
        .await?;
    // The reconciler removes its containers and images.
    deploy::wake_reconcile(&state);
    Ok(Json(app))
}

/// Filters of the event log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct EventParams {
    /// Only events of this app (name or UUID).
    app: Option<String>,
    /// Only events of this kind (`app.created`), or kind prefix ending in `.` (`app.`).
    kind: Option<String>,
    /// Only events at or after this time (RFC 3339).
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Items per page: default 50, at most 200.
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The audit log, oldest first, one page at a time.
#[utoipa::path(get, path = "/api/v1/events", params(EventParams), responses(
    (status = 200, body = Page<Event>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(p): Query<EventParams>,
) -> Result<Json<Page<Event>>, ApiError> {
    let store = &state.0.store;
    let mut filter = EventFilter {
        kind: p.kind,
        since_ms: p.since.map(|t| t.timestamp_millis()),
        org: who.org().map(str::to_owned),
        ..Default::default()
    };
    filter_by_app(&state, &who, &mut filter, p.app.as_deref()).await?;
    let page = store
        .events()
        .list(
            &filter,
            racer_store::page_limit(p.limit),
            p.cursor.as_deref(),
        )
        .await?;
    Ok(Json(page))
}

/// Narrows an event filter to an app named by name or UUID. A deleted app's history stays
/// readable by its name (within the caller's organisation: the filter keeps its `org`).
async fn filter_by_app(
    state: &AppState,
    who: &Principal,
    filter: &mut EventFilter,
    app: Option<&str>,
) -> Result<(), ApiError> {
    match app.map(AppRef::parse) {
        None => {}
        Some(AppRef::Id(id)) => filter.app_id = Some(id),
        Some(r @ AppRef::Name(_)) => match deploy::find_app(state, who, &r.to_string()).await {
            Ok(app) => filter.app_id = Some(app.id),
            Err(e) if e.status() == StatusCode::NOT_FOUND => filter.app_name = Some(r.to_string()),
            Err(e) => return Err(e),
        },
    }
    Ok(())
}

/// Filters of the live event stream.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    /// Only events of this app (name or UUID).
    app: Option<String>,
    /// Only events of this kind, or kind prefix ending in `.`.
    kind: Option<String>,
    /// Start after this event id (default: only new events). `Last-Event-ID` works too.
    after: Option<i64>,
}

/// The event log as it grows: Server-Sent Events, one `Event` (JSON) per message, in order, with
/// the event id as the SSE id so a client can resume with `Last-Event-ID`.
#[utoipa::path(get, path = "/api/v1/events/stream", params(StreamParams), responses(
    (status = 200, content_type = "text/event-stream", body = String)))]
async fn stream_events(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: axum::http::HeaderMap,
    Query(p): Query<StreamParams>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    let store = state.0.store.clone();
    let mut filter = EventFilter {
        kind: p.kind,
        org: who.org().map(str::to_owned),
        ..Default::default()
    };
    filter_by_app(&state, &who, &mut filter, p.app.as_deref()).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let after = match resume.or(p.after) {
        Some(a) => a,
        None => store.events().last_id().await?,
    };
    let stream = futures_util::stream::unfold(
        (
            store,
            filter,
            after,
            std::collections::VecDeque::<Event>::new(),
        ),
        |(store, filter, mut after, mut queue)| async move {
            loop {
                if let Some(e) = queue.pop_front() {
                    let msg = SseEvent::default()
                        .id(e.id.to_string())
                        .event(e.kind.clone())
                        .json_data(&e)
                        .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"));
                    return Some((
                        Ok::<_, std::convert::Infallible>(msg),
                        (store, filter, after, queue),
                    ));
                }
                match store.events().list_after(&filter, after, 200).await {
                    Ok(batch) if !batch.is_empty() => {
                        after = batch.last().map(|e| e.id).unwrap_or(after);
                        queue.extend(batch);
                    }
                    Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream cannot read the store");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::serde_field;

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            serde_field("missing field `name` at line 1"),
            Some("name".into())
        );
        assert_eq!(
            serde_field("unknown field `nam`, expected `name`"),
            Some("nam".into())
        );
        assert_eq!(
            serde_field("limit: invalid digit found in string"),
            Some("limit".into())
        );
        assert_eq!(serde_field("expected value at line 1 column 1"), None);
    }

    #[test]
    fn openapi_lists_every_route() {
        let doc = serde_json::to_value(super::openapi_document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/",
            "/health",
            "/ready",
            "/api/v1/apps",
            "/api/v1/apps/{app}",
            "/api/v1/events",
            "/api/v1/apps/{app}/swarm",
            "/api/v1/apps/{app}/swarm/logs",
        ] {
            assert!(paths.contains_key(p), "missing {p}");
        }
    }
}
