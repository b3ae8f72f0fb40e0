//! `racerctl`: the operator's tool. Starts and stops the server, checks its health, manages
//! containers.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use racer_cli::local::{self, Target};
use racer_cli::{output, Client};
use serde::{Deserialize, Serialize};

/// racerctl: operate a racer server.
#[derive(Debug, Parser)]
#[command(name = "racerctl", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: racer_cli::Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start, stop and inspect the local server process.
    #[command(subcommand)]
    Server(ServerCmd),
    /// Check the server, its store and the Docker engine (exit 1 if unhealthy).
    Health,
    /// Check that the server process answers.
    Liveness,
    /// Check that the server is ready to take requests.
    Readiness,
    /// Show facts about the running server.
    Info,
    /// Inspect and act on the containers racer runs.
    #[command(subcommand)]
    Containers(ContainersCmd),
    /// Create, list, disable and enable users.
    #[command(subcommand)]
    Users(racer_cli::account::UsersCmd),
    /// Create and list organisations.
    #[command(subcommand)]
    Orgs(racer_cli::account::OrgsCmd),
    /// Make the local Docker engine a single-node swarm, leave it, or show its membership.
    #[command(subcommand)]
    Swarm(SwarmCmd),
}

#[derive(Debug, Subcommand)]
enum SwarmCmd {
    /// Make the local engine a single-node swarm (a manager), so `racerctl server start
    /// --cluster swarm` can run apps as services. Does nothing if it is in a swarm already.
    Init {
        /// The address the node advertises to other nodes.
        #[arg(long, default_value = "127.0.0.1")]
        advertise_addr: String,
        /// Where the node listens for other nodes.
        #[arg(long, default_value = "127.0.0.1:2377")]
        listen_addr: String,
    },
    /// Make the local engine leave its swarm.
    Leave {
        /// Leave even as the last manager: every service of the swarm is removed.
        #[arg(long)]
        force: bool,
    },
    /// Show the local engine's swarm membership.
    Status,
}

#[derive(Debug, Subcommand)]
enum ContainersCmd {
    /// List every container racer manages.
    List,
    /// Show one container (id, unique id prefix, or name).
    Status {
        /// Container id, prefix or name.
        id: String,
    },
    /// Show one container's log.
    Logs {
        /// Container id, prefix or name.
        id: String,
        /// Keep following.
        #[arg(long, short)]
        follow: bool,
        /// Lines from the end.
        #[arg(long, default_value = "100")]
        tail: String,
    },
    /// Stop a container (racer starts it again while its app wants it).
    Stop {
        /// Container id, prefix or name.
        id: String,
    },
    /// Remove a container (racer replaces it while its app wants it).
    Remove {
        /// Container id, prefix or name.
        id: String,
    },
    /// Remove every racer container that is not running.
    Cleanup,
}

#[derive(Debug, Subcommand)]
enum ServerCmd {
    /// Start the server (in the background unless --foreground).
    Start(StartArgs),
    /// Stop the server gracefully (SIGTERM, in-flight requests drain); --force kills it.
    Stop(StopArgs),
    /// Show whether the server runs: pid, uptime, URLs, store (exit 1 if it does not).
    Status,
    /// Stop the server, then start it again with the same settings.
    Restart(StartArgs),
}

#[derive(Debug, Args, Clone, Serialize, Deserialize, Default)]
struct StartArgs {
    /// Run in this terminal instead of in the background.
    #[arg(long)]
    #[serde(skip)]
    foreground: bool,
    /// Port of the API (0 picks a free one). Default: 8001.
    #[arg(long)]
    port: Option<u16>,
    /// Address the API binds to. Default: 127.0.0.1.
    #[arg(long)]
    bind: Option<String>,
    /// Use PostgreSQL at this URL instead of the SQLite file in the data directory.
    #[arg(long, env = "RACER_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Port of the built-in proxy (0 picks a free one). Default: 8080.
    #[arg(long)]
    proxy_port: Option<u16>,
    /// Apps answer at <app>.<domain>. Default: localhost.
    #[arg(long)]
    domain: Option<String>,
    /// Host ports replicas are published on, e.g. 8000-8999,9000-9999.
    #[arg(long)]
    host_ports: Option<String>,
    /// Base image of Dockerfiles generated for conda-projects.
    #[arg(long)]
    base_image: Option<String>,
    /// Seconds new replicas get to answer before a rollout is rolled back (default 60).
    #[arg(long)]
    rollout_deadline: Option<u64>,
    /// Where apps run: local (containers, the default) or swarm (services; the engine must be
    /// a Swarm manager, see `racerctl swarm init`).
    #[arg(long)]
    #[serde(default)]
    cluster: Option<String>,
    /// Seconds to wait for the server to become ready.
    #[arg(long, default_value_t = 30)]
    #[serde(skip)]
    wait: u64,
}

