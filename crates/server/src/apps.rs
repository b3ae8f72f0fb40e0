//! App endpoints: list, create, show, delete, up/down, scale, status, releases, deployments,
//! metrics, logs, and the spec and policy documents. Each handler parses, lets the route's role
//! layer authorise, calls one service and renders.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use racer_core::api::{
    App, AppMetrics, AppStatus, ApplyResult, CreateApp, Deployed, Deployment, ErrorBody, Page,
    Release, ScaleRequest,
};

use crate::extract::{text, Json, LogParams, PageParams, Query, Who};
use crate::state::AppState;
use crate::ApiError;

/// Lists apps in name order, one page at a time.
#[utoipa::path(get, path = "/api/v1/apps", params(PageParams), responses(
    (status = 200, body = Page<App>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn list_apps(
    State(state): State<AppState>,
    Who(who): Who,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<App>>, ApiError> {
    let page = state
        .services()
        .list_apps(&who, p.limit, p.cursor.as_deref())
        .await?;
    Ok(Json(page))
}

/// Creates an app; with a `repo_url`, also its first deployment from that repository (202).
#[utoipa::path(post, path = "/api/v1/apps", request_body = CreateApp, responses(
    (status = 201, body = App, description = "created, no deployment"),
    (status = 202, body = Deployed, description = "created, and its first deployment from repo_url is pending"),
    (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_app(
    State(state): State<AppState>,
    Who(who): Who,
    Json(req): Json<CreateApp>,
) -> Result<Response, ApiError> {
    let services = state.services();
    Ok(match &req.repo_url {
        Some(url) => {
            let deployed = services
                .create_app_from_repo(&who, &req.name, url, req.branch.as_deref())
                .await?;
            (StatusCode::ACCEPTED, Json(deployed)).into_response()
        }
        None => {
            let app = services.create_app(&who, &req.name).await?;
            (StatusCode::CREATED, Json(app)).into_response()
        }
    })
}

/// Shows one app, by name or UUID.
#[utoipa::path(get, path = "/api/v1/apps/{app}",
    params(("app" = String, Path, description = "app name or UUID")),
    responses((status = 200, body = App), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_app(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(state.services().find_app(&who, &app).await?))
}

/// Deletes an app, by name or UUID; the reconciler removes its containers and images.
#[utoipa::path(delete, path = "/api/v1/apps/{app}",
    params(("app" = String, Path, description = "app name or UUID")),
    responses((status = 200, body = App), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_app(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(state.services().delete_app(&who, &app).await?))
}

/// Everything about one app: its release, newest deployment, and every replica.
#[utoipa::path(get, path = "/api/v1/apps/{app}/status", params(("app" = String, Path)),
    responses((status = 200, body = AppStatus), (status = 404, body = ErrorBody)))]
pub(crate) async fn app_status(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<AppStatus>, ApiError> {
    Ok(Json(state.services().app_status(&who, &app).await?))
}

/// Releases of an app, newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases", params(("app" = String, Path)),
    responses((status = 200, body = Vec<Release>)))]
pub(crate) async fn releases(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<Vec<Release>>, ApiError> {
    Ok(Json(state.services().releases(&who, &app).await?))
}

/// Deployments of an app, newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/deployments", params(("app" = String, Path), PageParams),
    responses((status = 200, body = Page<Deployment>)))]
pub(crate) async fn app_deployments(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<Deployment>>, ApiError> {
    let page = state
        .services()
        .app_deployments(&who, &app, p.limit, p.cursor.as_deref())
        .await?;
    Ok(Json(page))
}

/// An app's traffic, replicas and scaling history.
#[utoipa::path(get, path = "/api/v1/apps/{app}/metrics", params(("app" = String, Path)), responses((status = 200, body = AppMetrics)))]
pub(crate) async fn app_metrics(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<AppMetrics>, ApiError> {
    Ok(Json(state.services().app_metrics(&who, &app).await?))
}

/// `racer up`: runs the app again with the instances it had.
#[utoipa::path(post, path = "/api/v1/apps/{app}/up", params(("app" = String, Path)), responses((status = 200, body = App)))]
pub(crate) async fn up(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(state.services().set_running(&who, &app, true).await?))
}

/// `racer down`: stops every replica, keeping the spec and releases.
#[utoipa::path(post, path = "/api/v1/apps/{app}/down", params(("app" = String, Path)), responses((status = 200, body = App)))]
pub(crate) async fn down(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(state.services().set_running(&who, &app, false).await?))
}

/// Sets the desired number of replicas.
#[utoipa::path(post, path = "/api/v1/apps/{app}/scale", params(("app" = String, Path)), request_body = ScaleRequest,
    responses((status = 200, body = App), (status = 422, body = ErrorBody)))]
pub(crate) async fn scale(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    Json(req): Json<ScaleRequest>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(
        state.services().scale(&who, &app, req.instances).await?,
    ))
}

/// An app's container logs as plain text, each line prefixed with its container when there are
/// several; with `follow`, streamed.
#[utoipa::path(get, path = "/api/v1/apps/{app}/logs", params(("app" = String, Path), LogParams),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn app_logs(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let logs = state
        .services()
        .app_logs(&who, &app, p.tail, p.follow)
        .await?;
    Ok(text(logs))
}

/// Creates or updates an app from a spec document (YAML or JSON), idempotently: the same
/// document changes nothing; a change to anything but scaling makes a new release; a change to
/// scaling only changes the replica count.
#[utoipa::path(post, path = "/api/v1/apps/register", request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = ApplyResult), (status = 422, body = ErrorBody)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Who(who): Who,
    body: String,
) -> Result<Json<ApplyResult>, ApiError> {
    Ok(Json(state.services().apply_spec(&who, &body, None).await?))
}

/// Replaces an app's spec (same document as `register`; `metadata.name` must match).
#[utoipa::path(put, path = "/api/v1/apps/{app}/spec", params(("app" = String, Path)), request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = ApplyResult), (status = 422, body = ErrorBody)))]
pub(crate) async fn put_spec(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    body: String,
) -> Result<Json<ApplyResult>, ApiError> {
    let applied = state.services().apply_spec(&who, &body, Some(&app)).await?;
    Ok(Json(applied))
}

/// Replaces an app's scaling policy (`spec.scaling.policy`), applied like the whole spec.
#[utoipa::path(put, path = "/api/v1/apps/{app}/policy", params(("app" = String, Path)), request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = ApplyResult), (status = 422, body = ErrorBody)))]
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    body: String,
) -> Result<Json<ApplyResult>, ApiError> {
    Ok(Json(state.services().set_policy(&who, &app, &body).await?))
}
