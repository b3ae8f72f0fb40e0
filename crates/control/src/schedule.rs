//! The scheduler (issue 14): where each replica a reconcile pass wants started runs, and whom
//! it preempts when nothing has room.
//!
//! Once every due app was looked at, the pass hands its wanted replicas to [`place_all`]:
//! highest priority first, then the oldest app. Each goes through [`racer_core::placement`]:
//! `place` over every cluster (capacity less what the replicas there request, drained and
//! unreachable ones left out). When nothing has room but replicas that are leaving (draining,
//! preempted) would make it, the request keeps that room and waits for them. Otherwise
//! `preempt` picks the fewest strictly-lower-priority replicas on one cluster: they are marked
//! (their app's reconcile drains them out of rotation like a scale-in, then removes them), an
//! event names the preemptor, and a `requeue` job in the durable queue holds their
//! replacement back for a delay that doubles with each preemption of the app (capped).
//!
//! One pass places at a time (the reconcile lease makes it one server's), and every decision
//! counts what the pass already placed, so no cluster is ever given more than it holds.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use racer_core::api::{Release, RunConfig};
use racer_core::placement::{self, Allocation, Request, Resources};
use racer_runtime::{ContainerSpec, Observed};
use uuid::Uuid;

use crate::{Ctx, Error};

/// The first re-queue delay of a preempted app; it doubles with each preemption.
pub const REQUEUE_BASE: Duration = Duration::from_secs(2);
/// The longest re-queue delay.
pub const REQUEUE_CAP: Duration = Duration::from_secs(300);
/// A preemption count older than this starts again from [`REQUEUE_BASE`].
const PREEMPTIONS_FORGOTTEN: Duration = Duration::from_secs(600);

/// The kind of the durable jobs that hold a preempted app's replacement back.
pub const REQUEUE_KIND: &str = "requeue";

/// A replica a reconcile wants started: its container (host port picked) and what it asks of
/// a cluster.
pub struct Want {
    /// The app's name.
    pub app: String,
    /// The app's id.
    pub app_id: Uuid,
    /// When the app was created (older apps go first among equal priorities).
    pub app_created: chrono::DateTime<chrono::Utc>,
    /// The container.
    pub spec: ContainerSpec,
    /// Its requests, priority, pinned cluster and strategy.
    pub request: Request,
}

/// A replica placed on a cluster, to start.
pub struct Start {
    /// The app's name.
    pub app: String,
    /// The app's id.
    pub app_id: Uuid,
    /// The container.
    pub spec: ContainerSpec,
    /// Where.
    pub cluster: String,
}

/// What the scheduler keeps between passes: how often each app was preempted lately.
#[derive(Debug, Default)]
pub struct Memory {
    preemptions: HashMap<Uuid, (u32, Instant)>,
}

impl Memory {
    /// Counts one more preemption of `app`; returns its re-queue delay.
    fn preempted(&mut self, app: Uuid) -> (u32, Duration) {
        let e = self.preemptions.entry(app).or_insert((0, Instant::now()));
        if e.1.elapsed() > PREEMPTIONS_FORGOTTEN {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
        (e.0, requeue_delay(e.0))
    }
}

/// The re-queue delay after the `n`th preemption (1-based): [`REQUEUE_BASE`] doubled each
/// time, at most [`REQUEUE_CAP`].
pub fn requeue_delay(n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(16);
    REQUEUE_BASE.saturating_mul(factor).min(REQUEUE_CAP)
}

/// What a replica of `config` asks of a cluster: the CPU and memory the app sets (which are
/// also its limits), else the server's default requests, which are smaller than its default
/// limits (as a Kubernetes LimitRange's `defaultRequest` and `default`): an app that says
/// nothing may burst to the limit, but is counted as what such apps typically use, so a
/// two-core machine still runs more than two of them.
pub fn request_of(ctx: &Ctx, config: &RunConfig) -> Request {
    let cpus = config.cpus.unwrap_or(ctx.settings.default_request_cpus);
    let memory_mb = config
        .memory_mb
        .unwrap_or(ctx.settings.default_request_memory_mb);
    Request {
        resources: Resources::new(
            (cpus * 1000.0).round() as u64,
            u64::from(memory_mb),
            u64::from(config.gpu.unwrap_or(0)),
        ),
        priority: config.priority.unwrap_or(placement::DEFAULT_PRIORITY),
        labels: Default::default(),
        cluster: config.cluster.clone(),
        strategy: config
            .placement
            .as_deref()
            .and_then(placement::Strategy::parse)
            .unwrap_or_default(),
    }
}

/// Whether a container holds its requests: it exists and has not stopped.
fn holds(c: &Observed) -> bool {
    !matches!(c.state.as_str(), "exited" | "dead" | "removing")
}

/// A running replica that could be preempted.
struct Held<'a> {
    alloc: Allocation,
    c: &'a Observed,
}

