//! What every handler shares: the JSON and query extractors that turn bad input into our error
//! body, the caller as the services see it, page and log parameters, and text answers.

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use racer_control::service::{Caller, Text};
use racer_core::ErrorKind;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::{Actor, Principal};
use crate::error::chain;
use crate::ApiError;

/// The largest JSON body the API accepts.
pub(crate) const MAX_JSON_BODY: usize = 1024 * 1024;

/// `Json` that turns every rejection into our error body (400, 413, 415, 422 with the field).
pub(crate) struct Json<T>(pub(crate) T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field: "missing field `name`", "unknown field `x`".
            let msg = chain(&e);
            let field = serde_field(&msg);
            let err = ApiError::with_status(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg);
            match field {
                Some(f) => err.field(f),
                None => err,
            }
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::with_status(StatusCode::BAD_REQUEST, "bad_request", chain(&e))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a JSON body with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than the {MAX_JSON_BODY} bytes allowed"),
            )
        }
        other => ApiError::with_status(other.status(), "bad_request", other.body_text()),
    }
}

/// Pulls the field name out of serde's messages ("missing field `x`", "unknown field `x`",
/// "x: invalid type", "at line 1 column 5" paths are not fields).
fn serde_field(msg: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `"] {
        if let Some(rest) = msg.split(marker).nth(1) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    let first = msg.split(": ").next()?;
    (!first.contains(' ') && !first.is_empty()).then(|| first.to_owned())
}

/// `Query` whose rejection is our error body, naming the parameter.
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let msg = chain(&e);
                let field =
                    serde_field(msg.trim_start_matches("Failed to deserialize query string: "));
                let err = ApiError::with_status(StatusCode::BAD_REQUEST, "bad_request", msg);
                Err(match field {
                    Some(f) => err.field(f),
                    None => err,
                })
            }
            Err(other) => Err(ApiError::with_status(
                other.status(),
                "bad_request",
                other.body_text(),
            )),
        }
    }
}

/// The caller of a request, as the services see it (who, and which organisation they see). Put
/// in the request by the authentication middleware.
pub(crate) struct Who(pub(crate) Caller);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let principal = parts.extensions.get::<Principal>();
        let actor = parts.extensions.get::<Actor>();
        match (principal, actor) {
            (Some(p), Some(a)) => Ok(Who(Caller {
                actor: a.0.clone(),
                org: p.org().map(str::to_owned),
            })),
            _ => Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "missing bearer token",
            )),
        }
    }
}

/// Page parameters of every list endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    /// Items per page: default 50, at most 200.
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// Parameters of the log endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogParams {
    /// Keep the response open and send new output as it comes.
    #[serde(default)]
    pub(crate) follow: bool,
    /// Lines from the end to start with (container logs), or `all`.
    pub(crate) tail: Option<String>,
}

/// A text answer as `text/plain`, whole or streamed.
pub(crate) fn text(t: Text) -> Response {
    let body = match t {
        Text::Whole(s) => Body::from(s),
        Text::Stream(s) => Body::from_stream(s),
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::serde_field;

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            serde_field("missing field `name` at line 1"),
            Some("name".into())
        );
        assert_eq!(
            serde_field("unknown field `nam`, expected `name`"),
            Some("nam".into())
        );
        assert_eq!(
            serde_field("limit: invalid digit found in string"),
            Some("limit".into())
        );
        assert_eq!(serde_field("expected value at line 1 column 1"), None);
    }
}
