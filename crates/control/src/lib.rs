//! racer's application services and control loops. The [`service`] layer is where every use case
//! lives (deploy, rerun, rollback, apply, scale, …): it records desired state and wakes a loop;
//! the loops compare it with what the engine runs (found by label) and take the smallest step
//! that closes the gap.
//!
//! - [`service`]: one function per use case, called by the API and the dashboard.
//! - [`builder`]: takes pending deployments off the durable queue, builds their images and
//!   records releases.
//! - [`reconcile`]: brings each app's containers to its current release and replica count,
//!   replaces dead ones, removes what racer labelled but no longer wants, and rolls a failed
//!   rollout back.
//! - [`observe`]: keeps what the engine runs in memory, from one list and the engine's events.
//! - [`probe`]: runs the replicas' health checks, apart from the reconcile passes.
//! - [`autoscale`]: changes an app's desired replicas when its policy says so.
//! - [`metrics`]: what the loops measure about themselves, for `GET /metrics`.
//! - [`swarm`]: the same for a Swarm cluster, where each app is one service.
//! - [`tracking`]: what the loops know about replicas between passes (health, drains).

pub mod acme;
pub mod autoscale;
pub mod builder;
pub mod cluster;
pub mod engines;
mod error;
pub mod lease;
pub mod metrics;
pub mod observe;
pub mod pools;
pub mod ports;
pub mod probe;
pub mod reconcile;
mod replica;
pub mod requeue;
pub mod s3;
pub mod schedule;
pub mod secrets;
pub mod service;
pub mod swarm;
pub mod tracking;
pub mod workspace;

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use racer_runtime::Runtime;
use racer_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use cluster::Cluster;
pub use error::{chain_of, Error};

/// What a reconcile says about the future, as in kube-runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// Look again after this long, even if nothing changes.
    pub requeue_after: Duration,
}

impl Action {
    /// Look again after `d`.
    pub fn requeue(d: Duration) -> Action {
        Action { requeue_after: d }
    }
}

/// Where apps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterKind {
    /// The local engine: one container per replica, published on 127.0.0.1.
    #[default]
    Local,
    /// The engine is a Swarm manager: one service per app, published through the routing mesh.
    Swarm,
}

impl ClusterKind {
    /// `local` or `swarm`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterKind::Local => "local",
            ClusterKind::Swarm => "swarm",
        }
    }
}

impl std::str::FromStr for ClusterKind {
    type Err = String;

    fn from_str(s: &str) -> Result<ClusterKind, String> {
        match s {
            "local" => Ok(ClusterKind::Local),
            "swarm" => Ok(ClusterKind::Swarm),
            other => Err(format!("unknown cluster {other:?}: want local or swarm")),
        }
    }
}

/// The default of [`Settings::lease_ttl`].
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

