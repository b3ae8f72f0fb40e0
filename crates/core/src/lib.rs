//! racer's model: names, ids, the wire types shared by the server, the client and `--json`,
//! error kinds, and the pure policies. Nothing in this crate does I/O.

pub mod api;
pub mod auth;
pub mod autoscale;
pub mod command;
pub mod health;
pub mod names;
pub mod placement;
pub mod plan;
pub mod rollout;
pub mod security;
pub mod settings;
pub mod spec;
pub mod tls;
pub mod units;
pub mod workspace;

pub use names::{AppName, AppRef, NameError};

/// What kind of failure an error is, independent of the crate it came from.
///
/// Every crate error maps onto one of these with a `kind()` method; the server turns a kind into
/// an HTTP status in exactly one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The thing asked for does not exist (404).
    NotFound,
    /// The request conflicts with existing state, e.g. a duplicate name (409).
    Conflict,
    /// The input is malformed or violates a rule (422, or 400 for unparsable syntax).
    Invalid,
    /// The caller is known but may not do this (403).
    Forbidden,
    /// The caller did not prove who they are (401).
    Unauthenticated,
    /// A dependency (store, engine) is not reachable right now (503).
    Unavailable,
    /// Anything else: a bug or an unexpected failure (500).
    Internal,
}

impl ErrorKind {
    /// The stable machine-readable code used in error bodies.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Every message of an error and its sources on one line, joined by `: `; a source whose
/// message its parent already ends with is not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.ends_with(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Input refused by a rule in `core`, naming the field at fault (`config.env.1X`), as the API
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The offending field's path in the request.
    pub field: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl FieldError {
    /// A refusal of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The data directory from `RACER_DATA_DIR` and `HOME` (passed in; core reads no environment):
/// `RACER_DATA_DIR` if set, else `$HOME/.local/share/racer`.
pub fn data_dir_from(
    racer_data_dir: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> std::path::PathBuf {
    match racer_data_dir.filter(|d| !d.is_empty()) {
        Some(d) => d.into(),
        None => {
            std::path::PathBuf::from(home.unwrap_or_else(|| ".".into())).join(".local/share/racer")
        }
    }
}
