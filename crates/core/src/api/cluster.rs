//! Wire types of the clusters racer places work on (`/api/v1/clusters`, `racerctl clusters`),
//! and their checks (issue 14).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AppName, FieldError};

/// The cluster that always exists: the engine the server itself uses (`DOCKER_HOST`, else the
/// default socket).
pub const LOCAL_CLUSTER: &str = "local";

/// What a cluster holds, in the scheduler's integer units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Capacity {
    /// Millicores (1000 = one core).
    pub cpu_milli: u64,
    /// MiB.
    pub memory_mb: u64,
    /// GPUs.
    pub gpu: u64,
}

/// `POST /api/v1/clusters`: a Docker engine to place work on.
///
/// Decoded leniently (unknown fields ignored), as it is part of answers; the server refuses
/// unknown fields in requests itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewCluster {
    /// Its name: lowercase letters, digits and `-`, as an app's.
    pub name: String,
    /// The engine: `unix:///path/to/docker.sock` or `tcp://host:port`.
    pub docker_host: String,
    /// Cores, when declared (default: the engine's `NCPU`).
    #[serde(default)]
    pub cpu: Option<f64>,
    /// Memory, when declared: `128Gi`, `64G`, `512Mi` (default: the engine's `MemTotal`).
    #[serde(default)]
    pub memory: Option<String>,
    /// GPUs (engines do not report them; default 0).
    #[serde(default)]
    pub gpu: u64,
    /// A Swarm manager: apps there run as services.
    #[serde(default)]
    pub swarm: bool,
    /// Labels requests can ask for (`zone=eu`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl NewCluster {
    /// Checks what can be checked without the engine; the declared capacity in the scheduler's
    /// units (`None` where the engine's is used).
    pub fn check(&self) -> Result<(Option<u64>, Option<u64>), FieldError> {
        AppName::parse(&self.name).map_err(|e| {
            FieldError::new("name", format!("invalid cluster name {:?}: {e}", self.name))
        })?;
        check_docker_host(&self.docker_host)?;
        let cpu = match self.cpu {
            None => None,
            Some(c) if c > 0.0 && c <= 100_000.0 => Some((c * 1000.0).round() as u64),
            Some(c) => {
                return Err(FieldError::new(
                    "cpu",
                    format!("{c} cores: give more than 0 (e.g. 32)"),
                ))
            }
        };
        let memory = match self.memory.as_deref() {
            None => None,
            Some(m) => match crate::units::memory_mib(m) {
                Some(mb) if mb > 0 => Some(u64::from(mb)),
                _ => {
                    return Err(FieldError::new(
                        "memory",
                        format!("{m:?} is not a size: write e.g. 128Gi, 64G or 512Mi"),
                    ))
                }
            },
        };
        if self.gpu > 1024 {
            return Err(FieldError::new("gpu", "at most 1024 GPUs"));
        }
        for (k, v) in &self.labels {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.len() <= 63
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            };
            if !ok(k) || !ok(v) {
                return Err(FieldError::new(
                    format!("labels.{k}"),
                    "labels are key=value with letters, digits, - _ . / (at most 63 each)",
                ));
            }
        }
        Ok((cpu, memory))
    }
}

/// Checks an engine address: `unix:///abs/path` or `tcp://host:port`.
pub fn check_docker_host(host: &str) -> Result<(), FieldError> {
    let bad = |why: &str| {
        FieldError::new(
            "docker_host",
            format!("{host:?} {why}: write unix:///var/run/docker.sock or tcp://10.0.0.2:2375"),
        )
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if !path.starts_with('/') || path.len() < 2 {
            return Err(bad("is not an absolute socket path"));
        }
        return Ok(());
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        let Some((h, port)) = addr.trim_end_matches('/').rsplit_once(':') else {
            return Err(bad("has no port"));
        };
        if h.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("is not host:port"));
        }
        return Ok(());
    }
    Err(bad("is not a unix:// or tcp:// address"))
}

/// A cluster as `GET /api/v1/clusters` shows it, with its state at the moment of asking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterInfo {
    /// Its name.
    pub name: String,
    /// The engine; `None` for `local` (the server's own: `DOCKER_HOST`, else the socket).
    #[serde(default)]
    pub docker_host: Option<String>,
    /// A Swarm manager.
    #[serde(default)]
    pub swarm: bool,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Drained: nothing new is placed there.
    #[serde(default)]
    pub drained: bool,
    /// `ready`, `drained` or `unreachable`.
    pub state: String,
    /// Why it is unreachable.
    #[serde(default)]
    pub error: Option<String>,
    /// What it holds: declared, else read from the engine (`NCPU`, `MemTotal`).
    #[serde(default)]
    pub capacity: Option<Capacity>,
    /// Per dimension, `declared` or `engine`.
    #[serde(default)]
    pub capacity_source: BTreeMap<String, String>,
    /// The engine's version, when it answers.
    #[serde(default)]
    pub engine_version: Option<String>,
    /// Containers of this install running there.
    #[serde(default)]
    pub containers: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, host: &str) -> NewCluster {
        NewCluster {
            name: name.into(),
            docker_host: host.into(),
            ..Default::default()
        }
    }

    #[test]
    fn checks_name_host_capacity_and_labels() {
        assert_eq!(c("gpu-a", "unix:///run/b.sock").check(), Ok((None, None)));
        assert_eq!(c("gpu-a", "tcp://10.0.0.2:2375").check(), Ok((None, None)));
        assert_eq!(c("Gpu", "unix:///x").check().unwrap_err().field, "name");
        for bad in [
            "",
            "unix://rel",
            "http://x:1",
            "tcp://x",
            "tcp://:1",
            "tcp://x:99999",
        ] {
            assert_eq!(
                c("a", bad).check().unwrap_err().field,
                "docker_host",
                "{bad}"
            );
        }
        let mut d = c("a", "unix:///x");
        d.cpu = Some(32.0);
        d.memory = Some("128Gi".into());
        assert_eq!(d.check(), Ok((Some(32_000), Some(131_072))));
        d.cpu = Some(0.0);
        assert_eq!(d.check().unwrap_err().field, "cpu");
        d.cpu = None;
        d.memory = Some("lots".into());
        assert_eq!(d.check().unwrap_err().field, "memory");
        d.memory = None;
        d.labels.insert("zone".into(), "eu west".into());
        assert_eq!(d.check().unwrap_err().field, "labels.zone");
    }
}

/// `GET /api/v1/queue` (`racerctl queue status`): the work waiting and running, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueKind {
    /// `build` (deployments waiting for or in their build), or a job kind.
    pub kind: String,
    /// Claimable now.
    pub pending: i64,
    /// Taken by a worker (a build: building).
    pub running: i64,
    /// Waiting out a delay.
    pub deferred: i64,
    /// Failed at least once and waiting to retry (a build: failed builds).
    pub failed: i64,
    /// Out of attempts.
    pub dead: i64,
}
