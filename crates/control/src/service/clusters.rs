//! The clusters racer places work on (issue 14): add, list, show, drain, undrain, remove.
//!
//! A cluster is a Docker engine. Its capacity is read from the engine (`NCPU`, `MemTotal`)
//! unless declared; whether it answers is asked at every read, so an engine that went away shows
//! as `unreachable` with the engine's error.

use std::collections::BTreeMap;
use std::time::Duration;

use racer_core::api::{Capacity, ClusterInfo, NewCluster, LOCAL_CLUSTER};
use racer_core::ErrorKind;
use racer_runtime::Runtime;
use racer_store::{ClusterRecord, NewEvent};

use super::{Caller, Services};
use crate::Error;

/// How long a cluster's engine gets to answer a read.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

impl Services {
    /// The engine of a cluster record: the server's own for `local`.
    fn cluster_runtime(&self, c: &ClusterRecord) -> Result<Runtime, Error> {
        match &c.docker_host {
            None => Ok(self.engine()?.runtime.clone()),
            Some(host) => Ok(crate::engines::connect(host, c.tls.as_ref())?
                .for_install(self.install_id().as_deref().unwrap_or_default())),
        }
    }

    /// A cluster record with what its engine says now.
    async fn cluster_info(&self, c: ClusterRecord) -> ClusterInfo {
        self.probe_cluster(c, true).await
    }

    /// A cluster record with what its engine says now; its running containers are counted
    /// only when `count` (a list of the engine's containers).
    async fn probe_cluster(&self, c: ClusterRecord, count: bool) -> ClusterInfo {
        let probe = async {
            let rt = self.cluster_runtime(&c)?;
            let facts = rt.facts().await?;
            let running = if count {
                rt.list(None)
                    .await?
                    .into_iter()
                    .filter(|o| o.state == "running")
                    .count()
            } else {
                0
            };
            Ok::<_, Error>((facts, running))
        };
        let answer = tokio::time::timeout(PROBE_TIMEOUT, probe)
            .await
            .unwrap_or_else(|_| {
                Err(Error::refused(
                    ErrorKind::Unavailable,
                    format!(
                        "the engine did not answer within {}s",
                        PROBE_TIMEOUT.as_secs()
                    ),
                ))
            });
        let mut source = BTreeMap::new();
        let declared = |v: Option<u64>, dim: &str, source: &mut BTreeMap<String, String>| {
            source.insert(
                dim.to_owned(),
                if v.is_some() { "declared" } else { "engine" }.to_owned(),
            );
        };
        declared(c.cpu_milli, "cpu", &mut source);
        declared(c.memory_mb, "memory", &mut source);
        source.insert("gpu".to_owned(), "declared".to_owned());
        let (state, error, capacity, version, containers) = match answer {
            Ok((facts, running)) => (
                if c.drained { "drained" } else { "ready" },
                None,
                Some(Capacity {
                    cpu_milli: c.cpu_milli.unwrap_or(facts.cpus * 1000),
                    memory_mb: c.memory_mb.unwrap_or(facts.memory_bytes >> 20),
                    gpu: c.gpu,
                }),
                Some(facts.version),
                running as u64,
            ),
            Err(e) => (
                "unreachable",
                Some(e.source_chain()),
                // What was declared is still known.
                match (c.cpu_milli, c.memory_mb) {
                    (Some(cpu_milli), Some(memory_mb)) => Some(Capacity {
                        cpu_milli,
                        memory_mb,
                        gpu: c.gpu,
                    }),
                    _ => None,
                },
                None,
                0,
            ),
        };
        ClusterInfo {
            name: c.name,
            docker_host: c.docker_host,
            tls: c.tls,
            swarm: c.swarm,
            labels: c.labels,
            drained: c.drained,
            state: state.to_owned(),
            error,
            capacity,
            capacity_source: source,
            engine_version: version,
            containers,
        }
    }

    /// Every cluster with its state now (the engines are asked concurrently).
    pub async fn clusters(&self) -> Result<Vec<ClusterInfo>, Error> {
        let records = self.store().clusters().list().await?;
        Ok(futures_util::future::join_all(records.into_iter().map(|c| self.cluster_info(c))).await)
    }

    /// One cluster with its state now.
    pub async fn cluster(&self, name: &str) -> Result<ClusterInfo, Error> {
        let c = self.store().clusters().get(name).await?;
        Ok(self.cluster_info(c).await)
    }

    /// The work waiting and running: the build queue (deployments) and the job queue by kind.
    pub async fn queue_status(&self) -> Result<Vec<racer_core::api::QueueKind>, Error> {
        let (pending, building, failed) = self.store().deployments().build_counts().await?;
        let mut kinds = vec![racer_core::api::QueueKind {
            kind: "build".into(),
            pending,
            running: building,
            failed,
            ..Default::default()
        }];
        for k in self.store().jobs().counts().await? {
            kinds.push(racer_core::api::QueueKind {
                kind: k.kind,
                pending: k.pending,
                running: k.running,
                deferred: k.deferred,
                failed: k.failed,
                dead: k.dead,
            });
        }
        Ok(kinds)
    }

