//! The local cluster's reconciler: brings each app's containers on this engine to its current
//! release and replica count.
//!
//! The runner ([`crate::cluster::run`]) calls [`LocalEngine`]'s pass with the apps that are due
//! (woken, or their requeue time came); the pass reads what the engine runs once and converges
//! each due app with [`reconcile`], which asks the pure plan ([`racer_core::plan::replicas`])
//! what to do and does it. On start it simply finds the containers it already runs and adopts
//! them: no duplicates.
//!
//! A pass with nothing to change costs two store queries however many apps there are (the apps,
//! the rollouts in progress) and no engine call: what the engine runs comes from
//! [`crate::observe`] (a list, then the engine's events), releases are read once (they never
//! change), and health comes from [`crate::probe`], which checks replicas in its own loop and
//! wakes the reconciler when one's health flips. Each pass publishes what to check.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use racer_core::api::{App, Deployment, DeploymentStatus, DEFAULT_APP_PORT};
use racer_core::plan::{self, Drain, Run};
use racer_core::rollout::{self, Verdict};
use racer_runtime::{ContainerSpec, Observed};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::cluster::{error_policy, Cluster};
use crate::replica::{remove, RunParts};
use crate::schedule::{Releases, Start, Want};
use crate::{ports, Action, Ctx, Error};

/// Apps as containers on one Docker engine, published on 127.0.0.1.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalEngine;

impl Cluster for LocalEngine {
    type State = PassState;

    fn name(&self) -> &'static str {
        "local"
    }

    fn spawn_helpers(&self, ctx: &Ctx, shutdown: &CancellationToken, tracker: &TaskTracker) {
        tracker.spawn(crate::observe::follow(ctx.clone(), shutdown.clone()));
        tracker.spawn(crate::probe::run(ctx.clone(), shutdown.clone()));
        tracker.spawn(housekeep(ctx.clone(), shutdown.clone()));
    }

    async fn pass(
        &self,
        ctx: &Ctx,
        state: &mut PassState,
        apps: &[App],
        due: &HashSet<Uuid>,
    ) -> Result<Vec<(Uuid, Action)>, Error> {
        pass(ctx, state, apps, due).await
    }

    async fn follow(
        &self,
        ctx: &Ctx,
        state: &mut PassState,
        apps: &[App],
        due: &HashSet<Uuid>,
    ) -> Result<Vec<(Uuid, Action)>, Error> {
        follow(ctx, state, apps, due).await
    }
}

/// Every replica of the install on every cluster: the server's engine from the observer, the
/// other clusters' listed now. Replicas only: a build's intermediate containers carry the
/// install's labels too (the image's labels), and are the builder's to remove.
async fn replicas(ctx: &Ctx) -> Result<Vec<Observed>, Error> {
    if let Err(e) = ctx.engines.refresh(ctx, false).await {
        tracing::warn!(error = %e.chain(), "cannot read the clusters; using the last known");
    }
    let mut observed: Vec<Observed> = ctx.observer.snapshot(ctx).await?;
    observed.extend(ctx.engines.observe_remote(None).await);
    observed.retain(|c| c.replica.is_some());
    Ok(observed)
}

