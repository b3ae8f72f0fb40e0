//! Wire types of the HTTP API: used by the server's handlers, by the typed client in the CLI,
//! and printed as they are by `--json`.

mod cluster;
mod deploy;
mod pools;
mod run;
pub mod swarm;

pub use cluster::*;
pub use deploy::*;
pub use pools::*;
pub use run::*;

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
    /// Every problem found, each with its field path (project validation reports them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
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
    /// This install's id: the `racer.install` label on everything it creates.
    #[serde(default)]
    pub install_id: Option<String>,
    /// The proxy's base URL; apps answer at `<proxy>/apps/<app>/` and `http://<app>.<domain>:<port>/`.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Apps answer at `<app>.<domain>` (`--domain`, `BASE_DOMAIN`).
    #[serde(default)]
    pub domain: Option<String>,
    /// The Docker engine the server talks to (`DOCKER_HOST`); `None`: the local socket.
    #[serde(default)]
    pub docker_host: Option<String>,
    /// Memory limit of a container whose release sets none, MiB (`RESOURCE_MEMORY_LIMIT`).
    #[serde(default)]
    pub container_memory_mb: Option<u32>,
    /// CPU limit of a container whose release sets none, cores (`RESOURCE_CPU_LIMIT`).
    #[serde(default)]
    pub container_cpus: Option<f64>,
    /// Where the install's admin token comes from: `file` (generated `admin.token`) or
    /// `operator` (`API_KEY`, never written).
    #[serde(default)]
    pub admin_token: Option<String>,
    /// Who acts on the engines among the servers and workers on this store (issue 14); `None`
    /// without an engine.
    #[serde(default)]
    pub controller: Option<Leadership>,
    /// Who makes scaling decisions among the servers on this store.
    #[serde(default)]
    pub autoscaler: Option<Leadership>,
}

/// One of the control loops' leases, as a server sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Leadership {
    /// `leader` (this process holds the lease and acts), `follower` (another does), or `off`
    /// (this process does not contend: `--no-worker`).
    pub role: String,
    /// This process's id among the holders.
    pub me: String,
    /// Who holds the lease now, if anyone does.
    #[serde(default)]
    pub holder: Option<String>,
    /// Grows each time the lease changes hands.
    #[serde(default)]
    pub epoch: i64,
}

/// `POST /api/v1/apps`: create an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// A DNS label: 1-63 of `a-z0-9-`, not starting or ending with `-`.
    #[schema(
        pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    pub name: String,
    /// A git repository to deploy at once (the PaaS seed's flow): the app and its first
    /// deployment are created together, as `POST /api/v1/deployments` with a git source does, and
    /// the answer is `202` with the app and its deployment (`Deployed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    /// The branch, tag or commit of `repo_url` (default: the repository's default branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// An app: a named thing users deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct App {
    /// Generated at creation; never changes.
    pub id: Uuid,
    /// Human name, unique across the install (it is the app's host name).
    pub name: String,
    /// The organisation that owns it.
    #[serde(default = "default_org")]
    pub org: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its desired state last changed.
    pub updated_at: DateTime<Utc>,
    /// Desired number of running replicas.
    #[serde(default = "one")]
    pub instances: u32,
    /// The release that should run, once one exists.
    #[serde(default)]
    pub release: Option<i64>,
    /// Where the last deployment came from (used by `rerun`).
    #[serde(default)]
    pub source: Option<Source>,
}

fn one() -> u32 {
    1
}

fn default_org() -> String {
    crate::auth::DEFAULT_ORG.to_owned()
}

/// Where an app's code comes from.
///
/// Decoded leniently (unknown fields ignored) so an older client reads a newer server's answers;
/// the server refuses unknown fields in requests itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A folder on the client's machine, sent as a tarball (`POST /api/v1/uploads`).
    Path {
        /// The folder as the client named it (absolute), so `rerun` can send it again.
        path: String,
        /// The id of the uploaded tarball.
        upload: String,
    },
    /// A git repository the server clones.
    Git {
        /// Clone URL (`https://`, `ssh://`, `file://`, or a local path).
        url: String,
        /// Branch, tag or commit; the default branch if absent.
        #[serde(default)]
        reference: Option<String>,
    },
    /// A prebuilt image, used as it is.
    Image {
        /// Image reference; must be present on the engine or pullable.
        image: String,
    },
}

