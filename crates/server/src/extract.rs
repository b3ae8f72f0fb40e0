//! What every handler shares: the JSON and query extractors that turn bad input into our error
//! body, the caller as the services see it, page and log parameters, and text answers.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
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
///
/// The server is strict on input: a field it does not know is refused with its path
/// (`config.colour`), even in types that clients decode leniently (the shared wire types ignore
/// unknown fields, so an older CLI keeps working against a newer server).
pub(crate) struct Json<T>(pub(crate) T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::with_status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::with_status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body is larger than the {MAX_JSON_BODY} bytes allowed"),
                )
            } else {
                ApiError::with_status(rej.status(), "bad_request", rej.body_text())
            }
        })?;
        decode(&bytes).map(Json)
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `application/json` or `application/<something>+json`.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Decodes a JSON request body strictly: syntax errors are 400; a wrong type, a missing field or
/// a field the server does not know is 422 naming the field's path.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut unknown: Vec<String> = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let decoded: Result<T, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(&mut de, &mut note));
    let value = match decoded {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::with_status(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("Failed to parse the request body as JSON: {inner}"),
                ));
            }
            let msg = inner.to_string();
            let at = (path != ".").then_some(path);
            let field = match (serde_field(&msg), &at) {
                (Some(f), Some(p)) if !p.ends_with(&f) => Some(format!("{p}.{f}")),
                (Some(f), None) => Some(f),
                (_, Some(p)) => Some(p.clone()),
                (None, None) => None,
            };
            let message = match &at {
                Some(p) => {
                    format!("Failed to deserialize the JSON body into the target type: {p}: {msg}")
                }
                None => format!("Failed to deserialize the JSON body into the target type: {msg}"),
            };
            let err = ApiError::with_status(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
            return Err(match field {
                Some(f) => err.field(f),
                None => err,
            });
        }
    };
    if let Err(e) = de.end() {
        return Err(ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("Failed to parse the request body as JSON: {e}"),
        ));
    }
    if let Some(f) = unknown.into_iter().next() {
        return Err(ApiError::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("unknown field `{f}`: this server does not take it; see /openapi.json"),
        )
        .field(f));
    }
    Ok(value)
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
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    /// Items per page: default 50, at most 200 (a larger number counts as 200).
    #[param(nullable = false, value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false)]
    pub(crate) cursor: Option<String>,
}

/// Parameters of the log endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogParams {
    /// Keep the response open and send new output as it comes.
    #[serde(default)]
    pub(crate) follow: bool,
    /// Lines from the end to start with (container logs), or `all`.
    #[param(nullable = false)]
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

    #[derive(Debug, serde::Deserialize)]
    struct Outer {
        name: String,
        #[serde(default)]
        config: racer_core::api::RunConfig,
        #[allow(dead_code)]
        #[serde(default)]
        source: Option<racer_core::api::Source>,
    }

    fn refused(body: &str) -> (axum::http::StatusCode, Option<String>) {
        let e = super::decode::<Outer>(body.as_bytes()).unwrap_err();
        let resp = axum::response::IntoResponse::into_response(e);
        let status = resp.status();
        let field = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                let b = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                v["error"]["field"].as_str().map(str::to_owned)
            });
        (status, field)
    }

    #[test]
    fn bodies_are_decoded_strictly_with_the_field_path() {
        let ok: Outer = super::decode(br#"{"name":"a","config":{"app_port":8000}}"#).unwrap();
        assert_eq!(ok.name, "a");
        assert_eq!(ok.config.app_port, Some(8000));
        use axum::http::StatusCode as S;
        // An unknown field, even inside a type clients decode leniently.
        assert_eq!(
            refused(r#"{"name":"a","config":{"colour":1}}"#),
            (S::UNPROCESSABLE_ENTITY, Some("config.colour".into()))
        );
        assert_eq!(
            refused(r#"{"name":"a","colour":1}"#),
            (S::UNPROCESSABLE_ENTITY, Some("colour".into()))
        );
        assert_eq!(
            refused(r#"{}"#),
            (S::UNPROCESSABLE_ENTITY, Some("name".into()))
        );
        assert_eq!(
            refused(r#"{"name":"a","source":{"image":"x"}}"#),
            (S::UNPROCESSABLE_ENTITY, Some("source.kind".into()))
        );
        assert_eq!(
            refused(r#"{"name":"a","config":{"app_port":"x"}}"#),
            (S::UNPROCESSABLE_ENTITY, Some("config.app_port".into()))
        );
        assert_eq!(refused(r#"{"name": "#).0, S::BAD_REQUEST);
        assert_eq!(refused(r#"{"name":"a"} x"#).0, S::BAD_REQUEST);
    }
}