/// The pass of a process that does not hold the controller's lease: it reads what the engines
/// run, hands the running replicas to its health checker, and routes each app's traffic to its
/// healthy replicas. It starts, stops and removes nothing: that is the holder's.
///
/// It does not know the holder's drains: a replica the holder takes out of rotation leaves this
/// process's routes when its health check fails or it is gone.
pub async fn follow(
    ctx: &Ctx,
    state: &mut PassState,
    apps: &[App],
    due: &HashSet<Uuid>,
) -> Result<Vec<(Uuid, Action)>, Error> {
    let observed = replicas(ctx).await?;
    let all_ids: HashSet<String> = observed.iter().map(|c| c.id.clone()).collect();
    let mut by_app: HashMap<Option<Uuid>, Vec<Observed>> = HashMap::new();
    for c in observed {
        by_app.entry(c.app_id).or_default().push(c);
    }
    let live: HashSet<Uuid> = apps.iter().map(|a| a.id).collect();
    state.releases.keep_apps(&live);
    let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
    ctx.routes.retain(&names);
    publish_targets(ctx, apps, &by_app, &mut state.releases).await;
    let mut actions = Vec::new();
    for app in apps {
        let mut backends = Vec::new();
        for c in by_app.get(&Some(app.id)).into_iter().flatten() {
            let Some(number) = c.release else { continue };
            let Ok(release) = state.releases.get(ctx, app.id, number).await else {
                continue;
            };
            if let Some(addr) = health_of(ctx, c, release.config.app_port_or_default()) {
                backends.push(racer_proxy::Backend {
                    addr,
                    concurrency: release.config.concurrency,
                });
            }
        }
        backends.sort_by_key(|b| b.addr);
        ctx.routes.set(&app.name, backends);
        if due.contains(&app.id) {
            actions.push((app.id, Action::requeue(ctx.settings.resync)));
        }
    }
    ctx.health.retain(|id| all_ids.contains(id));
    ctx.draining.retain(|id| all_ids.contains(id));
    Ok(actions)
}

/// What the reconciler keeps from one pass to the next.
#[derive(Default)]
pub struct PassState {
    /// Releases already read.
    releases: Releases,
    /// Why an app's last replica start failed, until one succeeds (for the rollback reason).
    start_errors: HashMap<Uuid, String>,
    /// How many starts of an app's replicas failed in a row (for the retry's back-off).
    start_failures: HashMap<Uuid, u32>,
    /// What the scheduler remembers (recent preemptions per app).
    schedule: crate::schedule::Memory,
}

/// What one pass shares between the apps it reconciles.
pub struct Pass<'a> {
    ctx: &'a Ctx,
    state: &'a mut PassState,
    /// What the engine runs, by app (taken out by each app's reconcile).
    observed: HashMap<Option<Uuid>, Vec<Observed>>,
    /// The newest deployment of each app that is rolling out.
    rolling: HashMap<Uuid, Deployment>,
    /// Host ports in use or reserved.
    taken: HashSet<u16>,
    /// Replicas to place and start once every due app was looked at.
    wants: Vec<Want>,
    /// Drained clusters: their replicas move off.
    drained: HashSet<String>,
}

