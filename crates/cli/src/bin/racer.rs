//! `racer`: the developer's tool. Creates apps, deploys them, watches them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use racer_cli::local::{self, Target};
use std::time::Duration;

use anyhow::bail;
use futures_util::StreamExt;
use racer_cli::deploy::{self, parse_env};
use racer_cli::{output, Client};
use racer_core::api::{App, DeployRequest, InspectRequest, RerunRequest, RunConfig, Source};

/// racer: deploy and run apps on your own Docker hosts.
#[derive(Debug, Parser)]
#[command(name = "racer", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: racer_cli::Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build (unless --image) and run a project: from a folder, a git repository or an image.
    Run(RunArgs),
    /// Check a project: what racer would build, and every problem with its field path.
    Validate(SourceArgs),
    /// Print (or write) the Dockerfile a deploy of the project would build.
    Dockerfile(DockerfileArgs),
    /// List projects (apps) with their release and instances.
    ListProjects,
    /// Show a project's status and containers (or every project with --list).
    Status(StatusArgs),
    /// Show a project's container logs.
    Logs(LogsArgs),
    /// Make a new release from the recorded source (rebuilt unless --no-rebuild).
    Rerun(RerunArgs),
    /// Roll back to the previous release (or --to N): its image and config, no rebuild.
    Rollback(RollbackArgs),
    /// Create or update an app from a spec file (YAML or JSON); prints what changed.
    Apply(ApplyArgs),
    /// Show a project's traffic, replicas and scaling history.
    Metrics(NameArg),
    /// Set a project's scaling policy from a file (the spec.scaling.policy fields).
    Policy(PolicyArgs),
    /// Start a stopped project again with the instances it had.
    Up(NameArg),
    /// Stop every container of a project, keeping its spec and releases.
    Down(NameArg),
    /// Set how many instances of a project run.
    Scale(ScaleArgs),
    /// Scale a project up to --instances N.
    ScaleUp(ScaleArgs),
    /// Scale a project down to --instances N.
    ScaleDown(ScaleArgs),
    /// List a project's releases.
    Releases(NameArg),
    /// Delete a project: its record, containers and images.
    Delete(NameArg),
    /// Create, list, show and delete apps.
    #[command(subcommand)]
    Apps(AppsCmd),
    /// Show the event (audit) log.
    Events(EventsArgs),
    /// Log in with your email and password; the session is saved for this server.
    Login(racer_cli::account::LoginArgs),
    /// Forget the saved session for this server.
    Logout,
    /// Show who you are to the server: user, organisation, role.
    Whoami,
    /// Create your account with an invite code and set a password.
    Register(racer_cli::account::RegisterArgs),
    /// Invite people to your organisation (admin).
    #[command(subcommand)]
    Invites(racer_cli::account::InvitesCmd),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Tokens(racer_cli::account::TokensCmd),
    /// Show a project's Swarm service: replicas desired and running, its tasks (server on --cluster swarm).
    SwarmStatus(NameArg),
    /// Show a project's Swarm service log, every task merged.
    SwarmLogs(SwarmLogsArgs),
    /// Remove a project's Swarm service; the project is down, its spec and releases are kept.
    SwarmRemove(NameArg),
}

#[derive(Debug, Args)]
struct SwarmLogsArgs {
    /// The project (name or UUID).
    #[arg(long)]
    project_name: String,
    /// Lines from the end of each task's log, or `all`.
    #[arg(long, default_value = "50")]
    tail: String,
    /// Keep following.
    #[arg(long, short)]
    follow: bool,
}

#[derive(Debug, Args)]
struct SourceArgs {
    /// A project folder on this machine (sent to the server as a tarball).
    #[arg(long, conflicts_with = "git", required_unless_present = "git")]
    path: Option<PathBuf>,
    /// A git repository, optionally with #branch, #tag or #sha.
    #[arg(long)]
    git: Option<String>,
    /// Environment variables the project needs (KEY=VALUE), for validation of required ones.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
}

