//! The builder: a durable job queue of deployments. Each pending deployment is claimed (never two
//! of one app at once), its source prepared, its image built with the log streamed into the
//! store, and a release recorded. A build interrupted by a restart is queued again at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use racer_build::Detected;
use racer_core::api::{Deployment, DeploymentStatus, RunConfig, Source};
use racer_store::NewRelease;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::BuildResult;
use crate::{Ctx, Error};

/// A build's lease: its builder touches it every two thirds of the lease TTL (10 s by
/// default); one untouched for three TTLs (45 s: its builder died) goes back to the queue,
/// whichever server or worker sees it.
pub fn build_touch(ctx: &Ctx) -> std::time::Duration {
    ctx.settings.lease_ttl * 2 / 3
}

/// See [`build_touch`].
pub fn build_stale(ctx: &Ctx) -> std::time::Duration {
    ctx.settings.lease_ttl * 3
}

/// Queues again the builds that stopped: this server's own when `at_start` (it restarted), and
/// any other server's whose lease went stale.
async fn requeue(ctx: &Ctx, at_start: bool) {
    let mine = at_start.then_some(ctx.settings.builder_id.as_str());
    match ctx
        .store
        .deployments()
        .requeue_interrupted(mine, build_stale(ctx))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "queued interrupted builds again"),
        Err(e) => tracing::error!(error = %e, "cannot requeue interrupted builds"),
    }
}

/// Runs the builder until `shutdown`. Builds in flight finish or are cut off with the process;
/// either way they are queued again: at this server's next start, or by another server once
/// their lease is stale.
pub async fn run(ctx: Ctx, shutdown: CancellationToken, tracker: TaskTracker) {
    requeue(&ctx, true).await;
    let mut last_sweep = std::time::Instant::now();
    let slots = Arc::new(Semaphore::new(ctx.settings.max_parallel_builds.max(1)));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        if last_sweep.elapsed() >= build_touch(&ctx) {
            last_sweep = std::time::Instant::now();
            requeue(&ctx, false).await;
        }
        match ctx
            .store
            .deployments()
            .claim_next(&ctx.settings.builder_id)
            .await
        {
            Ok(Some(d)) => {
                let ctx = ctx.clone();
                let cancel = shutdown.clone();
                tracker.spawn(async move {
                    tokio::select! {
                        _ = build_one(&ctx, d) => {}
                        _ = cancel.cancelled() => {}
                    }
                    drop(permit);
                    ctx.build_wake.notify_one();
                });
                continue;
            }
            Ok(None) => drop(permit),
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "cannot read the deployment queue");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.build_wake.notified() => {}
            _ = tokio::time::sleep(ctx.settings.resync) => {}
        }
    }
}

/// Builds one claimed deployment to a release, or marks it failed. Never leaves it `building`.
async fn build_one(ctx: &Ctx, d: Deployment) {
    let workdir = ctx.builds_dir().join(d.id.to_string());
    let started = std::time::Instant::now();
    // The lease: touched while the build runs, so no other server takes it over.
    let touching = async {
        loop {
            tokio::time::sleep(build_touch(ctx)).await;
            match ctx
                .store
                .deployments()
                .touch_building(d.id, &ctx.settings.builder_id)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(deployment = %d.id, "this build is no longer ours (requeued elsewhere)")
                }
                Err(e) => {
                    tracing::warn!(deployment = %d.id, error = %e, "cannot renew the build's lease")
                }
            }
        }
    };
    let outcome = tokio::select! {
        o = build(ctx, &d, &workdir) => o,
        () = touching => unreachable!("the lease loop never ends"),
    };
    let result = if outcome.is_ok() {
        BuildResult::Succeeded
    } else {
        BuildResult::Failed
    };
    ctx.metrics
        .build_finished(&d.app_name, result, started.elapsed());
    let deployments = ctx.store.deployments();
    match outcome {
        Ok(release) => match deployments.release(&d, &release).await {
            Ok(r) => {
                tracing::info!(app = %d.app_name, release = r.number, took = ?started.elapsed(), "release recorded");
                cleanup(ctx, &d, &workdir).await;
                ctx.reconcile_wake.app(d.app_id);
            }
            Err(e) => fail(ctx, &d, &format!("cannot record the release: {e}")).await,
        },
        Err(e) => {
            let msg = e.chain();
            let _ = deployments
                .append_log(d.id, &format!("\nerror: {msg}\n"))
                .await;
            fail(ctx, &d, &msg).await;
            cleanup(ctx, &d, &workdir).await;
        }
    }
}

