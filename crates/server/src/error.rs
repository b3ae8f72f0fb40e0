use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use racer_core::api::{ErrorBody, ErrorDetail};
use racer_core::ErrorKind;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory cannot be created or written.
    #[error("cannot use data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another server holds the data directory's lock.
    #[error("another racer server is already running with data directory {}; stop it first (racerctl server stop)", data_dir.display())]
    AlreadyRunning {
        /// The directory.
        data_dir: PathBuf,
    },
    /// The admin token file cannot be read or written.
    #[error("cannot read or create the admin token {}", path.display())]
    Token {
        /// The token file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The authentication keys cannot be set up.
    #[error("cannot set up authentication: {message}")]
    Auth {
        /// What failed.
        message: String,
    },
    /// The API's address cannot be bound.
    #[error(
        "cannot listen on {addr}; is another process using the port? pick another with --port"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A backup or restore failed.
    #[error("{message}")]
    Backup {
        /// What failed.
        message: String,
    },
    /// The key app secrets are sealed with cannot be read or made.
    #[error("cannot set up the secret key: {message}")]
    SecretKey {
        /// What is wrong.
        message: String,
    },
    /// The proxy's TLS certificate cannot be used.
    #[error("cannot serve TLS: {message}")]
    Tls {
        /// What is wrong.
        message: String,
    },
    /// The Docker engine cannot be reached (a worker needs one).
    #[error("cannot reach the Docker engine (DOCKER_HOST, else the default socket): {message}")]
    Engine {
        /// The engine client's error.
        message: String,
    },
    /// The store cannot be opened or migrated.
    #[error("cannot open the store")]
    Store {
        /// The store's error.
        #[source]
        source: racer_store::Error,
    },
    /// A swarm check or command failed (the engine is not a manager, refused, or unreachable).
    #[error(transparent)]
    Swarm(#[from] racer_control::Error),
}

/// An error as the API returns it: `{"error": {"code", "message", "field"}}` with a status.
///
/// This is the one place where errors become HTTP responses.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    problems: Vec<racer_core::api::Problem>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// Sets `Retry-After` (seconds) on the response (429, 503).
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// Attaches every problem found (validation).
    pub fn problems(mut self, problems: Vec<racer_core::api::Problem>) -> ApiError {
        self.problems = problems;
        self
    }

    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        let status = match kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            code: kind.code(),
            message: message.into(),
            field: None,
            problems: Vec::new(),
            retry_after: None,
        }
    }

    /// An error with an explicit status and code (for request-shape problems: 400, 413, 405).
    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
            retry_after: None,
        }
    }

    /// Names the offending input.
    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// The status this error is sent with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What is wrong, for a person (with the field, when one is named).
    pub fn message(&self) -> String {
        match &self.field {
            Some(f) => format!("{}: {}", f, self.message),
            None => self.message.clone(),
        }
    }
}

/// Formats an error with its whole chain on one line.
pub(crate) use racer_control::chain_of as chain;

impl From<racer_store::Error> for ApiError {
    fn from(e: racer_store::Error) -> ApiError {
        let kind = e.kind();
        let err = ApiError::new(kind, e.to_string());
        if kind == ErrorKind::Internal || kind == ErrorKind::Unavailable {
            tracing::error!(error = %chain(&e), "store error");
        }
        match e.field() {
            Some(f) => err.field(f),
            None => err,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message =
            if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
                // 5xx details are logged where they happen, not sent.
                "internal error; see the server log".to_owned()
            } else {
                self.message
            };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message,
                field: self.field,
                problems: self.problems,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"racer\""),
            );
        }
        resp
    }
}

impl From<racer_control::Error> for ApiError {
    fn from(e: racer_control::Error) -> ApiError {
        use racer_control::Error as E;
        match e {
            E::Store(e) => e.into(),
            E::Runtime(e) => {
                // The engine's error, whole (what it refused and why).
                let kind = e.kind();
                if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
                    tracing::error!(error = %chain(&e), "engine error");
                }
                ApiError::new(kind, chain(&e))
            }
            E::At { field, source } => ApiError::from(*source).field(field),
            E::Refused {
                kind,
                message,
                field,
            } => {
                let err = ApiError::new(kind, message);
                match field {
                    Some(f) => err.field(f),
                    None => err,
                }
            }
            E::TooLarge { .. } => ApiError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            E::Interrupted { .. } => {
                ApiError::with_status(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            other => {
                let kind = other.kind();
                if kind == ErrorKind::Internal {
                    tracing::error!(error = %other.chain(), "control error");
                }
                let problems = other.problems();
                ApiError::new(kind, other.detail()).problems(problems)
            }
        }
    }
}
