//! The route table: app name → replicas that answer, with what the proxy knows of each replica
//! (in-flight requests, passive health, idle connections) and the app's traffic counters; and
//! the claim table: claim id → the claim's ports and token digest. Rebuilt and swapped in
//! atomically, never edited in place.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::claims::{is_claim_id, is_port_name, Activity, ClaimError, ClaimRoute};
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

/// A shared, atomically swapped route table, and beside it the table of claims (warm pools:
/// [`Routes::set_claim`]).
#[derive(Debug, Default, Clone)]
pub struct Routes {
    pub(crate) table: Arc<ArcSwap<RouteTable>>,
    pub(crate) claims: Arc<ArcSwap<ClaimTable>>,
    /// Certificates by host and ACME's answers (see [`crate::Tls`]).
    pub(crate) tls: Arc<crate::tls::Tls>,
}

impl Routes {
    /// The proxy's TLS state: what the control plane orders certificates into.
    pub fn tls(&self) -> &Arc<crate::tls::Tls> {
        &self.tls
    }

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

/// The claim table: claim id → its ports and token digest. Rebuilt, never edited in place.
#[derive(Debug, Default)]
pub(crate) struct ClaimTable {
    pub(crate) claims: HashMap<String, Arc<ClaimEntry>>,
    /// Every port name of every claim: only a request whose first path segment is one of these
    /// is looked at as a claim's.
    pub(crate) port_names: HashSet<String>,
}

impl ClaimTable {
    fn new(claims: HashMap<String, Arc<ClaimEntry>>) -> ClaimTable {
        let port_names = claims
            .values()
            .flat_map(|c| c.ports.iter().map(|p| p.name.clone()))
            .collect();
        ClaimTable { claims, port_names }
    }
}

/// One claim in the table.
#[derive(Debug)]
pub(crate) struct ClaimEntry {
    pub(crate) token_sha256: [u8; 32],
    pub(crate) ports: Vec<ClaimPort>,
    /// When it was last used: kept when the claim is set again.
    pub(crate) activity: Arc<Activity>,
}

impl ClaimEntry {
    pub(crate) fn port(&self, name: &str) -> Option<&ClaimPort> {
        self.ports.iter().find(|p| p.name == name)
    }
}

/// One named port of a claim: a route with one backend, under no concurrency limit.
#[derive(Debug)]
pub(crate) struct ClaimPort {
    pub(crate) name: String,
    pub(crate) route: Arc<AppRoute>,
    /// What logs call it (`claim <id> port <name>`).
    pub(crate) label: String,
}

impl Routes {
    /// Routes a claim's ports (a claim already routed under the id is replaced; connections to
    /// ports that stay the same are kept, and so is when it was last seen). Refuses a claim id
    /// or port name that could not be told from other paths.
    pub fn set_claim(&self, claim: ClaimRoute) -> Result<(), ClaimError> {
        if !is_claim_id(&claim.claim) {
            return Err(ClaimError::BadClaimId(claim.claim));
        }
        let mut names = HashSet::new();
        for (name, _) in &claim.ports {
            if !is_port_name(name) {
                return Err(ClaimError::BadPortName(name.clone()));
            }
            if !names.insert(name.as_str()) {
                return Err(ClaimError::DuplicatePort(name.clone()));
            }
        }
        self.claims.rcu(|current| {
            let previous = current.claims.get(&claim.claim);
            if let Some(p) = previous {
                let same = p.token_sha256 == claim.token_sha256
                    && p.ports.len() == claim.ports.len()
                    && p.ports.iter().zip(&claim.ports).all(|(a, (name, addr))| {
                        a.name == *name && a.route.backends.first().map(|b| b.addr) == Some(*addr)
                    });
                if same {
                    return current.clone();
                }
            }
            let ports = claim
                .ports
                .iter()
                .map(|(name, addr)| {
                    let kept = previous.and_then(|p| {
                        p.port(name)
                            .filter(|x| x.route.backends.first().map(|b| b.addr) == Some(*addr))
                    });
                    ClaimPort {
                        name: name.clone(),
                        route: kept.map_or_else(|| claim_port_route(*addr), |k| k.route.clone()),
                        label: format!("claim {} port {name}", claim.claim),
                    }
                })
                .collect();
            let entry = ClaimEntry {
                token_sha256: claim.token_sha256,
                ports,
                activity: previous
                    .map_or_else(|| Arc::new(Activity::new()), |p| p.activity.clone()),
            };
            let mut claims = current.claims.clone();
            claims.insert(claim.claim.clone(), Arc::new(entry));
            Arc::new(ClaimTable::new(claims))
        });
        Ok(())
    }

    /// Stops routing a claim (released): its paths answer 404 from the next request on.
    /// Upgraded connections already open (WebSockets) are not cut.
    pub fn remove_claim(&self, claim: &str) {
        self.claims.rcu(|current| {
            if !current.claims.contains_key(claim) {
                return current.clone();
            }
            let mut claims = current.claims.clone();
            claims.remove(claim);
            Arc::new(ClaimTable::new(claims))
        });
    }

