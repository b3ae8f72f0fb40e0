//! `racer-server`: the racer daemon. `racerctl server start` runs it in the background; run it
//! directly (or with `racerctl server start --foreground`) to keep it in the terminal.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use racer_server::{Config, ServerFile, SERVER_FILE};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// mimalloc: the proxy allocates per request (headers, bodies, futures); glibc malloc's locks and
/// fragmentation cost more there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The racer server: HTTP API and every control loop.
///
/// Every setting also reads a `RACER_*` variable; the seeds' names (`DATABASE_URL`, `API_PORT`,
/// `BASE_DOMAIN`, `DOCKER_HOST`, `JWT_SECRET_KEY`, `API_KEY`, `RESOURCE_CPU_LIMIT`,
/// `RESOURCE_MEMORY_LIMIT`) are read when the `RACER_*` one is unset.
#[derive(Debug, Parser)]
#[command(name = "racer-server", version, about)]
struct Args {
    /// Port of the API (also API_PORT).
    #[arg(long, default_value_t = 8001, env = "RACER_PORT")]
    port: u16,
    /// Address the API binds to. Anything but loopback exposes the API to the network.
    #[arg(long, default_value = "127.0.0.1", env = "RACER_BIND")]
    bind: IpAddr,
    /// Data directory (SQLite file, admin token, server file). Default: ~/.local/share/racer.
    #[arg(long, env = "RACER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Use PostgreSQL at this URL instead of the SQLite file in the data directory (also
    /// DATABASE_URL).
    #[arg(long, env = "RACER_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Port of the built-in proxy (apps answer at http://<app>.localhost:PORT/).
    #[arg(long, default_value_t = 8080, env = "RACER_PROXY_PORT")]
    proxy_port: u16,
    /// Address the proxy binds to.
    #[arg(long, default_value = "127.0.0.1", env = "RACER_PROXY_BIND")]
    proxy_bind: IpAddr,
    /// Apps answer at <app>.<domain> (also BASE_DOMAIN).
    #[arg(long, default_value = "localhost", env = "RACER_DOMAIN")]
    domain: String,
    /// How the proxy picks a replica: round-robin or least-connections (power of two choices).
    #[arg(long, default_value = "round-robin", env = "RACER_BALANCE")]
    balance: racer_proxy::Balance,
    /// Host ports replicas are published on (127.0.0.1), tried in order.
    #[arg(long, default_value = "8000-8999,9000-9999", env = "RACER_HOST_PORTS")]
    host_ports: String,
    /// Base image of Dockerfiles generated for conda-projects.
    #[arg(long, env = "RACER_CONDA_BASE_IMAGE")]
    base_image: Option<String>,
    /// Seconds new replicas get to answer before a rollout is rolled back.
    #[arg(long, default_value_t = 60, env = "RACER_ROLLOUT_DEADLINE")]
    rollout_deadline: u64,
    /// Threads serving the proxy, each with its own event loop (0: one per core).
    #[arg(long, default_value_t = 0, env = "RACER_PROXY_THREADS")]
    proxy_threads: usize,
    /// Requests the proxy sends one replica at once (0: no limit); more wait in the proxy, in
    /// arrival order, and get a 503 after 10 s. Raise it for apps that hold many requests open
    /// (server-sent events, long polls); WebSockets are not counted.
    #[arg(long, default_value_t = racer_proxy::DEFAULT_REPLICA_CONCURRENCY, env = "RACER_REPLICA_CONCURRENCY")]
    replica_concurrency: usize,
    /// Open connections one client address may hold at the proxy (0: no limit); more are
    /// answered 429 and closed.
    #[arg(long, default_value_t = racer_proxy::DEFAULT_MAX_CONNECTIONS_PER_SOURCE, env = "RACER_PROXY_MAX_CONNECTIONS_PER_SOURCE")]
    proxy_max_connections_per_source: usize,
    /// Seconds between full lists of the engine's containers; between them the reconciler
    /// follows the engine's events and reads only the containers they name.
    #[arg(long, default_value_t = 30, env = "RACER_OBSERVER_RESYNC")]
    observer_resync: u64,
    /// How long a login session lasts (`racer login`), e.g. 1h, 8h, 1d.
    #[arg(long, default_value = "1h", env = "RACER_SESSION_TTL")]
    session_ttl: String,
    /// Recorded in server.json so `racerctl server status` can point at the log.
    #[arg(long, hide = true)]
    log_file: Option<PathBuf>,
    /// Start a session of its own (setsid), as a daemon does: `racerctl server start` runs the
    /// server this way, so that it leaves the terminal's session (no Ctrl-C, no hang-up) and,
    /// on kernels that group CPU time by session (autogroup), does not share its CPU weight
    /// with whatever else that terminal runs.
    #[arg(long, hide = true)]
    detach: bool,
    /// Where apps run: local (one container per replica on this engine) or swarm (one service
    /// per app; the engine must be a Swarm manager: see `racerctl swarm init`).
    #[arg(long, default_value = "local", env = "RACER_CLUSTER")]
    cluster: racer_control::ClusterKind,
    /// The Docker engine to use, e.g. unix:///var/run/docker.sock or tcp://10.0.0.2:2375
    /// (also DOCKER_HOST). Default: the local socket.
    #[arg(long, env = "RACER_DOCKER_HOST")]
    docker_host: Option<String>,
    /// CPU limit of a container whose release sets none, in cores (also RESOURCE_CPU_LIMIT).
    #[arg(long, default_value_t = 1.0, env = "RACER_CONTAINER_CPUS")]
    container_cpus: f64,
    /// Memory limit of a container whose release sets none: 512Mi, 4GB, 4g (also
    /// RESOURCE_MEMORY_LIMIT).
    #[arg(long, default_value = "512Mi", env = "RACER_CONTAINER_MEMORY")]
    container_memory: String,
    /// What a replica whose release sets no CPU is counted as asking when racer places it on a
    /// cluster, in cores (its limit stays --container-cpus). Default: 0.1, or --container-cpus
    /// if that is less.
    #[arg(long, env = "RACER_REQUEST_CPUS")]
    request_cpus: Option<f64>,
    /// What a replica whose release sets no memory is counted as asking when racer places it,
    /// e.g. 128Mi (its limit stays --container-memory). Default: 128Mi, or --container-memory
    /// if that is less.
    #[arg(long, env = "RACER_REQUEST_MEMORY")]
    request_memory: Option<String>,
    /// Use this admin token instead of generating admin.token (also API_KEY): at least 16
    /// characters, kept only as a digest, never written. Prefer the variable to the flag (ps
    /// shows flags).
    #[arg(long, env = "RACER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Sign login sessions with this secret instead of the generated jwt.secret (also
    /// JWT_SECRET_KEY): servers on one database with the same secret accept each other's
    /// sessions. At least 32 bytes.
    #[arg(long, env = "RACER_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// What the log shows: error, warn, info, debug, trace, or a filter such as
    /// info,racer_proxy=debug. Default: RUST_LOG if set, else info.
    #[arg(long, env = "RACER_LOG_LEVEL")]
    log_level: Option<String>,
    /// Warm pools: no new pool container while host memory in use is above this percent (also
    /// MAX_MEMORY_PERCENT).
    #[arg(long, default_value_t = 90.0, env = "RACER_MAX_MEMORY_PERCENT")]
    max_memory_percent: f64,
    /// Warm pools: the size of a pool created without one (also PRE_WARMED_QUEUE_SIZE).
    #[arg(long, default_value_t = 2, env = "RACER_POOL_SIZE")]
    pool_size: u32,
    /// Warm pools' workspaces: the S3-compatible endpoint, e.g. http://127.0.0.1:9000. Default:
    /// AWS S3.
    #[arg(long, env = "RACER_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// Warm pools' workspaces: the S3 region (also AWS_REGION). Default: us-east-1.
    #[arg(long, env = "RACER_S3_REGION")]
    s3_region: Option<String>,
    /// Warm pools' workspaces: the access key id (also AWS_ACCESS_KEY_ID). Prefer the variable.
    #[arg(long, env = "RACER_S3_ACCESS_KEY", hide_env_values = true)]
    s3_access_key: Option<String>,
    /// Warm pools' workspaces: the secret access key (also AWS_SECRET_ACCESS_KEY). Prefer the
    /// variable: ps shows flags.
    #[arg(long, env = "RACER_S3_SECRET_KEY", hide_env_values = true)]
    s3_secret_key: Option<String>,
    /// Warm pools' workspaces: seconds between syncs of a claimed container's workspace.
    #[arg(long, default_value_t = 30, env = "RACER_WORKSPACE_SYNC_INTERVAL")]
    workspace_sync_interval: u64,
    /// The key app secrets are sealed with: base64 of 32 bytes (`head -c32 /dev/urandom |
    /// base64`). Default: the data directory's secret.key, made (0600) if missing. Servers and
    /// workers on one database must share it. Prefer the variable.
    #[arg(long, env = "RACER_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Do not run the embedded worker: this server builds nothing and never acts on the
    /// engines; it serves the API and the proxy, checks health and routes, while `racerctl
    /// worker` processes (or other servers) on the same store build and place.
    #[arg(long, env = "RACER_NO_WORKER")]
    no_worker: bool,
    /// Seconds a control loop's lease lasts unrenewed: with several servers and workers on one
    /// store, another takes over the loops within it when the holder dies. A build's lease is
    /// three of it.
    #[arg(long, default_value_t = racer_control::DEFAULT_LEASE_TTL.as_secs(), env = "RACER_LEASE_TTL")]
    lease_ttl: u64,
    /// HTTPS at the proxy with this certificate chain (PEM; reloaded when it or the key
    /// changes, without dropping connections). Turns TLS on: plain HTTP is then redirected.
    #[arg(long, env = "RACER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[arg(long, env = "RACER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Port of the proxy's HTTPS when TLS is on (--tls-cert or --acme-directory); on
    /// --proxy-bind. 443 in production.
    #[arg(long, default_value_t = 8443, env = "RACER_TLS_PORT")]
    tls_port: u16,
    /// Certificates for every app host (<app>.<domain>) from this ACME directory, e.g.
    /// https://acme-v02.api.letsencrypt.org/directory: HTTP-01 is answered on the proxy's
    /// port (which must be port 80 as the world sees it), certificates are kept in the data
    /// directory (tls/acme, 0600) and renewed before expiry. Turns TLS on.
    #[arg(long, env = "RACER_ACME_DIRECTORY")]
    acme_directory: Option<String>,
    /// Contact address of the ACME account (expiry notices).
    #[arg(long, env = "RACER_ACME_EMAIL")]
    acme_email: Option<String>,
    /// A CA certificate (PEM) to trust for the ACME directory's own HTTPS (a private ACME
    /// server such as step-ca or Pebble). Default: the system's roots.
    #[arg(long, env = "RACER_ACME_CA_ROOT")]
    acme_ca_root: Option<PathBuf>,
    /// Renew an ACME certificate when this much of its life is left (but not before two thirds
    /// of it has passed), e.g. 30d.
    #[arg(long, default_value = "30d", env = "RACER_ACME_RENEW_BEFORE")]
    acme_renew_before: String,
    /// With TLS on, still serve plain HTTP instead of redirecting it to HTTPS.
    #[arg(long, env = "RACER_NO_HTTPS_REDIRECT")]
    no_https_redirect: bool,
    /// Send Strict-Transport-Security: max-age=SECONDS on HTTPS answers (0: not sent). Browsers
    /// then refuse plain HTTP to the apps' hosts for that long: turn it on once HTTPS works.
    #[arg(long, default_value_t = 0, env = "RACER_HSTS_MAX_AGE")]
    hsts_max_age: u64,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Back the store up to a file (`racerctl backup` runs this): a consistent SQLite snapshot,
    /// safe while the server runs, or `pg_dump` of PostgreSQL.
    Backup {
        /// The file to write (must not exist).
        #[arg(long)]
        output: PathBuf,
    },
    /// Restore a backup onto a stopped server's store (`racerctl restore` runs this); the
    /// containers of the restored install are adopted at the next start.
    Restore {
        /// The backup file.
        input: PathBuf,
    },
    /// Run as a worker (`racerctl worker` runs this): builds queued deployments and contends for
    /// the controller's lease (placement, starting and stopping replicas), without the API or
    /// the proxy. Uses the store of --database-url, else the SQLite file of --data-dir (the
    /// server's, on this machine).
    Worker {
        /// Builds it runs at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
    },
    /// The local engine's swarm membership (`racerctl swarm ...` runs these).
    #[command(subcommand)]
    Swarm(SwarmSub),
}

