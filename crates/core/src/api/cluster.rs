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
    /// A `tcp://` engine reached over mutual TLS (`dockerd --tlsverify`): the CA certificate
    /// (PEM) its certificate is signed by. A path on the server, which every worker must be
    /// able to read too; with `tls_cert` and `tls_key`, or none of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    /// The client certificate (PEM) racer presents to the engine; a path as `tls_ca`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    /// The client certificate's private key (PEM); a path as `tls_ca`. Only the path is kept
    /// and shown, never the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
}

/// The files of an engine reached over mutual TLS: paths on the server (and every worker),
/// read when the engine is connected to; the store keeps the paths, not the contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterTls {
    /// The CA certificate the engine's certificate is signed by.
    pub ca: String,
    /// The client certificate.
    pub cert: String,
    /// The client certificate's private key (its path only).
    pub key: String,
}

impl NewCluster {
    /// The TLS files, when given: all three or none, absolute paths, for a `tcp://` engine
    /// only. A partial set names the first missing field.
    pub fn tls(&self) -> Result<Option<ClusterTls>, FieldError> {
        let given = [
            ("tls_ca", &self.tls_ca),
            ("tls_cert", &self.tls_cert),
            ("tls_key", &self.tls_key),
        ];
        if given.iter().all(|(_, v)| v.is_none()) {
            return Ok(None);
        }
        if let Some((field, _)) = given.iter().find(|(_, v)| v.is_none()) {
            return Err(FieldError::new(
                *field,
                format!(
                    "{field} is missing: an engine over TLS needs all three files, --tls-ca, --tls-cert and --tls-key (or none, for an engine without TLS)"
                ),
            ));
        }
        for (field, v) in given {
            let path = v.as_deref().unwrap_or_default();
            if !path.starts_with('/') {
                return Err(FieldError::new(
                    field,
                    format!("{path:?} is not an absolute path (a file on the server)"),
                ));
            }
        }
        if !self.docker_host.starts_with("tcp://") {
            return Err(FieldError::new(
                "docker_host",
                format!(
                    "{:?}: TLS is for engines reached over TCP (tcp://host:port); a unix socket needs no TLS files",
                    self.docker_host
                ),
            ));
        }
        Ok(Some(ClusterTls {
            ca: self.tls_ca.clone().unwrap_or_default(),
            cert: self.tls_cert.clone().unwrap_or_default(),
            key: self.tls_key.clone().unwrap_or_default(),
        }))
    }

    /// Checks what can be checked without the engine; the declared capacity in the scheduler's
    /// units (`None` where the engine's is used).
    pub fn check(&self) -> Result<(Option<u64>, Option<u64>), FieldError> {
        AppName::parse(&self.name).map_err(|e| {
            FieldError::new("name", format!("invalid cluster name {:?}: {e}", self.name))
        })?;
        check_docker_host(&self.docker_host)?;
        self.tls()?;
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
    /// The files it is reached with over mutual TLS; `None` without TLS.
    #[serde(default)]
    pub tls: Option<ClusterTls>,
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

    #[test]
    fn tls_files_come_all_three_or_none_as_absolute_paths_for_tcp_engines() {
        let mut t = c("b", "tcp://10.0.0.2:2376");
        assert_eq!(t.tls(), Ok(None));
        t.tls_ca = Some("/etc/racer/ca.pem".into());
        let e = t.check().unwrap_err();
        assert_eq!(e.field, "tls_cert");
        assert!(e.message.contains("--tls-key"), "{}", e.message);
        t.tls_cert = Some("/etc/racer/cert.pem".into());
        assert_eq!(t.check().unwrap_err().field, "tls_key");
        t.tls_key = Some("key.pem".into());
        assert_eq!(t.check().unwrap_err().field, "tls_key");
        t.tls_key = Some("/etc/racer/key.pem".into());
        assert_eq!(t.check(), Ok((None, None)));
        assert_eq!(
            t.tls(),
            Ok(Some(ClusterTls {
                ca: "/etc/racer/ca.pem".into(),
                cert: "/etc/racer/cert.pem".into(),
                key: "/etc/racer/key.pem".into(),
            }))
        );
        t.docker_host = "unix:///run/b.sock".into();
        assert_eq!(t.check().unwrap_err().field, "docker_host");
        // Only what is given goes on the wire: an older server refuses unknown fields.
        let plain = serde_json::to_string(&c("b", "tcp://h:1")).unwrap();
        assert!(!plain.contains("tls"), "{plain}");
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