/// Settings of the loops.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Host ports replicas are published on, tried in order.
    pub host_ports: Vec<RangeInclusive<u16>>,
    /// Ports never given to replicas: racer's own (API, proxy), also when they run elsewhere.
    pub reserved_ports: Vec<u16>,
    /// Memory limit when a release sets none, MiB.
    pub default_memory_mb: u32,
    /// CPU limit when a release sets none, cores.
    pub default_cpus: f64,
    /// What a replica whose release sets no CPU is counted as asking for placement, cores.
    pub default_request_cpus: f64,
    /// What a replica whose release sets no memory is counted as asking for placement, MiB.
    pub default_request_memory_mb: u32,
    /// Base image of generated conda-project Dockerfiles when a deployment sets none.
    pub conda_base_image: String,
    /// How long new replicas get to answer before a rollout is declared failed.
    pub rollout_deadline: Duration,
    /// How long a replica taken out of the routes keeps running for its in-flight requests.
    pub drain: Duration,
    /// Seconds between SIGTERM and SIGKILL when racer stops a replica.
    pub stop_grace_secs: i32,
    /// The periodic resync of the reconciler.
    pub resync: Duration,
    /// How often the observed containers are listed in full (events keep them current between).
    pub observer_resync: Duration,
    /// Builds that may run at once (never two of one app).
    pub max_parallel_builds: usize,
    /// Where apps run: local containers, or Swarm services.
    pub cluster: ClusterKind,
    /// Where the proxy answers: each replica gets its app's URL as `RACER_APP_URL`.
    pub app_urls: Option<service::ProxyUrls>,
    /// This server's id as a builder: kept across its restarts (the server keeps it in its data
    /// directory), different for every server on one database.
    pub builder_id: String,
    /// Runs the worker's share: builds, and contends for the controller's lease (placement and
    /// every change to the engines). A server without it (`--no-worker`) only follows: it
    /// observes, checks health and routes.
    pub worker: bool,
    /// Contends for the autoscaler's lease (servers: they see the proxy's traffic).
    pub autoscaler: bool,
    /// How long a loop's lease lasts unrenewed: another server or worker takes over within it
    /// when its holder dies. A build's lease is three of it.
    pub lease_ttl: Duration,
    /// What this process is, in events and logs: `server` or `worker`.
    pub role: &'static str,
    /// The key app secrets are sealed with; `None`: secrets cannot be set.
    pub secret_key: Option<secrets::SecretKey>,
    /// Where claims' workspaces are stored (S3-compatible), and its credentials.
    pub s3: s3::S3Config,
    /// How often a claim's workspace syncs.
    pub workspace_sync_interval: Duration,
    /// Default size of a warm pool (`PRE_WARMED_QUEUE_SIZE`).
    pub pool_size: u32,
    /// No new pool container while host memory in use is above this, percent
    /// (`MAX_MEMORY_PERCENT`).
    pub max_memory_percent: f64,
    /// Certificates for every app host by ACME (servers only: their proxy answers the
    /// challenges); `None`: off.
    pub acme: Option<acme::AcmeSettings>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            host_ports: vec![8000..=8999, 9000..=9999],
            reserved_ports: vec![8001, 8080],
            default_memory_mb: 512,
            default_cpus: 1.0,
            default_request_cpus: 0.1,
            default_request_memory_mb: 128,
            conda_base_image: racer_build::dockerfile::DEFAULT_BASE_IMAGE.to_owned(),
            rollout_deadline: Duration::from_secs(60),
            drain: Duration::from_secs(2),
            stop_grace_secs: 10,
            resync: Duration::from_secs(1),
            observer_resync: observe::FULL_RESYNC,
            max_parallel_builds: 2,
            cluster: ClusterKind::Local,
            app_urls: None,
            builder_id: uuid::Uuid::new_v4().to_string(),
            worker: true,
            autoscaler: true,
            lease_ttl: DEFAULT_LEASE_TTL,
            role: "server",
            secret_key: None,
            s3: Default::default(),
            workspace_sync_interval: Duration::from_secs(30),
            pool_size: 2,
            max_memory_percent: 90.0,
            acme: None,
        }
    }
}

/// What every loop shares.
#[derive(Clone)]
pub struct Ctx {
    /// Desired state.
    pub store: Store,
    /// The engine.
    pub runtime: Runtime,
    /// The data directory (uploads, build workspaces).
    pub data_dir: PathBuf,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Wakes the builder.
    pub build_wake: Arc<Notify>,
    /// Wakes the reconciler, for one app or all.
    pub reconcile_wake: Arc<tracking::Wakes>,
    /// The proxy's route table, rebuilt from the replicas that answer.
    pub routes: racer_proxy::Routes,
    /// Replicas taken out of the routes and waiting out their drain time.
    pub draining: Arc<tracking::Drains>,
    /// Health of each replica (thresholds applied) and when it was last checked.
    pub health: Arc<tracking::Health>,
    /// The loops' own measurements (reconcile passes, builds, scaling decisions).
    pub metrics: Arc<metrics::Metrics>,
    /// The install's containers as last seen (local cluster), kept current from engine events.
    pub observer: Arc<observe::Observer>,
    /// What the health checker checks, as the last reconcile pass published it.
    pub probes: Arc<probe::Targets>,
    /// Drained replicas being stopped and removed in the background.
    pub retiring: Arc<tracking::Retiring>,
    /// Background work the loops start (retiring a drained replica): shutdown waits for it.
    pub tasks: tokio_util::task::TaskTracker,
    /// The engines of the other clusters, and every cluster's record and capacity.
    pub engines: Arc<engines::Engines>,
    /// Replicas chosen as preemption victims.
    pub preempted: Arc<tracking::Preempted>,
    /// Why replicas the scheduler could not place wait, by app.
    pub waiting: Arc<tracking::Waiting>,
    /// The loops' leases, as this process holds them.
    pub leases: Arc<lease::Leases>,
    /// Wakes the pool maintainer.
    pub pools_wake: Arc<Notify>,
    /// Why pools are held below their size.
    pub pool_guard: Arc<pools::Guard>,
    /// When each claim's workspace syncs next.
    pub workspace_sync: Arc<workspace::Schedule>,
    /// Credentials claims brought for their workspaces (memory only).
    pub claim_credentials: Arc<workspace::ClaimCredentials>,
}

