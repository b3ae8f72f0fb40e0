//! The authentication and authorisation middleware: who is calling (a bearer credential
//! checked by [`crate::auth::Auth`]) and whether their role allows the route.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use racer_core::auth::Role;
use racer_core::ErrorKind;

use crate::auth::{unauthenticated, Actor, Principal};
use crate::state::AppState;
use crate::ApiError;

/// What a route group requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// At least this role in the caller's organisation.
    Role(Role),
    /// The install's admin token.
    Superuser,
}

/// Middleware: requires `Authorization: Bearer <credential>`; 401 JSON otherwise. Puts the
/// [`Principal`] and its [`Actor`] into the request.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return unauthenticated(
            "missing bearer token: log in with `racer login`, or send Authorization: Bearer <token> (the install's admin token is in the data directory's admin.token)",
        )
        .into_response();
    };
    match state.0.auth.authenticate(&state.0.store, presented).await {
        Ok(principal) => {
            req.extensions_mut().insert(Actor(principal.actor()));
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Middleware: the caller must have `need`; 403 JSON otherwise.
pub(crate) async fn need(need: Need, req: Request, next: Next) -> Response {
    let Some(p) = req.extensions().get::<Principal>() else {
        return unauthenticated("missing bearer token").into_response();
    };
    let ok = match need {
        Need::Superuser => p.is_superuser(),
        Need::Role(r) => p.role.allows(r),
    };
    if ok {
        next.run(req).await
    } else {
        let what = match need {
            Need::Superuser => "the install's admin token".to_owned(),
            Need::Role(r) => format!("the {r} role"),
        };
        ApiError::new(
            ErrorKind::Forbidden,
            format!("this needs {what}; you are {}", p.role),
        )
        .into_response()
    }
}
