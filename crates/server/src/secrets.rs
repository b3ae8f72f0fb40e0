//! App secrets endpoints (issue 19): names and digests to viewers, set and unset to developers.
//! Values go in, never out.

use axum::extract::{Path, State};
use racer_core::api::{ErrorBody, SecretInfo, SetSecrets};

use crate::extract::{Json, Who};
use crate::state::AppState;
use crate::ApiError;

/// An app's secrets: names, keyed digests, when set.
#[utoipa::path(get, path = "/api/v1/apps/{app}/secrets", params(("app" = String, Path)),
    responses((status = 200, body = Vec<SecretInfo>), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_secrets(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    Ok(Json(state.services().secrets(&who, &app).await?))
}

/// Sets secrets (encrypted at rest); the app rolls to a new release with them.
#[utoipa::path(put, path = "/api/v1/apps/{app}/secrets", params(("app" = String, Path)),
    request_body = SetSecrets,
    responses((status = 200, body = Vec<SecretInfo>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn set_secrets(
    State(state): State<AppState>,
    Who(who): Who,
    Path(app): Path<String>,
    Json(req): Json<SetSecrets>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    Ok(Json(
        state
            .services()
            .set_secrets(&who, &app, &req.secrets)
            .await?,
    ))
}

/// Removes a secret; the app rolls to a new release without it.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/secrets/{name}",
    params(("app" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Vec<SecretInfo>), (status = 404, body = ErrorBody)))]
pub(crate) async fn unset_secret(
    State(state): State<AppState>,
    Who(who): Who,
    Path((app, name)): Path<(String, String)>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    state.services().unset_secret(&who, &app, &name).await?;
    Ok(Json(state.services().secrets(&who, &app).await?))
}
