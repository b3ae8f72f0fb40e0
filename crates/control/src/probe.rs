//! Health checks, in their own loop, as a kubelet's prober runs apart from its sync loop: a
//! reconcile pass only reads what the checks found, so its cost does not grow with the checks
//! (a thousand replicas checked every second would otherwise be a thousand connects per pass).
//!
//! Each reconcile pass publishes what to check ([`Targets::set`]): every running replica of an
//! app with a release that is not draining, with its address and its release's check. This loop
//! checks each when due ([`racer_core::health::check_interval`]), every check its own task so a
//! slow one holds up no other, records the result with the thresholds applied in `ctx.health`,
//! and wakes the reconciler when a replica's health flips, which then changes the routes.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use racer_core::api::HealthCheck;
use racer_core::health;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Ctx;

/// One replica to check.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The app it runs, to wake its reconcile when its health flips.
    pub app: uuid::Uuid,
    /// The container's name, for the log.
    pub name: String,
    /// Where to probe: its address on the engine's network and the check's port.
    pub addr: SocketAddr,
    /// The check of the release it runs.
    pub check: HealthCheck,
    /// Creation time, seconds since the epoch (a young replica is checked more often).
    pub created: i64,
}

/// What the prober checks, by container id, as the last reconcile pass saw it.
#[derive(Debug, Default)]
pub struct Targets {
    map: Mutex<HashMap<String, Target>>,
    changed: Notify,
}

impl Targets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Target>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the targets; wakes the prober when they changed (a new replica is checked at
    /// once).
    pub fn set(&self, targets: HashMap<String, Target>) {
        let mut map = self.lock();
        if *map != targets {
            *map = targets;
            drop(map);
            self.changed.notify_one();
        }
    }

    /// How many replicas are being checked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is being checked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// At most this long between looks at the targets, whatever is due.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Runs the health checks until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: CancellationToken) {
    let mut checks: JoinSet<(String, bool)> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    loop {
        let next = launch_due(&ctx, &mut checks, &mut busy);
        tokio::select! {
            _ = shutdown.cancelled() => {
                checks.abort_all();
                return;
            }
            Some(done) = checks.join_next(), if !checks.is_empty() => {
                if let Ok((id, passed)) = done {
                    busy.remove(&id);
                    record(&ctx, &id, passed);
                }
            }
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = ctx.probes.changed.notified() => {}
        }
    }
}

/// Starts the checks that are due and not already running; returns when the next one is due.
fn launch_due(
    ctx: &Ctx,
    checks: &mut JoinSet<(String, bool)>,
    busy: &mut HashSet<String>,
) -> Instant {
    let now = Instant::now();
    let epoch_now = chrono::Utc::now().timestamp();
    let mut next = now + MAX_SLEEP;
    // Lock order: targets, then health (nothing else holds both).
    let targets = ctx.probes.lock();
    // A check that finished but was not recorded yet (its task is done) would be launched
    // again; `busy` prevents that.
    busy.retain(|id| targets.contains_key(id));
    for (id, t) in targets.iter() {
        if busy.contains(id) {
            continue;
        }
        let due = match ctx.health.last(id) {
            None => now,
            Some((state, at)) => {
                let age = Duration::from_secs(epoch_now.saturating_sub(t.created).max(0) as u64);
                at + health::check_interval(state.healthy, age, t.check.interval_seconds)
            }
        };
        if due <= now {
            busy.insert(id.clone());
            let (id, addr, check) = (id.clone(), t.addr, t.check.clone());
            checks.spawn(async move {
                let passed = probe(addr, &check).await;
                (id, passed)
            });
        } else {
            next = next.min(due);
        }
    }
    next
}

/// Applies one check's result; wakes the reconciler when the replica's health flipped.
fn record(ctx: &Ctx, id: &str, passed: bool) {
    ctx.metrics.health_checks.fetch_add(1, Ordering::Relaxed);
    if !passed {
        ctx.metrics
            .health_check_failures
            .fetch_add(1, Ordering::Relaxed);
    }
    let targets = ctx.probes.lock();
    // Gone since (stopped, draining, removed): nothing routes to it any more.
    let Some(t) = targets.get(id) else { return };
    let (previous, next) = ctx.health.observe(
        id,
        passed,
        t.check.success_threshold,
        t.check.failure_threshold,
    );
    if next.healthy != previous.unwrap_or_default().healthy {
        if previous.is_some() {
            tracing::info!(container = %t.name, healthy = next.healthy, "replica health changed");
        }
        ctx.reconcile_wake.app(t.app);
    }
}

/// Runs a health check once against `probe_addr`: HTTP GET of `check.path` (2xx/3xx passes) or
/// a TCP connect, within the check's timeout.
pub async fn probe(probe_addr: SocketAddr, check: &HealthCheck) -> bool {
    let timeout = Duration::from_secs(u64::from(check.timeout_seconds.max(1)));
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(probe_addr).await.ok()?;
        let Some(path) = &check.path else {
            return Some(());
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {probe_addr}\r\nUser-Agent: racer-health\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).await.ok()?;
        let head = std::str::from_utf8(&buf[..n]).ok()?;
        let code: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
        (200..400).contains(&code).then_some(())
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(())))
}
