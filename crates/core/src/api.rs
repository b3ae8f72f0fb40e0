//! Wire types of the HTTP API: used by the server's handlers, by the typed client in the CLI,
//! and printed as they are by `--json`.

pub mod swarm;

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

/// How a release runs: recorded with every release, so rollbacks and `--no-rebuild` reuse it.
///
/// Decoded leniently (unknown fields ignored), as it is part of answers; the server refuses
/// unknown fields in requests itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct RunConfig {
    /// The port the app listens on inside the container (default: the image's only EXPOSE, else 8000).
    #[serde(default)]
    pub app_port: Option<u16>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Command override, as a shell-like string.
    #[serde(default)]
    pub command: Option<String>,
    /// Memory limit in MiB (default 512).
    #[serde(default)]
    pub memory_mb: Option<u32>,
    /// CPU limit in cores (default 1.0).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// conda-project: base image for the generated Dockerfile.
    #[serde(default)]
    pub base_image: Option<String>,
    /// How racer decides a replica may take traffic (default: TCP connect to the app port).
    #[serde(default)]
    pub health: Option<HealthCheck>,
    /// Seconds a replica taken out of rotation keeps serving its in-flight requests before it
    /// is stopped (default 2).
    #[serde(default)]
    pub drain_seconds: Option<u32>,
    /// Requests one replica is sent at once; more wait in the proxy, in arrival order (default:
    /// the server's `--replica-concurrency`, 80; 0: no limit).
    #[serde(default)]
    pub concurrency: Option<u32>,
}

/// The largest per-replica concurrency limit an app may ask for (`concurrency`; 0 is no limit).
pub const MAX_CONCURRENCY: u32 = 100_000;

/// The most replicas one app may ask for (`instances`, `scale`, `spec.scaling.maxReplicas`).
pub const MAX_INSTANCES: u32 = 100;

/// The port an app listens on when neither its config nor its image says (`app_port`).
pub const DEFAULT_APP_PORT: u16 = 8000;

impl RunConfig {
    /// The app port, or [`DEFAULT_APP_PORT`].
    pub fn app_port_or_default(&self) -> u16 {
        self.app_port.unwrap_or(DEFAULT_APP_PORT)
    }

    /// Checks what can be checked without the source: variable names, port, limits, the
    /// command's quoting. Fields are named as in a deploy request (`config.…`).
    pub fn check(&self) -> Result<(), crate::FieldError> {
        use crate::FieldError;
        for k in self.env.keys() {
            let ok = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(FieldError::new(
                    format!("config.env.{k}"),
                    format!("invalid environment variable name {k:?}: use letters, digits and '_'"),
                ));
            }
        }
        if self.app_port == Some(0) {
            return Err(FieldError::new(
                "config.app_port",
                "app port must be 1-65535",
            ));
        }
        if let Some(c) = self.cpus {
            if !(c > 0.0 && c <= 256.0) {
                return Err(FieldError::new("config.cpus", "cpus must be > 0"));
            }
        }
        if self.memory_mb.is_some_and(|m| m < 6) {
            return Err(FieldError::new(
                "config.memory_mb",
                "memory must be at least 6 MiB",
            ));
        }
        if self.concurrency.is_some_and(|c| c > MAX_CONCURRENCY) {
            return Err(FieldError::new(
                "config.concurrency",
                format!("concurrency must be 0-{MAX_CONCURRENCY} (0: no limit)"),
            ));
        }
        if let Some(c) = &self.command {
            crate::command::split_command(c).map_err(|reason| {
                FieldError::new(
                    "config.command",
                    format!("cannot parse the command: {reason}"),
                )
            })?;
        }
        Ok(())
    }
}

/// Checks a desired replica count: `1..=MAX_INSTANCES` for a deploy (`allow_zero` false), `0..=`
/// for scaling.
pub fn check_instances(instances: u32, allow_zero: bool) -> Result<(), crate::FieldError> {
    let low = u32::from(!allow_zero);
    if instances < low || instances > MAX_INSTANCES {
        return Err(crate::FieldError::new(
            "instances",
            format!("instances must be {low}-{MAX_INSTANCES}"),
        ));
    }
    Ok(())
}

