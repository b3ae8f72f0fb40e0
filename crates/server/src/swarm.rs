//! Swarm endpoints: show, tail and remove an app's Swarm service.

use axum::extract::{Path, State};
use axum::response::Response;
use racer_core::api::swarm::{SwarmRemoved, SwarmStatus};
use racer_core::api::ErrorBody;
use serde::Deserialize;

use crate::extract::{text, Json, Query, Who};
use crate::state::AppState;
use crate::ApiError;

/// An app's Swarm service (version, image, replicas desired and running) and its tasks.
#[utoipa::path(get, path = "/api/v1/apps/{app}/swarm", params(("app" = String, Path, description = "app name or UUID")),
    responses((status = 200, body = SwarmStatus), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the server does not run apps on Swarm, or the engine is not a swarm manager")))]
pub(crate) async fn swarm_status(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<SwarmStatus>, ApiError> {
    Ok(Json(state.services().swarm_status(&who, &app).await?))
}

/// Options of the service log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwarmLogParams {
    /// Lines from the end of each task's log to start with (default 50), or `all`.
    #[param(nullable = false)]
    tail: Option<String>,
    /// Keep the response open and send new output as it comes.
    #[serde(default)]
    follow: bool,
}

/// An app's Swarm service log (every task, merged) as plain text; with `follow`, streamed.
#[utoipa::path(get, path = "/api/v1/apps/{app}/swarm/logs", params(("app" = String, Path), SwarmLogParams),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(crate) async fn swarm_logs(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    Query(p): Query<SwarmLogParams>,
) -> Result<Response, ApiError> {
    let logs = state
        .services()
        .swarm_logs(&who, &app, p.tail, p.follow)
        .await?;
    Ok(text(logs))
}

/// Removes an app's Swarm service and sets the app down (0 instances), keeping its spec and
/// releases; `racer up` creates the service again.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/swarm", params(("app" = String, Path)),
    responses((status = 200, body = SwarmRemoved), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(crate) async fn swarm_remove(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<SwarmRemoved>, ApiError> {
    Ok(Json(state.services().swarm_remove(&who, &app).await?))
}