#[derive(Debug, Args)]
struct StopArgs {
    /// Kill the server at once (SIGKILL) instead of draining.
    #[arg(long)]
    force: bool,
    /// Seconds to wait for a graceful stop before giving up.
    #[arg(long, default_value_t = 40)]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("racerctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    racer_cli::finish("racerctl", rt.block_on(run(cli)))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    let data_dir = g.data_dir.clone().unwrap_or_else(local::default_data_dir);
    let target = || Target::resolve_operator(g.url.clone(), g.token.clone(), &data_dir);
    match cli.command {
        Cmd::Server(ServerCmd::Start(a)) => server_start(&data_dir, a, g.json).await,
        Cmd::Server(ServerCmd::Stop(a)) => server_stop(&data_dir, &a, g.json).await,
        Cmd::Server(ServerCmd::Status) => server_status(&data_dir, target(), g.json).await,
        Cmd::Server(ServerCmd::Restart(a)) => {
            let stop = StopArgs {
                force: false,
                timeout: 40,
            };
            server_stop(&data_dir, &stop, false).await?;
            let mut a = a;
            if a.port.is_none()
                && a.bind.is_none()
                && a.database_url.is_none()
                && a.host_ports.is_none()
                && a.proxy_port.is_none()
                && a.domain.is_none()
                && a.rollout_deadline.is_none()
                && a.base_image.is_none()
                && a.cluster.is_none()
            {
                // Same settings as the last start.
                if let Some(prev) = read_start_args(&data_dir) {
                    a = StartArgs {
                        foreground: a.foreground,
                        wait: a.wait,
                        ..prev
                    };
                }
            }
            server_start(&data_dir, a, g.json).await
        }
        Cmd::Users(c) => racer_cli::account::users(&Client::new(target()), c, g.json).await,
        Cmd::Orgs(c) => racer_cli::account::orgs(&Client::new(target()), c, g.json).await,
        Cmd::Health => {
            let client = Client::new(target());
            let h = client.health().await?;
            if g.json {
                output::json(&h)?;
            } else {
                println!("status: {}", h.status);
                let rows: Vec<Vec<String>> = h
                    .components
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            if c.healthy { "healthy" } else { "UNHEALTHY" }.into(),
                            c.detail.clone(),
                        ]
                    })
                    .collect();
                output::table(&["COMPONENT", "STATE", "DETAIL"], &rows)?;
            }
            Ok(if h.status == "unhealthy" {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Liveness => probe(Client::new(target()).liveness().await?, g.json),
        Cmd::Readiness => probe(Client::new(target()).readiness().await?, g.json),
        Cmd::Containers(c) => containers(Client::new(target()), c, g.json).await,
        Cmd::Swarm(c) => swarm(c, g.json),
        Cmd::Info => {
            let info = Client::new(target()).server_info().await?;
            if g.json {
                output::json(&info)?;
            } else {
                print_info(&info, None);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `racer-server swarm ...`: the server binary is what talks to the engine.
fn swarm(cmd: SwarmCmd, json: bool) -> anyhow::Result<ExitCode> {
    let mut c = Command::new(server_binary());
    c.arg("swarm");
    match cmd {
        SwarmCmd::Init {
            advertise_addr,
            listen_addr,
        } => {
            c.args(["init", "--advertise-addr", &advertise_addr]);
            c.args(["--listen-addr", &listen_addr]);
        }
        SwarmCmd::Leave { force } => {
            c.arg("leave");
            if force {
                c.arg("--force");
            }
        }
        SwarmCmd::Status => {
            c.arg("status");
        }
    }
    if json {
        c.arg("--json");
    }
    let status = c.status().with_context(|| {
        format!(
            "cannot run {}; build it with `cargo build --workspace` or put it on PATH",
            server_binary().display()
        )
    })?;
    // racer-server printed what it did, or its error.
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn probe(p: racer_core::api::Probe, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        output::json(&p)?;
    } else {
        println!("{}", p.status);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_info(info: &racer_core::api::ServerInfo, log: Option<&str>) {
    println!("racer server {} is running", info.version);
    println!("  pid:       {}", info.pid);
    println!("  uptime:    {}", output::duration(info.uptime_seconds));
    println!("  API:       {}", info.api_url);
    if let Some(p) = &info.proxy_url {
        println!("  proxy:     {p}");
    }
    println!("  store:     {}", info.store);
    println!("  data dir:  {}", info.data_dir);
    println!(
        "  docker:    {}",
        info.docker_version.as_deref().unwrap_or("unreachable")
    );
    if let Some(l) = log {
        println!("  log:       {l}");
    }
}

const START_ARGS: &str = "start-args.json";

fn read_start_args(data_dir: &Path) -> Option<StartArgs> {
    serde_json::from_slice(&std::fs::read(data_dir.join(START_ARGS)).ok()?).ok()
}

/// Records the settings of the last start (mode 0600: a database URL may hold a password).
fn write_start_args(data_dir: &Path, a: &StartArgs) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(data_dir.join(START_ARGS))?;
    f.write_all(&serde_json::to_vec(a)?)?;
    Ok(())
}

/// The `racer-server` binary: next to this one, else on PATH.
fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RACER_SERVER_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            let candidate = dir.join("racer-server");
            if candidate.exists() {
                return candidate;
            }
        }
    }
    PathBuf::from("racer-server")
}

fn server_command(data_dir: &Path, a: &StartArgs) -> Command {
    let mut cmd = Command::new(server_binary());
    cmd.arg("--data-dir").arg(data_dir);
    if let Some(p) = a.port {
        cmd.arg("--port").arg(p.to_string());
    }
    if let Some(b) = &a.bind {
        cmd.arg("--bind").arg(b);
    }
    if let Some(p) = a.proxy_port {
        cmd.arg("--proxy-port").arg(p.to_string());
    }
    if let Some(d) = &a.domain {
        cmd.arg("--domain").arg(d);
    }
    if let Some(d) = a.rollout_deadline {
        cmd.arg("--rollout-deadline").arg(d.to_string());
    }
    if let Some(h) = &a.host_ports {
        cmd.arg("--host-ports").arg(h);
    }
    if let Some(b) = &a.base_image {
        cmd.arg("--base-image").arg(b);
    }
    if let Some(c) = &a.cluster {
        cmd.arg("--cluster").arg(c);
    }
    match &a.database_url {
        // Passed through the environment, not argv, so it never shows in `ps`.
        Some(u) => cmd.env("RACER_DATABASE_URL", u),
        None => cmd.env_remove("RACER_DATABASE_URL"),
    };
    cmd
}

async fn server_start(data_dir: &Path, a: StartArgs, json: bool) -> anyhow::Result<ExitCode> {
    if let Some(f) = local::read_server_file(data_dir) {
        if local::server_alive(f.pid) {
            bail!(
                "racer server is already running (pid {}, {}); stop it with `racerctl server stop`",
                f.pid,
                f.api_url
            );
        }
        // A stale file from a server that was killed.
        let _ = std::fs::remove_file(data_dir.join("server.json"));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;

    if a.foreground {
        use std::os::unix::process::CommandExt;
        let err = server_command(data_dir, &a).exec();
        bail!("cannot run {}: {err}", server_binary().display());
    }

    write_start_args(data_dir, &a)
        .with_context(|| format!("cannot write to data directory {}", data_dir.display()))?;
    let log_path = data_dir.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open log file {}", log_path.display()))?;
    let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = server_command(data_dir, &a);
    // A session of its own (the server calls setsid): the terminal's Ctrl-C and hang-up do not
    // reach it, nor does it share a CPU autogroup with what the terminal runs next.
    cmd.arg("--log-file").arg(&log_path).arg("--detach");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {}; build it with `cargo build --workspace` or put it on PATH",
                server_binary().display()
            )
        })?;
    let pid = child.id();

    let deadline = Instant::now() + Duration::from_secs(a.wait);
    loop {
        if let Some(status) = child.try_wait()? {
            let tail = log_tail(&log_path, log_offset);
            let msg = tail
                .lines()
                .rev()
                .find(|l| l.starts_with("racer-server:"))
                .map(|l| l.trim_start_matches("racer-server: ").to_owned())
                .unwrap_or_else(|| format!("server exited ({status}); see {}", log_path.display()));
            bail!("server failed to start: {msg}");
        }
        if let Some(f) = local::read_server_file(data_dir).filter(|f| f.pid == pid) {
            let client = Client::new(Target {
                url: f.api_url.clone(),
                token: None,
            });
            if client.readiness().await.is_ok() {
                if json {
                    output::json(&f)?;
                } else {
                    println!("racer server started (pid {pid})");
                    println!("  API:         {}", f.api_url);
                    if let Some(p) = &f.proxy_url {
                        println!("  proxy:       {p}");
                    }
                    println!("  store:       {}", f.store);
                    println!("  data dir:    {}", data_dir.display());
                    println!("  log:         {}", log_path.display());
                    println!("  admin token: {}", data_dir.join("admin.token").display());
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "server (pid {pid}) did not become ready within {}s; see {}",
                a.wait,
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn log_tail(path: &Path, from: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let from = (from as usize).min(bytes.len());
    String::from_utf8_lossy(&bytes[from..]).into_owned()
}

async fn server_stop(data_dir: &Path, a: &StopArgs, json: bool) -> anyhow::Result<ExitCode> {
    let Some(f) = local::read_server_file(data_dir).filter(|f| local::server_alive(f.pid)) else {
        let _ = std::fs::remove_file(data_dir.join("server.json"));
        if json {
            output::json(&serde_json::json!({"stopped": false, "running": false}))?;
        } else {
            println!(
                "racer server is not running (data dir {})",
                data_dir.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let pid = rustix::process::Pid::from_raw(f.pid as i32).context("invalid pid in server.json")?;
    let signal = if a.force {
        rustix::process::Signal::KILL
    } else {
        rustix::process::Signal::TERM
    };
    rustix::process::kill_process(pid, signal)
        .with_context(|| format!("cannot signal the server (pid {})", f.pid))?;
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    while local::server_alive(f.pid) {
        if Instant::now() > deadline {
            bail!(
                "server (pid {}) is still draining after {}s; wait, or use `racerctl server stop --force`",
                f.pid,
                a.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if a.force {
        let _ = std::fs::remove_file(data_dir.join("server.json"));
    }
    if json {
        output::json(&serde_json::json!({"stopped": true, "pid": f.pid, "forced": a.force}))?;
    } else if a.force {
        println!("racer server killed (pid {})", f.pid);
    } else {
        println!("racer server stopped (pid {})", f.pid);
    }
    Ok(ExitCode::SUCCESS)
}

async fn server_status(data_dir: &Path, target: Target, json: bool) -> anyhow::Result<ExitCode> {
    let file = local::read_server_file(data_dir).filter(|f| local::server_alive(f.pid));
    let Some(file) = file else {
        if json {
            output::json(&serde_json::json!({"running": false}))?;
        } else {
            println!(
                "racer server is not running (data dir {})",
                data_dir.display()
            );
        }
        return Ok(ExitCode::FAILURE);
    };
    let client = Client::new(Target {
        url: file.api_url.clone(),
        token: target.token,
    });
    match client.server_info().await {
        Ok(info) => {
            if json {
                output::json(&info)?;
            } else {
                print_info(&info, file.log_file.as_deref());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                output::json(
                    &serde_json::json!({"running": true, "pid": file.pid, "api_url": file.api_url, "error": e.to_string()}),
                )?;
            } else {
                println!(
                    "racer server process {} is running but its API at {} does not answer: {e}",
                    file.pid, file.api_url
                );
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn containers(client: Client, cmd: ContainersCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        ContainersCmd::List => {
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = client.containers(cursor.as_deref()).await?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            if json {
                output::json(&racer_core::api::Page {
                    items: all,
                    next_cursor: None,
                })?;
            } else if all.is_empty() {
                println!("no racer containers");
            } else {
                racer_cli::deploy::container_table(&all)?;
            }
        }
        ContainersCmd::Status { id } => {
            let c = client.container(&id).await?;
            if json {
                output::json(&c)?;
            } else {
                println!("project: {}", c.app_name.as_deref().unwrap_or("(unknown)"));
                racer_cli::deploy::container_table(std::slice::from_ref(&c))?;
            }
        }
        ContainersCmd::Logs { id, follow, tail } => {
            use futures_util::StreamExt;
            use std::io::Write;
            let path = format!(
                "/api/v1/containers/{}/logs?tail={}&follow={follow}",
                racer_cli::client::path_segment(&id),
                racer_cli::client::path_segment(&tail)
            );
            let mut stream = client.text(&path).await?;
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
                out.flush()?;
            }
        }
        ContainersCmd::Stop { id } => action(client.stop_container(&id).await?, json)?,
        ContainersCmd::Remove { id } => action(client.remove_container(&id).await?, json)?,
        ContainersCmd::Cleanup => action(client.cleanup().await?, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn action(a: racer_core::api::ContainerAction, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(&a)
    } else {
        println!("{}", a.message);
        Ok(())
    }
}