/// A replica's health check. Health flips only after `failure_threshold` consecutive failures
/// or `success_threshold` consecutive successes.
///
/// Decoded leniently, as it is part of answers; the server refuses unknown fields itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// HTTP GET this path (2xx/3xx passes); TCP connect when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Port to check (default: the app port).
    #[serde(default)]
    pub port: Option<u16>,
    /// Seconds between checks (default 1).
    #[serde(default = "default_interval")]
    pub interval_seconds: u32,
    /// Seconds one check may take (default 1).
    #[serde(default = "default_interval")]
    pub timeout_seconds: u32,
    /// Consecutive failures that take a healthy replica out (default 3).
    #[serde(default = "default_failures")]
    pub failure_threshold: u32,
    /// Consecutive successes that put a replica in (default 1).
    #[serde(default = "default_interval")]
    pub success_threshold: u32,
}

fn default_interval() -> u32 {
    1
}

fn default_failures() -> u32 {
    3
}

impl Default for HealthCheck {
    fn default() -> HealthCheck {
        HealthCheck {
            path: None,
            port: None,
            interval_seconds: 1,
            timeout_seconds: 1,
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
}

/// `POST /api/v1/deployments`: build (unless an image is given) and roll out a new release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The app's name; created if it does not exist yet.
    pub app: String,
    /// Where the code comes from.
    pub source: Source,
    /// How it runs.
    #[serde(default)]
    pub config: RunConfig,
    /// Desired replicas (default: unchanged, or 1 for a new app).
    #[serde(default)]
    pub instances: Option<u32>,
}

/// `POST /api/v1/apps/{app}/rerun`: a new release from the recorded source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// Reuse the current release's image instead of rebuilding.
    #[serde(default)]
    pub no_rebuild: bool,
    /// Environment variables to set (merged over the current ones).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// For path sources: the freshly uploaded folder (the CLI sends it again).
    #[serde(default)]
    pub source: Option<Source>,
}

/// The state of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Recorded; waiting for the builder.
    Pending,
    /// The image is being built.
    Building,
    /// The release exists; replicas are being started.
    RollingOut,
    /// Every replica of the release runs and answers.
    Running,
    /// The build or the rollout failed; the previous release keeps running.
    Failed,
    /// The new release never passed its health check in time; the app went back to the
    /// release that was serving, which never stopped.
    RolledBack,
    /// A newer deployment replaced this one before it finished.
    Superseded,
}

impl DeploymentStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Pending => "pending",
            DeploymentStatus::Building => "building",
            DeploymentStatus::RollingOut => "rolling_out",
            DeploymentStatus::Running => "running",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::RolledBack => "rolled_back",
            DeploymentStatus::Superseded => "superseded",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeploymentStatus::Pending,
            "building" => DeploymentStatus::Building,
            "rolling_out" => DeploymentStatus::RollingOut,
            "running" => DeploymentStatus::Running,
            "failed" => DeploymentStatus::Failed,
            "rolled_back" => DeploymentStatus::RolledBack,
            "superseded" => DeploymentStatus::Superseded,
            _ => return None,
        })
    }

    /// Whether the deployment will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Running
                | DeploymentStatus::Failed
                | DeploymentStatus::RolledBack
                | DeploymentStatus::Superseded
        )
    }
}

/// The rollout of one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    /// Its id.
    pub id: Uuid,
    /// The app.
    pub app_id: Uuid,
    /// The app's name.
    pub app_name: String,
    /// Where it is.
    pub status: DeploymentStatus,
    /// The release it made, once built.
    pub release: Option<i64>,
    /// Where the code came from.
    pub source: Source,
    /// How it runs.
    pub config: RunConfig,
    /// Reuse this release's image instead of building.
    #[serde(default)]
    pub image_from_release: Option<i64>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Who asked for it.
    pub created_by: String,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

/// An immutable, numbered (image, config) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Release {
    /// The app.
    pub app_id: Uuid,
    /// 1, 2, 3, ... per app.
    pub number: i64,
    /// The image tag, `racer/<app>:<n>`, or the given image.
    pub image: String,
    /// The engine's image id.
    pub image_id: String,
    /// Where the code came from.
    pub source: Source,
    /// The git commit, for git sources.
    #[serde(default)]
    pub commit: Option<String>,
    /// How it runs.
    pub config: RunConfig,
    /// The deployment that made it.
    pub deployment_id: Uuid,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
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
}

/// A build-context upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Upload {
    /// Pass as `source.upload`.
    pub id: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// One problem found in a project, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// e.g. `commands.serve.environment`.
    pub field: String,
    /// e.g. `no environment named "gpu"`.
    pub message: String,
}

