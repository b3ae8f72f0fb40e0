//! The racer server: the HTTP API and every loop, started by one call, [`start`].
//!
//! The binary (`racer-server`, which `racerctl server start` runs) owns signals, the pidfile and
//! the exit code; this library owns the tasks. Tests start the same server in-process.

mod aliases;
mod api;
mod apps;
pub mod auth;
mod clusters;
mod containers;
mod deployments;
mod error;
mod events;
mod extract;
mod guard;
mod history;
mod metrics;
mod openapi;
mod pools;
mod secrets;
mod state;
mod swarm;
mod ui;
mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use racer_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer;

pub use error::{ApiError, Error};
pub use racer_control::service::swarm::{swarm_command, SwarmCommand};
pub use state::{ServerFile, SERVER_FILE, TOKEN_FILE};

use state::{AppState, Shared};

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the API listens. Port 0 picks a free port (tests).
    pub api_addr: SocketAddr,
    /// The data directory: SQLite file, admin token, server file.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; `None` for the SQLite file in the data dir.
    pub database_url: Option<String>,
    /// How long graceful shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Settings of the control loops (host ports, limits, deadlines).
    pub control: racer_control::Settings,
    /// Where the proxy listens. Port 0 picks a free port (tests).
    pub proxy_addr: SocketAddr,
    /// Apps answer at `<app>.<domain>`.
    pub domain: String,
    /// How the proxy picks a replica.
    pub balance: racer_proxy::Balance,
    /// How long a login session (`racer login`) lasts.
    pub session_ttl: Duration,
    /// Threads serving the proxy, each with its own event loop (0: one per core).
    pub proxy_threads: usize,
    /// Requests in flight to one replica at most (0: no limit).
    pub replica_concurrency: usize,
    /// Open proxy connections one client address may hold (0: no limit).
    pub max_connections_per_source: usize,
    /// An admin token the operator chose (`API_KEY`): used instead of the generated
    /// `admin.token` file, kept only as a digest, never written.
    pub admin_token: Option<String>,
    /// A JWT secret the operator chose (`JWT_SECRET_KEY`) instead of the generated `jwt.secret`
    /// file: servers on one database with the same secret accept each other's sessions.
    pub jwt_secret: Option<String>,
    /// The key app secrets are sealed with, base64 of 32 bytes (`RACER_SECRET_KEY`); `None`: the
    /// data directory's `secret.key`, made if missing.
    pub secret_key: Option<String>,
    /// HTTPS at the proxy; `None`: plain HTTP only.
    pub tls: Option<TlsConfig>,
}

/// HTTPS at the proxy: where it listens and where its certificates come from (files, or ACME
/// when [`racer_control::Settings::acme`] is set; both may be: ACME's per host, the files' for
/// any other name).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Where HTTPS listens. Port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// A certificate chain and key (PEM), reloaded when either file changes.
    pub files: Option<(PathBuf, PathBuf)>,
    /// Plain HTTP is redirected to HTTPS (308), ACME challenges excepted.
    pub redirect: bool,
    /// `Strict-Transport-Security: max-age=` on HTTPS answers; 0: not sent.
    pub hsts_max_age: u64,
}

impl Config {
    /// The embedded defaults: API on 127.0.0.1:8001, SQLite in `data_dir`.
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8001)),
            data_dir,
            database_url: None,
            drain_timeout: Duration::from_secs(30),
            control: racer_control::Settings::default(),
            proxy_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            domain: "localhost".into(),
            balance: racer_proxy::Balance::RoundRobin,
            session_ttl: Duration::from_secs(3600),
            proxy_threads: 0,
            replica_concurrency: racer_proxy::DEFAULT_REPLICA_CONCURRENCY,
            max_connections_per_source: racer_proxy::DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
            admin_token: None,
            jwt_secret: None,
            secret_key: None,
            tls: None,
        }
    }
}

/// A started server.
pub struct Running {
    /// The address the API actually listens on.
    pub api_addr: SocketAddr,
    /// The address the proxy actually listens on.
    pub proxy_addr: SocketAddr,
    /// Where the proxy's HTTPS listens, when TLS is on.
    pub tls_addr: Option<SocketAddr>,
    /// The admin token's file; `None` when the operator chose the token (`API_KEY`).
    pub token_path: Option<PathBuf>,
    /// Whether the admin token was created by this start.
    pub token_created: bool,
    /// `sqlite` or `postgres`.
    pub store_kind: &'static str,
    /// Every task the server started; wait on it after cancelling the token.
    pub tracker: TaskTracker,
    store: Store,
    _lock: state::DataDirLock,
}

impl Running {
    /// Waits until every task has finished (after the shutdown token was cancelled), then closes
    /// the store.
    pub async fn wait(self) {
        self.tracker.close();
        self.tracker.wait().await;
        self.store.close().await;
    }
}

