//! `racer run`, `racer rerun` and `racer rollback`: each makes a release and follows its
//! deployment ([`crate::deploy::follow`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use racer_core::api::{DeployRequest, HealthCheck, RerunRequest, RunConfig, Source};

use super::apps::{self, Among, Chosen};
use crate::client::Client;
use crate::deploy::{self, parse_env};

/// How long `run`, `rerun` and `rollback` wait for a deployment by default, in seconds.
pub const WAIT_SECONDS: u64 = 600;

/// `racer run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project's name (a DNS label); created on first run.
    #[arg(long)]
    pub project_name: String,
    /// A project folder on this machine.
    #[arg(long, group = "src", required_unless_present_any = ["git", "image"])]
    pub path: Option<PathBuf>,
    /// A git repository URL, optionally with #branch, #tag or #sha.
    #[arg(long, group = "src")]
    pub git: Option<String>,
    /// A prebuilt image present on the engine.
    #[arg(long, group = "src")]
    pub image: Option<String>,
    /// The port the app listens on inside the container (default: the image's EXPOSE, else 8000).
    #[arg(long)]
    pub app_port: Option<u16>,
    /// Environment variables (repeatable).
    #[arg(long = "env", visible_alias = "environment", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Override the command.
    #[arg(long)]
    pub command: Option<String>,
    /// How many containers to run.
    #[arg(long)]
    pub instances: Option<u32>,
    /// Memory limit per container, MiB (default 512).
    #[arg(long)]
    pub memory_mb: Option<u32>,
    /// CPU limit per container, cores (default 1).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// GPUs per container (default 0); refused at once if no cluster has that many.
    #[arg(long)]
    pub gpu: Option<u32>,
    /// 1 (lowest) to 5 (highest): who wins when there is not room for everyone (default 3).
    #[arg(long)]
    pub priority: Option<u8>,
    /// Run only on this cluster (racerctl clusters list); default: wherever there is room.
    #[arg(long)]
    pub cluster: Option<String>,
    /// How replicas spread over clusters: binpack (default: fill one before the next) or spread.
    #[arg(long, value_parser = ["binpack", "spread"])]
    pub placement: Option<String>,
    /// Give the containers a Linux capability back (repeat or comma-separate): racer drops
    /// every one but NET_BIND_SERVICE. An image that switches user or chowns at start needs
    /// SETUID,SETGID,CHOWN.
    #[arg(long, value_delimiter = ',')]
    pub cap_add: Vec<String>,
    /// Run the containers with a read-only root filesystem (/tmp stays writable, in memory).
    #[arg(long)]
    pub read_only: bool,
    /// Base image for conda-projects.
    #[arg(long)]
    pub base_image: Option<String>,
    /// Health check: HTTP GET this path (2xx/3xx passes); default: TCP connect to the app port.
    #[arg(long)]
    pub health_path: Option<String>,
    /// Seconds between health checks.
    #[arg(long, default_value_t = HealthCheck::default().interval_seconds)]
    pub health_interval: u32,
    /// Seconds one health check may take.
    #[arg(long, default_value_t = HealthCheck::default().timeout_seconds)]
    pub health_timeout: u32,
    /// Consecutive failures that take a replica out of rotation.
    #[arg(long, default_value_t = HealthCheck::default().failure_threshold)]
    pub health_failures: u32,
    /// Consecutive successes that put a replica in rotation.
    #[arg(long, default_value_t = HealthCheck::default().success_threshold)]
    pub health_successes: u32,
    /// Seconds a replica leaving rotation keeps serving in-flight requests before it stops.
    #[arg(long)]
    pub drain_seconds: Option<u32>,
    /// Requests one replica is sent at once; more wait in the proxy, in arrival order
    /// [default: the server's --replica-concurrency, 80; 0: no limit].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// Return once the deployment is accepted instead of waiting for the app to answer.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the deployment.
    #[arg(long, default_value_t = WAIT_SECONDS)]
    pub timeout: u64,
}

impl RunArgs {
    /// A `racer run` of `project_name` from no source yet, every option at its default: what
    /// `racer scale` with a source fills in.
    pub fn defaults(project_name: String) -> RunArgs {
        let health = HealthCheck::default();
        RunArgs {
            project_name,
            path: None,
            git: None,
            image: None,
            app_port: None,
            env: Vec::new(),
            command: None,
            instances: None,
            memory_mb: None,
            cpus: None,
            gpu: None,
            priority: None,
            cluster: None,
            placement: None,
            cap_add: Vec::new(),
            read_only: false,
            base_image: None,
            health_path: health.path,
            health_interval: health.interval_seconds,
            health_timeout: health.timeout_seconds,
            health_failures: health.failure_threshold,
            health_successes: health.success_threshold,
            drain_seconds: None,
            concurrency: None,
            no_wait: false,
            timeout: WAIT_SECONDS,
        }
    }
}

