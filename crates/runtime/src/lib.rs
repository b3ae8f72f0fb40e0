//! racer's only door to the Docker Engine API. Controllers and handlers reach the engine through
//! [`Runtime`]; nothing else in racer speaks to Docker.
//!
//! Labels are the source of truth for what racer owns: every container carries
//! `racer.managed=true`, `racer.app`, `racer.release` and `racer.replica`, and every image racer
//! builds carries `racer.managed=true` and `racer.app`. They are found again by label filter.
//! On a Swarm manager, [`swarm`] runs apps as services carrying the same labels.

mod error;
pub mod pool;
pub mod swarm;
mod tls;

pub use error::{Error, TlsFile};
pub use swarm::{ServiceDef, ServiceObserved, SwarmState, TaskObserved};

use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;

use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

/// Label: racer manages this object.
pub const LABEL_MANAGED: &str = "racer.managed";
/// Label: the racer install (one database) that owns the object.
pub const LABEL_INSTALL: &str = "racer.install";
/// Label: the owning app's UUID.
pub const LABEL_APP: &str = "racer.app";
/// Label: the owning app's name (for people reading `docker ps`).
pub const LABEL_APP_NAME: &str = "racer.app.name";
/// Label: the release number the container runs.
pub const LABEL_RELEASE: &str = "racer.release";
/// Label: the host port the replica publishes on (kept while it is stopped).
pub const LABEL_PORT: &str = "racer.port";
/// Label: the replica index (0-based) within the release.
pub const LABEL_REPLICA: &str = "racer.replica";
/// Label: the cluster the replica was placed on (two clusters may share one engine; each
/// handle sees only its own cluster's containers, and unlabelled ones are `local`'s).
pub const LABEL_CLUSTER: &str = "racer.cluster";

/// The name of the server's own engine as a cluster.
pub const LOCAL: &str = "local";

/// `--gpus N` as the engine's API takes it: one device request for `n` GPUs of any driver that
/// has the `gpu` capability; `None` for no GPUs.
fn gpu_request(n: u32) -> Option<Vec<bollard::models::DeviceRequest>> {
    (n > 0).then(|| {
        vec![bollard::models::DeviceRequest {
            count: Some(i64::from(n)),
            capabilities: Some(vec![vec!["gpu".to_owned()]]),
            ..Default::default()
        }]
    })
}

/// The engine's identity, as `/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    /// e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// e.g. `1.41`.
    pub api_version: String,
    /// e.g. `linux`.
    pub os: String,
}

/// What an engine holds, as `docker info` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFacts {
    /// The engine's version.
    pub version: String,
    /// CPUs (`NCPU`).
    pub cpus: u64,
    /// Memory in bytes (`MemTotal`).
    pub memory_bytes: u64,
}

/// What racer asks the engine to run: one replica of one release.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Container name, `<app>-<release>-<n>`.
    pub name: String,
    /// Image reference or id.
    pub image: String,
    /// Owning app.
    pub app_id: Uuid,
    /// Owning app's name.
    pub app_name: String,
    /// Release number.
    pub release: i64,
    /// Replica index.
    pub replica: u32,
    /// Environment, `K=V`.
    pub env: Vec<String>,
    /// Command override (argv), if any.
    pub command: Option<Vec<String>>,
    /// The port the app listens on inside the container.
    pub app_port: u16,
    /// The host port to publish it on, on 127.0.0.1.
    pub host_port: u16,
    /// Memory limit in bytes.
    pub memory_bytes: i64,
    /// CPU limit in billionths of a core.
    pub nano_cpus: i64,
    /// GPUs, passed to the engine as a device request (`--gpus N`); 0 for none.
    pub gpus: u32,
    /// Capabilities the app asked for beyond racer's defaults (see [`racer_core::security`]).
    pub cap_add: Vec<String>,
    /// A read-only root filesystem (and a tmpfs on `/tmp`).
    pub read_only: bool,
}

/// The security settings every container racer starts gets (see [`racer_core::security`]):
/// every capability dropped but the defaults and `cap_add`, no new privileges, the engine's
/// default seccomp profile (never `unconfined`), a process limit, and a read-only root with a
/// tmpfs on `/tmp` when asked.
pub(crate) fn confined(cap_add: &[String], read_only: bool) -> HostConfig {
    use racer_core::security;
    HostConfig {
        cap_drop: Some(vec!["ALL".to_owned()]),
        cap_add: Some(security::kept_capabilities(cap_add)),
        security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
        pids_limit: Some(security::PIDS_LIMIT),
        readonly_rootfs: read_only.then_some(true),
        tmpfs: read_only.then(|| {
            let (at, opts) = security::READ_ONLY_TMPFS;
            HashMap::from([(at.to_owned(), opts.to_owned())])
        }),
        ..Default::default()
    }
}

