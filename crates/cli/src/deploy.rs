//! The client side of deploying: packing and sending a folder, following a deployment's build
//! log with progress, and waiting until the app answers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use racer_core::api::{AppStatus, Deployed, Deployment, DeploymentStatus, RunEvent, Source};

use crate::client::Client;
use crate::output;

/// Packs `path` (honouring `.dockerignore`) into a temporary tarball and uploads it.
pub async fn send_folder(client: &Client, path: &Path, quiet: bool) -> anyhow::Result<Source> {
    let abs = std::fs::canonicalize(path)
        .with_context(|| format!("path {} does not exist", path.display()))?;
    if !abs.is_dir() {
        bail!("path {} is not a folder", abs.display());
    }
    let tmp = tempfile::NamedTempFile::new().context("cannot create a temporary file")?;
    let file = tmp.reopen().context("cannot open the temporary file")?;
    let dir = abs.clone();
    let stats = tokio::task::spawn_blocking(move || {
        racer_build::context::pack(&dir, std::io::BufWriter::new(file))
    })
    .await?
    .with_context(|| format!("cannot pack {}", abs.display()))?;
    let bytes = std::fs::metadata(tmp.path()).map(|m| m.len()).unwrap_or(0);
    if !quiet {
        eprintln!(
            "sending {} ({} files, {})",
            abs.display(),
            stats.files,
            human_bytes(bytes)
        );
    }
    let upload = client.upload(tmp.path()).await?;
    Ok(Source::Path {
        path: abs.display().to_string(),
        upload: upload.id,
    })
}

/// A `--git` argument (`URL`, optionally with `#branch`, `#tag` or `#sha`) as a source.
pub fn git_source(s: &str) -> Source {
    let (url, reference) = racer_build::git::split_ref(s);
    Source::Git {
        url: url.to_owned(),
        reference: reference.map(str::to_owned),
    }
}

/// `12.3 KiB`.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Parses `K=V` arguments.
pub fn parse_env(pairs: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut env = std::collections::BTreeMap::new();
    for kv in pairs {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--env {kv:?}: expected KEY=VALUE");
        };
        env.insert(k.to_owned(), v.to_owned());
    }
    Ok(env)
}