impl Source {
    /// The name of the folder the server checks this source out into: the client's folder's
    /// own name for a path, the repository's for git (`https://host/org/web.git` → `web`), so a
    /// project named after its folder (conda-project's `environment.yml` alone, or an empty
    /// `name`) gets the same name on the server as on the user's machine. `src` when there is
    /// no safe one-segment name.
    pub fn folder_name(&self) -> String {
        let raw = match self {
            Source::Path { path, .. } => path.trim_end_matches('/').rsplit('/').next(),
            Source::Git { url, .. } => url
                .trim_end_matches('/')
                .rsplit(['/', ':'])
                .next()
                .map(|n| n.strip_suffix(".git").unwrap_or(n)),
            Source::Image { .. } => None,
        };
        match raw {
            Some(n)
                if !n.is_empty()
                    && n != "."
                    && n != ".."
                    && n.len() <= 255
                    && !n.contains(['/', '\\'])
                    && !n.chars().any(char::is_control) =>
            {
                n.to_owned()
            }
            _ => "src".to_owned(),
        }
    }
}

/// One replica, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerInfo {
    /// Container id (full).
    pub id: String,
    /// `<app>-<release>-<n>`.
    pub name: String,
    /// The app's id, from the label.
    pub app_id: Option<Uuid>,
    /// The app's name, from the label.
    pub app_name: Option<String>,
    /// Release number, from the label.
    pub release: Option<i64>,
    /// Replica index, from the label.
    pub replica: Option<u32>,
    /// `running`, `exited`, `created`, ...
    pub state: String,
    /// `healthy` (answers on its port), `starting`, `unhealthy` or `stopped`.
    pub health: String,
    /// Host port on 127.0.0.1.
    pub host_port: Option<u16>,
    /// `http://127.0.0.1:<host_port>/`.
    pub url: Option<String>,
    /// Seconds since it started, if it runs.
    pub uptime_seconds: Option<u64>,
    /// The image.
    pub image: String,
    /// How often the engine restarted it.
    pub restarts: i64,
    /// The cluster whose engine runs it (`local`: the server's own).
    #[serde(default = "local_cluster")]
    pub cluster: String,
}

/// `GET /api/v1/apps/{app}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppStatus {
    /// The app.
    pub app: App,
    /// The release that should run.
    pub release: Option<Release>,
    /// The newest deployment.
    pub deployment: Option<Deployment>,
    /// Its replicas.
    pub containers: Vec<ContainerInfo>,
    /// Where the app answers through the proxy: by host name, then by path.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Why replicas the scheduler could not place wait (no room, preempted and re-queued, …);
    /// absent when every wanted replica is placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// `POST /api/v1/apps/{app}/scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// Desired replicas (`replicas` in the AutoServe seed's body is the same field).
    #[serde(alias = "replicas")]
    pub instances: u32,
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
    /// The organisation it belongs to (none for install-wide events).
    #[serde(default)]
    pub org: Option<String>,
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
    /// The proxy's base URL.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// The proxy's HTTPS base URL, when TLS is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_url: Option<String>,
}

/// What an operator action on containers did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerAction {
    /// The containers acted on.
    pub containers: Vec<String>,
    /// What happened.
    pub message: String,
}

/// `GET /api/v1/apps/{app}/metrics`: what the autoscaler and people look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppMetrics {
    /// The app.
    pub app: String,
    /// Desired replicas.
    pub replicas_desired: u32,
    /// Replicas in the proxy's rotation.
    pub replicas_ready: u32,
    /// Requests answered through the proxy, by status class (`2xx` ...).
    pub requests: BTreeMap<String, u64>,
    /// Requests in flight.
    pub active_requests: u64,
    /// p95 latency over everything seen, milliseconds (bucket upper bound).
    pub p95_ms: Option<f64>,
    /// Per replica: address and requests sent to it.
    pub replicas: Vec<ReplicaTraffic>,
    /// Scaling decisions, newest last (the autoscaler's and manual ones).
    pub scaling_history: Vec<Event>,
}

/// Traffic of one replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaTraffic {
    /// Its address.
    pub addr: String,
    /// Requests sent to it.
    pub requests: u64,
    /// In flight.
    pub active: u64,
    /// Left out after failures (passive health).
    pub ejected: bool,
}

fn local_cluster() -> String {
    LOCAL_CLUSTER.to_owned()
}
