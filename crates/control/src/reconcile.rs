//! The reconciler: brings every app's containers to its current release and replica count.
//!
//! One pass lists the apps (desired state) and the containers racer labelled (observed state),
//! then converges each app with [`reconcile`]. Handlers wake it; a periodic resync makes it
//! correct when a wake-up is lost or something changes behind racer's back. On start it simply
//! finds the containers it already runs and adopts them: no duplicates.
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

use racer_core::api::{App, Deployment, DeploymentStatus, Release};
use racer_core::rollout;
use racer_runtime::{ContainerSpec, Observed};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{ports, Action, Ctx, Error};

/// Runs the reconciler until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let mut state = PassState::default();
    loop {
        let started = Instant::now();
        let mut next = ctx.settings.resync;
        match pass(&ctx, &mut state).await {
            Ok(a) => next = next.min(a.requeue_after),
            Err(e) => {
                next = error_policy(&e);
                ctx.metrics.reconcile_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e.chain(), "reconcile pass failed");
            }
        }
        let elapsed = started.elapsed();
        ctx.metrics.reconcile_pass.observe(elapsed);
        tracing::debug!(?elapsed, "reconcile pass");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.reconcile_wake.notified() => {}
            _ = tokio::time::sleep(next) => {}
        }
    }
}

/// What to do after a failed pass: back off, never retry inline.
pub fn error_policy(e: &Error) -> Duration {
    match e.kind() {
        racer_core::ErrorKind::Unavailable => Duration::from_secs(5),
        _ => Duration::from_secs(2),
    }
}

/// What the reconciler keeps from one pass to the next.
pub struct PassState {
    /// When images of deleted apps were last looked for.
    last_image_sweep: Instant,
    /// Releases already read.
    releases: Releases,
    /// Why an app's last replica start failed, until one succeeds (for the rollback reason).
    start_errors: HashMap<Uuid, String>,
}

impl Default for PassState {
    fn default() -> PassState {
        PassState {
            last_image_sweep: Instant::now()
                .checked_sub(Duration::from_secs(3600))
                .unwrap_or_else(Instant::now),
            releases: Releases::default(),
            start_errors: HashMap::new(),
        }
    }
}

/// Releases by app and number. A release never changes once recorded, so each is read from the
/// store once; a deleted app's are forgotten.
#[derive(Default)]
pub struct Releases(HashMap<(Uuid, i64), std::sync::Arc<Release>>);