#[derive(Debug, Args)]
struct DockerfileArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Write it to this file instead of printing it.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// The port the app listens on.
    #[arg(long)]
    app_port: Option<u16>,
    /// The command to run (a conda-project command name or a command line).
    #[arg(long)]
    command: Option<String>,
    /// Base image for conda-projects.
    #[arg(long)]
    base_image: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The project's name (a DNS label); created on first run.
    #[arg(long)]
    project_name: String,
    /// A project folder on this machine.
    #[arg(long, group = "src", required_unless_present_any = ["git", "image"])]
    path: Option<PathBuf>,
    /// A git repository URL, optionally with #branch, #tag or #sha.
    #[arg(long, group = "src")]
    git: Option<String>,
    /// A prebuilt image present on the engine.
    #[arg(long, group = "src")]
    image: Option<String>,
    /// The port the app listens on inside the container (default: the image's EXPOSE, else 8000).
    #[arg(long)]
    app_port: Option<u16>,
    /// Environment variables (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Override the command.
    #[arg(long)]
    command: Option<String>,
    /// How many containers to run.
    #[arg(long)]
    instances: Option<u32>,
    /// Memory limit per container, MiB (default 512).
    #[arg(long)]
    memory_mb: Option<u32>,
    /// CPU limit per container, cores (default 1).
    #[arg(long)]
    cpus: Option<f64>,
    /// Base image for conda-projects.
    #[arg(long)]
    base_image: Option<String>,
    /// Health check: HTTP GET this path (2xx/3xx passes); default: TCP connect to the app port.
    #[arg(long)]
    health_path: Option<String>,
    /// Seconds between health checks.
    #[arg(long, default_value_t = 1)]
    health_interval: u32,
    /// Seconds one health check may take.
    #[arg(long, default_value_t = 1)]
    health_timeout: u32,
    /// Consecutive failures that take a replica out of rotation.
    #[arg(long, default_value_t = 3)]
    health_failures: u32,
    /// Consecutive successes that put a replica in rotation.
    #[arg(long, default_value_t = 1)]
    health_successes: u32,
    /// Seconds a replica leaving rotation keeps serving in-flight requests before it stops.
    #[arg(long)]
    drain_seconds: Option<u32>,
    /// Requests one replica is sent at once; more wait in the proxy, in arrival order
    /// [default: the server's --replica-concurrency, 80; 0: no limit].
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,
    /// Return once the deployment is accepted instead of waiting for the app to answer.
    #[arg(long)]
    no_wait: bool,
    /// Seconds to wait for the deployment.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// By project name.
    #[arg(long, group = "which")]
    project_name: Option<String>,
    /// By project UUID.
    #[arg(long, group = "which")]
    project_id: Option<String>,
    /// By container id (or a unique prefix).
    #[arg(long, group = "which")]
    container_id: Option<String>,
    /// Every project.
    #[arg(long, group = "which")]
    list: bool,
}

#[derive(Debug, Args)]
struct LogsArgs {
    /// The project (name or UUID).
    #[arg(long)]
    project_name: String,
    /// Keep following new output.
    #[arg(long, short)]
    follow: bool,
    /// Lines from the end of each container's log.
    #[arg(long, default_value = "100")]
    tail: String,
}

