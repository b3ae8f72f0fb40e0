//! `racerctl server start|stop|status|restart`: the local server process, found through the
//! data directory (`server.json`, `start-args.json`, `server.log`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::local::{self, Target};
use crate::output;

/// `racerctl server …`.
#[derive(Debug, Subcommand)]
pub enum ServerCmd {
    /// Start the server (in the background unless --foreground).
    Start(StartArgs),
    /// Stop the server gracefully (SIGTERM, in-flight requests drain); --force kills it.
    Stop(StopArgs),
    /// Show whether the server runs: pid, uptime, URLs, store (exit 1 if it does not).
    Status,
    /// Stop the server, then start it again with the same settings.
    Restart(StartArgs),
}

/// `racerctl server start` and `restart`; recorded (but `--foreground` and `--wait`) in the
/// data directory, so a bare `restart` starts the server with the same settings.
#[derive(Debug, Args, Clone, Serialize, Deserialize, Default)]
pub struct StartArgs {
    /// Run in this terminal instead of in the background.
    #[arg(long)]
    #[serde(skip)]
    pub foreground: bool,
    /// Port of the API (0 picks a free one). Default: 8001.
    #[arg(long)]
    pub port: Option<u16>,
    /// Address the API binds to. Default: 127.0.0.1.
    #[arg(long)]
    pub bind: Option<String>,
    /// Use PostgreSQL at this URL instead of the SQLite file in the data directory.
    #[arg(long, env = "RACER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Port of the built-in proxy (0 picks a free one). Default: 8080.
    #[arg(long)]
    pub proxy_port: Option<u16>,
    /// Apps answer at <app>.<domain>. Default: localhost.
    #[arg(long)]
    pub domain: Option<String>,
    /// Host ports replicas are published on, e.g. 8000-8999,9000-9999.
    #[arg(long)]
    pub host_ports: Option<String>,
    /// Base image of Dockerfiles generated for conda-projects.
    #[arg(long)]
    pub base_image: Option<String>,
    /// Seconds new replicas get to answer before a rollout is rolled back (default 60).
    #[arg(long)]
    pub rollout_deadline: Option<u64>,
    /// Where apps run: local (containers, the default) or swarm (services; the engine must be
    /// a Swarm manager, see `racerctl swarm init`).
    #[arg(long)]
    #[serde(default)]
    pub cluster: Option<String>,
    /// Seconds to wait for the server to become ready.
    #[arg(long, default_value_t = 30)]
    #[serde(skip)]
    pub wait: u64,
}

/// `racerctl server stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Kill the server at once (SIGKILL) instead of draining.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for a graceful stop before giving up.
    #[arg(long, default_value_t = 40)]
    pub timeout: u64,
}

/// `racerctl server restart`: stops the server, then starts it again; without settings, with
/// those of the last start.
pub async fn restart(data_dir: &Path, mut a: StartArgs, json: bool) -> anyhow::Result<ExitCode> {
    let graceful = StopArgs {
        force: false,
        timeout: 40,
    };
    stop(data_dir, &graceful, false).await?;
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
        if let Some(prev) = read_start_args(data_dir) {
            a = StartArgs {
                foreground: a.foreground,
                wait: a.wait,
                ..prev
            };
        }
    }
    start(data_dir, a, json).await
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

/// The `racer-server` binary: `$RACER_SERVER_BIN`, else next to this one, else on PATH.
pub fn server_binary() -> PathBuf {
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

/// `racerctl server start`: starts the server (in the background unless `--foreground`) and
/// waits until it is ready.
pub async fn start(data_dir: &Path, a: StartArgs, json: bool) -> anyhow::Result<ExitCode> {
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

/// `racerctl server stop`: stops the server gracefully (SIGTERM), or kills it with `--force`.
pub async fn stop(data_dir: &Path, a: &StopArgs, json: bool) -> anyhow::Result<ExitCode> {
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

/// `racerctl server status`: whether the server runs, and its facts; exit 1 if it does not.
pub async fn status(data_dir: &Path, target: Target, json: bool) -> anyhow::Result<ExitCode> {
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
                super::health::print_info(&info, file.log_file.as_deref());
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