/// Starts every loop of the control plane for the cluster kind the settings name: the
/// cluster's helpers, the reconcile runner, the autoscaler and the builder.
pub fn start(ctx: Ctx, shutdown: CancellationToken, tracker: &TaskTracker) {
    match ctx.settings.cluster {
        ClusterKind::Local => start_on(reconcile::LocalEngine, ctx, shutdown, tracker),
        ClusterKind::Swarm => start_on(swarm::SwarmCluster, ctx, shutdown, tracker),
    }
}

fn start_on<C: cluster::Cluster>(
    cluster: C,
    ctx: Ctx,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    tracing::info!(
        cluster = cluster.name(),
        worker = ctx.settings.worker,
        "starting the control loops"
    );
    cluster.spawn_helpers(&ctx, &shutdown, tracker);
    if ctx.settings.autoscaler {
        tracker.spawn(keep_lease(ctx.clone(), lease::AUTOSCALER, shutdown.clone()));
        tracker.spawn(crate::autoscale::run(ctx.clone(), shutdown.clone()));
    }
    if ctx.settings.worker {
        tracker.spawn(keep_lease(ctx.clone(), lease::CONTROLLER, shutdown.clone()));
        tracker.spawn(crate::requeue::run(ctx.clone(), shutdown.clone()));
        tracker.spawn(crate::builder::run(
            ctx.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    tracker.spawn(crate::pools::run(ctx.clone(), shutdown.clone()));
    if let Some(acme) = ctx.settings.acme.clone() {
        tracker.spawn(crate::acme::run(ctx.clone(), acme, shutdown.clone()));
    }
    tracker.spawn(crate::cluster::run(cluster, ctx, shutdown));
}

/// Keeps lease `name` for this process (see [`lease`]): taking it is an event, and the
/// controller's wakes every app (the new holder looks at everything at once).
async fn keep_lease(ctx: Ctx, name: &'static str, shutdown: CancellationToken) {
    let leader = match name {
        lease::CONTROLLER => &ctx.leases.controller,
        _ => &ctx.leases.autoscaler,
    };
    let holder = ctx.settings.builder_id.clone();
    lease::keep(
        ctx.store.clone(),
        name,
        holder.clone(),
        ctx.settings.lease_ttl,
        leader,
        shutdown,
        |epoch, taken| {
            if name == lease::CONTROLLER {
                ctx.reconcile_wake.all();
            }
            // The audit log records takeovers: not the first holder, not a restart's renewal.
            if !taken || epoch <= 1 {
                return;
            }
            let event = racer_store::NewEvent {
                actor: "racer".into(),
                kind: "lease.taken".into(),
                app_id: None,
                app_name: None,
                message: format!(
                    "{} ({holder}) took the {name} lease over (epoch {epoch}): its holder stopped renewing it",
                    ctx.settings.role
                ),
                org: None,
            };
            let store = ctx.store.clone();
            ctx.tasks.spawn(async move {
                if let Err(e) = store.events().append(&event).await {
                    tracing::warn!(error = %e, "cannot record the lease event");
                }
            });
        },
    )
    .await;
}

impl Ctx {
    /// The loops' shared state, fresh: `routes` is the table the proxy serves (a worker's is
    /// its own, served by nobody).
    pub fn new(
        store: Store,
        runtime: Runtime,
        data_dir: PathBuf,
        settings: Settings,
        routes: racer_proxy::Routes,
        tasks: TaskTracker,
    ) -> Ctx {
        Ctx {
            store,
            runtime,
            data_dir,
            settings: Arc::new(settings),
            build_wake: Default::default(),
            reconcile_wake: Default::default(),
            routes,
            draining: Default::default(),
            health: Default::default(),
            metrics: Default::default(),
            observer: Default::default(),
            probes: Default::default(),
            retiring: Default::default(),
            tasks,
            engines: Default::default(),
            preempted: Default::default(),
            waiting: Default::default(),
            leases: Default::default(),
            pools_wake: Default::default(),
            pool_guard: Default::default(),
            workspace_sync: Default::default(),
            claim_credentials: Default::default(),
        }
    }

    /// Where uploaded build contexts are kept until their deployment finishes.
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }

    /// Where builds unpack and assemble their contexts.
    pub fn builds_dir(&self) -> PathBuf {
        self.data_dir.join("builds")
    }
}