/// A container racer owns, as the engine reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Full container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// From `racer.app`.
    pub app_id: Option<Uuid>,
    /// From `racer.app.name`.
    pub app_name: Option<String>,
    /// From `racer.release`.
    pub release: Option<i64>,
    /// From `racer.replica`.
    pub replica: Option<u32>,
    /// `created`, `running`, `exited`, ...
    pub state: String,
    /// The engine's human status (`Up 3 minutes`).
    pub status: String,
    /// The published host port, if any.
    pub host_port: Option<u16>,
    /// The image reference it was created from.
    pub image: String,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Address on its network as the list reports it (as [`Inspected::ip`], without an inspect
    /// per container); `None` when stopped or not on a network with an address.
    pub ip: Option<String>,
    /// The cluster whose engine runs it (the handle's [`Runtime::for_cluster`]; `local` unless
    /// set).
    pub cluster: String,
}

impl Observed {
    /// Whether the container is running.
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// One event about a container racer manages (`create`, `start`, `die`, `destroy`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// Full container id.
    pub id: String,
    /// What happened, as the engine names it (`exec_start: sh -c ...` for execs).
    pub action: String,
    /// When, seconds since the epoch.
    pub time: i64,
}

/// The first non-empty address among a container's network endpoints.
fn first_ip(endpoints: impl Iterator<Item = bollard::models::EndpointSettings>) -> Option<String> {
    endpoints
        .filter_map(|e| e.ip_address)
        .find(|ip| !ip.is_empty())
}

/// An [`Observed`] from what the engine says of a container, list or inspect alike.
#[allow(clippy::too_many_arguments)]
fn observed(
    id: String,
    name: Option<&str>,
    labels: &HashMap<String, String>,
    state: String,
    status: String,
    published: Option<u16>,
    image: String,
    created: i64,
    ip: Option<String>,
    cluster: &str,
) -> Observed {
    Observed {
        cluster: labels
            .get(LABEL_CLUSTER)
            .cloned()
            .unwrap_or_else(|| cluster.to_owned()),
        id,
        name: name.unwrap_or_default().trim_start_matches('/').to_owned(),
        app_id: labels.get(LABEL_APP).and_then(|s| Uuid::parse_str(s).ok()),
        app_name: labels.get(LABEL_APP_NAME).cloned(),
        release: labels.get(LABEL_RELEASE).and_then(|s| s.parse().ok()),
        replica: labels.get(LABEL_REPLICA).and_then(|s| s.parse().ok()),
        state,
        status,
        // A stopped container publishes nothing; its label still reserves the port.
        host_port: published.or_else(|| labels.get(LABEL_PORT).and_then(|p| p.parse().ok())),
        image,
        created,
        ip,
    }
}

/// Details only an inspect gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    /// Address on its network, reachable from this host on the default bridge.
    pub ip: Option<String>,
    /// When it last started.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// How often the engine restarted it.
    pub restart_count: i64,
    /// Last exit code.
    pub exit_code: Option<i64>,
    /// Whether it runs.
    pub running: bool,
}

/// An image as the engine knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// `sha256:...`.
    pub id: String,
    /// Exposed ports, e.g. `8000/tcp`.
    pub exposed_ports: Vec<String>,
}

/// Resource use of one container at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used since start, nanoseconds.
    pub cpu_total_ns: u64,
    /// Memory in use, bytes (page cache excluded where the engine reports it).
    pub memory_bytes: u64,
    /// The memory limit, bytes.
    pub memory_limit: u64,
}

/// A boxed stream of log lines.
pub type LineStream = Pin<Box<dyn Stream<Item = Result<String, Error>> + Send>>;

/// A connection to one Docker engine (the `local` cluster).
#[derive(Clone, Debug)]
pub struct Runtime {
    docker: Docker,
    install: String,
    cluster: String,
}

