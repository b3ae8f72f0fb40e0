//! Leadership of the control loops (issue 14). Several servers and workers may share one
//! database; each loop that acts on the engines takes a lease in the store, so exactly one
//! process acts at a time, and another takes over within the lease's TTL when its holder dies.
//!
//! - [`CONTROLLER`]: the reconciler's acting half (starting, stopping and removing replicas,
//!   placement and preemption, rollout verdicts, orphans, the image sweep). Servers and workers
//!   contend for it. Placement is one decision over every cluster and every app (preemption
//!   picks victims across apps), so it is one lease for all apps rather than one per app: two
//!   holders of different apps' leases could both place into the same free room.
//! - [`AUTOSCALER`]: scaling decisions. Only servers contend (they see the proxy's traffic).
//!
//! Who does not hold [`CONTROLLER`] still follows: it observes the engines, checks health and
//! routes its own proxy's traffic to the healthy replicas, so every server answers for every app.
//!
//! A holder renews every quarter of the TTL and counts itself the holder for three quarters of
//! it from the moment it asked, so it stops acting before anyone else may start.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use racer_store::Store;
use tokio_util::sync::CancellationToken;

/// The reconciler's lease.
pub const CONTROLLER: &str = "controller";
/// The autoscaler's lease.
pub const AUTOSCALER: &str = "autoscaler";

/// One lease as this process sees it.
#[derive(Debug, Default)]
pub struct Leader {
    /// Held until then (local clock); `None` when not held.
    until: Mutex<Option<Instant>>,
    /// The epoch of the current holding (0 when never held).
    epoch: AtomicI64,
}

impl Leader {
    /// Whether this process holds the lease now.
    pub fn held(&self) -> bool {
        self.lock().is_some_and(|u| Instant::now() < u)
    }

    /// The epoch of the last holding (0: never held).
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, until: Option<Instant>) {
        *self.lock() = until;
    }
}

/// The leases a process keeps.
#[derive(Debug, Default)]
pub struct Leases {
    /// [`CONTROLLER`].
    pub controller: Leader,
    /// [`AUTOSCALER`].
    pub autoscaler: Leader,
}

/// Keeps trying to take and renew lease `name` for `holder` until `shutdown`, publishing the
/// outcome in `leader`; calls `gained` with the epoch each time this process starts holding it,
/// and whether it changed hands in the store then (a takeover, or the first holder ever: a
/// restarted process with the same id renews its own). Gives it up on shutdown so that another
/// process takes over at once.
pub async fn keep(
    store: Store,
    name: &'static str,
    holder: String,
    ttl: Duration,
    leader: &Leader,
    shutdown: CancellationToken,
    gained: impl Fn(i64, bool),
) {
    let ttl = ttl.max(Duration::from_millis(400));
    let renew = ttl / 4;
    let mut was_held = false;
    loop {
        let asked = Instant::now();
        match store.leases().acquire(name, &holder, ttl).await {
            Ok(Some(got)) => {
                leader.set(Some(asked + ttl * 3 / 4));
                let epoch = got.epoch;
                let before = leader.epoch.swap(epoch, Ordering::Relaxed);
                if !was_held || before != epoch {
                    tracing::info!(lease = name, epoch, "took the lease: this process acts");
                    gained(epoch, got.taken);
                }
                was_held = true;
            }
            Ok(None) => {
                if was_held {
                    tracing::warn!(lease = name, "lost the lease to another process: following");
                }
                leader.set(None);
                was_held = false;
            }
            Err(e) => {
                // Kept until it runs out: a brief database hiccup does not stop the loops, and
                // nobody else can take it before then.
                tracing::warn!(lease = name, error = %e, "cannot renew the lease");
                if was_held && !leader.held() {
                    tracing::warn!(lease = name, "the lease ran out unrenewed: following");
                    was_held = false;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(renew) => {}
        }
    }
    leader.set(None);
    if was_held {
        if let Err(e) = store.leases().release(name, &holder).await {
            tracing::warn!(lease = name, error = %e, "cannot give the lease up; it lapses on its own");
        }
    }
}
