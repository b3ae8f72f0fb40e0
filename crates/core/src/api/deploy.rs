//! Deployments and releases: deploy, rerun, rollback and apply requests and their answers, the
//! deployment's states, and the inspection of a source (upload, validate, Dockerfile).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{App, AppStatus, RunConfig, Source};

/// `POST /api/v1/deployments`: build (unless an image is given) and roll out a new release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The app's name; created if it does not exist yet.
    #[schema(
        pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
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
    /// What the user should know about a valid project, each with its field path: variables
    /// that need a value at deploy, fields racer ignores (as the reference does), an empty name
    /// racer replaced, `.env` lines skipped.
    #[serde(default)]
    pub notes: Vec<Problem>,
}

/// The Dockerfile a deploy would build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DockerfileReport {
    /// `dockerfile` (the project's own) or `conda-project` (generated).
    pub kind: String,
    /// The Dockerfile's text.
    pub dockerfile: String,
}

/// The answer to a deploy or rerun: the app and its new deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployed {
    /// The app (created if it did not exist).
    pub app: App,
    /// The deployment, `pending`.
    pub deployment: Deployment,
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
    /// What the spec asks that racer accepted but does not do, each with its field (e.g. a
    /// `valueFrom: sdk` variable racer has no value for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Problem>,
}

/// One of an app's secrets as the API shows it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretInfo {
    /// Its name (the environment variable replicas get).
    pub name: String,
    /// A keyed digest of its value: equal digests, equal values (nothing else can be learnt).
    pub digest: String,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

/// `PUT /api/v1/apps/{app}/secrets`: set (or replace) secrets; the app rolls to a new release
/// with them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SetSecrets {
    /// Name → value.
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for SetSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSecrets")
            .field("names", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
