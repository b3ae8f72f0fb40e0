//! The operator's container endpoints: list, show, logs, stop, remove, cleanup.

use axum::extract::{Path, State};
use axum::response::Response;
use racer_core::api::{ContainerAction, ContainerInfo, ErrorBody, Page};

use crate::extract::{text, Json, LogParams, PageParams, Query, Who};
use crate::state::AppState;
use crate::ApiError;

/// Every container racer manages.
#[utoipa::path(get, path = "/api/v1/containers", params(PageParams), responses((status = 200, body = Page<ContainerInfo>)))]
pub(crate) async fn list_containers(
    State(state): State<AppState>,
    Who(who): Who,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<ContainerInfo>>, ApiError> {
    let page = state
        .services()
        .list_containers(&who, p.limit, p.cursor.as_deref())
        .await?;
    Ok(Json(page))
}

/// One container by id (or unique id prefix, or name).
#[utoipa::path(get, path = "/api/v1/containers/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ContainerInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_container(
    State(state): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<ContainerInfo>, ApiError> {
    Ok(Json(state.services().container(&who, &id).await?))
}

/// One container's log.
#[utoipa::path(get, path = "/api/v1/containers/{id}/logs", params(("id" = String, Path), LogParams),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn container_logs(
    State(state): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let logs = state
        .services()
        .container_logs(&who, &id, p.tail, p.follow)
        .await?;
    Ok(text(logs))
}

/// Stops a container. The reconciler starts it again if its app still wants it: to stop an app,
/// scale it to 0.
#[utoipa::path(post, path = "/api/v1/containers/{id}/stop", params(("id" = String, Path)),
    responses((status = 200, body = ContainerAction)))]
pub(crate) async fn stop_container(
    State(state): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<ContainerAction>, ApiError> {
    Ok(Json(state.services().stop_container(&who, &id).await?))
}

/// Removes a container (the reconciler replaces it if its app still wants it).
#[utoipa::path(delete, path = "/api/v1/containers/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ContainerAction)))]
pub(crate) async fn remove_container(
    State(state): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<ContainerAction>, ApiError> {
    Ok(Json(state.services().remove_container(&who, &id).await?))
}

/// Removes every racer container that is not running.
#[utoipa::path(post, path = "/api/v1/containers/cleanup", responses((status = 200, body = ContainerAction)))]
pub(crate) async fn cleanup(
    State(state): State<AppState>,
    Who(who): Who,
) -> Result<Json<ContainerAction>, ApiError> {
    Ok(Json(state.services().cleanup(&who).await?))
}
