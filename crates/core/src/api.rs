//! Wire types of the HTTP API: used by the server's handlers, by the typed client in the CLI,
//! and printed as they are by `--json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, in a machine-readable and a human-readable form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `not_found`, `conflict`, `invalid`, `bad_request`, `payload_too_large`,
    /// `unauthenticated`, `forbidden`, `unavailable`, `internal`.
    pub code: String,
    /// A human-readable sentence.
    pub message: String,
    /// The offending input field (a JSON path or query parameter), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `GET /`: what this server is and where to go next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiInfo {
    /// Always `racer`.
    pub name: String,
    /// The server's version.
    pub version: String,
    /// Named links to the main endpoints.
    pub links: BTreeMap<String, String>,
}

/// Health of one part the server depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComponentHealth {
    /// `store` or `docker`.
    pub name: String,
    /// Whether the part answered.
    pub healthy: bool,
    /// What the part said: a version, a backend kind, or the error.
    pub detail: String,
}

/// `GET /health`: the server and each part it depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when every component is healthy, `degraded` when only optional parts are not,
    /// `unhealthy` otherwise.
    pub status: String,
    /// One entry per component.
    pub components: Vec<ComponentHealth>,
}

/// `GET /ready` and `GET /liveness`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Probe {
    /// `ok`, or why not.
    pub status: String,
}

/// `GET /api/v1/info`: facts about the running server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerInfo {
    /// The server's version.
    pub version: String,
    /// Process id of the server.
    pub pid: u32,
    /// When the server started.
    pub started_at: DateTime<Utc>,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// The API's base URL.
    pub api_url: String,
    /// The data directory.
    pub data_dir: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// Docker engine version, when reachable.
    #[serde(default)]
    pub docker_version: Option<String>,
}

/// `POST /api/v1/apps`: create an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// A DNS label: 1-63 of `a-z0-9-`, not starting or ending with `-`.
    pub name: String,
}

/// An app: a named thing users deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct App {
    /// Generated at creation; never changes.
    pub id: Uuid,
    /// Human name, unique.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its desired state last changed.
    pub updated_at: DateTime<Utc>,
}

/// One page of a list. Pass `next_cursor` back as `cursor` to get the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page, in a stable order.
    pub items: Vec<T>,
    /// Opaque; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An append-only record of a change and who made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Increasing sequence number.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it: `admin`, a user, or `racer` for the controllers.
    pub actor: String,
    /// What happened, e.g. `app.created`.
    pub kind: String,
    /// The app concerned, if any.
    #[serde(default)]
    pub app_id: Option<Uuid>,
    /// The app's name at the time, if any.
    #[serde(default)]
    pub app_name: Option<String>,
    /// A human-readable line.
    pub message: String,
}

/// What a running server writes to `server.json` in its data directory so that the CLIs on the
/// same machine can find it. Removed on a clean stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFile {
    /// The server's process id.
    pub pid: u32,
    /// e.g. `http://127.0.0.1:8001`.
    pub api_url: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The log file, when started in the background by `racerctl server start`.
    #[serde(default)]
    pub log_file: Option<String>,
}