/// Places the wanted replicas (see the module's text) and returns those to start, each with
/// its cluster. Why the others wait is published in [`crate::Ctx::waiting`].
pub async fn place_all(
    ctx: &Ctx,
    releases: &mut Releases,
    memory: &mut Memory,
    mut wants: Vec<Want>,
    observed: &[Observed],
) -> Vec<Start> {
    if wants.is_empty() {
        return Vec::new();
    }
    if let Err(e) = ctx.engines.refresh(ctx, false).await {
        tracing::warn!(error = %e.chain(), "cannot read the clusters; using the last known");
    }
    let mut clusters = ctx.engines.clusters(ctx).await;
    let index: HashMap<String, usize> = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    let mut leaving: HashSet<String> = ctx.draining.ids();
    leaving.extend(ctx.preempted.ids());
    // `clusters`: what is held now; `soon`: once the leaving replicas are gone.
    let mut soon = clusters.clone();
    let mut held: Vec<Held<'_>> = Vec::new();
    for c in observed.iter().filter(|c| holds(c)) {
        let Some(&ci) = index.get(&c.cluster) else {
            continue;
        };
        let request = match (c.app_id, c.release) {
            (Some(app), Some(n)) => match releases.get(ctx, app, n).await {
                Ok(r) => request_of(ctx, &r.config),
                Err(_) => request_of(ctx, &RunConfig::default()),
            },
            _ => request_of(ctx, &RunConfig::default()),
        };
        clusters[ci].allocated = clusters[ci].allocated.plus(request.resources);
        if leaving.contains(&c.id) {
            continue;
        }
        soon[ci].allocated = soon[ci].allocated.plus(request.resources);
        held.push(Held {
            alloc: Allocation {
                cluster: ci,
                resources: request.resources,
                priority: request.priority,
                started: u64::try_from(c.created).unwrap_or(0),
            },
            c,
        });
    }
    let deferred = deferrals(ctx).await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    wants.sort_by(|a, b| {
        b.request
            .priority
            .cmp(&a.request.priority)
            .then(a.app_created.cmp(&b.app_created))
            .then(a.spec.replica.cmp(&b.spec.replica))
    });
    let mut starts = Vec::new();
    let mut waiting: HashMap<Uuid, String> = HashMap::new();
    let mut victims: Vec<(Observed, u8, &Want)> = Vec::new();
    let apps: HashSet<Uuid> = wants.iter().map(|w| w.app_id).collect();
    for w in &wants {
        let r = &w.request;
        if let Some(until) = deferred.get(&w.app_id).filter(|t| **t > now_ms) {
            waiting.insert(
                w.app_id,
                format!(
                    "preempted; re-queued: placed again in {:.0}s",
                    ((until - now_ms) as f64 / 1000.0).ceil()
                ),
            );
            continue;
        }
        if let Ok(ci) = placement::place(&clusters, r) {
            clusters[ci].allocated = clusters[ci].allocated.plus(r.resources);
            soon[ci].allocated = soon[ci].allocated.plus(r.resources);
            starts.push(Start {
                app: w.app.clone(),
                app_id: w.app_id,
                spec: w.spec.clone(),
                cluster: clusters[ci].name.clone(),
            });
            continue;
        }
        // Room being made by replicas on their way out: keep it, and wait for them.
        if let Ok(ci) = placement::place(&soon, r) {
            soon[ci].allocated = soon[ci].allocated.plus(r.resources);
            clusters[ci].allocated = clusters[ci].allocated.plus(r.resources);
            waiting.insert(
                w.app_id,
                format!(
                    "waits for replicas leaving cluster {} to make room",
                    soon[ci].name
                ),
            );
            continue;
        }
        let allocs: Vec<Allocation> = held.iter().map(|h| h.alloc.clone()).collect();
        match placement::preempt(&soon, &allocs, r) {
            Some(p) => {
                let ci = p.cluster;
                let mut gone: Vec<usize> = p.victims.clone();
                gone.sort_unstable();
                for &v in gone.iter().rev() {
                    let h = held.remove(v);
                    soon[ci].allocated = soon[ci].allocated.minus(h.alloc.resources);
                    victims.push((h.c.clone(), h.alloc.priority, w));
                }
                soon[ci].allocated = soon[ci].allocated.plus(r.resources);
                clusters[ci].allocated = clusters[ci].allocated.plus(r.resources);
                waiting.insert(
                    w.app_id,
                    format!(
                        "preempting {} replica(s) of lower priority on cluster {} to make room",
                        p.victims.len(),
                        soon[ci].name
                    ),
                );
            }
            None => {
                let why = placement::place(&clusters, r).err().unwrap_or_default();
                waiting.insert(
                    w.app_id,
                    format!(
                        "{why} (asks {} millicores, {} MiB, {} GPU at priority {}; nothing of lower priority to preempt)",
                        r.resources.cpu_milli, r.resources.memory_mb, r.resources.gpu, r.priority
                    ),
                );
            }
        }
    }
    for app in apps {
        match waiting.remove(&app) {
            Some(why) => ctx.waiting.set(app, why),
            None => ctx.waiting.clear(app),
        }
    }
    for (victim, priority, by) in victims {
        preempt_one(ctx, memory, &victim, priority, by).await;
    }
    starts
}