    /// Refuses a request no cluster could ever hold, whatever runs (issue 14), naming the
    /// config field and what the largest cluster has. Clusters whose capacity is unknown (an
    /// unreachable engine with nothing declared) might hold it: then nothing is refused.
    pub(crate) async fn check_placeable(
        &self,
        ctx: &crate::Ctx,
        config: &racer_core::api::RunConfig,
    ) -> Result<(), Error> {
        use racer_core::placement::{never_fits, Cluster, Resources};
        let request = crate::schedule::request_of(ctx, config);
        let records = self.store().clusters().list().await?;
        let infos = futures_util::future::join_all(
            records.into_iter().map(|c| self.probe_cluster(c, false)),
        )
        .await;
        let mut clusters = Vec::with_capacity(infos.len());
        for c in infos {
            let Some(cap) = c.capacity else {
                return Ok(());
            };
            clusters.push(Cluster {
                name: c.name,
                capacity: Resources::new(cap.cpu_milli, cap.memory_mb, cap.gpu),
                allocated: Resources::default(),
                labels: c.labels,
                drained: false,
                reachable: true,
            });
        }
        match never_fits(&clusters, &request) {
            None => Ok(()),
            Some((dim, why)) => {
                let field = match dim {
                    "cpu" => "config.cpus",
                    "memory" => "config.memory_mb",
                    "gpu" => "config.gpu",
                    "cluster" => "config.cluster",
                    _ => "config",
                };
                Err(Error::invalid(format!(
                    "no cluster could ever run one replica of this: {why}; ask for less, or add a cluster that has it (racerctl clusters add)"
                ))
                .at(field))
            }
        }
    }

    /// Adds a cluster: the engine must answer (a typo in a socket path is said at once); over
    /// TLS when the three files are given, each read and checked first (a bad one is refused
    /// naming its field).
    pub async fn add_cluster(
        &self,
        caller: &Caller,
        req: &NewCluster,
    ) -> Result<ClusterInfo, Error> {
        let (cpu_milli, memory_mb) = req.check()?;
        let tls = req.tls()?;
        if req.name == LOCAL_CLUSTER {
            return Err(Error::refused(
                ErrorKind::Conflict,
                "local is the server's own engine and always exists; give this cluster another name",
            )
            .at("name"));
        }
        let unreachable = |why: &str| {
            let hint = if tls.is_some() {
                "check that it runs, that its certificate is signed by --tls-ca and names the address, and that it trusts the CA of --tls-cert (dockerd --tlsverify --tlscacert)"
            } else if req.docker_host.starts_with("tcp://") {
                "check that it runs and listens there; an engine started with --tlsverify needs --tls-ca, --tls-cert and --tls-key"
            } else {
                "check that it runs and that this server may open it"
            };
            Error::invalid(format!(
                "cannot reach the engine at {}{}: {}; {hint}",
                req.docker_host,
                if tls.is_some() { " over TLS" } else { "" },
                why.trim_end(),
            ))
            .at("docker_host")
        };
        // A TLS file that cannot be used is the fault of its own field.
        if let Err(e) = crate::engines::connect(&req.docker_host, tls.as_ref()) {
            if let racer_runtime::Error::Tls { file, .. } = &e {
                return Err(Error::invalid(e.to_string()).at(file.field()));
            }
            return Err(unreachable(&racer_core::error_chain(&e)));
        }
        let record = ClusterRecord {
            name: req.name.clone(),
            docker_host: Some(req.docker_host.clone()),
            tls: tls.clone(),
            swarm: req.swarm,
            cpu_milli,
            memory_mb,
            gpu: req.gpu,
            labels: req.labels.clone(),
            drained: false,
        };
        let probe = self.cluster_info(record.clone()).await;
        if let Some(e) = &probe.error {
            return Err(unreachable(e));
        }
        self.store().clusters().create(&record).await?;
        self.event(NewEvent {
            actor: caller.actor.clone(),
            kind: "cluster.added".into(),
            app_id: None,
            app_name: None,
            message: format!(
                "cluster {} added ({}{})",
                req.name,
                req.docker_host,
                if tls.is_some() { ", TLS" } else { "" }
            ),
            org: None,
        })
        .await;
        Ok(probe)
    }

    /// Drains a cluster (`true`: nothing new is placed there) or undrains it.
    pub async fn drain_cluster(
        &self,
        caller: &Caller,
        name: &str,
        drained: bool,
    ) -> Result<ClusterInfo, Error> {
        let c = self.store().clusters().set_drained(name, drained).await?;
        self.event(NewEvent {
            actor: caller.actor.clone(),
            kind: if drained {
                "cluster.drained"
            } else {
                "cluster.undrained"
            }
            .into(),
            app_id: None,
            app_name: None,
            message: format!(
                "cluster {name} {}",
                if drained { "drained" } else { "undrained" }
            ),
            org: None,
        })
        .await;
        Ok(self.cluster_info(c).await)
    }

    /// Removes a cluster (and returns it as it was); refused for `local`, while this install
    /// runs anything there, and, when its engine does not answer, until it is drained.
    pub async fn remove_cluster(&self, caller: &Caller, name: &str) -> Result<ClusterInfo, Error> {
        if name == LOCAL_CLUSTER {
            return Err(Error::refused(
                ErrorKind::Conflict,
                "local is the server's own engine and cannot be removed (drain it instead)",
            ));
        }
        let c = self.store().clusters().get(name).await?;
        let drained = c.drained;
        let info = self.cluster_info(c).await;
        if info.error.is_some() && !drained {
            return Err(Error::refused(
                ErrorKind::Conflict,
                format!(
                    "cluster {name} does not answer, so racer cannot tell whether anything still runs there; drain it first (racerctl clusters drain {name}), then remove it"
                ),
            ));
        }
        if info.containers > 0 {
            return Err(Error::refused(
                ErrorKind::Conflict,
                format!(
                    "cluster {name} still runs {} container(s) of this install: drain it (racerctl clusters drain {name}) and wait until it is empty",
                    info.containers
                ),
            ));
        }
        self.store().clusters().delete(name).await?;
        self.event(NewEvent {
            actor: caller.actor.clone(),
            kind: "cluster.removed".into(),
            app_id: None,
            app_name: None,
            message: format!("cluster {name} removed"),
            org: None,
        })
        .await;
        Ok(info)
    }
}
