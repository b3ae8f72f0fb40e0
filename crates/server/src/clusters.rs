//! The clusters endpoints (issue 14): list, show, add, drain, undrain, remove. Reads are for
//! admins; changes need the install's admin token (a cluster is the whole install's).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use racer_core::api::{ClusterInfo, ErrorBody, NewCluster, QueueKind};

use crate::extract::{Json, Who};
use crate::state::AppState;
use crate::ApiError;

/// Every cluster, each with its state now (ready, drained or unreachable with the error).
#[utoipa::path(get, path = "/api/v1/clusters", responses((status = 200, body = Vec<ClusterInfo>)))]
pub(crate) async fn list_clusters(
    State(state): State<AppState>,
) -> Result<Json<Vec<ClusterInfo>>, ApiError> {
    Ok(Json(state.services().clusters().await?))
}

/// One cluster by name.
#[utoipa::path(get, path = "/api/v1/clusters/{name}", params(("name" = String, Path)),
    responses((status = 200, body = ClusterInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ClusterInfo>, ApiError> {
    Ok(Json(state.services().cluster(&name).await?))
}

/// Adds a cluster; its engine must answer.
#[utoipa::path(post, path = "/api/v1/clusters", request_body = NewCluster,
    responses((status = 201, body = ClusterInfo), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn add_cluster(
    State(state): State<AppState>,
    Who(who): Who,
    Json(req): Json<NewCluster>,
) -> Result<(StatusCode, Json<ClusterInfo>), ApiError> {
    let c = state.services().add_cluster(&who, &req).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Drains a cluster: nothing new is placed there.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/drain", params(("name" = String, Path)),
    responses((status = 200, body = ClusterInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn drain_cluster(
    State(state): State<AppState>,
    Who(who): Who,
    Path(name): Path<String>,
) -> Result<Json<ClusterInfo>, ApiError> {
    Ok(Json(
        state.services().drain_cluster(&who, &name, true).await?,
    ))
}

/// Undrains a cluster.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/undrain", params(("name" = String, Path)),
    responses((status = 200, body = ClusterInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn undrain_cluster(
    State(state): State<AppState>,
    Who(who): Who,
    Path(name): Path<String>,
) -> Result<Json<ClusterInfo>, ApiError> {
    Ok(Json(
        state.services().drain_cluster(&who, &name, false).await?,
    ))
}

/// Removes a cluster and answers it as it was; refused for `local` and while this install
/// runs anything there.
#[utoipa::path(delete, path = "/api/v1/clusters/{name}", params(("name" = String, Path)),
    responses((status = 200, body = ClusterInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn remove_cluster(
    State(state): State<AppState>,
    Who(who): Who,
    Path(name): Path<String>,
) -> Result<Json<ClusterInfo>, ApiError> {
    Ok(Json(state.services().remove_cluster(&who, &name).await?))
}

/// The work waiting and running, per kind: builds (deployments) and the job queue's kinds.
#[utoipa::path(get, path = "/api/v1/queue", responses((status = 200, body = Vec<QueueKind>)))]
pub(crate) async fn queue_status(
    State(state): State<AppState>,
) -> Result<Json<Vec<QueueKind>>, ApiError> {
    Ok(Json(state.services().queue_status().await?))
}
