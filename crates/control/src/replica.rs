//! What the local and Swarm clusters share about running a replica: how a release's config
//! becomes a container's environment, command and limits, and how racer removes a container.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use racer_core::api::App;
use racer_runtime::Observed;
use uuid::Uuid;

use crate::{Ctx, Error};

/// Stops (if it runs) and removes a container racer owns, marking it so the observer reads it
/// again.
pub(crate) async fn remove(ctx: &Ctx, c: &Observed) -> Result<(), Error> {
    ctx.observer.mark(&c.id);
    let runtime = ctx.engines.runtime(ctx, &c.cluster)?;
    if c.running() {
        runtime.stop(&c.id, ctx.settings.stop_grace_secs).await?;
    }
    runtime.remove(&c.id).await?;
    Ok(())
}

/// Removes the images of deleted apps, now and then (image listing is not free).
pub(crate) async fn sweep_images(
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

/// Ends a rollout that did not pass in time: points the app back at `previous` (the newest
/// release still serving) and marks the deployment rolled back, or failed when nothing older
/// serves.
pub(crate) async fn give_up_rollout(
    ctx: &Ctx,
    app: Uuid,
    d: &racer_core::api::Deployment,
    why: &str,
    previous: Option<i64>,
) -> Result<(), Error> {
    use racer_core::api::DeploymentStatus;
    let deployments = ctx.store.deployments();
    match previous {
        Some(p) => {
            deployments.point_app_at(app, Some(p)).await?;
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
                .set_status(d, DeploymentStatus::Failed, Some(why))
                .await?;
        }
    }
    Ok(())
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
        // What `valueFrom: sdk` stands for (racer_core::spec::SDK_ENV), set in every replica.
        env.push(format!("PORT={app_port}"));
        env.push(format!("RACER_APP={}", app.name));
        env.push(format!("RACER_APP_ID={}", app.id));
        env.push(format!("RACER_RELEASE={}", release.number));
        if let Some(url) = ctx
            .settings
            .app_urls
            .as_ref()
            .and_then(|u| u.of(&app.name).into_iter().next())
        {
            env.push(format!("RACER_APP_URL={url}"));
        }
        // A conda-project release runs the command its image was built with.
        let command = match release.config.command.as_deref() {
            Some(_) if release.config.command_in_image => None,
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
