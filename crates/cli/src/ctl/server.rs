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
    Start(Box<StartArgs>),
    /// Stop the server gracefully (SIGTERM, in-flight requests drain); --force kills it.
    Stop(StopArgs),
    /// Show whether the server runs: pid, uptime, URLs, store (exit 1 if it does not).
    Status,
    /// Stop the server, then start it again with the same settings.
    Restart(Box<StartArgs>),
}

/// `racerctl server start` and `restart`: every setting `racer-server` takes, under the same
/// flag and `RACER_*` variable (the seeds' names too: `DATABASE_URL`, `API_PORT`, …). Recorded
/// (but `--foreground`, `--wait` and the secrets) in the data directory, so `restart` starts the
/// server with the same settings. Values are checked by `racer-server`, whose message is shown.
#[derive(Debug, Args, Clone, Serialize, Deserialize, Default)]
pub struct StartArgs {
    /// Run in this terminal instead of in the background.
    #[arg(long)]
    #[serde(skip)]
    pub foreground: bool,
    /// Port of the API (0 picks a free one; also API_PORT). Default: 8001.
    #[arg(long, env = "RACER_PORT")]
    pub port: Option<u16>,
    /// Address the API binds to. Default: 127.0.0.1.
    #[arg(long, env = "RACER_BIND")]
    pub bind: Option<String>,
    /// Use PostgreSQL at this URL instead of the SQLite file in the data directory (also
    /// DATABASE_URL).
    #[arg(long, env = "RACER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Port of the built-in proxy (0 picks a free one). Default: 8080.
    #[arg(long, env = "RACER_PROXY_PORT")]
    pub proxy_port: Option<u16>,
    /// Address the proxy binds to. Default: 127.0.0.1.
    #[arg(long, env = "RACER_PROXY_BIND")]
    #[serde(default)]
    pub proxy_bind: Option<String>,
    /// Apps answer at <app>.<domain> (also BASE_DOMAIN). Default: localhost.
    #[arg(long, env = "RACER_DOMAIN")]
    pub domain: Option<String>,
    /// How the proxy picks a replica: round-robin (default) or least-connections.
    #[arg(long, env = "RACER_BALANCE")]
    #[serde(default)]
    pub balance: Option<String>,
    /// Host ports replicas are published on. Default: 8000-8999,9000-9999.
    #[arg(long, env = "RACER_HOST_PORTS")]
    pub host_ports: Option<String>,
    /// Base image of Dockerfiles generated for conda-projects.
    #[arg(long, env = "RACER_CONDA_BASE_IMAGE")]
    pub base_image: Option<String>,
    /// Seconds new replicas get to answer before a rollout is rolled back. Default: 60.
    #[arg(long, env = "RACER_ROLLOUT_DEADLINE")]
    pub rollout_deadline: Option<u64>,
    /// Threads serving the proxy (0: one per core). Default: 0.
    #[arg(long, env = "RACER_PROXY_THREADS")]
    #[serde(default)]
    pub proxy_threads: Option<String>,
    /// Requests the proxy sends one replica at once (0: no limit).
    #[arg(long, env = "RACER_REPLICA_CONCURRENCY")]
    #[serde(default)]
    pub replica_concurrency: Option<String>,
    /// Open proxy connections one client address may hold (0: no limit). Default: 1024.
    #[arg(long, env = "RACER_PROXY_MAX_CONNECTIONS_PER_SOURCE")]
    #[serde(default)]
    pub proxy_max_connections_per_source: Option<String>,
    /// Seconds between full lists of the engine's containers. Default: 30.
    #[arg(long, env = "RACER_OBSERVER_RESYNC")]
    #[serde(default)]
    pub observer_resync: Option<String>,
    /// How long a login session lasts, e.g. 1h, 8h, 1d. Default: 1h.
    #[arg(long, env = "RACER_SESSION_TTL")]
    #[serde(default)]
    pub session_ttl: Option<String>,
    /// Where apps run: local (containers, the default) or swarm (services; the engine must be
    /// a Swarm manager, see `racerctl swarm init`).
    #[arg(long, env = "RACER_CLUSTER")]
    #[serde(default)]
    pub cluster: Option<String>,
    /// The Docker engine to use, e.g. unix:///var/run/docker.sock (also DOCKER_HOST).
    #[arg(long, env = "RACER_DOCKER_HOST")]
    #[serde(default)]
    pub docker_host: Option<String>,
    /// CPU limit of a container whose release sets none, in cores (also RESOURCE_CPU_LIMIT).
    /// Default: 1.
    #[arg(long, env = "RACER_CONTAINER_CPUS")]
    #[serde(default)]
    pub container_cpus: Option<String>,
    /// Memory limit of a container whose release sets none, e.g. 512Mi, 4GB (also
    /// RESOURCE_MEMORY_LIMIT). Default: 512Mi.
    #[arg(long, env = "RACER_CONTAINER_MEMORY")]
    #[serde(default)]
    pub container_memory: Option<String>,
    /// Use this admin token instead of generating admin.token (also API_KEY); at least 16
    /// characters. Passed to the server in its environment, never recorded: give it again to
    /// `restart`.
    #[arg(long, env = "RACER_ADMIN_TOKEN", hide_env_values = true)]
    #[serde(skip)]
    pub admin_token: Option<String>,
    /// Sign login sessions with this secret instead of the generated jwt.secret (also
    /// JWT_SECRET_KEY); at least 32 bytes. Passed in the environment, never recorded.
    #[arg(long, env = "RACER_JWT_SECRET", hide_env_values = true)]
    #[serde(skip)]
    pub jwt_secret: Option<String>,
    /// What the log shows: error, warn, info, debug, trace, or a filter. Default: info.
    #[arg(long, env = "RACER_LOG_LEVEL")]
    #[serde(default)]
    pub log_level: Option<String>,
    /// What a replica whose release sets no CPU is counted as asking for placement, in cores.
    /// Default: 0.1.
    #[arg(long, env = "RACER_REQUEST_CPUS")]
    #[serde(default)]
    pub request_cpus: Option<String>,
    /// What a replica whose release sets no memory is counted as asking for placement, e.g.
    /// 128Mi. Default: 128Mi.
    #[arg(long, env = "RACER_REQUEST_MEMORY")]
    #[serde(default)]
    pub request_memory: Option<String>,
    /// Warm pools: no new pool container while host memory in use is above this percent (also
    /// MAX_MEMORY_PERCENT). Default: 90.
    #[arg(long, env = "RACER_MAX_MEMORY_PERCENT")]
    #[serde(default)]
    pub max_memory_percent: Option<String>,
    /// Warm pools: the size of a pool created without one (also PRE_WARMED_QUEUE_SIZE).
    /// Default: 2.
    #[arg(long, env = "RACER_POOL_SIZE")]
    #[serde(default)]
    pub pool_size: Option<String>,
    /// The key app secrets are sealed with, base64 of 32 bytes (default: the data directory's
    /// secret.key). Passed in the environment, never recorded.
    #[arg(long, env = "RACER_SECRET_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub secret_key: Option<String>,
    /// Warm pools' workspaces: the S3-compatible endpoint. Default: AWS S3.
    #[arg(long, env = "RACER_S3_ENDPOINT")]
    #[serde(default)]
    pub s3_endpoint: Option<String>,
    /// Warm pools' workspaces: the S3 region (also AWS_REGION).
    #[arg(long, env = "RACER_S3_REGION")]
    #[serde(default)]
    pub s3_region: Option<String>,
    /// Warm pools' workspaces: the access key id (also AWS_ACCESS_KEY_ID). Passed in the
    /// environment, never recorded.
    #[arg(long, env = "RACER_S3_ACCESS_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub s3_access_key: Option<String>,
    /// Warm pools' workspaces: the secret access key (also AWS_SECRET_ACCESS_KEY). Passed in the
    /// environment, never recorded.
    #[arg(long, env = "RACER_S3_SECRET_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub s3_secret_key: Option<String>,
    /// Warm pools' workspaces: seconds between syncs. Default: 30.
    #[arg(long, env = "RACER_WORKSPACE_SYNC_INTERVAL")]
    #[serde(default)]
    pub workspace_sync_interval: Option<String>,
    /// Do not run the embedded worker: the server builds nothing and never acts on the engines
    /// (`racerctl worker` processes on the same store do). Recorded for `restart`.
    #[arg(long, env = "RACER_NO_WORKER")]
    #[serde(default)]
    pub no_worker: bool,
    /// Seconds a control loop's lease lasts unrenewed: with several servers and workers on one
    /// store, another takes over within it when the holder dies. Default: 15.
    #[arg(long, env = "RACER_LEASE_TTL")]
    #[serde(default)]
    pub lease_ttl: Option<String>,
    /// HTTPS at the proxy with this certificate chain (PEM; reloaded when it changes).
    #[arg(long, env = "RACER_TLS_CERT")]
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "RACER_TLS_KEY")]
    #[serde(default)]
    pub tls_key: Option<String>,
    /// Port of the proxy's HTTPS when TLS is on. Default: 8443.
    #[arg(long, env = "RACER_TLS_PORT")]
    #[serde(default)]
    pub tls_port: Option<String>,
    /// Certificates for every app host from this ACME directory (HTTP-01 on the proxy's port).
    #[arg(long, env = "RACER_ACME_DIRECTORY")]
    #[serde(default)]
    pub acme_directory: Option<String>,
    /// Contact address of the ACME account.
    #[arg(long, env = "RACER_ACME_EMAIL")]
    #[serde(default)]
    pub acme_email: Option<String>,
    /// A CA certificate (PEM) to trust for a private ACME server's own HTTPS.
    #[arg(long, env = "RACER_ACME_CA_ROOT")]
    #[serde(default)]
    pub acme_ca_root: Option<String>,
    /// Renew an ACME certificate when this much of its life is left. Default: 30d.
    #[arg(long, env = "RACER_ACME_RENEW_BEFORE")]
    #[serde(default)]
    pub acme_renew_before: Option<String>,
    /// With TLS on, serve plain HTTP instead of redirecting it to HTTPS.
    #[arg(long, env = "RACER_NO_HTTPS_REDIRECT")]
    #[serde(default)]
    pub no_https_redirect: bool,
    /// Send Strict-Transport-Security: max-age=SECONDS over HTTPS (0: not sent).
    #[arg(long, env = "RACER_HSTS_MAX_AGE")]
    #[serde(default)]
    pub hsts_max_age: Option<String>,
    /// Seconds to wait for the server to become ready.
    #[arg(long, default_value_t = 30)]
    #[serde(skip)]
    pub wait: u64,
    /// Recorded: the last start had an operator-chosen admin token (its value is not).
    #[arg(skip)]
    #[serde(default)]
    pub admin_token_given: bool,
    /// Recorded: the last start had an operator-chosen JWT secret (its value is not).
    #[arg(skip)]
    #[serde(default)]
    pub jwt_secret_given: bool,
    /// Recorded: the last start had an operator-chosen secret key (its value is not).
    #[arg(skip)]
    #[serde(default)]
    pub secret_key_given: bool,
}

