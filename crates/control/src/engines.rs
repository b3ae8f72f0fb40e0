//! The engines of the clusters work is placed on (issue 14), as the loops use them.
//!
//! `local` is the server's own engine: [`crate::Ctx::runtime`], observed from its event stream
//! by [`crate::observe`]. Every cluster added with `racerctl clusters add` is another Docker
//! engine, reached by a handle of its own and listed once per reconcile pass (no event stream
//! is followed there: the periodic resync finds what changed). The records (drained, labels,
//! declared capacity) are read from the store at most once a second; what an engine holds is
//! read from it (`NCPU`, `MemTotal`) unless declared, again every minute.
//!
//! An engine recorded with TLS files (`racerctl clusters add --tls-ca … --tls-cert … --tls-key
//! …`) is reached over mutual TLS; the files are read when its handle is made, in every process
//! that makes one (server and workers alike), so they must be readable there at the same path.
//!
//! An engine that does not answer keeps its last list (its replicas are not started twice
//! elsewhere because of one failed read) and is unreachable to the scheduler: nothing new is
//! placed there.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use racer_core::api::ClusterTls;
use racer_core::placement;
use racer_runtime::{EngineFacts, Observed, Runtime, LOCAL};
use racer_store::ClusterRecord;
use uuid::Uuid;

use crate::{Ctx, Error};

/// How long an engine gets to answer a list or a facts read.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// How often cluster records are read again.
const RECORDS_EVERY: Duration = Duration::from_secs(1);
/// How often an engine's capacity is read again.
const FACTS_EVERY: Duration = Duration::from_secs(60);

/// The clusters' engines.
#[derive(Debug, Default)]
pub struct Engines {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    read_at: Option<Instant>,
    records: Vec<ClusterRecord>,
    remote: HashMap<String, Remote>,
    facts: HashMap<String, (Option<EngineFacts>, Instant)>,
    /// Why a cluster's engine could not be opened, as last said (said again only when it
    /// changes, not at every read of the records).
    failed: HashMap<String, String>,
}

#[derive(Debug, Clone)]
struct Remote {
    host: String,
    tls: Option<ClusterTls>,
    runtime: Runtime,
    last: Vec<Observed>,
    reachable: bool,
}

/// A handle on a cluster's engine at `host`, over mutual TLS when `tls` names the files (read
/// and checked now; a bad one is [`racer_runtime::Error::Tls`], naming it).
pub(crate) fn connect(
    host: &str,
    tls: Option<&ClusterTls>,
) -> Result<Runtime, racer_runtime::Error> {
    match tls {
        None => Runtime::connect_to(host),
        Some(t) => Runtime::connect_to_tls(
            host,
            std::path::Path::new(&t.ca),
            std::path::Path::new(&t.cert),
            std::path::Path::new(&t.key),
        ),
    }
}

impl Engines {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the cluster records again when the last read is older than a second (or `force`),
    /// connecting to engines added since and forgetting removed ones.
    pub async fn refresh(&self, ctx: &Ctx, force: bool) -> Result<(), Error> {
        let due = force
            || self
                .lock()
                .read_at
                .is_none_or(|t| t.elapsed() >= RECORDS_EVERY);
        if !due {
            return Ok(());
        }
        let records = ctx.store.clusters().list().await?;
        let mut s = self.lock();
        s.read_at = Some(Instant::now());
        let names: HashSet<&str> = records.iter().map(|r| r.name.as_str()).collect();
        s.remote.retain(|n, _| names.contains(n.as_str()));
        s.facts
            .retain(|n, _| names.contains(n.as_str()) || n == LOCAL);
        s.failed.retain(|n, _| names.contains(n.as_str()));
        for r in &records {
            let Some(host) = r.docker_host.as_deref() else {
                continue;
            };
            if s.remote
                .get(&r.name)
                .is_some_and(|e| e.host == host && e.tls == r.tls)
            {
                continue;
            }
            match connect(host, r.tls.as_ref()) {
                Ok(rt) => {
                    let runtime = rt.for_install(ctx.runtime.install()).for_cluster(&r.name);
                    s.remote.insert(
                        r.name.clone(),
                        Remote {
                            host: host.to_owned(),
                            tls: r.tls.clone(),
                            runtime,
                            last: Vec::new(),
                            reachable: false,
                        },
                    );
                    s.facts.remove(&r.name);
                    s.failed.remove(&r.name);
                }
                Err(e) => {
                    // Paths and what is wrong with a file only: never a key's contents.
                    let why = racer_core::error_chain(&e);
                    if s.failed.get(&r.name) != Some(&why) {
                        tracing::warn!(cluster = %r.name, error = %why, "cannot open the cluster's engine; nothing is placed there until it can be");
                        s.failed.insert(r.name.clone(), why);
                    }
                }
            }
        }
        s.records = records;
        Ok(())
    }