/// Marks one victim: drained out of rotation by its app's next pass, an event naming the
/// preemptor, and a re-queue job holding its replacement back.
async fn preempt_one(ctx: &Ctx, memory: &mut Memory, c: &Observed, priority: u8, by: &Want) {
    let Some(app) = c.app_id else { return };
    let app_name = c.app_name.clone().unwrap_or_default();
    let (n, delay) = memory.preempted(app);
    tracing::info!(victim = %c.name, cluster = %c.cluster, by = %by.app, "preempting replica");
    ctx.preempted.mark(&c.id, &by.app);
    let mut job = racer_store::NewJob::new(
        REQUEUE_KIND,
        serde_json::json!({"app": app, "preemptions": n, "by": by.app, "replica": c.name})
            .to_string(),
    );
    job.delay = delay;
    job.priority = priority;
    if let Err(e) = ctx.store.jobs().enqueue(&job).await {
        tracing::warn!(error = %e, app = %app_name, "cannot queue the preempted app again; it is placed as soon as there is room");
    }
    let event = racer_store::NewEvent {
        actor: "scheduler".into(),
        kind: "replica.preempted".into(),
        app_id: Some(app),
        app_name: Some(app_name),
        message: format!(
            "replica {} on cluster {} (priority {priority}) preempted by {} (priority {}): it drains out of rotation, and its replacement is re-queued for {}s (preemption {n})",
            c.name,
            c.cluster,
            by.app,
            by.request.priority,
            delay.as_secs()
        ),
        org: None,
    };
    if let Err(e) = ctx.store.events().append(&event).await {
        tracing::warn!(error = %e, "cannot record the preemption event");
    }
    ctx.reconcile_wake.app(app);
}

/// When each app held back by a re-queue job may be placed again (ms since the epoch).
async fn deferrals(ctx: &Ctx) -> HashMap<Uuid, i64> {
    let mut until: HashMap<Uuid, i64> = HashMap::new();
    match ctx.store.jobs().pending(REQUEUE_KIND).await {
        Ok(jobs) => {
            for (payload, at) in jobs {
                let app = serde_json::from_str::<serde_json::Value>(&payload)
                    .ok()
                    .and_then(|v| v["app"].as_str().and_then(|s| Uuid::parse_str(s).ok()));
                if let Some(app) = app {
                    let t = until.entry(app).or_insert(at);
                    *t = (*t).max(at);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the re-queued apps"),
    }
    until
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requeue_delay_doubles_and_is_capped() {
        assert_eq!(requeue_delay(1), Duration::from_secs(2));
        assert_eq!(requeue_delay(2), Duration::from_secs(4));
        assert_eq!(requeue_delay(3), Duration::from_secs(8));
        assert_eq!(requeue_delay(9), Duration::from_secs(300));
        assert_eq!(requeue_delay(u32::MAX), REQUEUE_CAP);
        let mut m = Memory::default();
        let app = Uuid::new_v4();
        assert_eq!(m.preempted(app), (1, Duration::from_secs(2)));
        assert_eq!(m.preempted(app), (2, Duration::from_secs(4)));
        assert_eq!(m.preempted(Uuid::new_v4()).0, 1, "counted per app");
    }
}

/// Releases by app and number. A release never changes once recorded, so each is read from the
/// store once; a deleted app's are forgotten.
#[derive(Default)]
pub struct Releases(HashMap<(Uuid, i64), std::sync::Arc<Release>>);

impl Releases {
    /// Forgets the releases of apps not in `live` (deleted apps).
    pub fn keep_apps(&mut self, live: &HashSet<Uuid>) {
        self.0.retain(|(app, _), _| live.contains(app));
    }

    /// One release, from memory or else the store.
    pub async fn get(
        &mut self,
        ctx: &Ctx,
        app: Uuid,
        number: i64,
    ) -> Result<std::sync::Arc<Release>, Error> {
        if let Some(r) = self.0.get(&(app, number)) {
            return Ok(r.clone());
        }
        let r = std::sync::Arc::new(ctx.store.deployments().release_of(app, number).await?);
        self.0.insert((app, number), r.clone());
        Ok(r)
    }
}
