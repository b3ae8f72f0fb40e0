//! What the dashboard's charts draw (issue 16): each app's proxied requests and latency, sampled
//! from the proxy's counters every [`EVERY`] and kept for the last [`KEEP`] samples (10 minutes),
//! in memory. Rates and p95 come from the difference of two samples.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racer_proxy::LATENCY_BUCKETS;
use tokio_util::sync::CancellationToken;

/// Time between samples.
pub(crate) const EVERY: Duration = Duration::from_secs(5);
/// Samples kept per app.
const KEEP: usize = 120;

struct Sample {
    at: i64,
    requests: u64,
    latency: [u64; LATENCY_BUCKETS],
}

/// The samples, by app.
#[derive(Default)]
pub(crate) struct History(Mutex<HashMap<String, VecDeque<Sample>>>);

/// One point of an app's traffic: when, requests per second, p95 in ms.
pub(crate) type Point = (i64, f64, Option<f64>);

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Sample>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, at: i64, snapshot: Vec<racer_proxy::TrafficSnapshot>) {
        let mut m = self.lock();
        let live: std::collections::HashSet<String> =
            snapshot.iter().map(|s| s.app.clone()).collect();
        m.retain(|app, _| live.contains(app));
        for s in snapshot {
            let q = m.entry(s.app).or_default();
            q.push_back(Sample {
                at,
                requests: s.by_class.iter().sum(),
                latency: s.latency,
            });
            while q.len() > KEEP {
                q.pop_front();
            }
        }
    }

    /// An app's requests per second and p95 between consecutive samples, oldest first.
    pub(crate) fn series(&self, app: &str) -> Vec<Point> {
        let m = self.lock();
        let Some(q) = m.get(app) else {
            return Vec::new();
        };
        q.iter()
            .zip(q.iter().skip(1))
            .map(|(a, b)| {
                let secs = (b.at - a.at).max(1) as f64;
                let rps = b.requests.saturating_sub(a.requests) as f64 / secs;
                (b.at, rps, racer_proxy::p95_ms(&a.latency, &b.latency))
            })
            .collect()
    }
}

/// Samples the proxy every [`EVERY`] until `shutdown`.
pub(crate) async fn run(
    proxy: Arc<racer_proxy::Proxy>,
    history: Arc<History>,
    shutdown: CancellationToken,
) {
    loop {
        history.record(chrono::Utc::now().timestamp(), proxy.snapshot());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(app: &str, requests: u64, fast: u64, slow: u64) -> racer_proxy::TrafficSnapshot {
        let mut latency = [0u64; LATENCY_BUCKETS];
        latency[0] = fast;
        latency[LATENCY_BUCKETS - 1] = slow;
        racer_proxy::TrafficSnapshot {
            app: app.into(),
            by_class: [0, requests, 0, 0, 0],
            active: 0,
            queued: 0,
            latency,
            latency_sum_seconds: 0.0,
            replicas: Vec::new(),
        }
    }

    #[test]
    fn rates_come_from_consecutive_samples_and_gone_apps_are_forgotten() {
        let h = History::default();
        h.record(100, vec![snap("web", 0, 0, 0), snap("old", 5, 5, 0)]);
        h.record(105, vec![snap("web", 50, 50, 0)]);
        h.record(110, vec![snap("web", 150, 100, 50)]);
        let s = h.series("web");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].0, s[0].1), (105, 10.0));
        assert_eq!((s[1].0, s[1].1), (110, 20.0));
        assert!(s[1].2.unwrap() > s[0].2.unwrap(), "{s:?}");
        assert!(
            h.series("old").is_empty(),
            "an app gone from the proxy is forgotten"
        );
    }
}
