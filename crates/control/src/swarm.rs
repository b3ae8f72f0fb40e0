//! The reconciler on a Swarm cluster (`racer-server --cluster swarm`): each app is one
//! replicated service, and Swarm runs its tasks.
//!
//! One pass lists the apps (desired state) and this install's services (observed state, by
//! label), then converges each app with [`reconcile`]: it creates the service of the current
//! release, rolls it to a new release with a spec update (Swarm's update config: one task at a
//! time, start-first, rolled back by Swarm when a new task fails), and scales it by updating the
//! replica count with the service's version. The proxy gets one backend per running task on
//! this node: its container's address on the default bridge (nothing is published), in rotation
//! while the app's health check passes against it, with the same thresholds as local replicas.
//! Services of deleted apps are removed, and so are replicas of this install left from a run on
//! the local engine.

use racer_core::api::DEFAULT_APP_PORT;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use racer_core::api::{App, DeploymentStatus, HealthCheck, Release};
use racer_runtime::{ServiceDef, ServiceObserved, TaskObserved};
use uuid::Uuid;

use crate::replica::RunParts;
use crate::{Action, Ctx, Error};

/// How soon an app whose service is changing is looked at again.
const CHANGING: Duration = Duration::from_millis(250);

/// What one reconcile of an app on Swarm does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing should run and nothing does.
    Idle,
    /// The app has no release: its service goes.
    Remove,
    /// Create the service of the current release.
    Create,
    /// Swarm rolled the rollout of the current release back after a new task failed: the app
    /// goes back to the release the service runs again.
    AdoptRollback {
        /// The release the service runs.
        to: i64,
    },
    /// Update the service's spec to the current release; Swarm rolls it.
    Roll,
    /// Set the service's replica count, changing nothing else.
    Scale(u64),
    /// The spec is what it should be: watch the tasks.
    Observe,
}

/// Decides the next step from the desired release and instances, whether a rollout of that
/// release is under way, and the service and its tasks as observed. Pure.
pub fn next_step(
    release: Option<i64>,
    want: u64,
    rolling: bool,
    service: Option<&ServiceObserved>,
    tasks: &[TaskObserved],
) -> Step {
    let Some(number) = release else {
        return if service.is_some() {
            Step::Remove
        } else {
            Step::Idle
        };
    };
    let Some(s) = service else {
        // An app that is down (or whose service an operator removed) gets no empty service.
        return if want == 0 { Step::Idle } else { Step::Create };
    };
    if s.release != Some(number) {
        // Swarm put the previous spec back after tasks of this release failed: the task
        // history shows this release was tried, so this is its rollback, not a newer deploy.
        let tried = tasks.iter().any(|t| t.release == Some(number));
        let rolled_back = s
            .update_state
            .as_deref()
            .is_some_and(|u| u.starts_with("rollback"));
        return match s.release {
            Some(to) if rolling && rolled_back && tried => Step::AdoptRollback { to },
            _ => Step::Roll,
        };
    }
    if s.replicas != want {
        return Step::Scale(want);
    }
    Step::Observe
}

/// Whether the service runs exactly `want` tasks of `release` and nothing else, with no update
/// in progress.
pub fn converged(
    release: i64,
    want: u64,
    service: &ServiceObserved,
    tasks: &[TaskObserved],
) -> bool {
    let running_new = tasks
        .iter()
        .filter(|t| t.running() && t.release == Some(release))
        .count() as u64;
    let running_old = tasks
        .iter()
        .filter(|t| t.running() && t.release != Some(release))
        .count();
    let updating = matches!(
        service.update_state.as_deref(),
        Some("updating") | Some("rollback_started")
    );
    service.release == Some(release) && running_new == want && running_old == 0 && !updating
}

/// The service name of an app: `<app>-<install prefix>`, unique per install on a shared swarm.
pub fn service_name(app: &str, install: &str) -> String {
    let install: String = install.chars().take(8).collect();
    if install.is_empty() {
        return app.to_owned();
    }
    let app: String = app.chars().take(63 - 1 - install.len()).collect();
    format!("{app}-{install}")
}