impl Runtime {
    /// Connects like the Docker CLI: `DOCKER_HOST`, else the default local socket. Does not talk
    /// to the engine yet; [`Runtime::version`] does.
    pub fn connect_local() -> Result<Runtime, Error> {
        let docker = Docker::connect_with_defaults().map_err(|source| Error::Connect { source })?;
        Ok(Runtime {
            docker,
            install: String::new(),
            cluster: LOCAL.to_owned(),
        })
    }

    /// Connects to the engine at `host` (`unix:///path` or `tcp://host:port`), for a cluster
    /// other than the server's own. Does not talk to the engine yet.
    pub fn connect_to(host: &str) -> Result<Runtime, Error> {
        let timeout = 10;
        let docker = match host.strip_prefix("unix://") {
            Some(path) => Docker::connect_with_unix(path, timeout, bollard::API_DEFAULT_VERSION),
            None => Docker::connect_with_http(host, timeout, bollard::API_DEFAULT_VERSION),
        }
        .map_err(|source| Error::Connect { source })?;
        Ok(Runtime {
            docker,
            install: String::new(),
            cluster: LOCAL.to_owned(),
        })
    }

    /// Connects to the engine at `host` (`tcp://host:port`) over mutual TLS, as `docker
    /// --tlsverify` does: the engine's certificate must be signed by the CA in `ca`, and racer
    /// presents the client certificate `cert` with its private key `key` (PEM files). The files
    /// are read and checked here, so a missing, unreadable or malformed one is said at once,
    /// naming it ([`Error::Tls`]); key contents are never put in an error. Does not talk to
    /// the engine yet.
    pub fn connect_to_tls(
        host: &str,
        ca: &Path,
        cert: &Path,
        key: &Path,
    ) -> Result<Runtime, Error> {
        if !host.starts_with("tcp://") {
            return Err(Error::TlsHost {
                host: host.to_owned(),
            });
        }
        tls::check(ca, cert, key)?;
        let timeout = 10;
        let docker =
            Docker::connect_with_ssl(host, key, cert, ca, timeout, bollard::API_DEFAULT_VERSION)
                .map_err(|source| Error::Connect { source })?;
        Ok(Runtime {
            docker,
            install: String::new(),
            cluster: LOCAL.to_owned(),
        })
    }

