//! Warm pools and claims (issue 15): the requests and answers of `/api/v1/pools` and
//! `/api/v1/claims`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/pools`: a pool of pre-started containers of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NewPool {
    /// The pool's name (lowercase letters, digits and `-`).
    pub name: String,
    /// The image its containers run (it must exist on the engine: nothing is pulled).
    #[serde(default)]
    pub image: Option<String>,
    /// Or: run the current release's image of this app.
    #[serde(default)]
    pub app: Option<String>,
    /// Ready, unclaimed containers to keep; default: the server's (`PRE_WARMED_QUEUE_SIZE`).
    #[serde(default)]
    pub size: Option<u32>,
    /// Named ports, `name=port` (`code=8080`); default `web=8080`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// CPU limit of each container, cores; default the server's (`RESOURCE_CPU_LIMIT`).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Memory limit of each container (`4Gi`); default the server's (`RESOURCE_MEMORY_LIMIT`).
    #[serde(default)]
    pub memory: Option<String>,
    /// How long a claim lasts (`8h`); default 8h.
    #[serde(default)]
    pub claim_ttl: Option<String>,
    /// A claim with no proxied request this long ends (`30m`); default: never.
    #[serde(default)]
    pub idle_timeout: Option<String>,
    /// HTTP path answering 2xx once a container is ready (on the first port); default: a TCP
    /// connection to the first port.
    #[serde(default)]
    pub health_path: Option<String>,
    /// Environment of every container, `KEY=value`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Where a claim's workspace lives in the container; default `/workspace`.
    #[serde(default)]
    pub workspace_path: Option<String>,
}

/// A pool and its containers now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolInfo {
    /// Id (UUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// Organisation.
    pub org: String,
    /// Image.
    pub image: String,
    /// Ready containers it keeps.
    pub size: u32,
    /// Named ports.
    pub ports: BTreeMap<String, u16>,
    /// CPU limit, cores.
    pub cpus: f64,
    /// Memory limit, MiB.
    pub memory_mb: u64,
    /// Claim lifetime, seconds.
    pub claim_ttl_seconds: u64,
    /// Idle timeout, seconds.
    #[serde(default)]
    pub idle_timeout_seconds: Option<u64>,
    /// Readiness path.
    #[serde(default)]
    pub health_path: Option<String>,
    /// Where a claim's workspace lives in the container.
    #[serde(default)]
    pub workspace_path: String,
    /// Containers ready to claim.
    pub ready: u32,
    /// Containers starting.
    pub starting: u32,
    /// Containers claimed.
    pub claimed: u32,
    /// Why the pool is below its size, when the resource guard holds it there.
    #[serde(default)]
    pub held: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/pools/{pool}/resize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizePool {
    /// The new size.
    pub size: u32,
}

/// `POST /api/v1/pools/{pool}/claims`: claim a container.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The claim's own environment, `KEY=value`: written to `/racer/claim.env` in the container
    /// (a running container's environment cannot change) before the claim answers.
    #[serde(default)]
    pub env: Vec<String>,
    /// `s3://bucket/prefix`: restored into the container's workspace before the claim answers,
    /// synced both ways while claimed, pushed a last time on release. The storage's endpoint and
    /// credentials are the server's (`--s3-endpoint`, `AWS_ACCESS_KEY_ID`, …).
    #[serde(default)]
    pub workspace: Option<String>,
    /// The workspace's S3 region, instead of the server's.
    #[serde(default)]
    pub s3_region: Option<String>,
    /// Credentials for the workspace's bucket instead of the server's (both or neither). Kept in
    /// the server's memory only: never stored, logged or returned. A server that restarts has
    /// forgotten them; the claim's sync then says so (release it with `no_sync`, or claim again).
    #[serde(default)]
    pub s3_access_key: Option<String>,
    /// See `s3_access_key`.
    #[serde(default)]
    pub s3_secret_key: Option<String>,
}

impl std::fmt::Debug for ClaimRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimRequest")
            .field("env", &self.env.len())
            .field("workspace", &self.workspace)
            .field("s3_region", &self.s3_region)
            .field(
                "s3_access_key",
                &self.s3_access_key.as_ref().map(|_| "<set>"),
            )
            .field(
                "s3_secret_key",
                &self.s3_secret_key.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

/// `POST /api/v1/claims/{id}/release`: the body is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// End the claim without the last push of its workspace (what was not synced is lost).
    #[serde(default)]
    pub no_sync: bool,
}

/// A claim's workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceInfo {
    /// `s3://bucket/prefix`.
    pub url: String,
    /// Bytes restored when claimed.
    #[serde(default)]
    pub restored_bytes: Option<i64>,
    /// How long the restore took, ms.
    #[serde(default)]
    pub restore_ms: Option<i64>,
    /// When it last synced.
    #[serde(default)]
    pub synced_at: Option<DateTime<Utc>>,
    /// Why the last sync failed (it is retried).
    #[serde(default)]
    pub sync_error: Option<String>,
}

/// A claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClaimInfo {
    /// Id (UUID).
    pub id: String,
    /// The pool.
    pub pool: String,
    /// `active`, `released`, `expired`, `idle` or `failed`.
    pub state: String,
    /// Taken ready from the pool (`false`: none was ready, started cold).
    pub warm: bool,
    /// How long the claim took, ms.
    pub claim_ms: i64,
    /// Each named port's URL through the proxy: `http://127.0.0.1:8080/code/<id>/`.
    pub urls: BTreeMap<String, String>,
    /// The access token: only in the answer to the claim itself, never again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The container.
    #[serde(default)]
    pub container: Option<String>,
    /// Who made it.
    pub actor: String,
    /// Its organisation.
    pub org: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it ended.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Its workspace, if it has one.
    #[serde(default)]
    pub workspace: Option<WorkspaceInfo>,
}
