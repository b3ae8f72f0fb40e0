//! How a release runs: the run config, its checks and defaults, and the health check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// 1 (lowest) to 5 (highest; default 3): who wins when there is not room for everyone
    /// (`spec.priority`, `racer run --priority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// GPUs the app needs per replica (default 0). A request no cluster could ever hold is
    /// refused when it is submitted, naming this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    /// Runs only on this cluster (`racer run --cluster`, `spec.cluster`); default: wherever
    /// the scheduler finds room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// How replicas spread over clusters: `binpack` (default: the fullest cluster that fits)
    /// or `spread` (the emptiest) (`racer run --placement`, `spec.placement`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// Set by racer on a conda-project release: its image's `CMD` already is the project command
    /// `command` names (chosen at build), so replicas run the image as it is. Builds set it (true
    /// for a generated Dockerfile, false for the project's own) and image deploys clear it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub command_in_image: bool,
    /// Linux capabilities given back to the replicas (`racer run --cap-add`): racer drops every
    /// capability but `NET_BIND_SERVICE` (see [`crate::security`]); an app that changes user or
    /// file owners at start needs e.g. `SETUID`, `SETGID`, `CHOWN`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// The replicas' root filesystem is read-only (`racer run --read-only`); `/tmp` is a
    /// private tmpfs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
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
        if self.priority.is_some_and(|p| !(1..=5).contains(&p)) {
            return Err(FieldError::new(
                "config.priority",
                "priority must be 1 (lowest) to 5 (highest); the default is 3",
            ));
        }
        if let Some(p) = &self.placement {
            if crate::placement::Strategy::parse(p).is_none() {
                return Err(FieldError::new(
                    "config.placement",
                    format!("unknown placement {p:?}: use binpack (the default) or spread"),
                ));
            }
        }
        if let Some(c) = &self.cluster {
            if crate::names::AppName::parse(c).is_err() {
                return Err(FieldError::new(
                    "config.cluster",
                    format!("{c:?} is not a cluster name (racerctl clusters list names them)"),
                ));
            }
        }
        if self.gpu.is_some_and(|g| g > 1024) {
            return Err(FieldError::new("config.gpu", "gpu must be 0-1024"));
        }
        if self.concurrency.is_some_and(|c| c > MAX_CONCURRENCY) {
            return Err(FieldError::new(
                "config.concurrency",
                format!("concurrency must be 0-{MAX_CONCURRENCY} (0: no limit)"),
            ));
        }
        for (i, cap) in self.cap_add.iter().enumerate() {
            if crate::security::capability(cap).is_none() {
                return Err(FieldError::new(
                    format!("config.cap_add[{i}]"),
                    format!(
                        "unknown capability {cap:?}: use a Linux capability name such as CHOWN, SETUID or NET_ADMIN (see capabilities(7))"
                    ),
                ));
            }
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
