//! What the loops measure about themselves, kept in memory for `GET /metrics`: reconcile pass
//! durations, build durations and the autoscaler's decisions. Plain atomics and one small
//! histogram type; the server renders them in the Prometheus text format.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bucket upper bounds of every duration histogram here, in seconds: from a 1 ms reconcile pass
/// to a 10-minute build.
pub const DURATION_BUCKETS_S: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// A duration histogram over [`DURATION_BUCKETS_S`]: counts per bucket (plus one for larger)
/// and the sum, lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS_S.len() + 1],
    sum_us: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HistogramSnapshot {
    /// Cumulative counts: entry `i` counts observations ≤ `DURATION_BUCKETS_S[i]`; the last
    /// entry counts all (`+Inf`).
    pub cumulative: [u64; DURATION_BUCKETS_S.len() + 1],
    /// Sum of the observations, seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// How many observations.
    pub fn count(&self) -> u64 {
        self.cumulative[DURATION_BUCKETS_S.len()]
    }
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = DURATION_BUCKETS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(DURATION_BUCKETS_S.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The counts so far, cumulative as Prometheus wants them.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0; DURATION_BUCKETS_S.len() + 1];
        let mut total = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            cumulative[i] = total;
        }
        HistogramSnapshot {
            cumulative,
            sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// How a build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BuildResult {
    /// A release was recorded.
    Succeeded,
    /// The build (or recording its release) failed.
    Failed,
}

impl BuildResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildResult::Succeeded => "succeeded",
            BuildResult::Failed => "failed",
        }
    }
}

/// The loops' own measurements, shared by every loop and read by `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Duration of each reconcile pass (every app, then the orphans).
    pub reconcile_pass: Histogram,
    /// Reconcile passes that failed as a whole (not one app's failure).
    pub reconcile_errors: AtomicU64,
    /// Apps seen by the last reconcile pass.
    pub reconcile_apps: AtomicU64,
    /// Full lists of the install's containers (the first pass, resyncs, a broken event stream).
    pub observer_lists: AtomicU64,
    /// Single containers read again after an event or racer's own change.
    pub observer_reads: AtomicU64,
    /// Engine events about the install's containers that marked one stale.
    pub observer_events: AtomicU64,
    /// Health checks run.
    pub health_checks: AtomicU64,
    /// Health checks that failed.
    pub health_check_failures: AtomicU64,
    /// Replica starts the engine refused (each is retried after a back-off).
    pub replica_start_failures: AtomicU64,
    builds: Mutex<BTreeMap<(String, BuildResult), Arc<Histogram>>>,
    scaling: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    /// Records a finished build of `app`.
    pub fn build_finished(&self, app: &str, result: BuildResult, took: Duration) {
        let h = self
            .builds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((app.to_owned(), result))
            .or_default()
            .clone();
        h.observe(took);
    }

    /// Build durations by app and result, in app order.
    pub fn builds(&self) -> Vec<(String, BuildResult, HistogramSnapshot)> {
        self.builds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((app, r), h)| (app.clone(), *r, h.snapshot()))
            .collect()
    }

    /// Records an autoscaler decision that changed `app`'s replicas; `direction` is `out` or
    /// `in`.
    pub fn scaled(&self, app: &str, direction: &'static str) {
        *self
            .scaling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((app.to_owned(), direction))
            .or_default() += 1;
    }

    /// Autoscaler decisions by app and direction, in app order.
    pub fn scaling(&self) -> Vec<(String, &'static str, u64)> {
        self.scaling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((app, d), n)| (app.clone(), *d, *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_sum_adds_up() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500)); // ≤ 1 ms
        h.observe(Duration::from_millis(1)); // the bound itself counts in its bucket
        h.observe(Duration::from_millis(30)); // ≤ 50 ms
        h.observe(Duration::from_secs(3600)); // only +Inf
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 2);
        assert_eq!(s.cumulative[4], 2, "≤ 25 ms");
        assert_eq!(s.cumulative[5], 3, "≤ 50 ms");
        assert_eq!(s.cumulative[DURATION_BUCKETS_S.len() - 1], 3, "≤ 600 s");
        assert_eq!(s.count(), 4);
        assert!(
            (s.sum_seconds - 3600.0315).abs() < 1e-9,
            "{}",
            s.sum_seconds
        );
    }

    #[test]
    fn builds_and_decisions_are_kept_per_app() {
        let m = Metrics::default();
        m.build_finished("web", BuildResult::Succeeded, Duration::from_secs(2));
        m.build_finished("web", BuildResult::Succeeded, Duration::from_secs(4));
        m.build_finished("web", BuildResult::Failed, Duration::from_millis(10));
        let b = m.builds();
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].1, b[0].2.count()), (BuildResult::Succeeded, 2));
        assert_eq!((b[1].1, b[1].2.count()), (BuildResult::Failed, 1));
        m.scaled("web", "out");
        m.scaled("web", "out");
        m.scaled("web", "in");
        assert_eq!(
            m.scaling(),
            [("web".to_owned(), "in", 1), ("web".to_owned(), "out", 2)]
        );
    }
}