/// Apps as Swarm services, on an engine that is a Swarm manager.
#[derive(Debug, Clone, Copy, Default)]
pub struct SwarmCluster;

/// What the Swarm reconciler keeps between passes.
pub struct SwarmState {
    /// When images of deleted apps were last looked for.
    last_image_sweep: std::time::Instant,
}

impl Default for SwarmState {
    fn default() -> SwarmState {
        SwarmState {
            last_image_sweep: std::time::Instant::now()
                .checked_sub(std::time::Duration::from_secs(3600))
                .unwrap_or_else(std::time::Instant::now),
        }
    }
}

impl crate::cluster::Cluster for SwarmCluster {
    type State = SwarmState;

    fn name(&self) -> &'static str {
        "swarm"
    }

    /// Swarm runs and restarts the tasks, and the reconciler checks their health itself: no
    /// helper loop.
    fn spawn_helpers(
        &self,
        _: &Ctx,
        _: &tokio_util::sync::CancellationToken,
        _: &tokio_util::task::TaskTracker,
    ) {
    }

    async fn pass(
        &self,
        ctx: &Ctx,
        state: &mut SwarmState,
        apps: &[App],
        due: &HashSet<Uuid>,
    ) -> Result<Vec<(Uuid, Action)>, Error> {
        let actions = pass(ctx, apps, due).await?;
        crate::replica::sweep_images(ctx, apps, &mut state.last_image_sweep).await?;
        Ok(actions)
    }
}

/// One pass over the due apps on Swarm, then the services and containers racer no longer wants.
pub async fn pass(
    ctx: &Ctx,
    apps: &[App],
    due: &HashSet<Uuid>,
) -> Result<Vec<(Uuid, Action)>, Error> {
    let services = ctx.runtime.services(None).await?;
    let containers = ctx.runtime.list(None).await?;
    let live_services: HashSet<String> = services.iter().map(|s| health_prefix(&s.id)).collect();
    let mut by_app: HashMap<Option<Uuid>, Vec<ServiceObserved>> = HashMap::new();
    for s in services {
        by_app.entry(s.app_id).or_default().push(s);
    }
    let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
    ctx.routes.retain(&names);
    let mut actions = Vec::new();
    for app in apps {
        let mut mine = by_app.remove(&Some(app.id)).unwrap_or_default();
        if !due.contains(&app.id) {
            continue;
        }
        // One service per app; a second one (never made by racer) goes.
        mine.sort_by_key(|s| std::cmp::Reverse(s.version));
        let service = if mine.is_empty() {
            None
        } else {
            Some(mine.remove(0))
        };
        for extra in mine {
            tracing::info!(app = %app.name, service = %extra.name, "removing a second service of the app");
            ctx.runtime.remove_service(&extra.id).await?;
        }
        let action = match reconcile(app, service, ctx).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(app = %app.name, error = %e.chain(), "swarm reconcile failed");
                Action::requeue(crate::cluster::error_policy(&e))
            }
        };
        actions.push((app.id, action));
    }
    for (app, services) in by_app {
        for s in services {
            tracing::info!(service = %s.name, app = ?app, "removing the service of a deleted app");
            ctx.runtime.remove_service(&s.id).await?;
        }
    }
    // Replicas of this install are from a run on the local engine (or of deleted apps): on
    // Swarm the services run every app, so they go. Other labelled containers (a build's) stay.
    for c in containers.iter().filter(|c| c.replica.is_some()) {
        tracing::info!(container = %c.name, "removing a local container: apps run on swarm");
        crate::replica::remove(ctx, c).await?;
    }
    ctx.health.retain(|k| {
        !k.starts_with("swarm:")
            || live_services
                .iter()
                .any(|prefix| k.starts_with(prefix.as_str()))
    });
    Ok(actions)
}

/// Task health is kept in `ctx.health` under `swarm:<service>:<task>`.
fn health_prefix(service_id: &str) -> String {
    format!("swarm:{service_id}:")
}