/// Follows a deployment: streams its build log (progress on a terminal, events with `--json`),
/// then, unless `no_wait`, waits until it runs and prints the app's URL. Exit 1 if it failed.
pub async fn follow(
    client: &Client,
    deployed: Deployed,
    no_wait: bool,
    json: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let d = deployed.deployment;
    if json {
        emit(&RunEvent::Deployment {
            deployment: Box::new(d.clone()),
        })?;
    } else {
        eprintln!(
            "deploying {} (app {}), deployment {}",
            d.app_name, d.app_id, d.id
        );
    }
    if no_wait {
        if !json {
            println!(
                "deployment {} accepted; follow it with `racer status --project-name {}`",
                d.id, d.app_name
            );
        }
        return Ok(ExitCode::SUCCESS);
    }

    let bar = if json {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b.set_message("waiting for the builder");
        b
    };
    let mut tail: Vec<String> = Vec::new();
    let mut log = client
        .text(&format!("/api/v1/deployments/{}/log?follow=true", d.id))
        .await?;
    let mut pending = String::new();
    while let Some(chunk) = log.next().await {
        let chunk = chunk.context("the build log stream broke")?;
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                continue;
            }
            if json {
                emit(&RunEvent::Log { line: line.clone() })?;
            } else if line.starts_with("Step ")
                || line.starts_with("error")
                || line.starts_with("---")
            {
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(&line);
                }
                bar.set_message(line.clone());
            } else {
                bar.set_message(line.chars().take(100).collect::<String>());
            }
            tail.push(line);
            if tail.len() > 25 {
                tail.remove(0);
            }
        }
    }

    bar.set_message("starting replicas");
    let deadline = Instant::now() + timeout;
    let last = loop {
        let now = client.deployment(d.id).await?;
        if now.status.is_final() {
            break now;
        }
        if Instant::now() > deadline {
            bar.finish_and_clear();
            bail!(
                "deployment {} is still {} after {}s; see `racer status --project-name {}`",
                d.id,
                now.status.as_str(),
                timeout.as_secs(),
                d.app_name
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    bar.finish_and_clear();
    let status = client.app_status(&d.app_name).await.ok();
    if json {
        emit(&RunEvent::Done {
            deployment: Box::new(last.clone()),
            status: status.clone().map(Box::new),
        })?;
    }
    match last.status {
        DeploymentStatus::Running => {
            if !json {
                print_running(&last, status.as_ref());
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            if !json {
                eprintln!(
                    "deployment {} {}: {}",
                    last.id,
                    last.status.as_str(),
                    last.error.as_deref().unwrap_or("no reason recorded")
                );
                if !tail.is_empty() {
                    eprintln!("last lines of the build log:");
                    for l in tail.iter().rev().take(15).rev() {
                        eprintln!("  {l}");
                    }
                }
                if status.as_ref().and_then(|s| s.app.release).is_some() {
                    eprintln!("the previous release keeps running");
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_running(d: &Deployment, status: Option<&AppStatus>) {
    let release = d.release.map(|r| r.to_string()).unwrap_or_default();
    println!("{} is running (release {release})", d.app_name);
    if let Some(s) = status {
        for u in &s.urls {
            println!("  {u}");
        }
        println!("replicas:");
        for c in s.containers.iter().filter(|c| c.release == d.release) {
            if let Some(url) = &c.url {
                println!("  {url}  ({})", c.name);
            }
        }
    }
}

fn emit(e: &RunEvent) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, e)?;
    writeln!(out)?;
    Ok(())
}

/// Prints an app's status as people read it.
pub fn print_status(s: &AppStatus) -> anyhow::Result<()> {
    println!("app:        {} ({})", s.app.name, s.app.id);
    println!(
        "release:    {}",
        s.release
            .as_ref()
            .map(|r| format!("{} ({})", r.number, r.image))
            .unwrap_or_else(|| "none yet".into())
    );
    println!("instances:  {}", s.app.instances);
    if let Some(d) = &s.deployment {
        println!(
            "deployment: {} {}{}",
            d.id,
            d.status.as_str(),
            d.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(src) = &s.app.source {
        println!("source:     {}", describe_source(src));
    }
    for (i, u) in s.urls.iter().enumerate() {
        println!(
            "{}{u}",
            if i == 0 {
                "url:        "
            } else {
                "            "
            }
        );
    }
    if let Some(why) = &s.waiting {
        println!("waiting:    {why}");
    }
    if s.containers.is_empty() {
        println!("containers: none");
        return Ok(());
    }
    println!();
    container_table(&s.containers)
}

/// `path /x`, `git URL#ref`, `image I`.
pub fn describe_source(s: &Source) -> String {
    match s {
        Source::Path { path, .. } => format!("path {path}"),
        Source::Git { url, reference } => match reference {
            Some(r) => format!("git {url}#{r}"),
            None => format!("git {url}"),
        },
        Source::Image { image } => format!("image {image}"),
    }
}

/// Containers as a table.
pub fn container_table(cs: &[racer_core::api::ContainerInfo]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = cs
        .iter()
        .map(|c| {
            vec![
                c.id.chars().take(12).collect(),
                c.name.clone(),
                c.state.clone(),
                c.health.clone(),
                c.cluster.clone(),
                c.host_port
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                c.uptime_seconds
                    .map(output::duration)
                    .unwrap_or_else(|| "-".into()),
                c.restarts.to_string(),
                c.image.chars().take(40).collect(),
            ]
        })
        .collect();
    output::table(
        &[
            "CONTAINER",
            "NAME",
            "STATE",
            "HEALTH",
            "CLUSTER",
            "PORT",
            "UPTIME",
            "RESTARTS",
            "IMAGE",
        ],
        &rows,
    )
}

/// The folder to resend for a path rerun: `--path`, else the recorded one.
pub fn rerun_path(given: Option<PathBuf>, recorded: &Source) -> Option<PathBuf> {
    match (given, recorded) {
        (Some(p), _) => Some(p),
        (None, Source::Path { path, .. }) => Some(PathBuf::from(path)),
        _ => None,
    }
}
