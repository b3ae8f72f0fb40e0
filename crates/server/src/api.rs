//! The HTTP API: one function builds the router from the resource modules' handlers, plus the
//! public probes (`/`, `/health`, `/liveness`, `/ready`), `/api/v1/info` and the OpenAPI
//! document.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};
use racer_core::api::{
    ApiInfo, App, ComponentHealth, CreateApp, ErrorBody, Event, Health, Page, Probe, ServerInfo,
};
use racer_core::auth::Role;
use racer_core::ErrorKind;
use utoipa::OpenApi;

use crate::error::chain;
use crate::extract::{Json, MAX_JSON_BODY};
use crate::guard::{need, require_token, Need};
use crate::state::AppState;
use crate::{
    apps, clusters, containers, deployments, events, openapi, pools, secrets, swarm, users,
    ApiError,
};

/// Builds the API router: public probes and login, then `/api/v1` in groups by the role each
/// route needs (viewer < developer < admin < the install's admin token). Every group sits behind
/// authentication; handlers then hold non-superusers to their own organisation.
pub(crate) fn router(state: AppState) -> Router {
    use axum::routing::{delete, put};
    let role = |r: Role| middleware::from_fn(move |req, next| need(Need::Role(r), req, next));
    let viewer = Router::new()
        .route("/api/v1/info", get(info))
        .route("/api/v1/pools", get(pools::list_pools))
        .route("/api/v1/pools/{pool}", get(pools::get_pool))
        .route("/api/v1/claims", get(pools::list_claims))
        .route("/api/v1/claims/{id}", get(pools::get_claim))
        .route("/api/v1/apps/{app}/secrets", get(secrets::list_secrets))
        .route("/api/v1/whoami", get(users::whoami))
        .route("/api/v1/apps", get(apps::list_apps))
        .route("/api/v1/apps/{app}", get(apps::get_app))
        .route("/api/v1/events", get(events::list_events))
        .route("/api/v1/events/stream", get(events::stream_events))
        .route("/api/v1/deployments", get(deployments::list_deployments))
        .route("/api/v1/deployments/{id}", get(deployments::get_deployment))
        .route("/api/v1/apps/{app}/status", get(apps::app_status))
        .route("/api/v1/apps/{app}/releases", get(apps::releases))
        .route("/api/v1/apps/{app}/deployments", get(apps::app_deployments))
        .route("/api/v1/apps/{app}/metrics", get(apps::app_metrics))
        .route("/api/v1/apps/{app}/swarm", get(swarm::swarm_status))
        .route("/api/v1/containers", get(containers::list_containers))
        .route("/api/v1/containers/{id}", get(containers::get_container))
        .route(
            "/api/v1/tokens",
            get(users::list_tokens).post(users::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(users::revoke_token))
        .route("/openapi.json", get(openapi))
        .route_layer(role(Role::Viewer));
    let developer = Router::new()
        .route("/api/v1/apps", post(apps::create_app))
        .route("/api/v1/pools/{pool}/claims", post(pools::claim))
        .route("/api/v1/claims/{id}/release", post(pools::release_claim))
        .route("/api/v1/apps/{app}/secrets", put(secrets::set_secrets))
        .route(
            "/api/v1/apps/{app}/secrets/{name}",
            delete(secrets::unset_secret),
        )
        .route("/api/v1/validate", post(deployments::validate))
        .route("/api/v1/dockerfile", post(deployments::dockerfile))
        .route("/api/v1/deployments", post(deployments::deploy))
        .route(
            "/api/v1/deployments/{id}/log",
            get(deployments::deployment_log),
        )
        .route("/api/v1/apps/{app}/rerun", post(deployments::rerun))
        .route("/api/v1/apps/{app}/scale", post(apps::scale))
        .route("/api/v1/apps/{app}/rollback", post(deployments::rollback))
        .route("/api/v1/apps/register", post(apps::register))
        .route("/api/v1/apps/{app}/spec", put(apps::put_spec))
        .route("/api/v1/apps/{app}/up", post(apps::up))
        .route("/api/v1/apps/{app}/down", post(apps::down))
        // PUT replaces the policy; POST is the AutoServe seed's verb for the same.
        .route(
            "/api/v1/apps/{app}/policy",
            put(apps::put_policy).post(apps::put_policy),
        )
        .route("/api/v1/apps/{app}/logs", get(apps::app_logs))
        .route(
            "/api/v1/apps/{app}/swarm",
            axum::routing::delete(swarm::swarm_remove),
        )
        .route("/api/v1/apps/{app}/swarm/logs", get(swarm::swarm_logs))
        .route(
            "/api/v1/containers/{id}/logs",
            get(containers::container_logs),
        )
        .route(
            "/api/v1/uploads",
            post(deployments::upload).layer(DefaultBodyLimit::disable()),
        )
        .route_layer(role(Role::Developer));
    let admin = Router::new()
        .route("/api/v1/clusters", get(clusters::list_clusters))
        .route("/api/v1/pools", post(pools::create_pool))
        .route("/api/v1/pools/{pool}", delete(pools::delete_pool))
        .route("/api/v1/pools/{pool}/resize", post(pools::resize_pool))
        .route("/api/v1/queue", get(clusters::queue_status))
        .route("/api/v1/clusters/{name}", get(clusters::get_cluster))
        .route("/api/v1/apps/{app}", delete(apps::delete_app))
        .route(
            "/api/v1/containers/{id}",
            delete(containers::remove_container),
        )
        .route(
            "/api/v1/containers/{id}/stop",
            post(containers::stop_container),
        )
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
        .route("/api/v1/containers/cleanup", post(containers::cleanup))
        .route("/api/v1/clusters", post(clusters::add_cluster))
        .route("/api/v1/clusters/{name}", delete(clusters::remove_cluster))
        .route(
            "/api/v1/clusters/{name}/drain",
            post(clusters::drain_cluster),
        )
        .route(
            "/api/v1/clusters/{name}/undrain",
            post(clusters::undrain_cluster),
        )
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
        .merge(
            crate::ui::router()
                .route_layer(middleware::from_fn_with_state(state.clone(), require_ready)),
        )
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
    paths(root, health, liveness, ready, info,
        apps::list_apps, apps::create_app, apps::get_app, apps::delete_app, apps::app_status, apps::releases,
        apps::app_deployments, apps::register, apps::put_spec, apps::up, apps::down, apps::app_metrics,
        apps::put_policy, apps::scale, apps::app_logs,
        deployments::upload, deployments::validate, deployments::dockerfile, deployments::deploy,
        deployments::list_deployments, deployments::get_deployment, deployments::deployment_log, deployments::rerun, deployments::rollback,
        containers::list_containers, containers::get_container, containers::container_logs,
        containers::stop_container, containers::remove_container, containers::cleanup,
        events::list_events, events::stream_events,
        swarm::swarm_status, swarm::swarm_logs, swarm::swarm_remove,
        clusters::list_clusters, clusters::get_cluster, clusters::add_cluster, clusters::drain_cluster,
        clusters::undrain_cluster, clusters::remove_cluster, clusters::queue_status,
        pools::list_pools, pools::get_pool, pools::create_pool, pools::resize_pool, pools::delete_pool,
        pools::claim, pools::list_claims, pools::get_claim, pools::release_claim,
        secrets::list_secrets, secrets::set_secrets, secrets::unset_secret,
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
    openapi::declare_policy_post(&mut doc);
    openapi::declare_errors(&mut doc);
    openapi::add_links(&mut doc);
    // The seeds' routes: the same operations under the alias path.
    for (alias, route) in crate::aliases::ALIASES {
        if let Some(item) = doc.paths.paths.get(*route).cloned() {
            let mut item = item;
            item.summary = Some(format!("Alias of {route}"));
            item.description = Some(format!(
                "The seeds' route without the /api/v1 prefix: exactly {route} (same handler, role and authentication)."
            ));
            doc.paths.paths.insert((*alias).to_owned(), item);
            openapi::rename_alias_operations(&mut doc, alias);
        }
    }
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
        ("dashboard", "/ui/"),
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
    let store = match s.store().ping().await {
        Ok(()) => ComponentHealth {
            name: "store".into(),
            healthy: true,
            detail: s.store().backend().as_str().into(),
        },
        Err(e) => ComponentHealth {
            name: "store".into(),
            healthy: false,
            detail: chain(&e),
        },
    };
    let docker = match s.services.engine_version().await {
        None => ComponentHealth {
            name: "docker".into(),
            healthy: false,
            detail: "no docker engine configured (DOCKER_HOST)".into(),
        },
        Some(Ok(v)) => ComponentHealth {
            name: "docker".into(),
            healthy: true,
            detail: format!("engine {} (api {}, {})", v.version, v.api_version, v.os),
        },
        Some(Err(e)) => ComponentHealth {
            name: "docker".into(),
            healthy: false,
            detail: e.source_chain(),
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
    let docker_version = match s.services.engine_version().await {
        Some(Ok(v)) => Some(v.version),
        _ => None,
    };
    let uptime = (chrono::Utc::now() - s.started_at).num_seconds().max(0) as u64;
    Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        started_at: s.started_at,
        uptime_seconds: uptime,
        api_url: format!("http://{}", s.api_addr),
        data_dir: s.data_dir.display().to_string(),
        store: s.store().backend().as_str().into(),
        docker_version,
        install_id: s.services.install_id(),
        proxy_url: Some(s.proxy_url.clone()),
        domain: Some(s.facts.domain.clone()),
        docker_host: s.facts.docker_host.clone(),
        container_memory_mb: Some(s.facts.container_memory_mb),
        container_cpus: Some(s.facts.container_cpus),
        admin_token: Some(
            if s.facts.admin_token_given {
                "operator"
            } else {
                "file"
            }
            .into(),
        ),
        controller: s
            .services
            .leadership(racer_control::lease::CONTROLLER)
            .await,
        autoscaler: s
            .services
            .leadership(racer_control::lease::AUTOSCALER)
            .await,
    })
}

#[cfg(test)]
mod tests {
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
