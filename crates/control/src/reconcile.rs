//! The reconciler: brings every app's containers to its current release and replica count.
//!
//! One pass lists the apps (desired state) and the containers racer labelled (observed state),
//! then converges each app with [`reconcile`]. Handlers wake it; a periodic resync makes it
//! correct when a wake-up is lost or something changes behind racer's back. On start it simply
//! finds the containers it already runs and adopts them: no duplicates.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use racer_core::api::{App, DeploymentStatus};
use racer_runtime::{ContainerSpec, Observed};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{ports, Action, Ctx, Error};

/// Runs the reconciler until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let mut last_image_sweep = Instant::now() - Duration::from_secs(3600);
    loop {
        let started = Instant::now();
        let mut next = ctx.settings.resync;
        match pass(&ctx, &mut last_image_sweep).await {
            Ok(a) => next = next.min(a.requeue_after),
            Err(e) => {
                next = error_policy(&e);
                tracing::warn!(error = %e.chain(), "reconcile pass failed");
            }
        }
        tracing::debug!(elapsed = ?started.elapsed(), "reconcile pass");
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

/// One pass over every app, then the orphans.
pub async fn pass(ctx: &Ctx, last_image_sweep: &mut Instant) -> Result<Action, Error> {
    let apps = ctx.store.apps().all().await?;
    let observed = ctx.runtime.list(None).await?;
    let mut taken: HashSet<u16> = observed.iter().filter_map(|c| c.host_port).collect();
    taken.extend(ctx.settings.reserved_ports.iter().copied());
    let mut by_app: HashMap<Option<Uuid>, Vec<Observed>> = HashMap::new();
    for c in observed {
        by_app.entry(c.app_id).or_default().push(c);
    }
    let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
    ctx.routes.retain(&names);
    let mut action = Action::requeue(ctx.settings.resync);
    for app in &apps {
        let mine = by_app.remove(&Some(app.id)).unwrap_or_default();
        match reconcile(app, mine, ctx, &mut taken).await {
            Ok(a) => action.requeue_after = action.requeue_after.min(a.requeue_after),
            Err(e) => tracing::warn!(app = %app.name, error = %e.chain(), "reconcile failed"),
        }
    }
    // Containers racer labelled whose app no longer exists: remove them.
    for (app, containers) in by_app {
        for c in containers {
            tracing::info!(container = %c.name, app = ?app, "removing orphaned container");
            remove(ctx, &c).await?;
        }
    }
    // Images of deleted apps, now and then (image listing is not free).
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
    Ok(action)
}

async fn remove(ctx: &Ctx, c: &Observed) -> Result<(), Error> {
    if c.running() {
        ctx.runtime
            .stop(&c.id, ctx.settings.stop_grace_secs)
            .await?;
    }
    ctx.runtime.remove(&c.id).await?;
    Ok(())
}

/// Whether a replica answers on its app port (TCP connect to its address on the engine's
/// network; the published host port always accepts, so it proves nothing).
pub async fn answers(ctx: &Ctx, c: &Observed, app_port: u16) -> bool {
    probe(ctx, c, app_port).await.is_some()
}

/// The address a replica answers on, if it answers.
pub async fn probe(ctx: &Ctx, c: &Observed, app_port: u16) -> Option<SocketAddr> {
    if !c.running() {
        return None;
    }
    let info = ctx.runtime.inspect(&c.id).await.ok()?;
    let ip = info.ip.and_then(|ip| ip.parse().ok())?;
    let addr = SocketAddr::new(ip, app_port);
    match tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    {
        Ok(Ok(_)) => Some(addr),
        _ => None,
    }
}

/// Converges one app: its current release runs `instances` replicas that answer; then, and only
/// then, older releases' replicas go. A rollout whose replicas do not answer in time is rolled
/// back to the release still running.
pub async fn reconcile(
    app: &App,
    observed: Vec<Observed>,
    ctx: &Ctx,
    taken: &mut HashSet<u16>,
) -> Result<Action, Error> {
    let Some(number) = app.release else {
        ctx.routes.set(&app.name, Vec::new());
        for c in &observed {
            remove(ctx, c).await?;
        }
        return Ok(Action::requeue(ctx.settings.resync));
    };
    let deployments = ctx.store.deployments();
    let release = deployments.release_of(app.id, number).await?;
    let app_port = release.config.app_port.unwrap_or(8000);
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

    let latest = deployments.latest(app.id).await?;
    let rolling = latest
        .as_ref()
        .filter(|d| d.status == DeploymentStatus::RollingOut && d.release == Some(number));

    let mut ready = 0;
    let mut backends = Vec::new();
    let mut changed = false;
    for (i, slot) in slots.iter().enumerate() {
        match slot {
            None => {
                let spec = container_spec(ctx, app, &release, i as u32, app_port, taken);
                let spec = match spec {
                    Ok(s) => s,
                    Err(e) => {
                        if let Some(d) = rolling {
                            let prev = old.iter().filter_map(|c| c.release).max();
                            deployments.point_app_at(app.id, prev).await?;
                            deployments
                                .set_status(d, DeploymentStatus::Failed, Some(&e.chain()))
                                .await?;
                        }
                        return Err(e);
                    }
                };
                tracing::info!(app = %app.name, container = %spec.name, port = spec.host_port, "starting replica");
                ctx.runtime.run(&spec).await?;
                changed = true;
            }
            Some(c) if !c.running() && c.state != "restarting" => {
                // Died behind racer's back (or crashed past the restart policy): start it again,
                // keeping its name, port and log; replace it if it cannot start.
                tracing::info!(app = %app.name, container = %c.name, state = %c.state, "restarting replica");
                if ctx.runtime.start(&c.id).await.is_err() {
                    remove(ctx, c).await?;
                }
                changed = true;
            }
            Some(c) => {
                if let Some(addr) = probe(ctx, c, app_port).await {
                    ready += 1;
                    backends.push(racer_proxy::Backend { addr });
                }
            }
        }
    }

    if ready == want {
        // The release is whole: it alone takes new requests; older replicas drain, then go.
        ctx.routes.set(&app.name, backends);
        let mut waiting = false;
        for c in &old {
            let since = {
                let mut draining = ctx.draining.lock().unwrap_or_else(|p| p.into_inner());
                *draining.entry(c.id.clone()).or_insert_with(Instant::now)
            };
            if c.running() && since.elapsed() < ctx.settings.drain {
                waiting = true;
                continue;
            }
            tracing::info!(app = %app.name, container = %c.name, "retiring replica of an older release");
            remove(ctx, c).await?;
            ctx.draining
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&c.id);
        }
        if waiting {
            changed = true;
        }
        if let Some(d) = rolling {
            deployments
                .set_status(d, DeploymentStatus::Running, None)
                .await?;
        }
    } else {
        // Not whole yet: the new replicas that answer join the old ones still serving.
        let old_port = |c: &Observed| c.release;
        let mut old_backends = Vec::new();
        for c in &old {
            let port = match old_port(c) {
                Some(n) => deployments
                    .release_of(app.id, n)
                    .await
                    .ok()
                    .and_then(|r| r.config.app_port)
                    .unwrap_or(8000),
                None => continue,
            };
            if let Some(addr) = probe(ctx, c, port).await {
                old_backends.push(racer_proxy::Backend { addr });
            }
        }
        backends.extend(old_backends);
        ctx.routes.set(&app.name, backends);
    }
    if ready < want {
        if let Some(d) = rolling {
            let age = chrono::Utc::now() - d.updated_at;
            if age.to_std().unwrap_or_default() > ctx.settings.rollout_deadline {
                let prev = old.iter().filter_map(|c| c.release).max();
                let why = format!(
                    "{ready} of {want} replicas answered on port {app_port} within {}s",
                    ctx.settings.rollout_deadline.as_secs()
                );
                match prev {
                    Some(p) => {
                        deployments.point_app_at(app.id, Some(p)).await?;
                        deployments
                            .set_status(
                                d,
                                DeploymentStatus::Failed,
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
    }
    let soon = if changed || ready < want {
        Duration::from_millis(100)
    } else {
        ctx.settings.resync
    };
    Ok(Action::requeue(soon))
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
    Ok(ContainerSpec {
        name: format!("{}-{}-{}", app.name, release.number, replica),
        image: release.image_id.clone(),
        app_id: app.id,
        app_name: app.name.clone(),
        release: release.number,
        replica,
        env,
        command,
        app_port,
        host_port,
        memory_bytes: i64::from(mem) * 1024 * 1024,
        nano_cpus: (cpus * 1e9) as i64,
    })
}
