//! The route table: app name → replicas that answer, with what the proxy knows of each replica
//! (in-flight requests, passive health, idle connections) and the app's traffic counters.
//! Rebuilt and swapped in atomically, never edited in place.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::metrics::{AppMetrics, TrafficSnapshot, LATENCY_BUCKETS};
use crate::upstream;

/// One replica that may receive traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Where it listens (its address on the engine's network).
    pub addr: SocketAddr,
    /// Requests it is sent at once (its release's `concurrency`): `None` for the proxy's
    /// [`Config::replica_concurrency`](crate::config::Config::replica_concurrency), 0 for no limit.
    pub concurrency: Option<u32>,
}

impl Backend {
    /// A replica at `addr` under the proxy's default concurrency limit.
    pub fn new(addr: SocketAddr) -> Backend {
        Backend {
            addr,
            concurrency: None,
        }
    }
}

/// What the proxy knows of one replica: in-flight requests, passive health.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Requests in flight.
    pub active: AtomicUsize,
    /// Requests sent.
    pub requests: AtomicU64,
    /// Consecutive 5xx answers or connection failures.
    pub(crate) failures: AtomicU32,
    /// Milliseconds since the proxy's epoch until which the replica is ejected.
    pub(crate) ejected_until: AtomicU64,
    /// Idle keep-alive connections to the replica.
    pub(crate) pool: Arc<upstream::Pool>,
}

/// The replicas of one app and its round-robin position.
#[derive(Debug, Default)]
pub(crate) struct AppRoute {
    pub(crate) backends: Vec<Backend>,
    pub(crate) stats: Vec<Arc<BackendStats>>,
    pub(crate) next: AtomicUsize,
    pub(crate) metrics: Arc<AppMetrics>,
}

/// The route table: app name → replicas that answer. Rebuilt, never edited in place.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub(crate) apps: HashMap<String, Arc<AppRoute>>,
}

/// A shared, atomically swapped route table.
#[derive(Debug, Default, Clone)]
pub struct Routes {
    pub(crate) table: Arc<ArcSwap<RouteTable>>,
}

impl Routes {
    /// Replaces one app's backends (an empty list: the app exists but nothing answers → 503).
    pub fn set(&self, app: &str, backends: Vec<Backend>) {
        let current = self.table.load();
        if current
            .apps
            .get(app)
            .is_some_and(|r| r.backends == backends)
        {
            return;
        }
        // Keep what is known of replicas that stay, and the app's counters.
        let previous = current.apps.get(app);
        let stats = backends
            .iter()
            .map(|b| {
                previous
                    .and_then(|p| {
                        p.backends
                            .iter()
                            .position(|x| x == b)
                            .map(|i| p.stats[i].clone())
                    })
                    .unwrap_or_default()
            })
            .collect();
        let metrics = previous.map(|p| p.metrics.clone()).unwrap_or_default();
        let mut apps = current.apps.clone();
        apps.insert(
            app.to_owned(),
            Arc::new(AppRoute {
                backends,
                stats,
                next: AtomicUsize::new(0),
                metrics,
            }),
        );
        self.table.store(Arc::new(RouteTable { apps }));
    }

    /// Traffic of every routed app.
    pub fn snapshot(&self, epoch: &Epoch) -> Vec<TrafficSnapshot> {
        let table = self.table.load();
        let now = epoch.now_ms();
        let mut out: Vec<TrafficSnapshot> = table
            .apps
            .iter()
            .map(|(name, r)| {
                let m = &r.metrics;
                TrafficSnapshot {
                    app: name.clone(),
                    by_class: std::array::from_fn(|i| m.by_class[i].load(Ordering::Relaxed)),
                    active: m.active.load(Ordering::Relaxed),
                    queued: m.queued.load(Ordering::Relaxed),
                    latency: std::array::from_fn(|i| m.latency[i].load(Ordering::Relaxed)),
                    latency_sum_seconds: m.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
                    replicas: r
                        .backends
                        .iter()
                        .zip(&r.stats)
                        .map(|(b, s)| {
                            (
                                b.addr,
                                s.requests.load(Ordering::Relaxed),
                                s.active.load(Ordering::Relaxed),
                                s.ejected_until.load(Ordering::Relaxed) > now,
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.app.cmp(&b.app));
        out
    }

    /// Keeps only the apps named (deleted apps disappear → 404).
    pub fn retain(&self, live: &[String]) {
        let current = self.table.load();
        let live: std::collections::HashSet<&str> = live.iter().map(String::as_str).collect();
        if current.apps.keys().all(|k| live.contains(k.as_str())) {
            return;
        }
        let apps = current
            .apps
            .iter()
            .filter(|(k, _)| live.contains(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.table.store(Arc::new(RouteTable { apps }));
    }

    /// An app's request count and latency histogram so far (for rates over an interval).
    pub fn counters(&self, app: &str) -> Option<(u64, [u64; LATENCY_BUCKETS])> {
        let table = self.table.load();
        let m = &table.apps.get(app)?.metrics;
        let total = m.by_class.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        Some((
            total,
            std::array::from_fn(|i| m.latency[i].load(Ordering::Relaxed)),
        ))
    }

    /// The backends of an app, if it is routed.
    pub fn backends(&self, app: &str) -> Option<Vec<Backend>> {
        self.table.load().apps.get(app).map(|r| r.backends.clone())
    }
}

/// The proxy's clock for ejection deadlines.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(Instant);

impl Default for Epoch {
    fn default() -> Epoch {
        Epoch(Instant::now())
    }
}

impl Epoch {
    pub(crate) fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}
