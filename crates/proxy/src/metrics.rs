//! Per-app traffic counters (by status class, in flight, queued, a latency histogram), their
//! point-in-time copy, and the p95 read from two histogram readings.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::StatusCode;

/// Latency histogram bucket bounds, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/// Buckets of the latency histogram: one per bound of [`LATENCY_BUCKETS_MS`], then the overflow
/// bucket.
pub const LATENCY_BUCKETS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// Per-app traffic counters, kept in memory for the autoscaler and `/metrics`.
#[derive(Debug, Default)]
pub struct AppMetrics {
    /// Requests answered, by status class: index 0 = 1xx ... 4 = 5xx.
    pub by_class: [AtomicU64; 5],
    /// Requests in flight.
    pub active: AtomicUsize,
    /// Requests waiting for a replica under its concurrency limit.
    pub queued: AtomicUsize,
    /// Latency histogram: counts per bucket of [`LATENCY_BUCKETS_MS`], plus one for larger.
    pub latency: [AtomicU64; LATENCY_BUCKETS],
    /// Sum of latencies, microseconds.
    pub latency_sum_us: AtomicU64,
}

impl AppMetrics {
    /// Counts one answered request: its status class, and `elapsed` in the latency histogram.
    pub(crate) fn record(&self, status: StatusCode, elapsed: Duration) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let us = elapsed.as_micros() as u64;
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| us <= b * 1000)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// A point-in-time copy of one app's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSnapshot {
    /// The app.
    pub app: String,
    /// Requests by status class (1xx..5xx).
    pub by_class: [u64; 5],
    /// In flight (the queued ones included).
    pub active: usize,
    /// Waiting for a replica under its concurrency limit.
    pub queued: usize,
    /// Histogram counts (not cumulative) per bucket, then the overflow bucket.
    pub latency: [u64; LATENCY_BUCKETS],
    /// Sum of latencies in seconds.
    pub latency_sum_seconds: f64,
    /// Per replica: address, requests, in flight, ejected now.
    pub replicas: Vec<(SocketAddr, u64, usize, bool)>,
}

/// The p95 latency in milliseconds of the requests between two histogram readings: the upper
/// bound of the bucket that holds the 95th percentile (the overflow bucket counts as twice the
/// largest bound).
pub fn p95_ms(before: &[u64; LATENCY_BUCKETS], after: &[u64; LATENCY_BUCKETS]) -> Option<f64> {
    let delta: Vec<u64> = after
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let total: u64 = delta.iter().sum();
    if total == 0 {
        return None;
    }
    let need = (total as f64 * 0.95).ceil() as u64;
    let mut seen = 0;
    for (i, n) in delta.iter().enumerate() {
        seen += n;
        if seen >= need {
            let bound = LATENCY_BUCKETS_MS
                .get(i)
                .copied()
                .unwrap_or(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1] * 2);
            return Some(bound as f64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_the_bucket_holding_the_95th_percentile() {
        let before = [0u64; LATENCY_BUCKETS];
        let mut after = [0u64; LATENCY_BUCKETS];
        after[0] = 90; // <= 1 ms
        after[3] = 10; // <= 10 ms
        assert_eq!(super::p95_ms(&before, &after), Some(10.0));
        after[0] = 100;
        after[3] = 0;
        assert_eq!(super::p95_ms(&before, &after), Some(1.0));
        assert_eq!(super::p95_ms(&after, &after), None);
    }
}