/// `racer rerun`. Without --project-name: the only project that can be rerun, if there is one.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: Option<String>,
    /// List the projects that can be rerun (those with a recorded source) instead.
    #[arg(long, conflicts_with_all = ["project_name", "no_rebuild", "env", "path", "no_wait"])]
    pub list: bool,
    /// Reuse the current image: a new release with the new environment, no build.
    #[arg(long)]
    pub no_rebuild: bool,
    /// Environment variables to set (repeatable).
    #[arg(long = "env", visible_alias = "environment", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// For folder projects: send this folder instead of the recorded one.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Return once accepted.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the deployment.
    #[arg(long, default_value_t = WAIT_SECONDS)]
    pub timeout: u64,
}

/// `racer rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: String,
    /// The release to go back to (default: the one before the current).
    #[arg(long)]
    pub to: Option<i64>,
    /// Return once accepted.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the rollback.
    #[arg(long, default_value_t = WAIT_SECONDS)]
    pub timeout: u64,
}

/// `racer run`: builds (unless `--image`) and runs a project.
pub async fn run(client: &Client, a: RunArgs, json: bool) -> anyhow::Result<ExitCode> {
    let source = match (&a.path, &a.git, &a.image) {
        (Some(p), _, _) => deploy::send_folder(client, p, json).await?,
        (_, Some(g), _) => deploy::git_source(g),
        (_, _, Some(i)) => Source::Image { image: i.clone() },
        _ => bail!("give one of --path, --git or --image"),
    };
    let req = DeployRequest {
        app: a.project_name.clone(),
        source,
        config: RunConfig {
            app_port: a.app_port,
            env: parse_env(&a.env)?,
            command: a.command.clone(),
            memory_mb: a.memory_mb,
            cpus: a.cpus,
            base_image: a.base_image.clone(),
            health: Some(HealthCheck {
                path: a.health_path.clone(),
                port: None,
                interval_seconds: a.health_interval,
                timeout_seconds: a.health_timeout,
                failure_threshold: a.health_failures,
                success_threshold: a.health_successes,
            }),
            drain_seconds: a.drain_seconds,
            concurrency: a.concurrency,
            command_in_image: false,
            gpu: a.gpu,
            priority: a.priority,
            cluster: a.cluster.clone(),
            placement: a.placement.clone(),
            cap_add: a.cap_add.clone(),
            read_only: a.read_only,
        },
        instances: a.instances,
    };
    let deployed = client.deploy(&req).await?;
    deploy::follow(
        client,
        deployed,
        a.no_wait,
        json,
        Duration::from_secs(a.timeout),
    )
    .await
}

/// `racer rerun`: a new release from the recorded source, rebuilt unless `--no-rebuild`.
pub async fn rerun(client: &Client, r: RerunArgs, json: bool) -> anyhow::Result<ExitCode> {
    if r.list {
        return apps::list_rerunnable(client, json).await;
    }
    let app = match &r.project_name {
        Some(name) => client.get_app(name).await?,
        None => match apps::choose(client, "rerun", Among::Rerunnable).await? {
            Chosen::App(app) => *app,
            Chosen::Exit(code) => return Ok(code),
        },
    };
    let env = parse_env(&r.env)?;
    let source = match (&app.source, r.no_rebuild) {
        (Some(recorded), false) => match deploy::rerun_path(r.path.clone(), recorded) {
            Some(p) => Some(deploy::send_folder(client, &p, json).await?),
            None => None,
        },
        _ => None,
    };
    let req = RerunRequest {
        no_rebuild: r.no_rebuild,
        env,
        source,
    };
    let deployed = client.rerun(&app.name, &req).await?;
    deploy::follow(
        client,
        deployed,
        r.no_wait,
        json,
        Duration::from_secs(r.timeout),
    )
    .await
}

/// `racer rollback`: back to the previous release (or `--to N`).
pub async fn rollback(client: &Client, r: RollbackArgs, json: bool) -> anyhow::Result<ExitCode> {
    let deployed = client.rollback(&r.project_name, r.to).await?;
    deploy::follow(
        client,
        deployed,
        r.no_wait,
        json,
        Duration::from_secs(r.timeout),
    )
    .await
}