    /// What the engine holds: its CPUs and memory (`docker info`'s `NCPU`, `MemTotal`) and
    /// version.
    pub async fn facts(&self) -> Result<EngineFacts, Error> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|source| Error::from_engine("read engine info", source))?;
        Ok(EngineFacts {
            version: info.server_version.unwrap_or_default(),
            cpus: u64::try_from(info.ncpu.unwrap_or(0)).unwrap_or(0),
            memory_bytes: u64::try_from(info.mem_total.unwrap_or(0)).unwrap_or(0),
        })
    }

    /// Scopes this handle to one install: everything it creates carries `racer.install=<id>` and
    /// every list only sees objects with it.
    pub fn for_install(mut self, install: &str) -> Runtime {
        self.install = install.to_owned();
        self
    }

    /// The install this handle is scoped to.
    pub fn install(&self) -> &str {
        &self.install
    }

    /// Names the cluster this engine is: every container it reports carries the name
    /// ([`Observed::cluster`]).
    pub fn for_cluster(mut self, cluster: &str) -> Runtime {
        self.cluster = cluster.to_owned();
        self
    }

    /// The cluster this handle's engine is.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    fn owned_filter(&self, app: Option<Uuid>) -> HashMap<String, Vec<String>> {
        let mut labels = vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_INSTALL}={}", self.install),
        ];
        if let Some(a) = app {
            labels.push(format!("{LABEL_APP}={a}"));
        }
        HashMap::from([("label".to_owned(), labels)])
    }

    /// The labels every object racer creates carries.
    pub fn owned_labels(&self, app: Uuid, app_name: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_INSTALL.to_owned(), self.install.clone()),
            (LABEL_APP.to_owned(), app.to_string()),
            (LABEL_APP_NAME.to_owned(), app_name.to_owned()),
        ])
    }

    /// Asks the engine for its version; this is the engine health check.
    pub async fn version(&self) -> Result<EngineVersion, Error> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|source| Error::from_engine("read engine version", source))?;
        Ok(EngineVersion {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
            os: v.os.unwrap_or_default(),
        })
    }

    /// Every container racer manages (running or not), optionally only one app's.
    pub async fn list(&self, app: Option<Uuid>) -> Result<Vec<Observed>, Error> {
        let filters = self.owned_filter(app);
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
                let published = c
                    .ports
                    .unwrap_or_default()
                    .iter()
                    .find_map(|p| p.public_port);
                let ip = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .and_then(|nets| first_ip(nets.into_values()));
                let state = c
                    .state
                    .map(|s| match s {
                        ContainerSummaryStateEnum::EMPTY => String::new(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                observed(
                    c.id.unwrap_or_default(),
                    c.names.unwrap_or_default().first().map(String::as_str),
                    &labels,
                    state,
                    c.status.unwrap_or_default(),
                    published,
                    c.image.unwrap_or_default(),
                    c.created.unwrap_or_default(),
                    ip,
                    &self.cluster,
                )
            })
            .filter(|o| o.cluster == self.cluster)
            .collect())
    }

    /// One container racer manages, as [`Runtime::list`] would report it, read with an inspect;
    /// `None` when it no longer exists or is not this install's. Its `status` is the engine's
    /// state word (an inspect has no human status line).
    pub async fn observe(&self, id: &str) -> Result<Option<Observed>, Error> {
        let c = match self.docker.inspect_container(id, None).await {
            Ok(c) => c,
            Err(e) => {
                return match Error::from_engine("inspect container", e) {
                    Error::NotFound { .. } => Ok(None),
                    other => Err(other),
                }
            }
        };
        let config = c.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        if labels.get(LABEL_MANAGED).map(String::as_str) != Some("true")
            || labels.get(LABEL_INSTALL) != Some(&self.install)
        {
            return Ok(None);
        }
        let state = c
            .state
            .and_then(|s| s.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let net = c.network_settings.unwrap_or_default();
        let published = net
            .ports
            .unwrap_or_default()
            .into_values()
            .flatten()
            .flatten()
            .find_map(|b| b.host_port.and_then(|p| p.parse().ok()));
        let ip = net.networks.and_then(|nets| first_ip(nets.into_values()));
        let created = c
            .created
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp())
            .unwrap_or_default();
        Ok(Some(observed(
            c.id.unwrap_or_default(),
            c.name.as_deref(),
            &labels,
            state.clone(),
            state,
            published,
            config.image.unwrap_or_default(),
            created,
            ip,
            &self.cluster,
        ))
        .filter(|o| o.cluster == self.cluster))
    }

    /// The engine's events about this install's containers from `since` (seconds since the
    /// epoch; the engine replays what it still has), then live, until the connection ends.
    pub fn container_events(
        &self,
        since: Option<i64>,
    ) -> Pin<Box<dyn Stream<Item = Result<ContainerEvent, Error>> + Send>> {
        let mut filters = self.owned_filter(None);
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        let mut opts = EventsOptionsBuilder::new().filters(&filters);
        if let Some(s) = since {
            opts = opts.since(&s.to_string());
        }
        Box::pin(
            self.docker
                .events(Some(opts.build()))
                .filter_map(|e| async move {
                    match e {
                        Ok(m) => {
                            let id = m.actor.and_then(|a| a.id)?;
                            Some(Ok(ContainerEvent {
                                id,
                                action: m.action.unwrap_or_default(),
                                time: m.time.unwrap_or_default(),
                            }))
                        }
                        Err(e) => Some(Err(Error::from_engine("follow engine events", e))),
                    }
                }),
        )
    }

    /// Inspects one container.
    pub async fn inspect(&self, id: &str) -> Result<Inspected, Error> {
        let c = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|s| Error::from_engine("inspect container", s))?;
        let ip = c
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|nets| first_ip(nets.into_values()));
        let state = c.state.unwrap_or_default();
        Ok(Inspected {
            ip,
            started_at: state
                .started_at
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .filter(|t| t.timestamp() > 0),
            restart_count: c.restart_count.unwrap_or_default(),
            exit_code: state.exit_code,
            running: state.running.unwrap_or(false),
        })
    }

    /// Creates and starts a replica. If the start fails the container is removed again, so a
    /// failure never leaves an orphan.
    pub async fn run(&self, spec: &ContainerSpec) -> Result<String, Error> {
        let port_key = format!("{}/tcp", spec.app_port);
        let mut labels = self.owned_labels(spec.app_id, &spec.app_name);
        labels.insert(LABEL_RELEASE.to_owned(), spec.release.to_string());
        labels.insert(LABEL_REPLICA.to_owned(), spec.replica.to_string());
        labels.insert(LABEL_PORT.to_owned(), spec.host_port.to_string());
        labels.insert(LABEL_CLUSTER.to_owned(), self.cluster.clone());
        let host_config = HostConfig {
            port_bindings: Some(HashMap::from([(
                port_key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(spec.host_port.to_string()),
                }]),
            )])),
            memory: Some(spec.memory_bytes),
            nano_cpus: Some(spec.nano_cpus),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(5),
            }),
            device_requests: gpu_request(spec.gpus),
            ..confined(&spec.cap_add, spec.read_only)
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            cmd: spec.command.clone(),
            labels: Some(labels),
            exposed_ports: Some(vec![port_key]),
            host_config: Some(host_config),
            ..Default::default()
        };
        self.create_and_start(&spec.name, body).await
    }

    /// Creates a container named `name` and starts it; one that cannot start is removed again,
    /// so a failure never leaves an orphan. Returns its id.
    pub(crate) async fn create_and_start(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, Error> {
        let opts = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|s| Error::from_engine("create container", s))?;
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            let _ = self.remove(&created.id).await;
            return Err(Error::from_engine("start container", e));
        }
        Ok(created.id)
    }

    /// One reading of a container's CPU and memory use (no waiting: the caller computes rates
    /// from two readings).
    pub async fn usage(&self, id: &str) -> Result<Usage, Error> {
        let opts = bollard::query_parameters::StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stream = self.docker.stats(id, Some(opts));
        let Some(item) = stream.next().await else {
            return Err(Error::NotFound {
                step: "read container stats",
                message: format!("no stats for {id}"),
            });
        };
        let s = item.map_err(|e| Error::from_engine("read container stats", e))?;
        let cpu = s
            .cpu_stats
            .and_then(|c| c.cpu_usage)
            .and_then(|u| u.total_usage)
            .unwrap_or(0);
        let mem = s.memory_stats.unwrap_or_default();
        let cache = mem
            .stats
            .as_ref()
            .and_then(|m| m.get("inactive_file").or_else(|| m.get("cache")).copied())
            .unwrap_or(0);
        Ok(Usage {
            cpu_total_ns: cpu,
            memory_bytes: mem.usage.unwrap_or(0).saturating_sub(cache),
            memory_limit: mem.limit.unwrap_or(0),
        })
    }

    /// Starts an existing container.
    pub async fn start(&self, id: &str) -> Result<(), Error> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|s| Error::from_engine("start container", s))
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace_secs`.
    pub async fn stop(&self, id: &str, grace_secs: i32) -> Result<(), Error> {
        let opts = StopContainerOptionsBuilder::new().t(grace_secs).build();
        match self.docker.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(Error::from_engine("stop container", e)),
        }
    }

    /// Removes a container (killing it if it runs). A missing container is not an error.
    pub async fn remove(&self, id: &str) -> Result<(), Error> {
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) => match Error::from_engine("remove container", e) {
                Error::NotFound { .. } => Ok(()),
                // 409: removal already in progress.
                Error::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// A container's log, merged stdout and stderr, as lines. `tail` is a count or `all`.
    pub fn logs(&self, id: &str, tail: &str, follow: bool) -> LineStream {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(tail)
            .build();
        let stream = self.docker.logs(id, Some(opts)).map(|item| match item {
            Ok(out) => Ok(String::from_utf8_lossy(&out.into_bytes()).into_owned()),
            Err(e) => Err(Error::from_engine("read container logs", e)),
        });
        Box::pin(stream)
    }

    /// Looks an image up locally; `Ok(None)` if the engine does not have it.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, Error> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(ImageInfo {
                id: i.id.unwrap_or_default(),
                exposed_ports: i.config.and_then(|c| c.exposed_ports).unwrap_or_default(),
            })),
            Err(e) => match Error::from_engine("inspect image", e) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Copies an image from this engine to `to` (`docker save | docker load`, streamed: the
    /// image is never held in memory whole), unless `to` has it already. Ids survive the copy,
    /// so the image is run there by the same `sha256:` id.
    pub async fn copy_image(&self, image: &str, to: &Runtime) -> Result<(), Error> {
        if to.image(image).await?.is_some() {
            return Ok(());
        }
        // The export is read by a task of its own into a small channel the import drains.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
        let from = self.docker.clone();
        let name = image.to_owned();
        let reader = tokio::spawn(async move {
            let mut chunks = std::pin::pin!(from.export_image(&name));
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| std::io::Error::other(engine_message(&e)));
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        let export =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
            );
        let opts = bollard::query_parameters::ImportImageOptionsBuilder::default().build();
        let mut progress = to.docker.import_image_stream(opts, export, None);
        while let Some(item) = progress.next().await {
            let info = item.map_err(|e| Error::Build {
                message: format!(
                    "copy image {image} to cluster {}: {}",
                    to.cluster,
                    engine_message(&e)
                ),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(Error::Build {
                    message: format!(
                        "copy image {image} to cluster {}: {}",
                        to.cluster,
                        detail.message.unwrap_or_default()
                    ),
                });
            }
        }
        reader.abort();
        match to.image(image).await? {
            Some(_) => Ok(()),
            None => Err(Error::Build {
                message: format!(
                    "copy image {image} to cluster {}: the engine loaded nothing",
                    to.cluster
                ),
            }),
        }
    }

    /// Pulls an image. On an engine without a registry this fails with the engine's reason.
    pub async fn pull(&self, reference: &str) -> Result<(), Error> {
        let (image, tag) = split_tag(reference);
        let opts = CreateImageOptionsBuilder::new()
            .from_image(image)
            .tag(tag)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| Error::Pull {
                image: reference.to_owned(),
                message: engine_message(&e),
            })?;
        }
        Ok(())
    }

    /// Builds an image from a build-context tarball on disk, streaming the file to the engine and
    /// handing every output line to `on_line` as it arrives. Returns the image id.
    pub async fn build(
        &self,
        context_tar: &Path,
        tag: &str,
        labels: &HashMap<String, String>,
        mut on_line: impl FnMut(&str) + Send,
    ) -> Result<String, Error> {
        let file = tokio::fs::File::open(context_tar)
            .await
            .map_err(|source| Error::Context { source })?;
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
        let opts = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(labels)
            .build();
        let mut progress = self.docker.build_image(opts, None, Some(body));
        let mut image_id = None;
        let mut last_lines: Vec<String> = Vec::new();
        while let Some(item) = progress.next().await {
            let info = match item {
                Ok(info) => info,
                Err(e) => {
                    let message = engine_message(&e);
                    on_line(&format!("error: {message}\n"));
                    return Err(Error::Build { message });
                }
            };
            if let Some(s) = info.stream.as_deref() {
                on_line(s);
                last_lines.push(s.to_owned());
            }
            if let Some(s) = info.status.as_deref() {
                on_line(&format!("{s}\n"));
            }
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_default();
                on_line(&format!("error: {message}\n"));
                return Err(Error::Build { message });
            }
            if let Some(aux) = info.aux.and_then(|a| a.id) {
                image_id = Some(aux);
            }
        }
        match image_id {
            Some(id) => Ok(id),
            None => match self.image(tag).await? {
                Some(i) => Ok(i.id),
                None => Err(Error::Build {
                    message: "the engine reported no image".to_owned(),
                }),
            },
        }
    }

    /// Every image racer built for `app` (by label).
    pub async fn images_of(
        &self,
        app: Option<Uuid>,
    ) -> Result<Vec<(String, Vec<String>, Option<Uuid>)>, Error> {
        let filters = self.owned_filter(app);
        let opts = ListImagesOptionsBuilder::new().filters(&filters).build();
        let list = self
            .docker
            .list_images(Some(opts))
            .await
            .map_err(|s| Error::from_engine("list images", s))?;
        Ok(list
            .into_iter()
            .map(|i| {
                let app = i
                    .labels
                    .get(LABEL_APP)
                    .and_then(|s| Uuid::parse_str(s).ok());
                (i.id, i.repo_tags, app)
            })
            .collect())
    }

    /// Removes an image by id or tag; a missing one is not an error.
    pub async fn remove_image(&self, reference: &str) -> Result<(), Error> {
        let opts = RemoveImageOptionsBuilder::new().force(true).build();
        match self.docker.remove_image(reference, Some(opts), None).await {
            Ok(_) => Ok(()),
            Err(e) => match Error::from_engine("remove image", e) {
                Error::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}

fn split_tag(reference: &str) -> (&str, &str) {
    // The tag follows the last ':' after the last '/', if any (a registry port is not a tag).
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    }
}

fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("busybox"), ("busybox", "latest"));
        assert_eq!(split_tag("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", "latest")
        );
        assert_eq!(
            split_tag("localhost:5000/app:v2"),
            ("localhost:5000/app", "v2")
        );
    }
}