/// Starts the server: takes the data directory, connects and migrates the store, binds the API
/// and serves until `shutdown` is cancelled. Returns once the server is ready.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, Error> {
    if !config.data_dir.exists() {
        // The data directory holds the admin token, the JWT secret and the database: only its
        // owner may look inside.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .map_err(|source| Error::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
    }
    let lock = state::DataDirLock::acquire(&config.data_dir)?;
    if config.control.cluster == racer_control::ClusterKind::Swarm {
        let s = racer_control::service::swarm::require_manager().await?;
        tracing::info!(node = ?s.node_id, nodes = ?s.nodes, "apps run as services of the swarm this engine manages");
    }
    let (token, token_created) = match &config.admin_token {
        Some(given) => {
            auth::forget_admin_token_file(&config.data_dir);
            (given.clone(), false)
        }
        None => auth::load_or_create_admin_token(&config.data_dir)?,
    };

    let store = match &config.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open_sqlite(&config.data_dir.join("racer.db")).await,
    }
    .map_err(|source| Error::Store { source })?;

    let listener = TcpListener::bind(config.api_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: config.api_addr,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.api_addr,
        source,
    })?;

    if let Err(source) = store.migrate().await {
        return Err(Error::Store { source });
    }
    let install = store
        .install_id()
        .await
        .map_err(|source| Error::Store { source })?;
    let proxy_listener =
        std::net::TcpListener::bind(config.proxy_addr).map_err(|source| Error::Bind {
            addr: config.proxy_addr,
            source,
        })?;
    let proxy_addr = proxy_listener.local_addr().map_err(|source| Error::Bind {
        addr: config.proxy_addr,
        source,
    })?;
    let tls_listener = match &config.tls {
        Some(t) => Some(
            std::net::TcpListener::bind(t.addr).map_err(|source| Error::Bind {
                addr: t.addr,
                source,
            })?,
        ),
        None => None,
    };
    let tls_addr = match &tls_listener {
        Some(l) => Some(l.local_addr().map_err(|source| Error::Bind {
            addr: proxy_addr,
            source,
        })?),
        None => None,
    };
    let tracker = TaskTracker::new();
    let routes = racer_proxy::Routes::default();
    if let Some((cert, key)) = config.tls.as_ref().and_then(|t| t.files.clone()) {
        let watch = routes
            .tls()
            .watch_files(cert, key, Duration::from_secs(2), shutdown.clone())
            .map_err(|e| Error::Tls {
                message: format!("{e} (--tls-cert/--tls-key)"),
            })?;
        tracker.spawn(watch);
    }
    let mut control_settings = config.control.clone();
    control_settings.reserved_ports.push(api_addr.port());
    control_settings.reserved_ports.push(proxy_addr.port());
    let proxy_url = format!("http://{proxy_addr}");
    let urls = racer_control::service::ProxyUrls {
        tls_port: tls_addr.map(|a| a.port()),
        redirect: config.tls.as_ref().is_some_and(|t| t.redirect),
        ..racer_control::service::ProxyUrls::plain(
            proxy_url.clone(),
            config.domain.clone(),
            proxy_addr.port(),
        )
    };
    control_settings.app_urls = Some(urls.clone());
    control_settings.builder_id = builder_id(&config.data_dir);
    control_settings.secret_key = Some(
        racer_control::secrets::SecretKey::load(&config.data_dir, config.secret_key.as_deref())
            .map_err(|message| Error::SecretKey { message })?,
    );
    let runtime = racer_runtime::Runtime::connect_local()
        .ok()
        .map(|r| r.for_install(&install));
    let control = runtime.map(|runtime| {
        racer_control::Ctx::new(
            store.clone(),
            runtime,
            config.data_dir.clone(),
            control_settings,
            routes.clone(),
            tracker.clone(),
        )
    });
    let proxy = racer_proxy::Proxy::new(
        routes,
        racer_proxy::Config {
            domain: config.domain.clone(),
            balance: config.balance,
            replica_concurrency: config.replica_concurrency,
            max_connections_per_source: config.max_connections_per_source,
            https_redirect: config
                .tls
                .as_ref()
                .filter(|t| t.redirect)
                .and(tls_addr)
                .map(|a| a.port()),
            hsts_max_age: config.tls.as_ref().map_or(0, |t| t.hsts_max_age),
            ..Default::default()
        },
    );
    let services = racer_control::service::Services::new(
        store.clone(),
        control.clone(),
        Some(proxy.clone()),
        urls,
    );
    let history = Arc::new(history::History::default());
    tracker.spawn(history::run(
        proxy.clone(),
        history.clone(),
        shutdown.clone(),
    ));
    let state = AppState(Arc::new(Shared {
        services,
        store: store.clone(),
        control: control.clone(),
        auth: auth::Auth::new(
            &config.data_dir,
            &token,
            config.jwt_secret.as_deref(),
            &install,
            config.session_ttl,
        )?,
        ready: std::sync::atomic::AtomicBool::new(false),
        started_at: chrono::Utc::now(),
        api_addr,
        data_dir: config.data_dir.clone(),
        proxy_url,
        traffic: proxy.clone(),
        history: history.clone(),
        facts: state::Facts {
            domain: config.domain.clone(),
            docker_host: std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()),
            container_memory_mb: config.control.default_memory_mb,
            container_cpus: config.control.default_cpus,
            admin_token_given: config.admin_token.is_some(),
        },
    }));
    let proxy_threads = match config.proxy_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    proxy
        .serve_threads_with_tls(
            proxy_listener,
            tls_listener,
            proxy_threads,
            shutdown.clone(),
            &tracker,
        )
        .map_err(|source| Error::Bind {
            addr: proxy_addr,
            source,
        })?;

    let router = api::router(state.clone());
    let serve_shutdown = shutdown.clone();
    let drain = config.drain_timeout;
    tracker.spawn(async move {
        // The seeds' routes are rewritten onto racer's before routing (see `aliases`).
        let app = tower::util::MapRequestLayer::new(aliases::rewrite_request).layer(router);
        let server = axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .with_graceful_shutdown(serve_shutdown.clone().cancelled_owned());
        // Graceful shutdown waits for in-flight requests, up to the drain timeout.
        tokio::select! {
            res = server => {
                if let Err(e) = res { tracing::error!(error = %e, "api server stopped"); }
            }
            _ = async { serve_shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
                tracing::warn!("in-flight requests did not finish within {drain:?}; closing");
            }
        }
    });

    // The loops start after migrations: they read and write the new schema.
    if let Some(ctx) = control {
        racer_control::start(ctx, shutdown.clone(), &tracker);
    }
    state.0.ready.store(true, Ordering::SeqCst);
    tracing::info!(%api_addr, store = store.backend().as_str(), "racer server ready");

    Ok(Running {
        api_addr,
        proxy_addr,
        tls_addr,
        token_path: config
            .admin_token
            .is_none()
            .then(|| config.data_dir.join(TOKEN_FILE)),
        token_created,
        store_kind: store.backend().as_str(),
        tracker,
        store,
        _lock: lock,
    })
}