/// `POST /api/v1/validate` and `POST /api/v1/dockerfile`: a source to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectRequest {
    /// Path (uploaded) or git source.
    pub source: Source,
    /// For `dockerfile`: how it would run.
    #[serde(default)]
    pub config: RunConfig,
}

/// The verdict of `validate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidateReport {
    /// `dockerfile` or `conda-project`, when detected.
    pub kind: Option<String>,
    /// Whether racer can build it.
    pub valid: bool,
    /// Every problem, with its field path.
    pub problems: Vec<Problem>,
    /// conda-project: its name.
    #[serde(default)]
    pub project_name: Option<String>,
    /// conda-project: its environments.
    #[serde(default)]
    pub environments: Vec<String>,
    /// conda-project: its commands.
    #[serde(default)]
    pub commands: Vec<String>,
    /// The git commit, for git sources.
    #[serde(default)]
    pub commit: Option<String>,
}

/// The Dockerfile a deploy would build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DockerfileReport {
    /// `dockerfile` (the project's own) or `conda-project` (generated).
    pub kind: String,
    /// The Dockerfile's text.
    pub dockerfile: String,
}

/// `POST /api/v1/apps/{app}/scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// Desired replicas.
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
}

/// The answer to a deploy or rerun: the app and its new deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployed {
    /// The app (created if it did not exist).
    pub app: App,
    /// The deployment, `pending`.
    pub deployment: Deployment,
}

/// What an operator action on containers did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerAction {
    /// The containers acted on.
    pub containers: Vec<String>,
    /// What happened.
    pub message: String,
}

/// One line of `racer run --json` / `racer rerun --json`: line-delimited events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The deployment was accepted.
    Deployment {
        /// It.
        deployment: Box<Deployment>,
    },
    /// A line of the build log.
    Log {
        /// The line, without its newline.
        line: String,
    },
    /// The deployment ended (`running` or `failed`); the app's status at that moment.
    Done {
        /// The final deployment.
        deployment: Box<Deployment>,
        /// The app's status.
        status: Option<Box<AppStatus>>,
    },
}

/// `POST /api/v1/apps/{app}/rollback`: a new release from an earlier one's image and config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The release to go back to; default: the one before the current release.
    #[serde(default)]
    pub to: Option<i64>,
}

/// What `racer apply` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApplyResult {
    /// The app as it is now.
    pub app: App,
    /// Whether anything changed.
    pub changed: bool,
    /// Field-by-field changes (`~ spec.image: "a" -> "b"`).
    pub diff: Vec<String>,
    /// The deployment the change started, when it needs a new release.
    #[serde(default)]
    pub deployment: Option<Deployment>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_config_checks_name_their_field() {
        let ok = RunConfig::default();
        assert_eq!(ok.check(), Ok(()));
        let field = |c: RunConfig| c.check().unwrap_err().field;
        let mut c = RunConfig::default();
        c.env.insert("1X".into(), "v".into());
        assert_eq!(field(c), "config.env.1X");
        assert_eq!(
            field(RunConfig {
                app_port: Some(0),
                ..Default::default()
            }),
            "config.app_port"
        );
        assert_eq!(
            field(RunConfig {
                cpus: Some(0.0),
                ..Default::default()
            }),
            "config.cpus"
        );
        assert_eq!(
            field(RunConfig {
                memory_mb: Some(5),
                ..Default::default()
            }),
            "config.memory_mb"
        );
        assert_eq!(
            field(RunConfig {
                concurrency: Some(MAX_CONCURRENCY + 1),
                ..Default::default()
            }),
            "config.concurrency"
        );
        assert_eq!(
            field(RunConfig {
                command: Some("echo 'open".into()),
                ..Default::default()
            }),
            "config.command"
        );
        assert_eq!(ok.app_port_or_default(), DEFAULT_APP_PORT);
    }

    #[test]
    fn instance_bounds() {
        assert!(check_instances(0, false).is_err());
        assert!(check_instances(0, true).is_ok());
        assert!(check_instances(MAX_INSTANCES, false).is_ok());
        let e = check_instances(MAX_INSTANCES + 1, true).unwrap_err();
        assert_eq!(e.field, "instances");
        assert_eq!(e.message, "instances must be 0-100");
    }
}