    /// Keeps only the claims named (the others are removed as by [`Routes::remove_claim`]).
    pub fn retain_claims(&self, live: &HashSet<String>) {
        self.claims.rcu(|current| {
            if current.claims.keys().all(|k| live.contains(k)) {
                return current.clone();
            }
            let claims = current
                .claims
                .iter()
                .filter(|(k, _)| live.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Arc::new(ClaimTable::new(claims))
        });
    }

    /// When a routed claim was last used: the start or end of its latest request that got
    /// through (a token checked), now while one of its requests or upgraded connections
    /// (WebSockets) is open, or when it was first set if it never was used. `None` for a claim
    /// not routed.
    pub fn claim_last_seen(&self, claim: &str) -> Option<Instant> {
        self.claims
            .load()
            .claims
            .get(claim)
            .map(|c| c.activity.last_seen())
    }
}

/// A route to one claim port: its only backend takes any number of requests at once.
fn claim_port_route(addr: SocketAddr) -> Arc<AppRoute> {
    Arc::new(AppRoute {
        backends: vec![Backend {
            addr,
            concurrency: Some(0),
        }],
        stats: vec![Arc::default()],
        ..AppRoute::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{token_digest, InUse};
    use std::collections::HashSet;
    use std::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn claim(id: &str, ports: &[(&str, u16)]) -> ClaimRoute {
        ClaimRoute {
            claim: id.into(),
            token_sha256: token_digest("secret"),
            ports: ports.iter().map(|(n, p)| ((*n).into(), addr(*p))).collect(),
        }
    }

    #[test]
    fn set_refuses_bad_claims_and_keeps_what_stays() {
        let routes = Routes::default();
        assert_eq!(
            routes.set_claim(claim("bad id!", &[])),
            Err(ClaimError::BadClaimId("bad id!".into()))
        );
        assert_eq!(
            routes.set_claim(claim("claim-0001", &[("apps", 1)])),
            Err(ClaimError::BadPortName("apps".into()))
        );
        assert_eq!(
            routes.set_claim(claim("claim-0001", &[("code", 1), ("code", 2)])),
            Err(ClaimError::DuplicatePort("code".into()))
        );
        assert!(routes.claims.load().claims.is_empty());

        routes
            .set_claim(claim("claim-0001", &[("code", 1), ("vnc", 2)]))
            .unwrap();
        let before = routes.claims.load_full();
        let code = before.claims["claim-0001"]
            .port("code")
            .unwrap()
            .route
            .clone();
        // The same claim again: nothing swapped.
        routes
            .set_claim(claim("claim-0001", &[("code", 1), ("vnc", 2)]))
            .unwrap();
        assert!(Arc::ptr_eq(&before, &routes.claims.load_full()));
        // vnc moves, code stays: code keeps its route (and its idle connections).
        routes
            .set_claim(claim("claim-0001", &[("code", 1), ("vnc", 3)]))
            .unwrap();
        let after = routes.claims.load();
        let entry = &after.claims["claim-0001"];
        assert!(Arc::ptr_eq(&code, &entry.port("code").unwrap().route));
        assert_eq!(entry.port("vnc").unwrap().route.backends[0].addr, addr(3));
        assert!(Arc::ptr_eq(
            &before.claims["claim-0001"].activity,
            &entry.activity
        ));
        assert_eq!(after.port_names.len(), 2);
    }

    #[test]
    fn remove_and_retain() {
        let routes = Routes::default();
        for id in ["claim-0001", "claim-0002", "claim-0003"] {
            routes.set_claim(claim(id, &[("code", 1)])).unwrap();
        }
        routes
            .set_claim(claim("claim-0004", &[("web", 1)]))
            .unwrap();
        routes.remove_claim("claim-0002");
        routes.remove_claim("never-there");
        assert!(routes.claim_last_seen("claim-0002").is_none());
        let live: HashSet<String> = ["claim-0001".to_owned()].into();
        routes.retain_claims(&live);
        let table = routes.claims.load();
        assert_eq!(table.claims.len(), 1);
        assert!(table.claims.contains_key("claim-0001"));
        assert_eq!(table.port_names, HashSet::from(["code".to_owned()]));
    }

    #[test]
    fn last_seen_moves_with_use_and_is_now_while_open() {
        let routes = Routes::default();
        let t0 = Instant::now();
        routes
            .set_claim(claim("claim-0001", &[("code", 1)]))
            .unwrap();
        let set_at = routes.claim_last_seen("claim-0001").unwrap();
        assert!(set_at >= t0, "first seen when set");
        std::thread::sleep(Duration::from_millis(20));
        let activity = routes.claims.load().claims["claim-0001"].activity.clone();
        let open = InUse::new(&activity);
        std::thread::sleep(Duration::from_millis(20));
        let while_open = routes.claim_last_seen("claim-0001").unwrap();
        assert!(while_open >= t0 + Duration::from_millis(40));
        drop(open);
        let closed = routes.claim_last_seen("claim-0001").unwrap();
        assert!(
            closed >= t0 + Duration::from_millis(40),
            "seen when it ended"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(routes.claim_last_seen("claim-0001").unwrap(), closed);
    }
}
