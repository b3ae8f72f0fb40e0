//! The window bookkeeping: each reading as a [`Sample`], and an app's [`History`] of the samples
//! a window needs plus when it last scaled (what the cooldown counts from).

use std::collections::VecDeque;
use std::time::Duration;

use super::Metric;

/// One reading of an app's load, taken at `at`.
///
/// `None` means "not reported" (no stats yet, no HTTP route, no memory limit); such a metric is
/// ignored for this sample. A value that is not a finite number counts as not reported.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// When the reading was taken, since the caller's epoch.
    pub at: Duration,
    /// How many replicas were running when it was taken (divides `rps`).
    pub replicas: u32,
    /// Average CPU per replica, percent of its limit (engine stats).
    pub cpu_pct: Option<f64>,
    /// Average memory per replica, percent of its limit (engine stats).
    pub memory_pct: Option<f64>,
    /// Requests per second to the whole app (proxy).
    pub rps: Option<f64>,
    /// p95 request latency in milliseconds (proxy).
    pub p95_ms: Option<f64>,
    /// Open connections to the app (proxy). The spec sets no target for it, so it never drives
    /// a decision; it is kept so the caller can put it in the event ([`History::latest`]).
    pub active_connections: Option<f64>,
}

impl Sample {
    /// The value of `metric` in the unit of its target: RPS divided by the replicas running then
    /// (at least one), the others as reported. `None` when not reported or not finite.
    #[inline]
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let v = match metric {
            Metric::Cpu => self.cpu_pct,
            Metric::Memory => self.memory_pct,
            Metric::Rps => self.rps.map(|rps| rps / f64::from(self.replicas.max(1))),
            Metric::P95 => self.p95_ms,
        }?;
        v.is_finite().then_some(v)
    }
}

/// The recent samples of one app and when it last scaled: plain data, bounded in size.
///
/// It keeps the samples of the last `window` plus the newest one before it (the value at the
/// window's start), and at most `capacity` samples in all; when samples come faster than that,
/// the oldest go first, which can only make [`decide`](super::decide) wait for data, never scale
/// wrongly.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub(super) window: Duration,
    pub(super) capacity: usize,
    pub(super) samples: VecDeque<Sample>,
    pub(super) last_decision: Option<Duration>,
}

impl History {
    /// How many samples [`History::new`] keeps at most: a ten-minute window at one sample per
    /// second, with room to spare.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// An empty history keeping what a policy with this `window` needs (use the policy's
    /// window: a longer policy window than the history's never has enough data).
    pub fn new(window: Duration) -> Self {
        Self::with_capacity(window, Self::DEFAULT_CAPACITY)
    }

    /// An empty history that keeps at most `capacity` samples (at least 2).
    pub fn with_capacity(window: Duration, capacity: usize) -> Self {
        History {
            window,
            capacity: capacity.max(2),
            samples: VecDeque::new(),
            last_decision: None,
        }
    }

    /// Adds a sample and forgets what no window ending now or later needs. Samples must come in
    /// time order: one older than the newest is ignored, one at the same time replaces it.
    pub fn record(&mut self, sample: Sample) {
        match self.samples.back_mut() {
            Some(last) if sample.at < last.at => return,
            Some(last) if sample.at == last.at => {
                *last = sample;
                return;
            }
            _ => self.samples.push_back(sample),
        }
        // `decide` is called with `now >= sample.at`, so its window starts at or after `cutoff`;
        // it needs the newest sample at or before the start, and everything after.
        let cutoff = sample.at.saturating_sub(self.window);
        while self.samples.get(1).is_some_and(|s| s.at <= cutoff) {
            self.samples.pop_front();
        }
        while self.samples.len() > self.capacity {
            self.samples.pop_front();
        }
    }

    /// Remembers that a scaling decision was applied at `at`; the cooldown counts from here.
    pub fn decided(&mut self, at: Duration) {
        self.last_decision = Some(at);
    }

    /// When the last scaling decision was applied, if any.
    pub fn last_decision(&self) -> Option<Duration> {
        self.last_decision
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = &Sample> + '_ {
        self.samples.iter()
    }

    /// The window this history keeps samples for.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// Records `sample` in `history`; the same as [`History::record`].
pub fn record(history: &mut History, sample: Sample) {
    history.record(sample);
}