impl Releases {
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

/// One pass over every app, then the orphans.
pub async fn pass(ctx: &Ctx, state: &mut PassState) -> Result<Action, Error> {
    if ctx.settings.cluster == crate::Cluster::Swarm {
        let apps = ctx.store.apps().all().await?;
        let action = crate::swarm::pass(ctx, &apps).await?;
        sweep_images(ctx, &apps, &mut state.last_image_sweep).await?;
        return Ok(action);
    }
    let apps = ctx.store.apps().all().await?;
    // Replicas only: a build's intermediate containers carry the install's labels too (the
    // image's labels), and are the builder's to remove.
    let observed: Vec<Observed> = ctx
        .observer
        .snapshot(ctx)
        .await?
        .into_iter()
        .filter(|c| c.replica.is_some())
        .collect();
    let mut rolling: HashMap<Uuid, Deployment> = ctx
        .store
        .deployments()
        .latest_rolling_out()
        .await?
        .into_iter()
        .map(|d| (d.app_id, d))
        .collect();
    let live: HashSet<Uuid> = apps.iter().map(|a| a.id).collect();
    state.releases.0.retain(|(app, _), _| live.contains(app));
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
    publish_targets(ctx, &apps, &by_app, &mut state.releases).await;
    let mut action = Action::requeue(ctx.settings.resync);
    let mut starts = Vec::new();
    state.start_errors.retain(|app, _| live.contains(app));
    for app in &apps {
        let mine = by_app.remove(&Some(app.id)).unwrap_or_default();
        let latest = rolling.remove(&app.id);
        match reconcile(
            app,
            mine,
            ctx,
            &mut taken,
            &mut state.releases,
            latest.as_ref(),
            &mut starts,
            state.start_errors.get(&app.id).map(String::as_str),
        )
        .await
        {
            Ok(a) => action.requeue_after = action.requeue_after.min(a.requeue_after),
            Err(e) => tracing::warn!(app = %app.name, error = %e.chain(), "reconcile failed"),
        }
    }
    start_all(ctx, starts, &mut state.start_errors).await;
    // Forget the health and drain state of containers that are gone.
    ctx.health.retain(|id| all_ids.contains(id));
    ctx.draining.retain(|id| all_ids.contains(id));
    // Containers racer labelled whose app no longer exists: remove them.
    for (app, containers) in by_app {
        for c in containers {
            tracing::info!(container = %c.name, app = ?app, "removing orphaned container");
            remove(ctx, &c).await?;
        }
    }
    Ok(action)
}

/// Housekeeping off the reconcile passes (local cluster): removes the images of deleted apps
/// every 10 s, until `shutdown`.
pub async fn housekeep(ctx: Ctx, shutdown: CancellationToken) {
    let mut last = Instant::now()
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or_else(Instant::now);
    loop {
        let swept = async {
            let apps = ctx.store.apps().all().await?;
            sweep_images(&ctx, &apps, &mut last).await
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

/// Removes the images of deleted apps, now and then (image listing is not free).
async fn sweep_images(
    ctx: &Ctx,
    apps: &[App],
    last_image_sweep: &mut Instant,
) -> Result<(), Error> {
    if last_image_sweep.elapsed() > Duration::from_secs(10) {
        *last_image_sweep = Instant::now();
        let live: HashSet<Uuid> = apps.iter().map(|a| a.id).collect();
        for (id, tags, app) in ctx.runtime.images_of(None).await? {
            if app.is_some_and(|a| !live.contains(&a)) {
                tracing::info!(image = %id, tags = ?tags, "removing image of a deleted app");
                // An image still used by a container (e.g. another app's `--image`) stays.
                for t in &tags {
                    if let Err(e) = ctx.runtime.remove_image(t).await {
                        tracing::debug!(image = %t, error = %e, "image kept");
                    }
                }
                if let Err(e) = ctx.runtime.remove_image(&id).await {
                    tracing::debug!(image = %id, error = %e, "image kept");
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn remove(ctx: &Ctx, c: &Observed) -> Result<(), Error> {
    ctx.observer.mark(&c.id);
    if c.running() {
        ctx.runtime
            .stop(&c.id, ctx.settings.stop_grace_secs)
            .await?;
    }
    ctx.runtime.remove(&c.id).await?;
    Ok(())
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
            let port = release.config.app_port.unwrap_or(8000);
            let check = release.config.health.clone().unwrap_or_default();
            targets.insert(
                c.id.clone(),
                crate::probe::Target {
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
/// `latest` is the app's newest deployment if it is rolling out; `releases` caches releases
/// across passes. Replicas to start are added to `starts` (the pass starts them);
/// `last_start_error` is why the app's last start failed, if it did.
#[allow(clippy::too_many_arguments)]
pub async fn reconcile(
    app: &App,
    observed: Vec<Observed>,
    ctx: &Ctx,
    taken: &mut HashSet<u16>,
    releases: &mut Releases,
    latest: Option<&Deployment>,
    starts: &mut Vec<Start>,
    last_start_error: Option<&str>,
) -> Result<Action, Error> {
    let Some(number) = app.release else {
        ctx.routes.set(&app.name, Vec::new());
        for c in &observed {
            remove(ctx, c).await?;
        }
        return Ok(Action::requeue(ctx.settings.resync));
    };
    let deployments = ctx.store.deployments();
    let release = releases.get(ctx, app.id, number).await?;
    let app_port = release.config.app_port.unwrap_or(8000);
    let drain = release
        .config
        .drain_seconds
        .map(|s| Duration::from_secs(u64::from(s)))
        .unwrap_or(ctx.settings.drain);
    let want = app.instances as usize;
    let (current, old): (Vec<_>, Vec<_>) = observed
        .into_iter()
        .partition(|c| c.release == Some(number));

    // One container per replica index; prefer a running one; everything else goes.
    let mut slots: Vec<Option<Observed>> = vec![None; want];
    let mut extra = Vec::new();
    for c in current {
        match c.replica.map(|i| i as usize) {
            Some(i) if i < want => match &slots[i] {
                None => slots[i] = Some(c),
                Some(existing) if !existing.running() && c.running() => {
                    extra.push(slots[i].replace(c));
                }
                Some(_) => extra.push(Some(c)),
            },
            _ => extra.push(Some(c)),
        }
    }
    for c in extra.into_iter().flatten() {
        remove(ctx, &c).await?;
    }

    let rolling =
        latest.filter(|d| d.status == DeploymentStatus::RollingOut && d.release == Some(number));

    // Health of the new release's replicas; dead ones start again.
    let mut changed = false;
    let mut views = Vec::new();
    let mut backends = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let Some(c) = slot else { continue };
        if !c.running() && c.state != "restarting" {
            // Died behind racer's back (or crashed past the restart policy): start it again,
            // keeping its name, port and log; replace it if it cannot start.
            tracing::info!(app = %app.name, container = %c.name, state = %c.state, "restarting replica");
            ctx.health.forget(&c.id);
            ctx.observer.mark(&c.id);
            if ctx.runtime.start(&c.id).await.is_err() {
                remove(ctx, c).await?;
                continue;
            }
            changed = true;
            views.push(rollout::New {
                index: i as u32,
                healthy: false,
            });
            continue;
        }
        let addr = health_of(ctx, c, app_port);
        views.push(rollout::New {
            index: i as u32,
            healthy: addr.is_some(),
        });
        backends.extend(addr.map(|addr| racer_proxy::Backend {
            addr,
            concurrency: release.config.concurrency,
        }));
    }
    let healthy = backends.len();

    // Old replicas: dead ones go now; draining ones go when their time is up; the rest serve.
    let mut serving: Vec<(Observed, Option<racer_proxy::Backend>)> = Vec::new();
    // Per old release: its app port and its concurrency limit.
    let mut configs: HashMap<i64, (u16, Option<u32>)> = HashMap::new();
    let now_draining: HashMap<String, Instant> = ctx.draining.snapshot();
    let mut drained = Vec::new();
    for c in old {
        if !c.running() {
            remove(ctx, &c).await?;
            continue;
        }
        if let Some(since) = now_draining.get(&c.id) {
            if since.elapsed() >= drain {
                drained.push(c);
            } else {
                changed = true;
            }
            continue;
        }
        let rel = c.release.unwrap_or_default();
        if let std::collections::hash_map::Entry::Vacant(e) = configs.entry(rel) {
            let cfg = releases
                .get(ctx, app.id, rel)
                .await
                .ok()
                .map(|r| (r.config.app_port.unwrap_or(8000), r.config.concurrency));
            e.insert(cfg.unwrap_or((8000, None)));
        }
        let (port, concurrency) = configs.get(&rel).copied().unwrap_or((8000, None));
        let backend =
            health_of(ctx, &c, port).map(|addr| racer_proxy::Backend { addr, concurrency });
        serving.push((c, backend));
    }
    // Retire the newest-indexed old replicas first.
    serving.sort_by_key(|(c, _)| std::cmp::Reverse((c.release, c.replica)));

    let plan = rollout::step(want as u32, &views, serving.len(), 1);
    for c in serving.iter().take(plan.retire).map(|(c, _)| c) {
        tracing::info!(app = %app.name, container = %c.name, "taking replica out of rotation to drain");
        ctx.draining.begin(&c.id);
        changed = true;
    }
    backends.extend(
        serving
            .iter()
            .skip(plan.retire)
            .filter_map(|(_, b)| b.clone()),
    );
    ctx.routes.set(&app.name, backends);
    // Stopping takes a while (SIGTERM, then up to the grace period): it runs on its own, so no
    // pass (and no other app's new replica) waits on it.
    for c in drained {
        retire(ctx, &app.name, c);
        changed = true;
    }

    // Ports are picked here, one app after another; the starts themselves run after every app
    // was looked at, several at once (see `start_all`).
    let mut start_error: Option<Error> = None;
    let started_any = !plan.start.is_empty();
    for i in plan.start {
        match container_spec(ctx, app, &release, i, app_port, taken) {
            Ok(spec) => starts.push(Start {
                app: app.name.clone(),
                app_id: app.id,
                spec,
            }),
            Err(e) => {
                start_error = Some(e);
                break;
            }
        }
        changed = true;
    }
    // A replica that cannot even be created fails the rollout at once when nothing could fix it
    // (no free port); any other failure is retried until the deadline.
    if let (Some(e), Some(d)) = (&start_error, rolling) {
        if matches!(e, Error::PortsExhausted { .. }) {
            let prev = serving.iter().filter_map(|(c, _)| c.release).max();
            deployments.point_app_at(app.id, prev).await?;
            deployments
                .set_status(d, DeploymentStatus::Failed, Some(&e.chain()))
                .await?;
        }
    }

    let old_left = serving.len() - plan.retire;
    if healthy == want {
        if let Some(d) = rolling {
            if old_left == 0 {
                deployments
                    .set_status(d, DeploymentStatus::Running, None)
                    .await?;
            }
        }
    } else if let Some(d) = rolling {
        let age = chrono::Utc::now() - d.updated_at;
        if age.to_std().unwrap_or_default() > ctx.settings.rollout_deadline {
            let prev = serving.iter().filter_map(|(c, _)| c.release).max();
            let mut why = format!(
                "{healthy} of {want} replicas passed their health check on port {app_port} within {}s",
                ctx.settings.rollout_deadline.as_secs()
            );
            match (&start_error, last_start_error) {
                (Some(e), _) => why.push_str(&format!(" ({})", e.chain())),
                (None, Some(e)) => why.push_str(&format!(" ({e})")),
                (None, None) => {}
            }
            match prev {
                Some(p) => {
                    deployments.point_app_at(app.id, Some(p)).await?;
                    deployments
                        .set_status(
                            d,
                            DeploymentStatus::RolledBack,
                            Some(&format!("{why}; rolled back to release {p}")),
                        )
                        .await?;
                }
                None => {
                    deployments
                        .set_status(d, DeploymentStatus::Failed, Some(&why))
                        .await?;
                }
            }
        }
    }
    if let Some(e) = start_error {
        return Err(e);
    }
    // Right after a start, look again at once: that pass reads the new container and hands it to
    // the health checker. Waiting for health is the checker's to end (it wakes the reconciler);
    // meanwhile passes only watch the rollout deadline and the drains.
    let soon = if started_any {
        Duration::from_millis(2)
    } else if healthy < want || changed || old_left > 0 {
        Duration::from_millis(100)
    } else {
        ctx.settings.resync
    };
    Ok(Action::requeue(soon))
}

/// Stops and removes a drained replica in the background, once (later passes that still see it
/// leave it be), then wakes the reconciler.
fn retire(ctx: &Ctx, app: &str, c: Observed) {
    if !ctx.retiring.begin(&c.id) {
        return;
    }
    tracing::info!(app = %app, container = %c.name, "retiring drained replica");
    let ctx = ctx.clone();
    let app = app.to_owned();
    // On the loops' task tracker: shutdown waits for a replica being stopped.
    ctx.tasks.clone().spawn(async move {
        if let Err(e) = remove(&ctx, &c).await {
            tracing::warn!(app = %app, container = %c.name, error = %e.chain(), "cannot retire replica; the next pass tries again");
        }
        ctx.draining.end(&c.id);
        ctx.retiring.end(&c.id);
        ctx.reconcile_wake.notify_one();
    });
}

/// How many replicas a pass starts at once (creating a container takes the engine a few hundred
/// milliseconds; a thousand apps registered at once would otherwise wait minutes in line).
const CONCURRENT_STARTS: usize = 4;

/// A replica [`reconcile`] wants started, its host port already picked.
pub struct Start {
    app: String,
    app_id: Uuid,
    spec: ContainerSpec,
}

/// Starts the replicas the pass found missing, [`CONCURRENT_STARTS`] at a time; a failure is
/// logged, kept for the app's rollback reason, and retried by the next pass.
async fn start_all(ctx: &Ctx, starts: Vec<Start>, errors: &mut HashMap<Uuid, String>) {
    use futures_util::StreamExt;
    let results: Vec<(Start, Result<(), Error>)> = futures_util::stream::iter(starts)
        .map(|s| async move {
            let r = start_replica(ctx, &s).await;
            (s, r)
        })
        .buffer_unordered(CONCURRENT_STARTS)
        .collect()
        .await;
    for (s, r) in results {
        match r {
            Ok(()) => {
                errors.remove(&s.app_id);
            }
            Err(e) => {
                tracing::warn!(app = %s.app, container = %s.spec.name, error = %e.chain(), "cannot start replica");
                errors.insert(s.app_id, e.chain());
            }
        }
    }
}

async fn start_replica(ctx: &Ctx, start: &Start) -> Result<(), Error> {
    let spec = &start.spec;
    tracing::info!(app = %start.app, container = %spec.name, port = spec.host_port, "starting replica");
    match ctx.runtime.run(spec).await {
        Ok(id) => ctx.observer.mark(&id),
        Err(racer_runtime::Error::Conflict { message, .. })
            if message.contains("already in use") =>
        {
            match ctx.runtime.observe(&spec.name).await? {
                // It is this install's, and the last pass did not know it yet: read it again,
                // never start a second one.
                Some(mine) => ctx.observer.mark(&mine.id),
                // Another racer's on the same engine: use a name carrying the install id.
                None => {
                    let mut spec = spec.clone();
                    let install: String = ctx.runtime.install().chars().take(8).collect();
                    spec.name = format!("{}-{install}", spec.name);
                    let id = ctx.runtime.run(&spec).await?;
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
    })
}

/// How a release runs, whatever runs it (a container or a Swarm task).
pub(crate) struct RunParts {
    /// `K=V`, with `PORT`, `RACER_APP` and `RACER_RELEASE` added.
    pub(crate) env: Vec<String>,
    /// The command override as argv.
    pub(crate) command: Option<Vec<String>>,
    /// Memory limit, bytes.
    pub(crate) memory_bytes: i64,
    /// CPU limit, billionths of a core.
    pub(crate) nano_cpus: i64,
}

impl RunParts {
    pub(crate) fn of(
        ctx: &Ctx,
        app: &App,
        release: &racer_core::api::Release,
        app_port: u16,
    ) -> Result<RunParts, Error> {
        let mut env: Vec<String> = release
            .config
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.push(format!("PORT={app_port}"));
        env.push(format!("RACER_APP={}", app.name));
        env.push(format!("RACER_RELEASE={}", release.number));
        let command = match release.config.command.as_deref() {
            Some(c) => Some(racer_build::conda::split_command(c).map_err(|reason| {
                racer_build::Error::Unrepresentable {
                    what: "command".into(),
                    reason,
                }
            })?),
            None => None,
        };
        let cpus = release.config.cpus.unwrap_or(ctx.settings.default_cpus);
        let mem = release
            .config
            .memory_mb
            .unwrap_or(ctx.settings.default_memory_mb);
        Ok(RunParts {
            env,
            command,
            memory_bytes: i64::from(mem) * 1024 * 1024,
            nano_cpus: (cpus * 1e9) as i64,
        })
    }
}