#[derive(Debug, Args)]
struct RerunArgs {
    /// The project (name or UUID).
    #[arg(long)]
    project_name: String,
    /// Reuse the current image: a new release with the new environment, no build.
    #[arg(long)]
    no_rebuild: bool,
    /// Environment variables to set (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// For folder projects: send this folder instead of the recorded one.
    #[arg(long)]
    path: Option<PathBuf>,
    /// Return once accepted.
    #[arg(long)]
    no_wait: bool,
    /// Seconds to wait for the deployment.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Debug, Args)]
struct PolicyArgs {
    /// The project (name or UUID).
    #[arg(long)]
    project_name: String,
    /// The policy file (YAML or JSON): mode, cooldownSeconds, windowSeconds, cpu, memory, http,
    /// scaleOutThresholdPct, scaleInThresholdPct, and optionally minReplicas/maxReplicas.
    #[arg(long, short = 'f')]
    file: PathBuf,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// The spec file.
    #[arg(long, short = 'f')]
    file: PathBuf,
    /// Return once accepted instead of waiting for a new release to run.
    #[arg(long)]
    no_wait: bool,
    /// Seconds to wait for the deployment.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    /// The project (name or UUID).
    #[arg(long)]
    project_name: String,
    /// The release to go back to (default: the one before the current).
    #[arg(long)]
    to: Option<i64>,
    /// Return once accepted.
    #[arg(long)]
    no_wait: bool,
    /// Seconds to wait for the rollback.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Debug, Args)]
struct ScaleArgs {
    /// The project (name or UUID).
    #[arg(long)]
    project_name: String,
    /// Desired instances.
    #[arg(long)]
    instances: u32,
}

#[derive(Debug, Args)]
struct NameArg {
    /// The project (name or UUID).
    #[arg(long)]
    project_name: String,
}

#[derive(Debug, Subcommand)]
enum AppsCmd {
    /// Create an app (a DNS label: a-z, 0-9, '-').
    Create {
        /// The app's name.
        name: String,
    },
    /// List apps.
    List {
        /// Items per page (the server caps it at 200).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor (from a previous --json page).
        #[arg(long)]
        cursor: Option<String>,
        /// Fetch every page (text output only).
        #[arg(long)]
        all: bool,
    },
    /// Show one app by name or UUID.
    Show {
        /// Name or UUID.
        app: String,
    },
    /// Delete an app by name or UUID.
    Delete {
        /// Name or UUID.
        app: String,
    },
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Only events of this app (name or UUID).
    #[arg(long = "project-name", alias = "app")]
    app: Option<String>,
    /// Items per page.
    #[arg(long)]
    limit: Option<u32>,
    /// Continue after this cursor.
    #[arg(long)]
    cursor: Option<String>,
    /// Keep printing new events as they happen (like `docker events`).
    #[arg(long, short)]
    follow: bool,
    /// Only events of this kind (`deployment.running`) or kind prefix (`deployment.`).
    #[arg(long)]
    kind: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("racer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    racer_cli::finish("racer", rt.block_on(run(cli)))
}

fn git_source(s: &str) -> Source {
    let (url, reference) = racer_build::git::split_ref(s);
    Source::Git {
        url: url.to_owned(),
        reference: reference.map(str::to_owned),
    }
}

async fn inspect_source(client: &Client, a: &SourceArgs, quiet: bool) -> anyhow::Result<Source> {
    match (&a.path, &a.git) {
        (Some(p), _) => deploy::send_folder(client, p, quiet).await,
        (_, Some(g)) => Ok(git_source(g)),
        _ => bail!("give --path or --git"),
    }
}

async fn all_apps(client: &Client) -> anyhow::Result<Vec<App>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = client.list_apps(Some(200), cursor.as_deref()).await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

fn app_rows(apps: &[App]) -> Vec<Vec<String>> {
    apps.iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.id.to_string(),
                output::time(&a.created_at),
            ]
        })
        .collect()
}

