//! The warm pools and claims endpoints (issue 15). Viewers read their organisation's pools and
//! claims; developers claim and release; admins create, resize and delete pools.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use racer_core::api::{
    ClaimInfo, ClaimRequest, ErrorBody, NewPool, PoolInfo, ReleaseRequest, ResizePool,
};
use serde::Deserialize;

use crate::extract::{Json, Query, Who};
use crate::state::AppState;
use crate::ApiError;

/// The pools the caller's organisation has, with their containers now.
#[utoipa::path(get, path = "/api/v1/pools", responses((status = 200, body = Vec<PoolInfo>)))]
pub(crate) async fn list_pools(
    State(state): State<AppState>,
    Who(who): Who,
) -> Result<Json<Vec<PoolInfo>>, ApiError> {
    Ok(Json(state.services().pools(&who).await?))
}

/// One pool, by name or id.
#[utoipa::path(get, path = "/api/v1/pools/{pool}", params(("pool" = String, Path)),
    responses((status = 200, body = PoolInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_pool(
    State(state): State<AppState>,
    Who(who): Who,
    Path(pool): Path<String>,
) -> Result<Json<PoolInfo>, ApiError> {
    Ok(Json(state.services().pool(&who, &pool).await?))
}

/// Creates a pool; its containers start in the background.
#[utoipa::path(post, path = "/api/v1/pools", request_body = NewPool,
    responses((status = 201, body = PoolInfo),
        (status = 404, body = ErrorBody, description = "the app named by `app` does not exist"),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_pool(
    State(state): State<AppState>,
    Who(who): Who,
    Json(req): Json<NewPool>,
) -> Result<(StatusCode, Json<PoolInfo>), ApiError> {
    let p = state.services().create_pool(&who, &req).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Sets a pool's size.
#[utoipa::path(post, path = "/api/v1/pools/{pool}/resize", params(("pool" = String, Path)),
    request_body = ResizePool,
    responses((status = 200, body = PoolInfo), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn resize_pool(
    State(state): State<AppState>,
    Who(who): Who,
    Path(pool): Path<String>,
    Json(req): Json<ResizePool>,
) -> Result<Json<PoolInfo>, ApiError> {
    Ok(Json(
        state.services().resize_pool(&who, &pool, req.size).await?,
    ))
}

/// Deletes a pool: its claims end, its containers are removed. Answers the pool as it was.
#[utoipa::path(delete, path = "/api/v1/pools/{pool}", params(("pool" = String, Path)),
    responses((status = 200, body = PoolInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_pool(
    State(state): State<AppState>,
    Who(who): Who,
    Path(pool): Path<String>,
) -> Result<Json<PoolInfo>, ApiError> {
    Ok(Json(state.services().delete_pool(&who, &pool).await?))
}

/// Claims a container of the pool: warm if one is ready, else started now. The answer carries
/// the access token, which is never shown again.
#[utoipa::path(post, path = "/api/v1/pools/{pool}/claims", params(("pool" = String, Path)),
    request_body = ClaimRequest,
    responses((status = 201, body = ClaimInfo), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn claim(
    State(state): State<AppState>,
    Who(who): Who,
    Path(pool): Path<String>,
    Json(req): Json<ClaimRequest>,
) -> Result<(StatusCode, Json<ClaimInfo>), ApiError> {
    let c = state.services().claim(&who, &pool, &req).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// `?all=true`: ended claims too.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ClaimsQuery {
    #[serde(default)]
    all: bool,
}

/// The caller's organisation's claims, newest first.
#[utoipa::path(get, path = "/api/v1/claims", params(ClaimsQuery),
    responses((status = 200, body = Vec<ClaimInfo>)))]
pub(crate) async fn list_claims(
    State(state): State<AppState>,
    Who(who): Who,
    Query(q): Query<ClaimsQuery>,
) -> Result<Json<Vec<ClaimInfo>>, ApiError> {
    Ok(Json(state.services().claims(&who, q.all).await?))
}

/// One claim.
#[utoipa::path(get, path = "/api/v1/claims/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ClaimInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_claim(
    State(state): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
) -> Result<Json<ClaimInfo>, ApiError> {
    Ok(Json(state.services().claim_of(&who, &id).await?))
}

/// Releases a claim: its routes answer 404 at once, its container is removed, the pool refills.
#[utoipa::path(post, path = "/api/v1/claims/{id}/release", params(("id" = String, Path)),
    request_body = Option<ReleaseRequest>,
    responses((status = 200, body = ClaimInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn release_claim(
    State(state): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ClaimInfo>, ApiError> {
    // No body, or `null` (the document's body is optional and nullable): the defaults.
    let no_sync = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        serde_json::from_slice::<Option<ReleaseRequest>>(&body)
            .map_err(|e| {
                ApiError::new(
                    racer_core::ErrorKind::Invalid,
                    format!("the body is not a release request ({{\"no_sync\": true}}): {e}"),
                )
            })?
            .is_some_and(|r| r.no_sync)
    };
    Ok(Json(
        state.services().release_claim(&who, &id, no_sync).await?,
    ))
}