impl StartArgs {
    /// The settings passed to `racer-server` as flags: (flag, value) for each one given.
    fn flags(&self) -> Vec<(&'static str, String)> {
        let num = |v: Option<u64>| v.map(|n| n.to_string());
        // Files are named from where racerctl runs; the server starts elsewhere.
        let file = |v: &Option<String>| {
            v.as_ref().map(|p| match std::env::current_dir() {
                Ok(cwd) if !p.is_empty() => cwd.join(p).display().to_string(),
                _ => p.clone(),
            })
        };
        [
            ("--port", num(self.port.map(u64::from))),
            ("--bind", self.bind.clone()),
            ("--proxy-port", num(self.proxy_port.map(u64::from))),
            ("--proxy-bind", self.proxy_bind.clone()),
            ("--domain", self.domain.clone()),
            ("--balance", self.balance.clone()),
            ("--host-ports", self.host_ports.clone()),
            ("--base-image", self.base_image.clone()),
            ("--rollout-deadline", num(self.rollout_deadline)),
            ("--proxy-threads", self.proxy_threads.clone()),
            ("--replica-concurrency", self.replica_concurrency.clone()),
            ("--observer-resync", self.observer_resync.clone()),
            (
                "--proxy-max-connections-per-source",
                self.proxy_max_connections_per_source.clone(),
            ),
            ("--session-ttl", self.session_ttl.clone()),
            ("--cluster", self.cluster.clone()),
            ("--docker-host", self.docker_host.clone()),
            ("--container-cpus", self.container_cpus.clone()),
            ("--container-memory", self.container_memory.clone()),
            ("--log-level", self.log_level.clone()),
            ("--lease-ttl", self.lease_ttl.clone()),
            ("--request-cpus", self.request_cpus.clone()),
            ("--request-memory", self.request_memory.clone()),
            ("--max-memory-percent", self.max_memory_percent.clone()),
            ("--pool-size", self.pool_size.clone()),
            ("--s3-endpoint", self.s3_endpoint.clone()),
            ("--s3-region", self.s3_region.clone()),
            (
                "--workspace-sync-interval",
                self.workspace_sync_interval.clone(),
            ),
            ("--tls-cert", file(&self.tls_cert)),
            ("--tls-key", file(&self.tls_key)),
            ("--tls-port", self.tls_port.clone()),
            ("--acme-directory", self.acme_directory.clone()),
            ("--acme-email", self.acme_email.clone()),
            ("--acme-ca-root", file(&self.acme_ca_root)),
            ("--acme-renew-before", self.acme_renew_before.clone()),
            ("--hsts-max-age", self.hsts_max_age.clone()),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.filter(|v| !v.is_empty()).map(|v| (flag, v)))
        .collect()
    }