fn service_def(
    ctx: &Ctx,
    app: &App,
    release: &Release,
    replicas: u64,
) -> Result<ServiceDef, Error> {
    let app_port = release.config.app_port_or_default();
    let run = RunParts::of(ctx, app, release, app_port)?;
    Ok(ServiceDef {
        name: service_name(&app.name, ctx.runtime.install()),
        image: release.image_id.clone(),
        app_id: app.id,
        app_name: app.name.clone(),
        release: release.number,
        env: run.env,
        command: run.command,
        app_port,
        memory_bytes: run.memory_bytes,
        nano_cpus: run.nano_cpus,
        replicas,
        stop_grace_secs: i64::from(ctx.settings.stop_grace_secs),
    })
}

/// Converges one app's service: the current release, `instances` tasks, a route while it
/// answers; a rollout is `running` once exactly the new tasks run and answer, rolled back when
/// Swarm rolled it back or when it does not converge within the rollout deadline.
pub async fn reconcile(
    app: &App,
    service: Option<ServiceObserved>,
    ctx: &Ctx,
) -> Result<Action, Error> {
    let deployments = ctx.store.deployments();
    let release = match app.release {
        Some(n) => Some(deployments.release_of(app.id, n).await?),
        None => None,
    };
    let latest = deployments.latest(app.id).await?;
    let rolling = latest.as_ref().filter(|d| {
        d.status == DeploymentStatus::RollingOut && d.release.is_some() && d.release == app.release
    });
    let tasks = match &service {
        Some(s) => ctx.runtime.tasks(&s.id).await?,
        None => Vec::new(),
    };
    let want = u64::from(app.instances);
    let step = next_step(
        app.release,
        want,
        rolling.is_some(),
        service.as_ref(),
        &tasks,
    );
    match step {
        Step::Idle => {
            ctx.routes.set(&app.name, Vec::new());
            return Ok(Action::requeue(ctx.settings.resync));
        }
        Step::Remove => {
            ctx.routes.set(&app.name, Vec::new());
            if let Some(s) = &service {
                tracing::info!(app = %app.name, service = %s.name, "removing swarm service: the app has no release");
                ctx.runtime.remove_service(&s.id).await?;
            }
            return Ok(Action::requeue(ctx.settings.resync));
        }
        Step::Create => {
            ctx.routes.set(&app.name, Vec::new());
            if let Some(release) = &release {
                let def = service_def(ctx, app, release, want)?;
                tracing::info!(app = %app.name, service = %def.name, release = release.number, replicas = want, "creating swarm service");
                ctx.runtime.create_service(&def).await?;
            }
            return Ok(Action::requeue(CHANGING));
        }
        _ => {}
    }
    // Every other step has both (see `next_step`).
    let (Some(release), Some(s)) = (release, service) else {
        return Ok(Action::requeue(ctx.settings.resync));
    };
    let number = release.number;
    match step {
        Step::Idle | Step::Remove | Step::Create => Ok(Action::requeue(ctx.settings.resync)),
        Step::Roll => {
            let def = service_def(ctx, app, &release, want)?;
            tracing::info!(app = %app.name, service = %s.name, from = ?s.release, to = number, "rolling swarm service to a new release");
            let spec = racer_runtime::swarm::service_spec(&def, ctx.runtime.install());
            ctx.runtime.update_service(&s.id, s.version, spec).await?;
            Ok(Action::requeue(CHANGING))
        }
        Step::Scale(n) => {
            tracing::info!(app = %app.name, service = %s.name, from = s.replicas, to = n, version = s.version, "scaling swarm service");
            ctx.runtime.scale_service(&s, n).await?;
            Ok(Action::requeue(CHANGING))
        }
        Step::AdoptRollback { to } => {
            let why = task_error(&tasks, number)
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            if let Some(d) = rolling {
                tracing::info!(app = %app.name, release = number, to, "swarm rolled the rollout back");
                deployments.point_app_at(app.id, Some(to)).await?;
                deployments
                    .set_status(
                        d,
                        DeploymentStatus::RolledBack,
                        Some(&format!(
                            "swarm rolled the service back to release {to} after a task of release {number} failed{why}"
                        )),
                    )
                    .await?;
            }
            Ok(Action::requeue(CHANGING))
        }
        Step::Observe => observe(app, &release, want, &s, &tasks, rolling, ctx).await,
    }
}

