//! Deployment endpoints: uploads, validate, the generated Dockerfile, deploy, one deployment and
//! its build log, every deployment across apps, rerun and rollback.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use racer_core::api::{
    DeployRequest, Deployed, Deployment, DockerfileReport, ErrorBody, InspectRequest, Page,
    RerunRequest, RollbackRequest, Upload, ValidateReport,
};

use crate::extract::{text, Json, LogParams, PageParams, Query, Who};
use crate::state::AppState;
use crate::ApiError;

/// Receives a build-context tarball, streamed to disk, never held in memory.
#[utoipa::path(post, path = "/api/v1/uploads",
    request_body(content((Vec<u8> = "application/x-tar"), (Vec<u8> = "application/octet-stream")),
        description = "a tar archive of the project, with either content type"),
    responses((status = 201, body = Upload), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the body is empty")))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    Who(who): Who,
    body: Body,
) -> Result<(StatusCode, Json<Upload>), ApiError> {
    let upload = state
        .services()
        .upload(&who, body.into_data_stream())
        .await?;
    Ok((StatusCode::CREATED, Json(upload)))
}

/// Validates a project: what racer would build, and every problem with its field path.
#[utoipa::path(post, path = "/api/v1/validate", request_body = InspectRequest,
    responses((status = 200, body = ValidateReport), (status = 422, body = ErrorBody)))]
pub(crate) async fn validate(
    State(state): State<AppState>,
    Who(who): Who,
    Json(req): Json<InspectRequest>,
) -> Result<Json<ValidateReport>, ApiError> {
    Ok(Json(state.services().validate(&who, &req).await?))
}

/// The Dockerfile a deploy of this source would build.
#[utoipa::path(post, path = "/api/v1/dockerfile", request_body = InspectRequest,
    responses((status = 200, body = DockerfileReport), (status = 422, body = ErrorBody)))]
pub(crate) async fn dockerfile(
    State(state): State<AppState>,
    Who(who): Who,
    Json(req): Json<InspectRequest>,
) -> Result<Json<DockerfileReport>, ApiError> {
    Ok(Json(state.services().dockerfile(&who, &req).await?))
}

/// Deploys: records a deployment (and the app, if new) and wakes the builder.
#[utoipa::path(post, path = "/api/v1/deployments", request_body = DeployRequest,
    responses((status = 202, body = Deployed), (status = 422, body = ErrorBody)))]
pub(crate) async fn deploy(
    State(state): State<AppState>,
    Who(who): Who,
    Json(req): Json<DeployRequest>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    let deployed = state.services().deploy(&who, &req).await?;
    Ok((StatusCode::ACCEPTED, Json(deployed)))
}

/// Deployments of every app the caller may see, newest first, one page at a time.
#[utoipa::path(get, path = "/api/v1/deployments", params(PageParams),
    responses((status = 200, body = Page<Deployment>)))]
pub(crate) async fn list_deployments(
    State(state): State<AppState>,
    Who(who): Who,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<Deployment>>, ApiError> {
    let page = state
        .services()
        .list_deployments(&who, p.limit, p.cursor.as_deref())
        .await?;
    Ok(Json(page))
}

/// One deployment.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", params(("id" = Uuid, Path)),
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_deployment(
    State(state): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    Ok(Json(state.services().deployment(&who, &id).await?))
}

/// A deployment's build log as plain text; with `follow`, streamed until the build ends.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/log", params(("id" = Uuid, Path), LogParams),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn deployment_log(
    State(state): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let log = state.services().deployment_log(&who, &id, p.follow).await?;
    Ok(text(log))
}

/// A new release from the recorded source (rebuilt), or from the current image (`no_rebuild`).
#[utoipa::path(post, path = "/api/v1/apps/{app}/rerun", params(("app" = String, Path)), request_body = RerunRequest,
    responses((status = 202, body = Deployed), (status = 422, body = ErrorBody)))]
pub(crate) async fn rerun(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    Json(req): Json<RerunRequest>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    let deployed = state.services().rerun(&who, &app, &req).await?;
    Ok((StatusCode::ACCEPTED, Json(deployed)))
}

/// Rolls back: a new release from an earlier release's image and config, no rebuild, rolled out
/// like any other (the current release serves until the old one answers).
#[utoipa::path(post, path = "/api/v1/apps/{app}/rollback", params(("app" = String, Path)), request_body = RollbackRequest,
    responses((status = 202, body = Deployed), (status = 422, body = ErrorBody)))]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    Json(req): Json<RollbackRequest>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    let deployed = state.services().rollback(&who, &app, &req).await?;
    Ok((StatusCode::ACCEPTED, Json(deployed)))
}
