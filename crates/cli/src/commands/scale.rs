//! How many replicas run and why: `racer scale` (with a source, deploy and scale in one step),
//! `scale-up`, `scale-down`, `racer metrics` (traffic, replicas and scaling history) and
//! `racer policy` (the autoscaling policy).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::deploy::{self, RunArgs, WAIT_SECONDS};
use super::NameArg;
use crate::client::Client;
use crate::output;

/// The heading of `racer scale`'s options that deploy before scaling.
const DEPLOY_FIRST: &str = "Deploy first (as racer run does)";

/// `racer scale`: with --path, --git or --image, deploys the project (as `racer run` does) and
/// runs --instances of it, in one step.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The project (name or UUID); with a source, its name (created on first deploy).
    #[arg(long)]
    pub project_name: String,
    /// Desired instances.
    #[arg(long)]
    pub instances: u32,
    /// Deploy this project folder first.
    #[arg(long, group = "src", help_heading = DEPLOY_FIRST)]
    pub path: Option<PathBuf>,
    /// Deploy this git repository first (URL, optionally with #branch, #tag or #sha).
    #[arg(long, group = "src", help_heading = DEPLOY_FIRST)]
    pub git: Option<String>,
    /// Deploy this prebuilt image first.
    #[arg(long, group = "src", help_heading = DEPLOY_FIRST)]
    pub image: Option<String>,
    /// The port the app listens on inside the container (default: the image's EXPOSE, else 8000).
    #[arg(long, requires = "src", help_heading = DEPLOY_FIRST)]
    pub app_port: Option<u16>,
    /// Environment variables (repeatable).
    #[arg(
        long = "env",
        visible_alias = "environment",
        value_name = "KEY=VALUE",
        requires = "src",
        help_heading = DEPLOY_FIRST
    )]
    pub env: Vec<String>,
    /// Override the command.
    #[arg(long, requires = "src", help_heading = DEPLOY_FIRST)]
    pub command: Option<String>,
    /// Return once the deployment is accepted instead of waiting for the app to answer.
    #[arg(long, requires = "src", help_heading = DEPLOY_FIRST)]
    pub no_wait: bool,
    /// Seconds to wait for the deployment.
    #[arg(long, default_value_t = WAIT_SECONDS, help_heading = DEPLOY_FIRST)]
    pub timeout: u64,
}

/// `racer scale-up` and `scale-down`.
#[derive(Debug, Args)]
pub struct ScaleStepArgs {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: String,
    /// Desired instances.
    #[arg(long)]
    pub instances: u32,
}

/// Which way `scale-up` and `scale-down` may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `scale-up`: to as many instances or more.
    Up,
    /// `scale-down`: to as many instances or fewer.
    Down,
}

/// `racer policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: String,
    /// The policy file (YAML or JSON): mode, cooldownSeconds, windowSeconds, cpu, memory, http,
    /// scaleOutThresholdPct, scaleInThresholdPct, and optionally minReplicas/maxReplicas.
    #[arg(long, short = 'f')]
    pub file: PathBuf,
}

/// `racer scale`: sets how many instances run; with a source, deploys it first as `racer run
/// --instances N` does (one request: the new release starts with that many instances).
pub async fn scale(client: &Client, s: ScaleArgs, json: bool) -> anyhow::Result<ExitCode> {
    if s.path.is_none() && s.git.is_none() && s.image.is_none() {
        return set(client, &s.project_name, s.instances, json).await;
    }
    let run = RunArgs {
        path: s.path,
        git: s.git,
        image: s.image,
        app_port: s.app_port,
        env: s.env,
        command: s.command,
        instances: Some(s.instances),
        no_wait: s.no_wait,
        timeout: s.timeout,
        ..RunArgs::defaults(s.project_name)
    };
    deploy::run(client, run, json).await
}

/// `racer scale-up` (`Direction::Up`) and `scale-down`: like `scale`, but refuses to go the
/// other way, naming the current count and the command that would.
pub async fn scale_step(
    client: &Client,
    s: ScaleStepArgs,
    way: Direction,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let app = client.get_app(&s.project_name).await?;
    let (now, want, name) = (app.instances, s.instances, &app.name);
    if want == now {
        if json {
            output::json(&app)?;
        } else {
            println!("{name} already runs {now} instance(s); nothing to do");
        }
        return Ok(ExitCode::SUCCESS);
    }
    match way {
        Direction::Up if want < now => bail!(
            "{name} runs {now} instance(s): scale-up cannot go down to {want}; use `racer scale-down --project-name {name} --instances {want}` (or `racer scale`)"
        ),
        Direction::Down if want > now => bail!(
            "{name} runs {now} instance(s): scale-down cannot go up to {want}; use `racer scale-up --project-name {name} --instances {want}` (or `racer scale`)"
        ),
        _ => set(client, name, want, json).await,
    }
}

/// Sets `app`'s desired instances and says so.
async fn set(client: &Client, app: &str, instances: u32, json: bool) -> anyhow::Result<ExitCode> {
    let app = client.scale(app, instances).await?;
    if json {
        output::json(&app)?;
    } else {
        println!("{} scaled to {} instance(s)", app.name, app.instances);
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer metrics`: a project's traffic, replicas and scaling history.
pub async fn metrics(client: &Client, n: NameArg, json: bool) -> anyhow::Result<ExitCode> {
    let m = client.app_metrics(&n.project_name).await?;
    if json {
        output::json(&m)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("app:       {}", m.app);
    println!(
        "replicas:  {} ready of {} desired",
        m.replicas_ready, m.replicas_desired
    );
    let reqs: Vec<String> = m.requests.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "requests:  {}",
        if reqs.is_empty() {
            "none yet".into()
        } else {
            reqs.join(", ")
        }
    );
    println!("in flight: {}", m.active_requests);
    println!(
        "p95:       {}",
        m.p95_ms
            .map(|p| format!("<= {p} ms"))
            .unwrap_or_else(|| "-".into())
    );
    if !m.replicas.is_empty() {
        let rows: Vec<Vec<String>> = m
            .replicas
            .iter()
            .map(|r| {
                vec![
                    r.addr.clone(),
                    r.requests.to_string(),
                    r.active.to_string(),
                    if r.ejected {
                        "ejected".into()
                    } else {
                        "-".into()
                    },
                ]
            })
            .collect();
        output::table(&["REPLICA", "REQUESTS", "IN FLIGHT", "PASSIVE"], &rows)?;
    }
    if !m.scaling_history.is_empty() {
        println!("scaling history:");
        for e in &m.scaling_history {
            println!("  {}  {:<11} {}", output::time(&e.at), e.actor, e.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer policy`: sets a project's scaling policy from a file and prints what changed.
pub async fn policy(client: &Client, p: PolicyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&p.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.file.display()))?;
    let result = client.put_policy(&p.project_name, &text).await?;
    if json {
        output::json(&result)?;
    } else if !result.changed {
        println!("{}: no change", result.app.name);
    } else {
        println!("{}: policy applied", result.app.name);
        for line in &result.diff {
            println!("  {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