/// The newest error of a task of `release`, for deployment records.
fn task_error(tasks: &[TaskObserved], release: i64) -> Option<String> {
    tasks
        .iter()
        .filter(|t| t.release == Some(release))
        .find_map(|t| t.error.clone())
}

async fn observe(
    app: &App,
    release: &Release,
    want: u64,
    s: &ServiceObserved,
    tasks: &[TaskObserved],
    rolling: Option<&racer_core::api::Deployment>,
    ctx: &Ctx,
) -> Result<Action, Error> {
    let number = release.number;
    let check = release.config.health.clone().unwrap_or_default();
    let app_port = release.config.app_port_or_default();
    let prefix = health_prefix(&s.id);
    // Tasks of an older release (still serving during a rollout) listen where that release said.
    let mut configs: HashMap<i64, (u16, HealthCheck)> =
        HashMap::from([(number, (app_port, check.clone()))]);
    // Each running task of this node, at its container's address on the default bridge.
    let mut backends = Vec::new();
    let mut healthy_new = 0u64;
    let mut checked = HashSet::new();
    for t in tasks.iter().filter(|t| t.running()) {
        let Some(container) = &t.container_id else {
            continue;
        };
        let key = format!("{prefix}{}", t.id);
        checked.insert(key.clone());
        let rel = t.release.unwrap_or(number);
        if let std::collections::hash_map::Entry::Vacant(e) = configs.entry(rel) {
            let cfg = ctx
                .store
                .deployments()
                .release_of(app.id, rel)
                .await
                .ok()
                .map(|r| r.config);
            e.insert((
                cfg.as_ref()
                    .and_then(|c| c.app_port)
                    .unwrap_or(DEFAULT_APP_PORT),
                cfg.and_then(|c| c.health).unwrap_or_default(),
            ));
        }
        let (port, task_check) = configs
            .get(&rel)
            .cloned()
            .unwrap_or((app_port, check.clone()));
        let addr = match ctx.runtime.inspect(container).await {
            Ok(i) => {
                i.ip.and_then(|ip| ip.parse().ok())
                    .map(|ip| SocketAddr::new(ip, port))
            }
            // On another node, or gone since the list.
            Err(_) => None,
        };
        let Some(addr) = addr else { continue };
        let probe_addr = SocketAddr::new(addr.ip(), task_check.port.unwrap_or(port));
        let passed = crate::probe::probe(probe_addr, &task_check).await;
        let (previous, next) = ctx.health.observe(
            &key,
            passed,
            task_check.success_threshold,
            task_check.failure_threshold,
        );
        if previous.is_some_and(|p| p.healthy != next.healthy) {
            tracing::info!(app = %app.name, task = %t.id, healthy = next.healthy, "swarm task health changed");
        }
        if next.healthy {
            backends.push(racer_proxy::Backend {
                addr,
                concurrency: release.config.concurrency,
            });
            if t.release == Some(number) {
                healthy_new += 1;
            }
        }
    }
    ctx.health
        .retain(|k| !k.starts_with(&prefix) || checked.contains(k));
    ctx.routes.set(&app.name, backends);
    let healthy = healthy_new == want;

    let done = converged(number, want, s, tasks) && healthy;
    if let Some(d) = rolling {
        if done {
            tracing::info!(app = %app.name, release = number, replicas = want, "swarm rollout finished");
            ctx.store
                .deployments()
                .set_status(d, DeploymentStatus::Running, None)
                .await?;
        } else {
            let age = chrono::Utc::now() - d.updated_at;
            if age.to_std().unwrap_or_default() > ctx.settings.rollout_deadline {
                let running_new = tasks
                    .iter()
                    .filter(|t| t.running() && t.release == Some(number))
                    .count();
                let mut why = format!(
                    "{running_new} of {want} swarm tasks of release {number} running, {healthy_new} passing their health check on port {app_port}, within {}s",
                    ctx.settings.rollout_deadline.as_secs()
                );
                if let Some(e) = task_error(tasks, number) {
                    why.push_str(&format!(" (last task error: {e})"));
                }
                let prev = tasks
                    .iter()
                    .filter(|t| t.running() && t.release != Some(number))
                    .filter_map(|t| t.release)
                    .max();
                crate::replica::give_up_rollout(ctx, app.id, d, &why, prev).await?;
            }
        }
    }
    if done {
        Ok(Action::requeue(
            Duration::from_secs(u64::from(check.interval_seconds.max(1))).min(ctx.settings.resync),
        ))
    } else {
        Ok(Action::requeue(CHANGING))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(release: i64, replicas: u64, update: Option<&str>) -> ServiceObserved {
        ServiceObserved {
            id: "s".into(),
            name: "web-abc".into(),
            version: 7,
            app_id: None,
            app_name: Some("web".into()),
            release: Some(release),
            image: "sha256:x".into(),
            replicas,
            update_state: update.map(str::to_owned),
            update_message: None,
            spec: Default::default(),
        }
    }

    fn task(release: i64, state: &str, desired: &str) -> TaskObserved {
        TaskObserved {
            id: format!("t-{release}-{state}"),
            slot: Some(1),
            node_id: None,
            release: Some(release),
            state: state.into(),
            desired_state: desired.into(),
            message: None,
            error: None,
            container_id: None,
        }
    }

    #[test]
    fn no_release_removes_the_service_and_no_service_is_created_for_a_down_app() {
        assert_eq!(
            next_step(None, 1, false, Some(&service(1, 1, None)), &[]),
            Step::Remove
        );
        assert_eq!(next_step(None, 1, false, None, &[]), Step::Idle);
        assert_eq!(next_step(Some(1), 0, false, None, &[]), Step::Idle);
        assert_eq!(next_step(Some(1), 2, true, None, &[]), Step::Create);
    }

    #[test]
    fn a_new_release_rolls_and_a_new_count_scales() {
        let s = service(1, 1, None);
        assert_eq!(next_step(Some(2), 1, true, Some(&s), &[]), Step::Roll);
        assert_eq!(next_step(Some(1), 3, false, Some(&s), &[]), Step::Scale(3));
        assert_eq!(next_step(Some(1), 0, false, Some(&s), &[]), Step::Scale(0));
        assert_eq!(next_step(Some(1), 1, false, Some(&s), &[]), Step::Observe);
    }

    #[test]
    fn swarm_rollbacks_are_adopted_only_for_the_release_that_was_tried() {
        let s = service(1, 1, Some("rollback_completed"));
        let failed = [task(2, "failed", "shutdown"), task(1, "running", "running")];
        assert_eq!(
            next_step(Some(2), 1, true, Some(&s), &failed),
            Step::AdoptRollback { to: 1 }
        );
        // A newer deploy after an old rollback: no task of it yet, so it rolls.
        let old = [task(1, "running", "running")];
        assert_eq!(next_step(Some(3), 1, true, Some(&s), &old), Step::Roll);
        // A rollback racer asked for (pointing the app back) is not a rollout to adopt.
        assert_eq!(next_step(Some(2), 1, false, Some(&s), &failed), Step::Roll);
    }

    #[test]
    fn converged_needs_exactly_the_new_tasks_and_no_update_in_flight() {
        let s = service(2, 2, Some("completed"));
        let two = [task(2, "running", "running"), task(2, "running", "running")];
        assert!(converged(2, 2, &s, &two));
        let with_old = [
            task(2, "running", "running"),
            task(2, "running", "running"),
            task(1, "running", "running"),
        ];
        assert!(!converged(2, 2, &s, &with_old));
        let retired = [
            task(2, "running", "running"),
            task(2, "running", "running"),
            task(1, "shutdown", "shutdown"),
            task(1, "running", "shutdown"),
        ];
        assert!(
            converged(2, 2, &s, &retired),
            "tasks being shut down do not count"
        );
        assert!(!converged(2, 3, &s, &two));
        assert!(!converged(2, 2, &service(2, 2, Some("updating")), &two));
        assert!(converged(2, 0, &service(2, 0, None), &[]));
    }

    #[test]
    fn service_names_carry_the_install_and_fit_swarm_limits() {
        assert_eq!(service_name("web", "0123456789abcdef"), "web-01234567");
        assert_eq!(service_name("web", ""), "web");
        let long = "a".repeat(63);
        assert_eq!(service_name(&long, "0123456789").len(), 63);
    }
}