    /// The engine of `cluster`.
    pub fn runtime(&self, ctx: &Ctx, cluster: &str) -> Result<Runtime, Error> {
        if cluster == LOCAL || cluster.is_empty() {
            return Ok(ctx.runtime.clone());
        }
        self.lock()
            .remote
            .get(cluster)
            .map(|r| r.runtime.clone())
            .ok_or_else(|| {
                Error::refused(
                    racer_core::ErrorKind::NotFound,
                    format!("cluster {cluster} is not known (racerctl clusters list)"),
                )
            })
    }

    /// What every other cluster runs of this install (`app`'s only, when given), listed now,
    /// concurrently; an engine that does not answer within 3 s gives its last list and is
    /// unreachable until it answers again.
    pub async fn observe_remote(&self, app: Option<Uuid>) -> Vec<Observed> {
        let remotes: Vec<(String, Runtime)> = self
            .lock()
            .remote
            .iter()
            .map(|(n, r)| (n.clone(), r.runtime.clone()))
            .collect();
        let lists =
            futures_util::future::join_all(remotes.into_iter().map(|(name, rt)| async move {
                let listed = tokio::time::timeout(ANSWER_WITHIN, rt.list(app)).await;
                (name, listed)
            }))
            .await;
        let mut s = self.lock();
        let mut all = Vec::new();
        for (name, listed) in lists {
            let Some(r) = s.remote.get_mut(&name) else {
                continue;
            };
            match listed {
                Ok(Ok(list)) => {
                    r.reachable = true;
                    if app.is_none() {
                        r.last = list.clone();
                    }
                    all.extend(list);
                }
                Ok(Err(e)) => {
                    if r.reachable {
                        tracing::warn!(cluster = %name, error = %e, "cluster does not answer; nothing is placed there until it does");
                    }
                    r.reachable = false;
                    all.extend(
                        r.last
                            .iter()
                            .filter(|c| app.is_none_or(|a| c.app_id == Some(a)))
                            .cloned(),
                    );
                }
                Err(_) => {
                    r.reachable = false;
                    all.extend(
                        r.last
                            .iter()
                            .filter(|c| app.is_none_or(|a| c.app_id == Some(a)))
                            .cloned(),
                    );
                }
            }
        }
        all
    }

    /// Every container of the install on every cluster (`app`'s only, when given), listed now.
    pub async fn list_all(&self, ctx: &Ctx, app: Option<Uuid>) -> Result<Vec<Observed>, Error> {
        self.refresh(ctx, false).await?;
        let mut all = ctx.runtime.list(app).await?;
        all.extend(self.observe_remote(app).await);
        Ok(all)
    }

    /// The clusters that are drained.
    pub fn drained(&self) -> HashSet<String> {
        self.lock()
            .records
            .iter()
            .filter(|r| r.drained)
            .map(|r| r.name.clone())
            .collect()
    }

    /// Every cluster as the scheduler sees it, in the records' order: capacity as declared or
    /// read from the engine (read again every minute), drained, labels, reachable (an engine
    /// whose capacity cannot be known is not).
    pub async fn clusters(&self, ctx: &Ctx) -> Vec<placement::Cluster> {
        let (records, stale): (Vec<ClusterRecord>, Vec<(String, Runtime)>) = {
            let s = self.lock();
            let stale = s
                .records
                .iter()
                .filter(|r| {
                    s.facts
                        .get(&r.name)
                        .is_none_or(|(f, t)| f.is_none() || t.elapsed() >= FACTS_EVERY)
                })
                .filter_map(|r| {
                    let rt = if r.name == LOCAL {
                        Some(ctx.runtime.clone())
                    } else {
                        s.remote.get(&r.name).map(|e| e.runtime.clone())
                    };
                    rt.map(|rt| (r.name.clone(), rt))
                })
                .collect();
            (s.records.clone(), stale)
        };
        let read = futures_util::future::join_all(stale.into_iter().map(|(name, rt)| async move {
            let facts = tokio::time::timeout(ANSWER_WITHIN, rt.facts()).await;
            (name, facts.ok().and_then(Result::ok))
        }))
        .await;
        let mut s = self.lock();
        for (name, facts) in read {
            s.facts.insert(name, (facts, Instant::now()));
        }
        records
            .into_iter()
            .map(|r| {
                let facts = s.facts.get(&r.name).and_then(|(f, _)| f.clone());
                let reachable = if r.name == LOCAL {
                    true
                } else {
                    s.remote.get(&r.name).is_some_and(|e| e.reachable)
                };
                let cpu = r.cpu_milli.or(facts.as_ref().map(|f| f.cpus * 1000));
                let mem = r.memory_mb.or(facts.as_ref().map(|f| f.memory_bytes >> 20));
                let capacity = placement::Resources::new(cpu.unwrap_or(0), mem.unwrap_or(0), r.gpu);
                placement::Cluster {
                    name: r.name,
                    capacity,
                    allocated: placement::Resources::default(),
                    labels: r.labels,
                    drained: r.drained,
                    reachable: reachable && cpu.is_some() && mem.is_some(),
                }
            })
            .collect()
    }
}