/// One pass: the due apps, then what no app owns any more.
pub async fn pass(
    ctx: &Ctx,
    state: &mut PassState,
    apps: &[App],
    due: &HashSet<Uuid>,
) -> Result<Vec<(Uuid, Action)>, Error> {
    let observed = replicas(ctx).await?;
    let everything = observed.clone();
    let rolling: HashMap<Uuid, Deployment> = ctx
        .store
        .deployments()
        .latest_rolling_out()
        .await?
        .into_iter()
        .map(|d| (d.app_id, d))
        .collect();
    let live: HashSet<Uuid> = apps.iter().map(|a| a.id).collect();
    state.releases.keep_apps(&live);
    state.start_errors.retain(|app, _| live.contains(app));
    state.start_failures.retain(|app, _| live.contains(app));
    let mut taken: HashSet<u16> = observed.iter().filter_map(|c| c.host_port).collect();
    taken.extend(ctx.settings.reserved_ports.iter().copied());
    let all_ids: HashSet<String> = observed.iter().map(|c| c.id.clone()).collect();
    let mut by_app: HashMap<Option<Uuid>, Vec<Observed>> = HashMap::new();
    for c in observed {
        by_app.entry(c.app_id).or_default().push(c);
    }
    ctx.metrics
        .reconcile_apps
        .store(apps.len() as u64, Ordering::Relaxed);
    let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
    ctx.routes.retain(&names);
    publish_targets(ctx, apps, &by_app, &mut state.releases).await;
    // Containers racer labelled whose app no longer exists.
    let orphans: Vec<Observed> = by_app
        .iter()
        .filter(|(app, _)| !app.is_some_and(|a| live.contains(&a)))
        .flat_map(|(_, cs)| cs.iter().cloned())
        .collect();
    let mut pass = Pass {
        ctx,
        state,
        observed: by_app,
        rolling,
        taken,
        wants: Vec::new(),
        drained: ctx.engines.drained(),
    };
    let mut actions = Vec::new();
    for app in apps.iter().filter(|a| due.contains(&a.id)) {
        let action = match reconcile(app, &mut pass).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(app = %app.name, error = %e.chain(), "reconcile failed");
                Action::requeue(error_policy(&e))
            }
        };
        actions.push((app.id, action));
    }
    let Pass { wants, state, .. } = pass;
    // Due apps that want nothing started wait for nothing.
    let wanting: HashSet<Uuid> = wants.iter().map(|w| w.app_id).collect();
    for (app, _) in &actions {
        if !wanting.contains(app) {
            ctx.waiting.clear(*app);
        }
    }
    let starts = crate::schedule::place_all(
        ctx,
        &mut state.releases,
        &mut state.schedule,
        wants,
        &everything,
    )
    .await;
    // Apps whose replicas wait for room look again soon (freed room also wakes them).
    let placed: HashSet<Uuid> = starts.iter().map(|s| s.app_id).collect();
    for (app, action) in &mut actions {
        if ctx.waiting.get(*app).is_some() && !placed.contains(app) {
            action.requeue_after = action.requeue_after.max(WAITING_REQUEUE);
        }
    }
    let failed = start_all(ctx, starts, state).await;
    // An app whose start the engine refused tries again after a back-off, not at once.
    for (app, action) in &mut actions {
        if failed.contains(app) {
            let failures = state.start_failures.get(app).copied().unwrap_or(1);
            action.requeue_after = racer_core::rollout::start_retry_after(failures);
        }
    }
    // Forget the health and drain state of containers that are gone.
    ctx.health.retain(|id| all_ids.contains(id));
    ctx.draining.retain(|id| all_ids.contains(id));
    ctx.preempted.retain(|id| all_ids.contains(id));
    let freed = !orphans.is_empty();
    for c in orphans {
        tracing::info!(container = %c.name, app = ?c.app_id, "removing orphaned container");
        remove(ctx, &c).await?;
    }
    if freed {
        // Room freed: whatever waits for it is placed now, not at the next resync.
        ctx.reconcile_wake.all();
    }
    Ok(actions)
}