async fn fail(ctx: &Ctx, d: &Deployment, msg: &str) {
    let mut building = d.clone();
    building.status = DeploymentStatus::Building;
    if let Err(e) = ctx
        .store
        .deployments()
        .set_status(&building, DeploymentStatus::Failed, Some(msg))
        .await
    {
        tracing::error!(error = %e, deployment = %d.id, "cannot mark deployment failed");
    }
    tracing::warn!(app = %d.app_name, deployment = %d.id, error = msg, "deployment failed");
}

async fn cleanup(ctx: &Ctx, d: &Deployment, workdir: &Path) {
    let _ = tokio::fs::remove_dir_all(workdir).await;
    forget_upload(ctx, &d.source).await;
}

/// Where an upload's organisation is kept, beside it.
pub(crate) fn owner_path(upload: &std::path::Path) -> std::path::PathBuf {
    upload.with_extension("owner")
}

/// Removes the upload a source names, if it does (it is used once).
pub(crate) async fn forget_upload(ctx: &Ctx, source: &Source) {
    if let Source::Path { upload, .. } = source {
        let path = upload_path(ctx, upload);
        let _ = tokio::fs::remove_file(owner_path(&path)).await;
        let _ = tokio::fs::remove_file(path).await;
    }
}

/// The file of an upload id (ids are generated by the server: a UUID, nothing else).
pub fn upload_path(ctx: &Ctx, upload: &str) -> PathBuf {
    let safe: String = upload
        .chars()
        .filter(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    ctx.uploads_dir().join(format!("{safe}.tar"))
}

async fn log(ctx: &Ctx, d: &Deployment, line: &str) {
    let _ = ctx.store.deployments().append_log(d.id, line).await;
}

async fn build(ctx: &Ctx, d: &Deployment, workdir: &Path) -> Result<NewRelease, Error> {
    let deployments = ctx.store.deployments();
    let number = deployments.next_release_number(d.app_id).await?;

    // A rerun without rebuild, or a rollback: the image of an earlier release, as it is.
    if let Some(from) = d.image_from_release {
        let earlier = deployments.release_of(d.app_id, from).await?;
        log(
            ctx,
            d,
            &format!("reusing the image of release {from}: {}\n", earlier.image),
        )
        .await;
        return Ok(NewRelease {
            number,
            config: d.config.clone(),
            image: earlier.image,
            image_id: earlier.image_id,
            commit: earlier.commit,
        });
    }

    let (dir, commit) = match &d.source {
        Source::Image { image } => {
            let info = match ctx.runtime.image(image).await? {
                Some(i) => i,
                None => {
                    log(
                        ctx,
                        d,
                        &format!("image {image} is not present locally; pulling\n"),
                    )
                    .await;
                    ctx.runtime.pull(image).await?;
                    ctx.runtime
                        .image(image)
                        .await?
                        .ok_or_else(|| racer_runtime::Error::Pull {
                            image: image.clone(),
                            message: "the engine has no such image after the pull".into(),
                        })?
                }
            };
            log(ctx, d, &format!("using image {image} ({})\n", info.id)).await;
            let mut config = resolve_port(d.config.clone(), &info.exposed_ports);
            config.command_in_image = false;
            return Ok(NewRelease {
                number,
                config,
                image: image.clone(),
                image_id: info.id,
                commit: None,
            });
        }
        Source::Path { upload, .. } => {
            // Named as the user's folder: a conda-project may be named after it.
            let src = workdir.join(d.source.folder_name());
            let tar = upload_path(ctx, upload);
            log(ctx, d, "unpacking the uploaded folder\n").await;
            let dest = src.clone();
            tokio::task::spawn_blocking(move || -> Result<(), Error> {
                let _ = std::fs::remove_dir_all(&dest);
                std::fs::create_dir_all(&dest).map_err(|source| Error::Io {
                    path: dest.display().to_string(),
                    source,
                })?;
                let f = std::fs::File::open(&tar).map_err(|source| Error::Io {
                    path: tar.display().to_string(),
                    source,
                })?;
                racer_build::context::unpack(
                    std::io::BufReader::new(f),
                    &dest,
                    &racer_build::context::Limits::default(),
                )?;
                Ok(())
            })
            .await??;
            (src, None)
        }
        Source::Git { url, reference } => {
            let src = workdir.join(d.source.folder_name());
            log(
                ctx,
                d,
                &format!(
                    "cloning {url}{}\n",
                    reference
                        .as_deref()
                        .map(|r| format!(" at {r}"))
                        .unwrap_or_default()
                ),
            )
            .await;
            let (u, r, dest) = (url.clone(), reference.clone(), src.clone());
            let sha = tokio::task::spawn_blocking(move || {
                let _ = std::fs::remove_dir_all(&dest);
                racer_build::git::checkout(&u, r.as_deref(), &dest)
            })
            .await??;
            log(ctx, d, &format!("checked out commit {sha}\n")).await;
            (src, Some(sha))
        }
    };

    // Detect, validate, generate: the same steps `racer validate` and `racer dockerfile` run.
    let context = workdir.join("context.tar");
    let base_image = d
        .config
        .base_image
        .clone()
        .unwrap_or_else(|| ctx.settings.conda_base_image.clone());
    let (src, ctx_tar, cfg) = (dir.clone(), context.clone(), d.config.clone());
    let (kind, command_in_image) =
        tokio::task::spawn_blocking(move || -> Result<(String, bool), Error> {
            let out = std::fs::File::create(&ctx_tar).map_err(|source| Error::Io {
                path: ctx_tar.display().to_string(),
                source,
            })?;
            let out = std::io::BufWriter::new(out);
            match racer_build::detect(&src)? {
                Detected::Dockerfile => {
                    racer_build::context::pack(&src, out)?;
                    Ok(("Dockerfile".to_owned(), false))
                }
                Detected::CondaProject(project) => {
                    let dockerfile = generate_dockerfile(&project, &cfg, &base_image)?;
                    racer_build::context::pack_with_extra(
                        &src,
                        &[("Dockerfile", dockerfile.as_bytes())],
                        out,
                    )?;
                    Ok((format!("conda-project {}", project.display_name()), true))
                }
            }
        })
        .await??;
    log(
        ctx,
        d,
        &format!("building {kind} as racer/{}:{number}\n", d.app_name),
    )
    .await;

    let tag = format!("racer/{}:{number}", d.app_name);
    let labels = ctx.runtime.owned_labels(d.app_id, &d.app_name);
    // Lines go through a channel so the engine's stream is never held up by the store.
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let runtime = ctx.runtime.clone();
    let build = async move {
        let r = runtime
            .build(&context, &tag, &labels, |line| {
                let _ = tx.send(line.to_owned());
            })
            .await;
        drop(tx);
        r
    };
    let writer = async {
        while let Some(mut batch) = rx.recv().await {
            while let Ok(more) = rx.try_recv() {
                batch.push_str(&more);
            }
            log(ctx, d, &batch).await;
        }
    };
    let (built, ()) = tokio::join!(build, writer);
    let image_id = built?;
    let info = ctx.runtime.image(&image_id).await?;
    let exposed = info.map(|i| i.exposed_ports).unwrap_or_default();
    let mut config = resolve_port(d.config.clone(), &exposed);
    config.command_in_image = command_in_image;
    Ok(NewRelease {
        number,
        config,
        image: format!("racer/{}:{number}", d.app_name),
        image_id,
        commit,
    })
}

/// The Dockerfile a conda-project deploy builds.
pub fn generate_dockerfile(
    project: &racer_build::conda::Project,
    config: &RunConfig,
    base_image: &str,
) -> Result<String, Error> {
    let opts = racer_build::dockerfile::Options {
        base_image: base_image.to_owned(),
        environment: None,
        command: config.command.clone(),
        app_port: config.app_port.unwrap_or(racer_core::api::DEFAULT_APP_PORT),
    };
    Ok(racer_build::dockerfile::generate(project, &opts)?)
}

/// The app port: as configured, else the image's only exposed TCP port, else 8000.
pub fn resolve_port(mut config: RunConfig, exposed: &[String]) -> RunConfig {
    if config.app_port.is_none() {
        let tcp: Vec<u16> = exposed
            .iter()
            .filter_map(|p| p.strip_suffix("/tcp").unwrap_or(p).parse().ok())
            .collect();
        config.app_port = Some(match tcp.as_slice() {
            [only] => *only,
            _ => racer_core::api::DEFAULT_APP_PORT,
        });
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_port_comes_from_config_then_image_then_default() {
        let set = RunConfig {
            app_port: Some(3000),
            ..Default::default()
        };
        assert_eq!(resolve_port(set, &["80/tcp".into()]).app_port, Some(3000));
        let unset = RunConfig::default();
        assert_eq!(
            resolve_port(unset.clone(), &["5000/tcp".into()]).app_port,
            Some(5000)
        );
        assert_eq!(resolve_port(unset.clone(), &[]).app_port, Some(8000));
        assert_eq!(
            resolve_port(unset, &["80/tcp".into(), "443/tcp".into()]).app_port,
            Some(8000)
        );
    }
}