    /// The secret settings, passed to `racer-server` in its environment (never on argv, where
    /// `ps` shows them): (variable, value, whether it was given).
    fn secrets(&self) -> [(&'static str, Option<&str>); 6] {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|v| !v.is_empty())
        }
        [
            ("RACER_DATABASE_URL", given(&self.database_url)),
            ("RACER_ADMIN_TOKEN", given(&self.admin_token)),
            ("RACER_JWT_SECRET", given(&self.jwt_secret)),
            ("RACER_S3_ACCESS_KEY", given(&self.s3_access_key)),
            ("RACER_S3_SECRET_KEY", given(&self.s3_secret_key)),
            ("RACER_SECRET_KEY", given(&self.secret_key)),
        ]
    }

    /// These settings over those of the last start: each one given here wins, the others are
    /// the last start's. A secret the last start had must be given again (it is not recorded).
    fn over(self, prev: StartArgs) -> anyhow::Result<StartArgs> {
        macro_rules! or_prev {
            ($($f:ident),*) => { StartArgs { $($f: self.$f.or(prev.$f),)* ..self } };
        }
        let merged = or_prev!(
            port,
            bind,
            database_url,
            proxy_port,
            proxy_bind,
            domain,
            balance,
            host_ports,
            base_image,
            rollout_deadline,
            proxy_threads,
            replica_concurrency,
            observer_resync,
            session_ttl,
            cluster,
            docker_host,
            container_cpus,
            container_memory,
            log_level,
            lease_ttl,
            request_cpus,
            request_memory,
            max_memory_percent,
            pool_size,
            s3_endpoint,
            s3_region,
            workspace_sync_interval,
            proxy_max_connections_per_source,
            tls_cert,
            tls_key,
            tls_port,
            acme_directory,
            acme_email,
            acme_ca_root,
            acme_renew_before,
            hsts_max_age
        );
        let merged = StartArgs {
            no_worker: merged.no_worker || prev.no_worker,
            no_https_redirect: merged.no_https_redirect || prev.no_https_redirect,
            ..merged
        };
        if prev.admin_token_given && merged.admin_token.is_none() {
            bail!(
                "the last start used an admin token of your choosing, which racer does not record; \
                 give it again (RACER_ADMIN_TOKEN or API_KEY in the environment, or --admin-token)"
            );
        }
        if prev.jwt_secret_given && merged.jwt_secret.is_none() {
            bail!(
                "the last start used a JWT secret of your choosing, which racer does not record; \
                 give it again (RACER_JWT_SECRET or JWT_SECRET_KEY in the environment, or --jwt-secret)"
            );
        }
        if prev.secret_key_given && merged.secret_key.is_none() {
            bail!(
                "the last start used a secret key of your choosing (RACER_SECRET_KEY), which racer \
                 does not record; give it again, or the apps' secrets cannot be opened"
            );
        }
        Ok(merged)
    }
}