/// A started worker (`racerctl worker`): the builder and the controller's loops, without the API
/// or the proxy.
pub struct RunningWorker {
    /// `sqlite` or `postgres`.
    pub store_kind: &'static str,
    /// This worker's id among the builders and lease holders.
    pub id: String,
    /// Every task the worker started; wait on it after cancelling the token.
    pub tracker: TaskTracker,
    store: Store,
}

impl RunningWorker {
    /// Waits until every task has finished (after the shutdown token was cancelled), then
    /// closes the store.
    pub async fn wait(self) {
        self.tracker.close();
        self.tracker.wait().await;
        self.store.close().await;
    }
}

/// Starts a worker on the store of `config` (its PostgreSQL URL, or the SQLite file of its data
/// directory, which a server on the same machine may be using: a worker takes no lock on the
/// directory, and reads uploaded build contexts from it). It builds queued deployments and
/// contends for the controller's lease like a server; it has a fresh id each start, so builds
/// it was running when it died go back to the queue once their lease is stale.
pub async fn start_worker(
    config: Config,
    shutdown: CancellationToken,
) -> Result<RunningWorker, Error> {
    if !config.data_dir.exists() {
        return Err(Error::DataDir {
            path: config.data_dir.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such directory: give the server's data directory (--data-dir), or start the server first",
            ),
        });
    }
    let store = match &config.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open_sqlite(&config.data_dir.join("racer.db")).await,
    }
    .map_err(|source| Error::Store { source })?;
    store
        .migrate()
        .await
        .map_err(|source| Error::Store { source })?;
    let install = store
        .install_id()
        .await
        .map_err(|source| Error::Store { source })?;
    let runtime = racer_runtime::Runtime::connect_local()
        .map_err(|e| Error::Engine {
            message: e.to_string(),
        })?
        .for_install(&install);
    let mut settings = config.control.clone();
    settings.secret_key = Some(
        racer_control::secrets::SecretKey::load(&config.data_dir, config.secret_key.as_deref())
            .map_err(|message| Error::SecretKey { message })?,
    );
    settings.worker = true;
    settings.autoscaler = false;
    settings.role = "worker";
    settings.builder_id = format!("worker-{}", uuid::Uuid::new_v4());
    let id = settings.builder_id.clone();
    let tracker = TaskTracker::new();
    let ctx = racer_control::Ctx::new(
        store.clone(),
        runtime,
        config.data_dir.clone(),
        settings,
        racer_proxy::Routes::default(),
        tracker.clone(),
    );
    racer_control::start(ctx, shutdown, &tracker);
    Ok(RunningWorker {
        store_kind: store.backend().as_str(),
        id,
        tracker,
        store,
    })
}