#[derive(Debug, Subcommand)]
enum SwarmSub {
    /// Make the local engine a single-node swarm (nothing happens if it is in one already).
    Init {
        /// The address the node advertises to other nodes.
        #[arg(long, default_value = "127.0.0.1")]
        advertise_addr: String,
        /// Where the node listens for other nodes.
        #[arg(long, default_value = "127.0.0.1:2377")]
        listen_addr: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make the local engine leave its swarm.
    Leave {
        /// Leave even as the last manager: every service of the swarm is removed.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the local engine's swarm membership.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Sets each `RACER_*` variable the seeds' name for it gives (`DATABASE_URL` for
/// `RACER_DATABASE_URL`, …) when it is unset, before the options are read.
fn apply_seed_env() {
    for (name, value) in racer_core::settings::seed_fallbacks(|k| std::env::var(k).ok()) {
        std::env::set_var(name, value);
    }
}

/// Removes the secrets from the environment once they are read, so that nothing the server
/// runs (git, builds) inherits them.
fn forget_secret_env() {
    std::env::remove_var("RACER_SECRET_KEY");
    for s in racer_core::settings::SEED_ENV.iter().filter(|s| s.secret) {
        std::env::remove_var(s.seed);
        std::env::remove_var(s.racer);
    }
}

fn main() -> ExitCode {
    // Before any thread starts: setting variables is only sound while there is one.
    apply_seed_env();
    let args = Args::parse();
    forget_secret_env();
    if let Some(host) = args.docker_host.as_deref().filter(|h| !h.is_empty()) {
        // The engine client reads DOCKER_HOST, as the docker CLI does.
        std::env::set_var("DOCKER_HOST", host);
    }
    if args.detach {
        if let Err(e) = rustix::process::setsid() {
            // Already a session or process group leader: it keeps running where it is.
            eprintln!("racer-server: cannot start a session of its own (setsid: {e}); staying in the caller's");
        }
    }
    let filter = match args.log_level.as_deref().filter(|l| !l.is_empty()) {
        Some(level) => match tracing_subscriber::EnvFilter::try_new(level) {
            Ok(f) => f,
            Err(e) => {
                eprintln!(
                    "racer-server: invalid --log-level {level:?}: {e}; use error, warn, info, debug, trace or a filter such as info,racer_proxy=debug"
                );
                return ExitCode::from(2);
            }
        },
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,sqlx=warn".into()),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: server.log stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("racer-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Sub::Backup { output }) | Some(Sub::Restore { input: output }) = &args.command {
        let restoring = matches!(args.command, Some(Sub::Restore { .. }));
        let data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(racer_server::default_data_dir);
        let mut config = Config::new(data_dir);
        config.database_url = args.database_url.clone().filter(|u| !u.is_empty());
        let done = rt.block_on(async {
            if restoring {
                racer_server::restore(&config, output).await.map(|kept| {
                    if kept.as_os_str().is_empty() {
                        format!("restored {} onto the PostgreSQL store", output.display())
                    } else {
                        format!(
                            "restored {}; the store it replaced is kept as {}; start the server: it adopts the install's running containers",
                            output.display(),
                            kept.display()
                        )
                    }
                })
            } else {
                racer_server::backup(&config, output)
                    .await
                    .map(|kind| format!("backed up the {kind} store to {}", output.display()))
            }
        });
        return match done {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("racer-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Sub::Worker { concurrency }) = args.command {
        return match rt.block_on(worker(args, concurrency)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("racer-server worker: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Sub::Swarm(cmd)) = args.command {
        return match rt.block_on(swarm(cmd)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("racer-server: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("racer-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn swarm(cmd: SwarmSub) -> anyhow::Result<()> {
    use racer_server::SwarmCommand;
    let (cmd, json) = match cmd {
        SwarmSub::Init {
            advertise_addr,
            listen_addr,
            json,
        } => (
            SwarmCommand::Init {
                advertise_addr,
                listen_addr,
            },
            json,
        ),
        SwarmSub::Leave { force, json } => (SwarmCommand::Leave { force }, json),
        SwarmSub::Status { json } => (SwarmCommand::Status, json),
    };
    let node = racer_server::swarm_command(cmd).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&node)?);
        return Ok(());
    }
    if let Some(a) = &node.action {
        println!("{a}");
    }
    let role = match (node.state.as_str(), node.manager) {
        ("active", true) => " (manager: racer-server --cluster swarm can run apps here)",
        ("active", false) => " (worker: racer needs a manager)",
        ("inactive", _) => " (not in a swarm: `racerctl swarm init` makes a single-node one)",
        _ => "",
    };
    println!("swarm: {}{role}", node.state);
    if let Some(id) = &node.node_id {
        println!(
            "  node:   {id}{}",
            node.node_addr
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        );
    }
    if let (Some(n), Some(m)) = (node.nodes, node.managers) {
        println!("  nodes:  {n} ({m} manager(s))");
    }
    if let Some(e) = &node.error {
        println!("  error:  {e}");
    }
    Ok(())
}

/// Runs a worker until SIGTERM or SIGINT.
async fn worker(args: Args, concurrency: usize) -> anyhow::Result<()> {
    if !(1..=64).contains(&concurrency) {
        anyhow::bail!("invalid --concurrency {concurrency}: give 1 to 64 builds at once");
    }
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(racer_server::default_data_dir);
    let mut config = Config::new(data_dir.clone());
    config.database_url = args.database_url.clone().filter(|u| !u.is_empty());
    apply_control(&args, &mut config)?;
    config.control.max_parallel_builds = concurrency;
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    let shutdown = CancellationToken::new();
    let running = racer_server::start_worker(config, shutdown.clone()).await?;
    println!("racer worker ready (pid {})", std::process::id());
    println!("  id:          {}", running.id);
    println!("  store:       {}", running.store_kind);
    println!("  data dir:    {}", data_dir.display());
    println!("  builds:      {concurrency} at once");
    println!(
        "  lease TTL:   {}s (another server or worker takes over within it if this one dies)",
        args.lease_ttl
    );
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping the worker"),
        _ = int.recv() => tracing::info!("SIGINT: stopping the worker"),
    }
    shutdown.cancel();
    running.wait().await;
    tracing::info!("worker stopped");
    Ok(())
}

/// HTTPS at the proxy (server only): files, ACME, redirect, HSTS.
fn apply_tls(args: &Args, config: &mut Config) -> anyhow::Result<()> {
    let files = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    let acme = match args.acme_directory.as_deref().filter(|d| !d.is_empty()) {
        Some(directory) => {
            if !(directory.starts_with("https://") || directory.starts_with("http://")) {
                anyhow::bail!(
                    "invalid --acme-directory {directory:?}: give the directory's URL, e.g. https://acme-v02.api.letsencrypt.org/directory"
                );
            }
            if let Some(root) = &args.acme_ca_root {
                if !root.is_file() {
                    anyhow::bail!(
                        "--acme-ca-root {}: no such file (a PEM CA certificate)",
                        root.display()
                    );
                }
            }
            let renew = racer_core::auth::parse_lifetime(&args.acme_renew_before)
                .map_err(|e| anyhow::anyhow!("invalid --acme-renew-before: {e}"))?;
            Some(racer_control::acme::AcmeSettings {
                directory: directory.to_string(),
                email: args.acme_email.clone(),
                ca_root: args.acme_ca_root.clone(),
                renew_before: std::time::Duration::from_secs(renew.unsigned_abs()),
                every: std::time::Duration::from_secs(5),
            })
        }
        None => None,
    };
    if files.is_none() && acme.is_none() {
        if args.hsts_max_age > 0 {
            anyhow::bail!(
                "--hsts-max-age needs TLS: give --tls-cert/--tls-key or --acme-directory"
            );
        }
        return Ok(());
    }
    if args.tls_port == args.proxy_port && args.tls_port != 0 {
        anyhow::bail!(
            "--tls-port {} is the proxy's plain-HTTP port: give another (443 in production, 8443 by default)",
            args.tls_port
        );
    }
    config.control.acme = acme;
    config.tls = Some(racer_server::TlsConfig {
        addr: SocketAddr::new(args.proxy_bind, args.tls_port),
        files,
        redirect: !args.no_https_redirect,
        hsts_max_age: args.hsts_max_age,
    });
    Ok(())
}

/// The control loops' settings every process shares (server and worker).
fn apply_control(args: &Args, config: &mut Config) -> anyhow::Result<()> {
    config.control.host_ports = racer_control::ports::parse(&args.host_ports)
        .map_err(|e| anyhow::anyhow!("invalid --host-ports: {e}"))?;
    if let Some(b) = &args.base_image {
        config.control.conda_base_image = b.clone();
    }
    config.control.rollout_deadline = std::time::Duration::from_secs(args.rollout_deadline);
    config.control.observer_resync = std::time::Duration::from_secs(args.observer_resync.max(1));
    config.control.cluster = args.cluster;
    if !(1..=3600).contains(&args.lease_ttl) {
        anyhow::bail!(
            "invalid --lease-ttl {}: give 1 to 3600 seconds",
            args.lease_ttl
        );
    }
    config.control.lease_ttl = std::time::Duration::from_secs(args.lease_ttl);
    if !(args.container_cpus > 0.0 && args.container_cpus <= 256.0) {
        anyhow::bail!(
            "invalid --container-cpus (RESOURCE_CPU_LIMIT) {}: cores must be more than 0 and at most 256",
            args.container_cpus
        );
    }
    config.control.default_cpus = args.container_cpus;
    config.control.default_memory_mb = match racer_core::spec::memory_mib(&args.container_memory) {
        Some(m) if m >= 6 => m,
        _ => anyhow::bail!(
            "invalid --container-memory (RESOURCE_MEMORY_LIMIT) {:?}: give a size of at least 6Mi, e.g. 512Mi, 4GB or 4g",
            args.container_memory
        ),
    };
    if !(args.max_memory_percent > 0.0 && args.max_memory_percent <= 100.0) {
        anyhow::bail!(
            "invalid --max-memory-percent (MAX_MEMORY_PERCENT) {}: give more than 0 and at most 100",
            args.max_memory_percent
        );
    }
    config.control.max_memory_percent = args.max_memory_percent;
    if args.pool_size > 200 {
        anyhow::bail!(
            "invalid --pool-size (PRE_WARMED_QUEUE_SIZE) {}: at most 200",
            args.pool_size
        );
    }
    config.control.pool_size = args.pool_size;
    config.secret_key = args.secret_key.clone().filter(|k| !k.is_empty());
    if !(1..=3600).contains(&args.workspace_sync_interval) {
        anyhow::bail!(
            "invalid --workspace-sync-interval {}: give 1 to 3600 seconds",
            args.workspace_sync_interval
        );
    }
    config.control.workspace_sync_interval =
        std::time::Duration::from_secs(args.workspace_sync_interval);
    let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    config.control.s3 = racer_control::s3::S3Config {
        endpoint: given(&args.s3_endpoint),
        region: given(&args.s3_region),
        access_key: given(&args.s3_access_key),
        secret_key: given(&args.s3_secret_key),
    };
    let limit_mb = config.control.default_memory_mb;
    config.control.default_request_cpus = match args.request_cpus {
        None => 0.1_f64.min(args.container_cpus),
        Some(c) if c > 0.0 && c <= args.container_cpus => c,
        Some(c) => anyhow::bail!(
            "invalid --request-cpus {c}: more than 0 and at most --container-cpus ({})",
            args.container_cpus
        ),
    };
    config.control.default_request_memory_mb = match args.request_memory.as_deref() {
        None => 128.min(limit_mb),
        Some(m) => match racer_core::spec::memory_mib(m) {
            Some(mb) if mb >= 1 && mb <= limit_mb => mb,
            _ => anyhow::bail!(
                "invalid --request-memory {m:?}: a size of at least 1Mi and at most --container-memory ({limit_mb}Mi), e.g. 128Mi"
            ),
        },
    };
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(racer_server::default_data_dir);
    let mut config = Config::new(data_dir.clone());
    config.api_addr = SocketAddr::new(args.bind, args.port);
    config.database_url = args.database_url.clone().filter(|u| !u.is_empty());
    config.proxy_addr = SocketAddr::new(args.proxy_bind, args.proxy_port);
    config.domain = args.domain.clone();
    config.balance = args.balance;
    config.proxy_threads = args.proxy_threads;
    config.replica_concurrency = args.replica_concurrency;
    config.max_connections_per_source = args.proxy_max_connections_per_source;
    apply_control(&args, &mut config)?;
    config.control.worker = !args.no_worker;
    apply_tls(&args, &mut config)?;
    if let Some(t) = args.admin_token.filter(|t| !t.is_empty()) {
        racer_core::settings::check_admin_token(&t)
            .map_err(|e| anyhow::anyhow!("the admin token (--admin-token, API_KEY) {e}"))?;
        config.admin_token = Some(t);
    }
    if let Some(s) = args.jwt_secret.filter(|s| !s.is_empty()) {
        racer_core::settings::check_jwt_secret(&s)
            .map_err(|e| anyhow::anyhow!("the JWT secret (--jwt-secret, JWT_SECRET_KEY) {e}"))?;
        config.jwt_secret = Some(s);
    }
    let ttl = racer_core::auth::parse_lifetime(&args.session_ttl)
        .map_err(|e| anyhow::anyhow!("invalid --session-ttl: {e}"))?;
    config.session_ttl = std::time::Duration::from_secs(ttl.unsigned_abs());

    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;

    let shutdown = CancellationToken::new();
    let running = racer_server::start(config, shutdown.clone()).await?;
    let api_url = format!("http://{}", running.api_addr);
    let file = ServerFile {
        pid: std::process::id(),
        api_url: api_url.clone(),
        store: running.store_kind.to_owned(),
        started_at: chrono::Utc::now(),
        log_file: args.log_file.map(|p| p.display().to_string()),
        proxy_url: Some(format!("http://{}", running.proxy_addr)),
        tls_url: running.tls_addr.map(|a| format!("https://{a}")),
    };
    let server_file = data_dir.join(SERVER_FILE);
    std::fs::write(&server_file, serde_json::to_vec_pretty(&file)?)
        .with_context(|| format!("cannot write {}", server_file.display()))?;

    println!("racer server ready (pid {})", file.pid);
    println!("  API:         {api_url}");
    println!("  proxy:       http://{}", running.proxy_addr);
    if let Some(tls) = running.tls_addr {
        let from = match (&args.tls_cert, &args.acme_directory) {
            (Some(c), Some(_)) => format!("ACME per app host, else {}", c.display()),
            (Some(c), None) => c.display().to_string(),
            (None, _) => "ACME per app host".to_string(),
        };
        println!("  proxy TLS:   https://{tls} (certificates: {from})");
    }
    println!("  data dir:    {}", data_dir.display());
    println!("  store:       {}", running.store_kind);
    println!("  cluster:     {}", args.cluster.as_str());
    if args.no_worker {
        println!("  worker:      off (--no-worker): `racerctl worker` builds and places");
    }
    match &running.token_path {
        Some(path) => println!(
            "  admin token: {}{}",
            path.display(),
            if running.token_created {
                " (created now, mode 0600)"
            } else {
                ""
            }
        ),
        None => println!("  admin token: the one the operator chose (API_KEY), not written"),
    }

    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
    running.wait().await;
    let _ = std::fs::remove_file(&server_file);
    tracing::info!("stopped");
    Ok(())
}