/// Housekeeping off the reconcile passes (local cluster): removes the images of deleted apps
/// every 10 s, until `shutdown`.
pub async fn housekeep(ctx: Ctx, shutdown: CancellationToken) {
    let mut last = Instant::now()
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or_else(Instant::now);
    loop {
        let swept = async {
            if !ctx.leases.controller.held() {
                return Ok(());
            }
            let apps = ctx.store.apps().all().await?;
            crate::replica::sweep_images(&ctx, &apps, &mut last).await
        };
        if let Err(e) = swept.await {
            tracing::debug!(error = %e.chain(), "image sweep failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

/// Publishes what the health checker checks: every running replica of an app with a release,
/// with its release's check, except draining ones (nothing routes to them).
async fn publish_targets(
    ctx: &Ctx,
    apps: &[App],
    by_app: &HashMap<Option<Uuid>, Vec<Observed>>,
    releases: &mut Releases,
) {
    let draining: HashSet<String> = ctx.draining.ids();
    let mut targets = HashMap::new();
    for app in apps.iter().filter(|a| a.release.is_some()) {
        for c in by_app.get(&Some(app.id)).into_iter().flatten() {
            if !c.running() || draining.contains(&c.id) {
                continue;
            }
            let Some(number) = c.release else { continue };
            let Some(ip) = c.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()) else {
                continue;
            };
            // A release that cannot be read is reconcile's to report.
            let Ok(release) = releases.get(ctx, app.id, number).await else {
                continue;
            };
            let port = release.config.app_port_or_default();
            let check = release.config.health.clone().unwrap_or_default();
            targets.insert(
                c.id.clone(),
                crate::probe::Target {
                    app: app.id,
                    name: c.name.clone(),
                    addr: SocketAddr::new(ip, check.port.unwrap_or(port)),
                    check,
                    created: c.created,
                },
            );
        }
    }
    ctx.probes.set(targets);
}

/// The replica's address when the health checker last found it healthy (thresholds applied).
fn health_of(ctx: &Ctx, c: &Observed, app_port: u16) -> Option<SocketAddr> {
    if !ctx.health.is_healthy(&c.id) || !c.running() {
        return None;
    }
    let ip = c.ip.as_deref()?.parse().ok()?;
    Some(SocketAddr::new(ip, app_port))
}

/// Converges one app: its current release runs `instances` healthy replicas. A new release rolls
/// out one replica at a time (max surge 1): each new replica that passes its health check joins
/// the routes, and an old one leaves them, drains, and is stopped. A rollout whose replicas do
/// not pass in time is rolled back to the release still serving.
///
/// What to do is [`plan::replicas`]'s to decide; this reads the inputs and carries it out.
/// Replicas to start are added to the pass (it starts them after every due app was looked at).
pub async fn reconcile(app: &App, pass: &mut Pass<'_>) -> Result<Action, Error> {
    let ctx = pass.ctx;
    let observed = pass.observed.remove(&Some(app.id)).unwrap_or_default();
    let latest = pass.rolling.remove(&app.id);
    let Some(number) = app.release else {
        ctx.routes.set(&app.name, Vec::new());
        for c in &observed {
            remove(ctx, c).await?;
        }
        return Ok(Action::requeue(ctx.settings.resync));
    };
    let deployments = ctx.store.deployments();
    let release = pass.state.releases.get(ctx, app.id, number).await?;
    let app_port = release.config.app_port_or_default();
    let drain = release
        .config
        .drain_seconds
        .map(|s| Duration::from_secs(u64::from(s)))
        .unwrap_or(ctx.settings.drain);
    let want = app.instances as usize;
    let draining = ctx.draining.snapshot();
    // Replicas that must leave where they run: preemption victims, and replicas on drained
    // clusters. They drain out of rotation like a scale-in, then go; their index starts again
    // once they are gone, wherever the scheduler finds room (a victim's after its re-queue
    // delay).
    let (observed, leaving) = evictions(ctx, observed, &pass.drained, &draining);
    let mut blocked: HashSet<u32> = HashSet::new();
    for c in &leaving {
        if c.release == Some(number) {
            blocked.extend(c.replica);
        }
        if !c.running() {
            remove(ctx, c).await?;
            continue;
        }
        match draining.get(&c.id) {
            None => {
                tracing::info!(app = %app.name, container = %c.name, cluster = %c.cluster, "moving replica: out of rotation to drain");
                ctx.draining.begin(&c.id);
            }
            Some(since) if since.elapsed() >= drain => retire(ctx, app, c.clone()),
            Some(_) => {}
        }
    }
    let replicas: Vec<plan::Replica> = observed
        .iter()
        .map(|c| plan::Replica {
            id: c.id.clone(),
            release: c.release,
            index: c.replica,
            run: if c.running() {
                Run::Running
            } else if c.state == "restarting" {
                Run::Restarting
            } else {
                Run::Stopped
            },
            healthy: ctx.health.is_healthy(&c.id),
            drain: match draining.get(&c.id) {
                None => Drain::No,
                Some(since) if since.elapsed() >= drain => Drain::Done,
                Some(_) => Drain::Draining,
            },
        })
        .collect();
    let plan = plan::replicas(number, app.instances, &replicas, 1);
    let by_id: HashMap<&str, &Observed> = observed.iter().map(|c| (c.id.as_str(), c)).collect();
    let of = |id: &String| by_id.get(id.as_str()).copied();

    for c in plan.remove.iter().filter_map(of) {
        remove(ctx, c).await?;
    }
    // Died behind racer's back (or crashed past the restart policy): start it again, keeping
    // its name, port and log; replace it if it cannot start.
    for c in plan.restart.iter().filter_map(of) {
        tracing::info!(app = %app.name, container = %c.name, state = %c.state, "restarting replica");
        ctx.health.forget(&c.id);
        ctx.observer.mark(&c.id);
        let started = match ctx.engines.runtime(ctx, &c.cluster) {
            Ok(rt) => rt.start(&c.id).await.is_ok(),
            Err(_) => false,
        };
        if !started {
            remove(ctx, c).await?;
        }
    }
    let mut backends: Vec<racer_proxy::Backend> = plan
        .keep
        .iter()
        .filter_map(|(_, id)| of(id))
        .filter_map(|c| health_of(ctx, c, app_port))
        .map(|addr| racer_proxy::Backend {
            addr,
            concurrency: release.config.concurrency,
        })
        .collect();
    let healthy = backends.len();
    for c in plan.drain.iter().filter_map(of) {
        tracing::info!(app = %app.name, container = %c.name, "taking replica out of rotation to drain");
        ctx.draining.begin(&c.id);
    }
    // Old replicas still serving, each with its own release's port and concurrency limit.
    let mut configs: HashMap<i64, (u16, Option<u32>)> = HashMap::new();
    for c in plan.serving.iter().filter_map(of) {
        let rel = c.release.unwrap_or_default();
        if let std::collections::hash_map::Entry::Vacant(e) = configs.entry(rel) {
            let cfg = pass
                .state
                .releases
                .get(ctx, app.id, rel)
                .await
                .ok()
                .map(|r| (r.config.app_port_or_default(), r.config.concurrency));
            e.insert(cfg.unwrap_or((DEFAULT_APP_PORT, None)));
        }
        let (port, concurrency) = configs
            .get(&rel)
            .copied()
            .unwrap_or((DEFAULT_APP_PORT, None));
        backends
            .extend(health_of(ctx, c, port).map(|addr| racer_proxy::Backend { addr, concurrency }));
    }
    ctx.routes.set(&app.name, backends);
    // Stopping takes a while (SIGTERM, then up to the grace period): it runs on its own, so no
    // pass (and no other app's new replica) waits on it.
    for c in plan.retire.iter().filter_map(of) {
        retire(ctx, app, c.clone());
    }

    // Ports are picked here, one app after another; the starts themselves run after every due
    // app was looked at, several at once (see `start_all`).
    let mut start_error: Option<Error> = None;
    for &i in plan.start.iter().filter(|i| !blocked.contains(i)) {
        match container_spec(ctx, app, &release, i, app_port, &mut pass.taken) {
            Ok(spec) => pass.wants.push(Want {
                app: app.name.clone(),
                app_id: app.id,
                app_created: app.created_at,
                spec,
                request: crate::schedule::request_of(ctx, &release.config),
            }),
            Err(e) => {
                start_error = Some(e);
                break;
            }
        }
    }
    let rolling =
        latest.filter(|d| d.status == DeploymentStatus::RollingOut && d.release == Some(number));
    // A replica that cannot even be created fails the rollout at once when nothing could fix it
    // (no free port); any other failure is retried until the deadline.
    if let (Some(e @ Error::PortsExhausted { .. }), Some(d)) = (&start_error, &rolling) {
        deployments
            .point_app_at(app.id, plan.previous_release)
            .await?;
        deployments
            .set_status(d, DeploymentStatus::Failed, Some(&e.chain()))
            .await?;
    }
    // Old replicas still in rotation (draining ones no longer count: the new release serves).
    let old_left = plan.serving.len();
    if let Some(d) = &rolling {
        let age = (chrono::Utc::now() - d.updated_at)
            .to_std()
            .unwrap_or_default();
        match rollout::verdict(healthy, want, old_left, age, ctx.settings.rollout_deadline) {
            Verdict::Done => {
                deployments
                    .set_status(d, DeploymentStatus::Running, None)
                    .await?;
            }
            Verdict::Going => {}
            Verdict::Expired => {
                let mut why = format!(
                    "{healthy} of {want} replicas passed their health check on port {app_port} within {}s",
                    ctx.settings.rollout_deadline.as_secs()
                );
                match (&start_error, pass.state.start_errors.get(&app.id)) {
                    (Some(e), _) => why.push_str(&format!(" ({})", e.chain())),
                    (None, Some(e)) => why.push_str(&format!(" ({e})")),
                    (None, None) => {}
                }
                crate::replica::give_up_rollout(ctx, app.id, d, &why, plan.previous_release)
                    .await?;
            }
        }
    }
    if let Some(e) = start_error {
        return Err(e);
    }
    // Right after a start, look again at once: that pass reads the new container and hands it to
    // the health checker. Waiting for health is the checker's to end (it wakes the reconciler);
    // meanwhile passes only watch the rollout deadline and the drains.
    let soon = if !plan.start.is_empty() {
        Duration::from_millis(2)
    } else if healthy < want || plan.changes() || old_left > 0 || !leaving.is_empty() {
        Duration::from_millis(100)
    } else {
        ctx.settings.resync
    };
    Ok(Action::requeue(soon))
}

/// Stops and removes a drained replica in the background, once (later passes that still see it
/// leave it be), then wakes the reconciler for its app.
fn retire(ctx: &Ctx, app: &App, c: Observed) {
    if !ctx.retiring.begin(&c.id) {
        return;
    }
    tracing::info!(app = %app.name, container = %c.name, "retiring drained replica");
    let ctx = ctx.clone();
    let app = app.name.clone();
    // On the loops' task tracker: shutdown waits for a replica being stopped.
    ctx.tasks.clone().spawn(async move {
        if let Err(e) = remove(&ctx, &c).await {
            tracing::warn!(app = %app, container = %c.name, error = %e.chain(), "cannot retire replica; the next pass tries again");
        }
        ctx.draining.end(&c.id);
        ctx.retiring.end(&c.id);
        // Room freed: every app is looked at, so replicas waiting for it are placed now.
        ctx.reconcile_wake.all();
    });
}

/// Splits an app's containers into those that stay and those that must leave: preemption
/// victims, and on drained clusters one replica of the app at a time (the others keep serving
/// while it moves), or any already draining there.
fn evictions(
    ctx: &Ctx,
    observed: Vec<Observed>,
    drained: &HashSet<String>,
    draining: &HashMap<String, Instant>,
) -> (Vec<Observed>, Vec<Observed>) {
    let mut moving = observed
        .iter()
        .any(|c| drained.contains(&c.cluster) && draining.contains_key(&c.id));
    let (mut stay, mut leave) = (Vec::new(), Vec::new());
    for c in observed {
        let off_drained = drained.contains(&c.cluster)
            && (draining.contains_key(&c.id) || !std::mem::replace(&mut moving, true));
        if ctx.preempted.contains(&c.id) || off_drained {
            leave.push(c);
        } else {
            stay.push(c);
        }
    }
    (stay, leave)
}

/// How soon an app whose replicas wait for room is looked at again (room freed wakes it
/// sooner).
const WAITING_REQUEUE: Duration = Duration::from_millis(250);

/// How many replicas a pass starts at once (creating a container takes the engine a few hundred
/// milliseconds; a thousand apps registered at once would otherwise wait minutes in line).
const CONCURRENT_STARTS: usize = 4;

/// Starts the replicas the pass found missing, [`CONCURRENT_STARTS`] at a time; a failure is
/// logged, kept for the app's rollback reason, counted for the back-off, and retried by a later
/// pass. Returns the apps with a start that failed.
async fn start_all(ctx: &Ctx, starts: Vec<Start>, state: &mut PassState) -> HashSet<Uuid> {
    use futures_util::StreamExt;
    let results: Vec<(Start, Result<(), Error>)> = futures_util::stream::iter(starts)
        .map(|s| async move {
            let r = start_replica(ctx, &s).await;
            (s, r)
        })
        .buffer_unordered(CONCURRENT_STARTS)
        .collect()
        .await;
    let mut failed = HashSet::new();
    let mut started = HashSet::new();
    for (s, r) in results {
        match r {
            Ok(()) => {
                started.insert(s.app_id);
            }
            Err(e) => {
                tracing::warn!(app = %s.app, container = %s.spec.name, error = %e.chain(), "cannot start replica");
                state.start_errors.insert(s.app_id, e.chain());
                failed.insert(s.app_id);
                ctx.metrics
                    .replica_start_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    for app in &started {
        if !failed.contains(app) {
            state.start_errors.remove(app);
            state.start_failures.remove(app);
        }
    }
    for app in &failed {
        *state.start_failures.entry(*app).or_default() += 1;
    }
    failed
}

async fn start_replica(ctx: &Ctx, start: &Start) -> Result<(), Error> {
    let mut named = start.spec.clone();
    // The app's secrets, opened only now, into the replica's environment.
    named
        .env
        .extend(crate::secrets::env_of(ctx, start.spec.app_id).await?);
    if start.cluster != racer_runtime::LOCAL {
        // Another cluster's replica says where it runs (clusters may share one engine).
        named.name = format!("{}-{}", named.name, start.cluster);
    }
    let spec = &named;
    tracing::info!(app = %start.app, container = %spec.name, cluster = %start.cluster, port = spec.host_port, "starting replica");
    let runtime = ctx.engines.runtime(ctx, &start.cluster)?;
    if runtime.cluster() != ctx.runtime.cluster() {
        // Images are built on the server's engine; another cluster gets a copy first.
        ctx.runtime.copy_image(&spec.image, &runtime).await?;
    }
    match runtime.run(spec).await {
        Ok(id) => ctx.observer.mark(&id),
        Err(racer_runtime::Error::Conflict { message, .. })
            if message.contains("already in use") =>
        {
            match runtime.observe(&spec.name).await? {
                // It is this install's, and the last pass did not know it yet: read it again,
                // never start a second one.
                Some(mine) => ctx.observer.mark(&mine.id),
                // Another racer's on the same engine: use a name carrying the install id.
                None => {
                    let mut spec = spec.clone();
                    let install: String = runtime.install().chars().take(8).collect();
                    spec.name = format!("{}-{install}", spec.name);
                    let id = runtime.run(&spec).await?;
                    ctx.observer.mark(&id);
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn container_spec(
    ctx: &Ctx,
    app: &App,
    release: &racer_core::api::Release,
    replica: u32,
    app_port: u16,
    taken: &mut HashSet<u16>,
) -> Result<ContainerSpec, Error> {
    let host_port = ports::pick(&ctx.settings.host_ports, taken)?;
    taken.insert(host_port);
    let run = RunParts::of(ctx, app, release, app_port)?;
    Ok(ContainerSpec {
        name: format!("{}-{}-{}", app.name, release.number, replica),
        image: release.image_id.clone(),
        app_id: app.id,
        app_name: app.name.clone(),
        release: release.number,
        replica,
        env: run.env,
        command: run.command,
        app_port,
        host_port,
        memory_bytes: run.memory_bytes,
        nano_cpus: run.nano_cpus,
        gpus: release.config.gpu.unwrap_or(0),
        cap_add: release.config.cap_add.clone(),
        read_only: release.config.read_only,
    })
}