/// `racerctl worker`: a worker process on the server's store.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Builds it runs at once.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// The store's PostgreSQL URL (also DATABASE_URL); without it, the SQLite file of the data
    /// directory (a server on this machine).
    #[arg(long, env = "RACER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Seconds a control loop's lease lasts unrenewed. Default: 15.
    #[arg(long, env = "RACER_LEASE_TTL")]
    pub lease_ttl: Option<String>,
    /// The Docker engine to use (also DOCKER_HOST). Default: the local socket.
    #[arg(long, env = "RACER_DOCKER_HOST")]
    pub docker_host: Option<String>,
    /// Base image of Dockerfiles generated for conda-projects.
    #[arg(long, env = "RACER_CONDA_BASE_IMAGE")]
    pub base_image: Option<String>,
    /// Host ports replicas are published on. Default: 8000-8999,9000-9999.
    #[arg(long, env = "RACER_HOST_PORTS")]
    pub host_ports: Option<String>,
    /// What the log shows: error, warn, info, debug, trace, or a filter. Default: info.
    #[arg(long, env = "RACER_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// `racerctl worker`: runs a worker in this terminal until Ctrl-C or SIGTERM (run it under a
/// service manager to keep it running). It takes builds off the store's queue and, when it holds
/// the controller's lease, places and runs replicas; several may run at once, on this machine or
/// (with PostgreSQL) others.
pub fn worker(data_dir: &Path, a: WorkerArgs) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    if a.database_url.as_deref().is_none_or(str::is_empty) && !data_dir.join("racer.db").exists() {
        bail!(
            "no store at {}: start the server first (`racerctl server start`), give its data \
             directory (--data-dir), or give the PostgreSQL URL it uses (--database-url)",
            data_dir.display()
        );
    }
    let mut cmd = Command::new(server_binary());
    cmd.arg("--data-dir").arg(data_dir);
    for (flag, value) in [
        ("--lease-ttl", &a.lease_ttl),
        ("--docker-host", &a.docker_host),
        ("--base-image", &a.base_image),
        ("--host-ports", &a.host_ports),
        ("--log-level", &a.log_level),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            cmd.arg(flag).arg(v);
        }
    }
    match a.database_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => cmd.env("RACER_DATABASE_URL", url),
        None => cmd
            .env_remove("RACER_DATABASE_URL")
            .env_remove("DATABASE_URL"),
    };
    cmd.arg("worker")
        .arg("--concurrency")
        .arg(a.concurrency.to_string());
    let err = cmd.exec();
    bail!("cannot run {}: {err}", server_binary().display())
}

