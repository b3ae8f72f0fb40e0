//! The install's admin token: created on first start, stored 0600 in the data directory, checked
//! on every request except the public probes.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use racer_core::ErrorKind;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::state::{AppState, TOKEN_FILE};
use crate::{ApiError, Error};

/// Who made a request; recorded in events.
#[derive(Debug, Clone)]
pub(crate) struct Actor(pub(crate) String);

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Reads the admin token, creating it on first start. Returns the token and whether it was
/// created now.
pub(crate) fn load_or_create_admin_token(dir: &Path) -> Result<(String, bool), Error> {
    let path = dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok((s.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(Error::Token { path, source }),
    }
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = format!("racer_admin_{}", URL_SAFE_NO_PAD.encode(raw));
    crate::write_private(&path, format!("{token}\n").as_bytes())
        .map_err(|source| Error::Token { path, source })?;
    Ok((token, true))
}

/// Constant-time comparison of two digests.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Middleware: requires `Authorization: Bearer <token>`; 401 JSON otherwise.
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
    match presented {
        None => ApiError::new(
            ErrorKind::Unauthenticated,
            "missing bearer token: send Authorization: Bearer <token> (the admin token is in the data directory's admin.token)",
        )
        .into_response(),
        Some(t) if same(&digest(t), &state.0.admin_token_hash) => {
            req.extensions_mut().insert(Actor("admin".to_owned()));
            next.run(req).await
        }
        Some(_) => ApiError::new(ErrorKind::Unauthenticated, "invalid or revoked token")
            .into_response(),
    }
}
