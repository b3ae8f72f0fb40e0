//! Warm pools' containers (issue 15): pre-started containers of a pool, labelled with the pool
//! and member they belong to; no host port (the proxy reaches them on the engine's network).

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::{first_ip, Error, Runtime, LABEL_CLUSTER, LABEL_INSTALL, LABEL_MANAGED};

/// The pool a container belongs to (its id).
pub const LABEL_POOL: &str = "racer.pool";
/// The pool member a container is (its id, also its name).
pub const LABEL_POOL_MEMBER: &str = "racer.pool.member";

/// A pool member to start.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Container name (the member's id).
    pub name: String,
    /// Image.
    pub image: String,
    /// The pool's id.
    pub pool_id: String,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Ports the image serves on.
    pub ports: Vec<u16>,
    /// Memory limit, bytes.
    pub memory_bytes: i64,
    /// CPU limit, billionths of a core.
    pub nano_cpus: i64,
}

/// A file of a container's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Its path below the directory, `/`-separated.
    pub path: String,
    /// Its contents.
    pub contents: Vec<u8>,
    /// Its modification time (seconds since the epoch).
    pub mtime: u64,
}

/// A pool member as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberObserved {
    /// Container id.
    pub id: String,
    /// The pool's id (label).
    pub pool_id: String,
    /// The member's id (label).
    pub member_id: String,
    /// Whether it runs.
    pub running: bool,
    /// Its address on the engine's network.
    pub ip: Option<String>,
}

impl Runtime {
    /// Creates and starts a pool member; returns its container id and address. A container that
    /// cannot start is removed again.
    pub async fn run_member(&self, spec: &MemberSpec) -> Result<(String, Option<String>), Error> {
        let labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_INSTALL.to_owned(), self.install.clone()),
            (LABEL_POOL.to_owned(), spec.pool_id.clone()),
            (LABEL_POOL_MEMBER.to_owned(), spec.name.clone()),
            (LABEL_CLUSTER.to_owned(), self.cluster.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(labels),
            exposed_ports: Some(spec.ports.iter().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(HostConfig {
                memory: Some(spec.memory_bytes),
                nano_cpus: Some(spec.nano_cpus),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..crate::confined(&[], false)
            }),
            ..Default::default()
        };
        let id = self.create_and_start(&spec.name, body).await?;
        let ip = match self.docker.inspect_container(&id, None).await {
            Ok(c) => c
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|nets| first_ip(nets.into_values())),
            Err(_) => None,
        };
        Ok((id, ip))
    }

    /// Every pool member of this install on this engine (running or not).
    pub async fn list_members(&self) -> Result<Vec<MemberObserved>, Error> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{LABEL_MANAGED}=true"),
                format!("{LABEL_INSTALL}={}", self.install),
                LABEL_POOL.to_owned(),
            ],
        )]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|s| Error::from_engine("list containers", s))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                MemberObserved {
                    id: c.id.unwrap_or_default(),
                    pool_id: labels.get(LABEL_POOL).cloned().unwrap_or_default(),
                    member_id: labels.get(LABEL_POOL_MEMBER).cloned().unwrap_or_default(),
                    running: c.state.is_some_and(|s| s.to_string() == "running"),
                    ip: c
                        .network_settings
                        .and_then(|n| n.networks)
                        .and_then(|nets| first_ip(nets.into_values())),
                }
            })
            .collect())
    }

    /// Writes one file (mode 0600) into a container's filesystem at `dir/name` (`dir` must
    /// exist).
    pub async fn put_file(
        &self,
        id: &str,
        dir: &str,
        name: &str,
        contents: &[u8],
    ) -> Result<(), Error> {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut header, name, contents)
            .and_then(|()| b.finish())
            .map_err(|e| Error::Archive {
                message: e.to_string(),
            })?;
        let bytes = b.into_inner().map_err(|e| Error::Archive {
            message: e.to_string(),
        })?;
        let opts = UploadToContainerOptionsBuilder::new().path(dir).build();
        self.docker
            .upload_to_container(id, Some(opts), bollard::body_full(bytes.into()))
            .await
            .map_err(|s| Error::from_engine("copy a file into the container", s))
    }

    /// Every regular file below `dir` in a container (`None` when `dir` does not exist).
    pub async fn read_files(&self, id: &str, dir: &str) -> Result<Option<Vec<FileEntry>>, Error> {
        let opts = DownloadFromContainerOptionsBuilder::new().path(dir).build();
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut tarball = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => tarball.extend_from_slice(&b),
                Err(e) => {
                    let e = Error::from_engine("read the container's files", e);
                    if matches!(e, Error::NotFound { .. }) {
                        return Ok(None);
                    }
                    return Err(e);
                }
            }
        }
        let mut out = Vec::new();
        let mut archive = tar::Archive::new(&tarball[..]);
        let entries = archive.entries().map_err(|e| Error::Archive {
            message: e.to_string(),
        })?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::Archive {
                message: e.to_string(),
            })?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = entry
                .path()
                .map_err(|e| Error::Archive {
                    message: e.to_string(),
                })?
                .to_string_lossy()
                .into_owned();
            // The archive's first component is the directory itself.
            let Some((_, rel)) = path.split_once('/') else {
                continue;
            };
            let mtime = entry.header().mtime().unwrap_or(0);
            let mut contents = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut contents).map_err(|e| Error::Archive {
                message: e.to_string(),
            })?;
            out.push(FileEntry {
                path: rel.to_owned(),
                contents,
                mtime,
            });
        }
        Ok(Some(out))
    }

    /// Writes files below `dir` (an absolute path; created, writable by every user, as are the
    /// files) in a container.
    pub async fn write_files(
        &self,
        id: &str,
        dir: &str,
        files: &[(String, Vec<u8>)],
    ) -> Result<(), Error> {
        let dir = dir.trim_matches('/');
        let pack = |e: std::io::Error| Error::Archive {
            message: e.to_string(),
        };
        let mut b = tar::Builder::new(Vec::new());
        let mut dirs: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut acc = String::new();
        for part in dir.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            dirs.insert(acc.clone());
        }
        for (path, _) in files {
            let mut parent = std::path::Path::new(path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                dirs.insert(format!("{dir}/{}", p.display()));
                parent = p.parent();
            }
        }
        for d in &dirs {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o777);
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, format!("{d}/"), std::io::empty())
                .map_err(pack)?;
        }
        for (path, contents) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(contents.len() as u64);
            h.set_mode(0o666);
            h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
            h.set_cksum();
            b.append_data(&mut h, format!("{dir}/{path}"), &contents[..])
                .map_err(pack)?;
        }
        b.finish().map_err(pack)?;
        let bytes = b.into_inner().map_err(pack)?;
        let opts = UploadToContainerOptionsBuilder::new().path("/").build();
        self.docker
            .upload_to_container(id, Some(opts), bollard::body_full(bytes.into()))
            .await
            .map_err(|s| Error::from_engine("copy files into the container", s))
    }
}