/// `racerctl backup` and `racerctl restore`: the store of the data directory (or
/// `--database-url`).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The PostgreSQL URL of the store (also DATABASE_URL); without it, the SQLite file of the
    /// data directory.
    #[arg(long, env = "RACER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Runs `racer-server backup --output FILE` or `racer-server restore FILE` on the store.
pub fn store_command(
    data_dir: &Path,
    a: &StoreArgs,
    sub: &str,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let mut cmd = Command::new(server_binary());
    cmd.arg("--data-dir").arg(data_dir);
    match a.database_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => cmd.env("RACER_DATABASE_URL", url),
        None => cmd
            .env_remove("RACER_DATABASE_URL")
            .env_remove("DATABASE_URL"),
    };
    cmd.arg(sub);
    if sub == "backup" {
        cmd.arg("--output");
    }
    cmd.arg(file);
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", server_binary().display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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

/// `racerctl server restart`: stops the server, then starts it again with the settings of the
/// last start, over which the ones given here win.
pub async fn restart(data_dir: &Path, a: StartArgs, json: bool) -> anyhow::Result<ExitCode> {
    let a = match read_start_args(data_dir) {
        Some(prev) => a.over(prev)?,
        None => a,
    };
    let graceful = StopArgs {
        force: false,
        timeout: 40,
    };
    stop(data_dir, &graceful, false).await?;
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
    for (flag, value) in a.flags() {
        cmd.arg(flag).arg(value);
    }
    if a.no_worker {
        cmd.arg("--no-worker");
    }
    if a.no_https_redirect {
        cmd.arg("--no-https-redirect");
    }
    for (var, value) in a.secrets() {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
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

    let recorded = StartArgs {
        admin_token_given: a.admin_token.as_deref().is_some_and(|t| !t.is_empty()),
        jwt_secret_given: a.jwt_secret.as_deref().is_some_and(|s| !s.is_empty()),
        secret_key_given: a.secret_key.as_deref().is_some_and(|s| !s.is_empty()),
        ..a.clone()
    };
    write_start_args(data_dir, &recorded)
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
                // A usage error of racer-server's own options (clap's `error: …`).
                .or_else(|| {
                    tail.lines()
                        .find(|l| l.starts_with("error:"))
                        .map(|l| l.trim_start_matches("error: ").to_owned())
                })
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
                    if recorded.admin_token_given {
                        println!("  admin token: the one you gave (not written)");
                    } else {
                        println!("  admin token: {}", data_dir.join("admin.token").display());
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_needs_the_operator_chosen_secrets_again() {
        let prev = StartArgs {
            secret_key_given: true,
            domain: Some("recorded.test".into()),
            ..Default::default()
        };
        let err = StartArgs::default().over(prev.clone()).unwrap_err();
        assert!(err.to_string().contains("RACER_SECRET_KEY"), "{err}");
        let given = StartArgs {
            secret_key: Some("k".repeat(44)),
            ..Default::default()
        };
        let merged = given.over(prev).unwrap();
        assert_eq!(merged.domain.as_deref(), Some("recorded.test"));
    }
}