fn print_app(a: &App) {
    println!("name:     {}", a.name);
    println!("id:       {}", a.id);
    println!("created:  {}", output::time(&a.created_at));
    println!("updated:  {}", output::time(&a.updated_at));
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    let data_dir = g.data_dir.clone().unwrap_or_else(local::default_data_dir);
    let client = Client::new(Target::resolve(g.url, g.token, &data_dir));
    let json = g.json;
    match cli.command {
        Cmd::Login(a) => return racer_cli::account::login(&client, a, json).await,
        Cmd::Logout => return racer_cli::account::logout(&client),
        Cmd::Whoami => return racer_cli::account::whoami(&client, json).await,
        Cmd::Register(a) => return racer_cli::account::register(&client, a, json).await,
        Cmd::Invites(c) => return racer_cli::account::invites(&client, c, json).await,
        Cmd::Tokens(c) => return racer_cli::account::tokens(&client, c, json).await,
        Cmd::Run(a) => {
            let source = match (&a.path, &a.git, &a.image) {
                (Some(p), _, _) => deploy::send_folder(&client, p, json).await?,
                (_, Some(g), _) => git_source(g),
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
                    health: Some(racer_core::api::HealthCheck {
                        path: a.health_path.clone(),
                        port: None,
                        interval_seconds: a.health_interval,
                        timeout_seconds: a.health_timeout,
                        failure_threshold: a.health_failures,
                        success_threshold: a.health_successes,
                    }),
                    drain_seconds: a.drain_seconds,
                    concurrency: a.concurrency,
                },
                instances: a.instances,
            };
            let deployed = client.deploy(&req).await?;
            return deploy::follow(
                &client,
                deployed,
                a.no_wait,
                json,
                Duration::from_secs(a.timeout),
            )
            .await;
        }
        Cmd::Validate(a) => {
            let req = InspectRequest {
                source: inspect_source(&client, &a, json).await?,
                config: RunConfig {
                    env: parse_env(&a.env)?,
                    ..Default::default()
                },
            };
            let report = client.validate(&req).await?;
            if json {
                output::json(&report)?;
            } else if report.valid {
                println!(
                    "valid {}{}",
                    report.kind.as_deref().unwrap_or("project"),
                    report
                        .project_name
                        .as_deref()
                        .map(|n| format!(" {n:?}"))
                        .unwrap_or_default()
                );
                if !report.environments.is_empty() {
                    println!("  environments: {}", report.environments.join(", "));
                }
                if !report.commands.is_empty() {
                    println!("  commands:     {}", report.commands.join(", "));
                }
            } else {
                println!("invalid {}:", report.kind.as_deref().unwrap_or("project"));
                for p in &report.problems {
                    println!("  {}: {}", p.field, p.message);
                }
            }
            return Ok(if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Cmd::Dockerfile(a) => {
            let req = InspectRequest {
                source: inspect_source(&client, &a.source, json).await?,
                config: RunConfig {
                    app_port: a.app_port,
                    env: parse_env(&a.source.env)?,
                    command: a.command.clone(),
                    base_image: a.base_image.clone(),
                    ..Default::default()
                },
            };
            let report = client.dockerfile(&req).await?;
            if json {
                output::json(&report)?;
            } else if let Some(out) = &a.output {
                std::fs::write(out, &report.dockerfile)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
                eprintln!("wrote {} ({})", out.display(), report.kind);
            } else {
                print!("{}", report.dockerfile);
            }
        }
        Cmd::ListProjects | Cmd::Status(StatusArgs { list: true, .. }) => {
            let apps = all_apps(&client).await?;
            if json {
                output::json(&apps)?;
            } else if apps.is_empty() {
                println!(
                    "no projects yet; deploy one with `racer run --project-name NAME --path DIR`"
                );
            } else {
                let rows: Vec<Vec<String>> = apps
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            a.id.to_string(),
                            a.release
                                .map(|r| r.to_string())
                                .unwrap_or_else(|| "-".into()),
                            a.instances.to_string(),
                            a.source
                                .as_ref()
                                .map(deploy::describe_source)
                                .unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "ID", "RELEASE", "INSTANCES", "SOURCE"], &rows)?;
            }
        }
        Cmd::Status(s) => {
            if let Some(c) = &s.container_id {
                let info = client.container(c).await?;
                if json {
                    output::json(&info)?;
                } else {
                    println!(
                        "project:    {}",
                        info.app_name.as_deref().unwrap_or("(unknown)")
                    );
                    deploy::container_table(std::slice::from_ref(&info))?;
                }
            } else {
                let Some(app) = s.project_name.or(s.project_id) else {
                    bail!(
                        "say which project: --project-name, --project-id, --container-id or --list"
                    );
                };
                let status = client.app_status(&app).await?;
                if json {
                    output::json(&status)?;
                } else {
                    deploy::print_status(&status)?;
                }
            }
        }
        Cmd::Logs(l) => {
            let path = format!(
                "/api/v1/apps/{}/logs?tail={}&follow={}",
                racer_cli::client::path_segment(&l.project_name),
                racer_cli::client::path_segment(&l.tail),
                l.follow
            );
            let mut stream = client.text(&path).await?;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
                out.flush()?;
            }
        }
        Cmd::Rerun(r) => {
            let app = client.get_app(&r.project_name).await?;
            let env = parse_env(&r.env)?;
            let source = match (&app.source, r.no_rebuild) {
                (Some(recorded), false) => match deploy::rerun_path(r.path.clone(), recorded) {
                    Some(p) => Some(deploy::send_folder(&client, &p, json).await?),
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
            return deploy::follow(
                &client,
                deployed,
                r.no_wait,
                json,
                Duration::from_secs(r.timeout),
            )
            .await;
        }
        Cmd::Rollback(r) => {
            let deployed = client.rollback(&r.project_name, r.to).await?;
            return deploy::follow(
                &client,
                deployed,
                r.no_wait,
                json,
                Duration::from_secs(r.timeout),
            )
            .await;
        }
        Cmd::Apply(a) => {
            let text = std::fs::read_to_string(&a.file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.file.display()))?;
            // Checked here too, so a bad spec is reported before anything is sent.
            let mut doc = racer_build::spec::parse(&text).map_err(|e| {
                let problems: Vec<String> = e.problems().iter().map(|p| p.to_string()).collect();
                if problems.is_empty() {
                    anyhow::anyhow!("{}: {e}", a.file.display())
                } else {
                    anyhow::anyhow!(
                        "{} is invalid:\n  {}",
                        a.file.display(),
                        problems.join("\n  ")
                    )
                }
            })?;
            if let Some(path) = doc.spec.build.as_ref().and_then(|b| b.path.clone()) {
                let base = a.file.parent().map(|p| p.to_path_buf()).unwrap_or_default();
                let Source::Path { upload, .. } =
                    deploy::send_folder(&client, &base.join(&path), json).await?
                else {
                    bail!("unexpected upload result");
                };
                if let Some(b) = doc.spec.build.as_mut() {
                    b.upload = Some(upload);
                }
            }
            let result = client.apply(&serde_json::to_string(&doc)?).await?;
            if json {
                output::json(&result)?;
            } else if !result.changed {
                println!("{}: no change", result.app.name);
            } else {
                println!("{}: applied", result.app.name);
                for line in &result.diff {
                    println!("  {line}");
                }
            }
            if let Some(d) = result.deployment.clone() {
                let deployed = racer_core::api::Deployed {
                    app: result.app.clone(),
                    deployment: d,
                };
                return deploy::follow(
                    &client,
                    deployed,
                    a.no_wait,
                    json,
                    Duration::from_secs(a.timeout),
                )
                .await;
            }
        }
        Cmd::Metrics(n) => {
            let m = client.app_metrics(&n.project_name).await?;
            if json {
                output::json(&m)?;
            } else {
                println!("app:       {}", m.app);
                println!(
                    "replicas:  {} ready of {} desired",
                    m.replicas_ready, m.replicas_desired
                );
                let reqs: Vec<String> =
                    m.requests.iter().map(|(k, v)| format!("{k} {v}")).collect();
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
            }
        }
        Cmd::Policy(p) => {
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
        }
        Cmd::Up(n) => {
            let app = client.set_running(&n.project_name, true).await?;
            if json {
                output::json(&app)?;
            } else {
                println!("{} is starting {} instance(s)", app.name, app.instances);
            }
        }
        Cmd::Down(n) => {
            let app = client.set_running(&n.project_name, false).await?;
            if json {
                output::json(&app)?;
            } else {
                println!(
                    "{} is stopping; its spec and releases are kept (racer up starts it)",
                    app.name
                );
            }
        }
        Cmd::ScaleUp(s) | Cmd::ScaleDown(s) | Cmd::Scale(s) => {
            let app = client.scale(&s.project_name, s.instances).await?;
            if json {
                output::json(&app)?;
            } else {
                println!("{} scaled to {} instance(s)", app.name, app.instances);
            }
        }
        Cmd::Releases(n) => {
            let releases = client.releases(&n.project_name).await?;
            if json {
                output::json(&releases)?;
            } else {
                let current = client.get_app(&n.project_name).await?.release;
                let rows: Vec<Vec<String>> = releases
                    .iter()
                    .map(|r| {
                        vec![
                            r.number.to_string(),
                            if Some(r.number) == current {
                                "current".into()
                            } else {
                                "-".into()
                            },
                            r.image.clone(),
                            deploy::describe_source(&r.source),
                            r.commit
                                .as_deref()
                                .map(|c| c.chars().take(12).collect())
                                .unwrap_or_else(|| "-".into()),
                            r.created_by.clone(),
                            output::time(&r.created_at),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "RELEASE", "STATUS", "IMAGE", "SOURCE", "COMMIT", "BY", "CREATED",
                    ],
                    &rows,
                )?;
            }
        }
        Cmd::Delete(n) => {
            let app = client.delete_app(&n.project_name).await?;
            // The reconciler removes containers and images; wait until they are gone.
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            loop {
                let left = client
                    .containers(None)
                    .await?
                    .items
                    .into_iter()
                    .filter(|c| c.app_id == Some(app.id))
                    .count();
                if left == 0 {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    bail!("{} still has {left} container(s) after 120s; see `racerctl containers list`", app.name);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if json {
                output::json(&app)?;
            } else {
                println!("deleted {} ({}) and its containers", app.name, app.id);
            }
        }
        Cmd::Apps(AppsCmd::Create { name }) => {
            let app = client.create_app(&name).await?;
            if json {
                output::json(&app)?;
            } else {
                println!("created app {} ({})", app.name, app.id);
            }
        }
        Cmd::Apps(AppsCmd::List { limit, cursor, all }) => {
            let mut page = client.list_apps(limit, cursor.as_deref()).await?;
            if json {
                output::json(&page)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut apps = std::mem::take(&mut page.items);
            if all {
                while let Some(c) = page.next_cursor.take() {
                    page = client.list_apps(limit, Some(&c)).await?;
                    apps.append(&mut page.items);
                }
            }
            if apps.is_empty() {
                println!("no apps yet; create one with `racer apps create NAME`");
            } else {
                output::table(&["NAME", "ID", "CREATED"], &app_rows(&apps))?;
            }
            if let Some(c) = page.next_cursor {
                eprintln!("more apps: use --all, or --cursor {c}");
            }
        }
        Cmd::Apps(AppsCmd::Show { app }) => {
            let app = client.get_app(&app).await?;
            if json {
                output::json(&app)?;
            } else {
                print_app(&app);
            }
        }
        Cmd::Apps(AppsCmd::Delete { app }) => {
            let app = client.delete_app(&app).await?;
            if json {
                output::json(&app)?;
            } else {
                println!("deleted app {} ({})", app.name, app.id);
            }
        }
        Cmd::SwarmStatus(n) => {
            let s = client.swarm_status(&n.project_name).await?;
            if json {
                output::json(&s)?;
            } else {
                racer_cli::swarm::print_status(&s)?;
            }
        }
        Cmd::SwarmLogs(l) => {
            let mut stream = client
                .swarm_logs(&l.project_name, &l.tail, l.follow)
                .await?;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
                out.flush()?;
            }
        }
        Cmd::SwarmRemove(n) => {
            let r = client.swarm_remove(&n.project_name).await?;
            if json {
                output::json(&r)?;
            } else {
                println!("{}", r.message);
            }
        }
        Cmd::Events(a) if a.follow => {
            let mut q = Vec::new();
            if let Some(app) = &a.app {
                q.push(format!("app={}", racer_cli::client::path_segment(app)));
            }
            if let Some(k) = &a.kind {
                q.push(format!("kind={}", racer_cli::client::path_segment(k)));
            }
            let path = format!("/api/v1/events/stream?{}", q.join("&"));
            let mut stream = client.text(&path).await?;
            let mut pending = String::new();
            while let Some(chunk) = stream.next().await {
                pending.push_str(&String::from_utf8_lossy(&chunk?));
                while let Some(i) = pending.find('\n') {
                    let line: String = pending.drain(..=i).collect();
                    let Some(data) = line.trim_end().strip_prefix("data:") else {
                        continue;
                    };
                    let e: racer_core::api::Event = serde_json::from_str(data.trim())?;
                    if json {
                        println!("{}", serde_json::to_string(&e)?);
                    } else {
                        println!(
                            "{}  {}  {:<8} {:<22} {}",
                            e.id,
                            output::time(&e.at),
                            e.actor,
                            e.kind,
                            e.message
                        );
                    }
                    use std::io::Write;
                    std::io::stdout().flush()?;
                }
            }
        }
        Cmd::Events(a) => {
            let page = client
                .list_events(
                    a.app.as_deref(),
                    a.kind.as_deref(),
                    a.limit,
                    a.cursor.as_deref(),
                )
                .await?;
            if json {
                output::json(&page)?;
            } else {
                let rows: Vec<Vec<String>> = page
                    .items
                    .iter()
                    .map(|e| {
                        vec![
                            e.id.to_string(),
                            output::time(&e.at),
                            e.actor.clone(),
                            e.kind.clone(),
                            e.message.clone(),
                        ]
                    })
                    .collect();
                output::table(&["ID", "TIME", "ACTOR", "KIND", "MESSAGE"], &rows)?;
                if let Some(c) = page.next_cursor {
                    eprintln!("more events: --cursor {c}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