/// Backs up the store of `config` to `output`: a consistent SQLite snapshot (`VACUUM INTO`, safe
/// while a server runs), or `pg_dump --clean` of PostgreSQL. Returns `sqlite` or `postgres`.
pub async fn backup(config: &Config, output: &Path) -> Result<&'static str, Error> {
    if output.exists() {
        return Err(Error::Backup {
            message: format!("{} exists; give a new file", output.display()),
        });
    }
    match &config.database_url {
        None => {
            let db = config.data_dir.join("racer.db");
            if !db.exists() {
                return Err(Error::Backup {
                    message: format!("no store at {}: nothing to back up", db.display()),
                });
            }
            let store = Store::open_sqlite(&db)
                .await
                .map_err(|source| Error::Store { source })?;
            let done = store.snapshot_sqlite(output).await;
            store.close().await;
            done.map_err(|source| Error::Store { source })?;
            Ok("sqlite")
        }
        Some(url) => {
            let out = std::process::Command::new("pg_dump")
                .args(["--clean", "--if-exists", "--no-owner", "--file"])
                .arg(output)
                .arg(url)
                .output()
                .map_err(|e| Error::Backup {
                    message: format!("cannot run pg_dump (Debian package postgresql-client): {e}"),
                })?;
            if !out.status.success() {
                return Err(Error::Backup {
                    message: format!(
                        "pg_dump failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                });
            }
            Ok("postgres")
        }
    }
}

/// Restores a backup made by [`backup`] onto a stopped server's store: a SQLite snapshot replaces
/// the data directory's `racer.db` (the old one is kept beside it), a PostgreSQL dump is applied
/// with `psql`. The containers the restored install runs are adopted at the next start.
pub async fn restore(config: &Config, input: &Path) -> Result<PathBuf, Error> {
    let _lock = state::DataDirLock::acquire(&config.data_dir)?;
    let bytes = std::fs::read(input).map_err(|e| Error::Backup {
        message: format!("cannot read {}: {e}", input.display()),
    })?;
    match &config.database_url {
        None => {
            if !bytes.starts_with(b"SQLite format 3\0") {
                return Err(Error::Backup {
                    message: format!("{} is not a SQLite backup of racer", input.display()),
                });
            }
            let db = config.data_dir.join("racer.db");
            let kept = config.data_dir.join(format!(
                "racer.db.before-restore-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S")
            ));
            if db.exists() {
                std::fs::rename(&db, &kept).map_err(|e| Error::Backup {
                    message: format!("cannot move {} aside: {e}", db.display()),
                })?;
            }
            for side in ["racer.db-wal", "racer.db-shm"] {
                let _ = std::fs::remove_file(config.data_dir.join(side));
            }
            write_private(&db, &bytes).map_err(|e| Error::Backup {
                message: format!("cannot write {}: {e}", db.display()),
            })?;
            // The snapshot must open as a store.
            let store = Store::open_sqlite(&db)
                .await
                .map_err(|source| Error::Store { source })?;
            let ok = store.install_id().await;
            store.close().await;
            ok.map_err(|source| Error::Store { source })?;
            Ok(kept)
        }
        Some(url) => {
            let out = std::process::Command::new("psql")
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-f"])
                .arg(input)
                .arg(url)
                .output()
                .map_err(|e| Error::Backup {
                    message: format!("cannot run psql (Debian package postgresql-client): {e}"),
                })?;
            if !out.status.success() {
                return Err(Error::Backup {
                    message: format!(
                        "psql failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                });
            }
            Ok(PathBuf::new())
        }
    }
}

/// The default data directory: `$RACER_DATA_DIR`, else `~/.local/share/racer`.
pub fn default_data_dir() -> PathBuf {
    racer_core::data_dir_from(std::env::var_os("RACER_DATA_DIR"), std::env::var_os("HOME"))
}

/// Writes `contents` to `path` with mode 0600, atomically (temp file + rename).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// This server's id as a builder, kept in the data directory (`builder.id`) so that a restart
/// knows its own interrupted builds; a fresh one if the file cannot be read or written (its
/// interrupted builds are then taken over once their lease is stale).
fn builder_id(data_dir: &Path) -> String {
    let path = data_dir.join("builder.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if uuid::Uuid::parse_str(id).is_ok() {
            return id.to_owned();
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    if let Err(e) = std::fs::write(&path, &id) {
        tracing::warn!(path = %path.display(), error = %e, "cannot keep the builder id");
    }
    id
}
