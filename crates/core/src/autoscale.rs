//! The autoscaling decision, as a pure function over plain data (issue 6).
//!
//! The autoscaler loop in `control` reads CPU and memory from the engine's stats and RPS, p95
//! latency and active connections from the proxy, once per tick for each app whose
//! `scaling.policy.mode` is `auto`. Each reading becomes a [`Sample`], recorded in the app's
//! [`History`]; [`decide`] then says whether to scale. The loop applies a scaling decision,
//! records it with [`History::decided`] and writes it as an event carrying the decision's
//! [`Cause`]s. Time is a [`Duration`] since any fixed epoch the caller picks (a monotonic clock);
//! nothing here reads a clock.
//!
//! The rules:
//!
//! - A metric *stays above* when it is above `scale_out_pct`% of its target for the whole
//!   `window`: at the window's start (the newest sample at or before `now - window`, which must
//!   exist, else there is not enough data) and in every sample since. Any metric that stays above
//!   scales out.
//! - All metrics *stay below* when every reported metric is below `scale_in_pct`% of its target
//!   for the whole window in the same sense. Then the app scales in.
//! - One step at a time: out by exactly one replica, in by exactly one, never outside
//!   `[min_replicas, max_replicas]`.
//! - Never two scaling decisions within `cooldown` of each other.
//! - Hysteresis: [`Policy::validate`] demands `scale_in_pct < scale_out_pct`, so a metric hovering
//!   around one threshold cannot make the app flap.
//! - Metrics without a target are not considered; metrics that a sample does not report (`None`,
//!   or not a finite number) are ignored, and a policy without any target never scales.
//! - A replica count outside the bounds (the operator just changed them) is brought straight to
//!   the nearest bound with [`Decision::Clamp`], in one jump and regardless of the cooldown:
//!   the bounds are the spec, the cooldown only paces load-driven steps.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ErrorKind;

/// An app's autoscaling policy: `spec.scaling`, with durations and the `auto` mode resolved.
///
/// Percentages are plain numbers: `scale_out_pct: 100.0` means "at the target". Build it from the
/// spec and check it with [`Policy::validate`]; [`decide`] assumes a valid policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// `scaling.minReplicas`: never scale in below this.
    pub min_replicas: u32,
    /// `scaling.maxReplicas`: never scale out above this.
    pub max_replicas: u32,
    /// `scaling.policy.cooldownSeconds`: the least time between two scaling decisions.
    pub cooldown: Duration,
    /// `scaling.policy.windowSeconds`: how long a metric must stay above (or all below) a
    /// threshold before the app scales.
    pub window: Duration,
    /// `scaling.policy.scaleOutThresholdPct`: scale out when a metric stays above this percentage
    /// of its target.
    pub scale_out_pct: f64,
    /// `scaling.policy.scaleInThresholdPct`: scale in when every metric stays below this
    /// percentage of its target. Must be below `scale_out_pct`.
    pub scale_in_pct: f64,
    /// `scaling.policy.cpu.targetPct`: the target average CPU per replica, in percent of its
    /// limit.
    pub cpu_target_pct: Option<f64>,
    /// `scaling.policy.memory.targetPct`: the target average memory per replica, in percent of
    /// its limit.
    pub memory_target_pct: Option<f64>,
    /// `scaling.policy.http.targetRPSPerReplica`: the target requests per second per replica.
    pub rps_per_replica: Option<f64>,
    /// `scaling.policy.http.maxP95LatencyMs`: the target (highest wanted) p95 latency, in
    /// milliseconds.
    pub max_p95_ms: Option<f64>,
}

impl Policy {
    /// Checks the rules [`decide`] relies on: `1 <= maxReplicas`, `minReplicas <= maxReplicas`, a
    /// non-zero window, positive finite targets and scale-out threshold, and a scale-in threshold
    /// that is not negative and lies below the scale-out threshold (the hysteresis band).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_replicas == 0 {
            return Err(PolicyError::MaxZero);
        }
        if self.min_replicas > self.max_replicas {
            return Err(PolicyError::MinAboveMax {
                min: self.min_replicas,
                max: self.max_replicas,
            });
        }
        if self.window.is_zero() {
            return Err(PolicyError::ZeroWindow);
        }
        let positive = [
            (field::SCALE_OUT, Some(self.scale_out_pct)),
            (field::CPU, self.cpu_target_pct),
            (field::MEMORY, self.memory_target_pct),
            (field::RPS, self.rps_per_replica),
            (field::P95, self.max_p95_ms),
        ];
        for (field, value) in positive {
            if let Some(value) = value {
                if !(value.is_finite() && value > 0.0) {
                    return Err(PolicyError::NotPositive { field, value });
                }
            }
        }
        if !(self.scale_in_pct.is_finite() && self.scale_in_pct >= 0.0) {
            return Err(PolicyError::Negative {
                field: field::SCALE_IN,
                value: self.scale_in_pct,
            });
        }
        if self.scale_in_pct >= self.scale_out_pct {
            return Err(PolicyError::NoHysteresis {
                scale_in: self.scale_in_pct,
                scale_out: self.scale_out_pct,
            });
        }
        Ok(())
    }

    /// The target of `metric`, if the policy sets one.
    pub fn target(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Cpu => self.cpu_target_pct,
            Metric::Memory => self.memory_target_pct,
            Metric::Rps => self.rps_per_replica,
            Metric::P95 => self.max_p95_ms,
        }
    }
}

/// The spec paths of the policy's fields, as they appear in [`PolicyError::field`].
mod field {
    pub const MIN: &str = "spec.scaling.minReplicas";
    pub const MAX: &str = "spec.scaling.maxReplicas";
    pub const WINDOW: &str = "spec.scaling.policy.windowSeconds";
    pub const SCALE_OUT: &str = "spec.scaling.policy.scaleOutThresholdPct";
    pub const SCALE_IN: &str = "spec.scaling.policy.scaleInThresholdPct";
    pub const CPU: &str = "spec.scaling.policy.cpu.targetPct";
    pub const MEMORY: &str = "spec.scaling.policy.memory.targetPct";
    pub const RPS: &str = "spec.scaling.policy.http.targetRPSPerReplica";
    pub const P95: &str = "spec.scaling.policy.http.maxP95LatencyMs";
}

/// Why a [`Policy`] is not valid. [`PolicyError::field`] names the offending spec field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// `maxReplicas` is zero, so the app could never run.
    #[error("spec.scaling.maxReplicas must be at least 1")]
    MaxZero,
    /// `minReplicas` is larger than `maxReplicas`.
    #[error("spec.scaling.minReplicas ({min}) must not exceed spec.scaling.maxReplicas ({max})")]
    MinAboveMax {
        /// The configured minimum.
        min: u32,
        /// The configured maximum.
        max: u32,
    },
    /// `windowSeconds` is zero: a metric could not "stay" above anything.
    #[error("spec.scaling.policy.windowSeconds must be at least 1")]
    ZeroWindow,
    /// A target or the scale-out threshold is zero, negative or not a finite number.
    #[error("{field} must be a positive number, got {value}")]
    NotPositive {
        /// The spec path of the field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The scale-in threshold is negative or not a finite number.
    #[error("{field} must not be negative, got {value}")]
    Negative {
        /// The spec path of the field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The scale-in threshold is not below the scale-out threshold, which would allow flapping.
    #[error(
        "spec.scaling.policy.scaleInThresholdPct ({scale_in}) must be below \
         spec.scaling.policy.scaleOutThresholdPct ({scale_out})"
    )]
    NoHysteresis {
        /// The scale-in threshold given.
        scale_in: f64,
        /// The scale-out threshold given.
        scale_out: f64,
    },
}

impl PolicyError {
    /// The spec path of the offending field, for `ErrorBody.error.field`.
    pub fn field(&self) -> &'static str {
        match self {
            PolicyError::MaxZero => field::MAX,
            PolicyError::MinAboveMax { .. } => field::MIN,
            PolicyError::ZeroWindow => field::WINDOW,
            PolicyError::NotPositive { field, .. } | PolicyError::Negative { field, .. } => field,
            PolicyError::NoHysteresis { .. } => field::SCALE_IN,
        }
    }

    /// Always [`ErrorKind::Invalid`]: the spec is wrong.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// A metric the autoscaler compares with a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Average CPU per replica, percent of its limit; target `cpu.targetPct`.
    Cpu,
    /// Average memory per replica, percent of its limit; target `memory.targetPct`.
    Memory,
    /// Requests per second per replica; target `http.targetRPSPerReplica`.
    Rps,
    /// p95 latency in milliseconds; target `http.maxP95LatencyMs`.
    P95,
}

impl Metric {
    /// Every metric, in the order causes are listed.
    pub const ALL: [Metric; 4] = [Metric::Cpu, Metric::Memory, Metric::Rps, Metric::P95];

    /// The metric's name in events: `cpu`, `memory`, `rps` or `p95`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::Rps => "rps",
            Metric::P95 => "p95",
        }
    }
}

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
/// the oldest go first, which can only make [`decide`] wait for data, never scale wrongly.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    window: Duration,
    capacity: usize,
    samples: VecDeque<Sample>,
    last_decision: Option<Duration>,
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

/// A metric value behind a decision, for its event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cause {
    /// Which metric.
    pub metric: Metric,
    /// Its newest value, in the unit of its target (RPS per replica for `rps`).
    pub value: f64,
    /// Its target from the policy.
    pub target: f64,
    /// `value` as a percentage of `target`.
    pub pct_of_target: f64,
    /// The percentage of target that crossed the threshold over the whole window: the lowest one
    /// for a scale-out (all were above), the highest one for a scale-in (all were below).
    pub window_pct: f64,
}

/// Why [`decide`] holds.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldReason {
    /// The policy sets no target, so nothing can drive a decision.
    NoMetrics,
    /// The last scaling decision is less than `cooldown` ago.
    Cooldown {
        /// How long until the cooldown ends.
        remaining: Duration,
    },
    /// No sample is as old as the window (or no metric reported since then), so nothing can
    /// have stayed anywhere for the window yet.
    NotEnoughData,
    /// Load is between the thresholds, or not steadily on one side of them.
    Steady,
    /// Load stayed above the scale-out threshold, but the app runs `max_replicas` already.
    AtMax {
        /// The metrics that stayed above.
        because: Vec<Cause>,
    },
    /// Load stayed below the scale-in threshold, but the app runs `min_replicas` already.
    AtMin {
        /// The metrics that stayed below.
        because: Vec<Cause>,
    },
}

/// What the autoscaler should do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Keep the replica count.
    Hold {
        /// Why.
        reason: HoldReason,
    },
    /// Add one replica.
    ScaleOut {
        /// The new replica count: one more than now.
        to: u32,
        /// The metrics that stayed above the scale-out threshold for the window.
        because: Vec<Cause>,
    },
    /// Remove one replica.
    ScaleIn {
        /// The new replica count: one fewer than now.
        to: u32,
        /// Every reported metric; all stayed below the scale-in threshold for the window.
        because: Vec<Cause>,
    },
    /// The replica count is outside `[min_replicas, max_replicas]` (the bounds changed): go
    /// straight to the nearest bound, whatever the load and the cooldown.
    Clamp {
        /// The nearest bound.
        to: u32,
    },
}

impl Decision {
    /// The replica count to scale to, or `None` for [`Decision::Hold`].
    pub fn target(&self) -> Option<u32> {
        match self {
            Decision::Hold { .. } => None,
            Decision::ScaleOut { to, .. }
            | Decision::ScaleIn { to, .. }
            | Decision::Clamp { to } => Some(*to),
        }
    }

    fn hold(reason: HoldReason) -> Self {
        Decision::Hold { reason }
    }
}

/// One metric over the window: what [`decide`] needs to know about it, in the metric's unit.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// Reported in the sample at the window's start.
    at_start: bool,
    /// Reported at all in the window.
    reported: bool,
    /// Lowest value.
    min: f64,
    /// Highest value.
    max: f64,
    /// Newest value.
    latest: f64,
}

impl Span {
    const EMPTY: Span = Span {
        at_start: false,
        reported: false,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        latest: 0.0,
    };

    /// Scans the window for every metric in one pass: `parts` are the window's samples in order
    /// (a ring buffer's two halves), the first one at the window's start. Values are finite
    /// ([`Sample::value`]), so plain comparisons replace the NaN-aware `f64::min`; the four
    /// metrics are independent chains the CPU runs side by side.
    fn scan(parts: [&[Sample]; 2]) -> [Span; 4] {
        let mut spans = [Span::EMPTY; 4];
        if let Some(start) = parts.iter().find_map(|p| p.first()) {
            for (span, metric) in spans.iter_mut().zip(Metric::ALL) {
                span.at_start = start.value(metric).is_some();
            }
        }
        for sample in parts.into_iter().flatten() {
            for (span, metric) in spans.iter_mut().zip(Metric::ALL) {
                if let Some(v) = sample.value(metric) {
                    span.reported = true;
                    if v < span.min {
                        span.min = v;
                    }
                    if v > span.max {
                        span.max = v;
                    }
                    span.latest = v;
                }
            }
        }
        spans
    }

    fn cause(&self, metric: Metric, target: f64, window_value: f64) -> Cause {
        Cause {
            metric,
            value: self.latest,
            target,
            pct_of_target: self.latest / target * 100.0,
            window_pct: window_value / target * 100.0,
        }
    }
}

/// Decides whether an app running `replicas` replicas should scale now, from its policy and its
/// history (see the module docs for the rules). Pure: the same inputs give the same decision.
///
/// The caller applies a scaling decision (any but [`Decision::Hold`]) and then calls
/// [`History::decided`] with the same `now`.
pub fn decide(policy: &Policy, history: &History, now: Duration, replicas: u32) -> Decision {
    if replicas < policy.min_replicas {
        return Decision::Clamp {
            to: policy.min_replicas,
        };
    }
    if replicas > policy.max_replicas {
        return Decision::Clamp {
            to: policy.max_replicas,
        };
    }
    let targets = Metric::ALL.map(|m| policy.target(m));
    if targets.iter().all(Option::is_none) {
        return Decision::hold(HoldReason::NoMetrics);
    }
    if let Some(last) = history.last_decision {
        let since = now.saturating_sub(last);
        if since < policy.cooldown {
            return Decision::hold(HoldReason::Cooldown {
                remaining: policy.cooldown - since,
            });
        }
    }
    let Some(start) = now.checked_sub(policy.window) else {
        return Decision::hold(HoldReason::NotEnoughData);
    };
    let samples = &history.samples;
    // The sample at the window's start is the newest at or before `start`; samples after `now`
    // (a caller running behind) are not looked at.
    let first = match samples.partition_point(|s| s.at <= start) {
        0 => return Decision::hold(HoldReason::NotEnoughData),
        n => n - 1,
    };
    let end = samples.partition_point(|s| s.at <= now);

    // The window's samples, first..end, as (at most) two slices of the ring buffer.
    let (front, back) = samples.as_slices();
    let n = front.len();
    let spans = Span::scan([
        front.get(first.min(n)..end.min(n)).unwrap_or_default(),
        back.get(first.saturating_sub(n)..end.saturating_sub(n))
            .unwrap_or_default(),
    ]);

    let mut above = Vec::new();
    let mut below = Vec::new();
    let mut all_below = true;
    let mut known = false;
    for ((span, metric), target) in spans.into_iter().zip(Metric::ALL).zip(targets) {
        let Some(target) = target.filter(|_| span.reported) else {
            continue;
        };
        if !span.at_start {
            // Reported only since inside the window: it cannot have stayed anywhere yet, and
            // scaling in without knowing it would be a guess.
            all_below = false;
            continue;
        }
        known = true;
        if span.min / target * 100.0 > policy.scale_out_pct {
            above.push(span.cause(metric, target, span.min));
        }
        if span.max / target * 100.0 < policy.scale_in_pct {
            below.push(span.cause(metric, target, span.max));
        } else {
            all_below = false;
        }
    }

    if !above.is_empty() {
        return if replicas >= policy.max_replicas {
            Decision::hold(HoldReason::AtMax { because: above })
        } else {
            Decision::ScaleOut {
                to: replicas + 1,
                because: above,
            }
        };
    }
    if below.is_empty() {
        // Steady if some metric is known for the whole window; else nothing was reported at
        // all, or only by metrics that started reporting inside it.
        return Decision::hold(if known {
            HoldReason::Steady
        } else {
            HoldReason::NotEnoughData
        });
    }
    if !all_below {
        return Decision::hold(HoldReason::Steady);
    }
    if replicas <= policy.min_replicas {
        Decision::hold(HoldReason::AtMin { because: below })
    } else {
        Decision::ScaleIn {
            to: replicas - 1,
            because: below,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// 1..=10 replicas, 60 s cooldown, 30 s window, out above 100 %, in below 50 %, CPU target
    /// 70 %.
    fn policy() -> Policy {
        Policy {
            min_replicas: 1,
            max_replicas: 10,
            cooldown: secs(60),
            window: secs(30),
            scale_out_pct: 100.0,
            scale_in_pct: 50.0,
            cpu_target_pct: Some(70.0),
            memory_target_pct: None,
            rps_per_replica: None,
            max_p95_ms: None,
        }
    }

    fn cpu(at: u64, pct: f64) -> Sample {
        Sample {
            at: secs(at),
            replicas: 2,
            cpu_pct: Some(pct),
            ..Sample::default()
        }
    }

    /// A history of one sample per second from `from` to `to` inclusive.
    fn feed(p: &Policy, from: u64, to: u64, f: impl Fn(u64) -> Sample) -> History {
        let mut h = History::new(p.window);
        for t in from..=to {
            h.record(f(t));
        }
        h
    }

    fn reason(d: Decision) -> HoldReason {
        match d {
            Decision::Hold { reason } => reason,
            other => panic!("expected a hold, got {other:?}"),
        }
    }

    #[test]
    fn validate_accepts_a_sane_policy() {
        assert_eq!(policy().validate(), Ok(()));
        let p = Policy {
            min_replicas: 0,
            max_replicas: 1,
            scale_in_pct: 0.0,
            ..policy()
        };
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn validate_names_the_field() {
        let cases: Vec<(Policy, &str)> = vec![
            (
                Policy {
                    min_replicas: 0,
                    max_replicas: 0,
                    ..policy()
                },
                "spec.scaling.maxReplicas",
            ),
            (
                Policy {
                    min_replicas: 5,
                    max_replicas: 4,
                    ..policy()
                },
                "spec.scaling.minReplicas",
            ),
            (
                Policy {
                    window: Duration::ZERO,
                    ..policy()
                },
                "spec.scaling.policy.windowSeconds",
            ),
            (
                Policy {
                    scale_out_pct: 0.0,
                    ..policy()
                },
                "spec.scaling.policy.scaleOutThresholdPct",
            ),
            (
                Policy {
                    scale_in_pct: -1.0,
                    ..policy()
                },
                "spec.scaling.policy.scaleInThresholdPct",
            ),
            (
                Policy {
                    scale_in_pct: 100.0,
                    ..policy()
                },
                "spec.scaling.policy.scaleInThresholdPct",
            ),
            (
                Policy {
                    cpu_target_pct: Some(0.0),
                    ..policy()
                },
                "spec.scaling.policy.cpu.targetPct",
            ),
            (
                Policy {
                    memory_target_pct: Some(f64::NAN),
                    ..policy()
                },
                "spec.scaling.policy.memory.targetPct",
            ),
            (
                Policy {
                    rps_per_replica: Some(-3.0),
                    ..policy()
                },
                "spec.scaling.policy.http.targetRPSPerReplica",
            ),
            (
                Policy {
                    max_p95_ms: Some(f64::INFINITY),
                    ..policy()
                },
                "spec.scaling.policy.http.maxP95LatencyMs",
            ),
        ];
        for (p, want) in cases {
            let err = p.validate().expect_err(want);
            assert_eq!(err.field(), want, "{err}");
            assert_eq!(err.kind(), ErrorKind::Invalid);
            assert!(!err.to_string().ends_with('.'), "{err}");
        }
    }

    #[test]
    fn hysteresis_message() {
        let err = Policy {
            scale_in_pct: 120.0,
            ..policy()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.scaling.policy.scaleInThresholdPct (120) must be below \
             spec.scaling.policy.scaleOutThresholdPct (100)"
        );
    }

    #[test]
    fn holds_until_the_window_is_covered() {
        let p = policy();
        // samples from t=10: at t=39 the oldest is 29 s old, not 30
        let h = feed(&p, 10, 39, |t| cpu(t, 95.0));
        assert_eq!(
            reason(decide(&p, &h, secs(39), 2)),
            HoldReason::NotEnoughData
        );
        let h = feed(&p, 10, 40, |t| cpu(t, 95.0));
        assert!(matches!(
            decide(&p, &h, secs(40), 2),
            Decision::ScaleOut { to: 3, .. }
        ));
        // an empty history, and `now` earlier than one window after the epoch
        assert_eq!(
            reason(decide(&p, &History::new(p.window), secs(100), 2)),
            HoldReason::NotEnoughData
        );
        let h = feed(&p, 0, 20, |t| cpu(t, 95.0));
        assert_eq!(
            reason(decide(&p, &h, secs(20), 2)),
            HoldReason::NotEnoughData
        );
    }

    #[test]
    fn scales_out_when_a_metric_stays_above() {
        let p = policy();
        // 95 % CPU on a 70 % target is 135.7 % of target
        let h = feed(&p, 0, 30, |t| cpu(t, 95.0));
        let d = decide(&p, &h, secs(30), 4);
        let Decision::ScaleOut { to, because } = d else {
            panic!("expected a scale-out, got {d:?}");
        };
        assert_eq!(to, 5);
        assert_eq!(because.len(), 1);
        let c = because[0];
        assert_eq!(c.metric, Metric::Cpu);
        assert_eq!(c.value, 95.0);
        assert_eq!(c.target, 70.0);
        assert!((c.pct_of_target - 135.714).abs() < 0.01);
        assert!((c.window_pct - 135.714).abs() < 0.01);
    }

    #[test]
    fn one_dip_in_the_window_holds() {
        let p = policy();
        // t=15 drops to the target: not above for the whole window
        let h = feed(&p, 0, 30, |t| cpu(t, if t == 15 { 70.0 } else { 95.0 }));
        assert_eq!(reason(decide(&p, &h, secs(30), 2)), HoldReason::Steady);
        // the sample at the window's start counts too
        let h = feed(&p, 0, 30, |t| cpu(t, if t == 0 { 70.0 } else { 95.0 }));
        assert_eq!(reason(decide(&p, &h, secs(30), 2)), HoldReason::Steady);
        // a second later the dip has left the window
        let h = feed(&p, 0, 31, |t| cpu(t, if t == 0 { 70.0 } else { 95.0 }));
        assert!(matches!(
            decide(&p, &h, secs(31), 2),
            Decision::ScaleOut { .. }
        ));
    }

    #[test]
    fn the_value_at_the_window_start_is_held_until_the_next_sample() {
        let p = policy();
        // samples every 20 s: at t=40 the window starts at 10, where t=0's value still holds
        let mut h = History::new(p.window);
        h.record(cpu(0, 10.0));
        h.record(cpu(20, 95.0));
        h.record(cpu(40, 95.0));
        assert_eq!(reason(decide(&p, &h, secs(40), 2)), HoldReason::Steady);
        h.record(cpu(60, 95.0));
        assert!(matches!(
            decide(&p, &h, secs(60), 2),
            Decision::ScaleOut { to: 3, .. }
        ));
    }

    #[test]
    fn exactly_at_the_threshold_is_not_above() {
        let p = policy();
        let h = feed(&p, 0, 30, |t| cpu(t, 70.0));
        assert_eq!(reason(decide(&p, &h, secs(30), 2)), HoldReason::Steady);
        // nor below: 35 is exactly 50 % of 70
        let h = feed(&p, 0, 30, |t| cpu(t, 35.0));
        assert_eq!(reason(decide(&p, &h, secs(30), 2)), HoldReason::Steady);
    }

    #[test]
    fn rps_is_compared_per_replica() {
        let p = Policy {
            cpu_target_pct: None,
            rps_per_replica: Some(100.0),
            ..policy()
        };
        let rps = |replicas: u32, total: f64| {
            move |t| Sample {
                at: secs(t),
                replicas,
                rps: Some(total),
                ..Sample::default()
            }
        };
        // 300 rps over 4 replicas is 75 per replica: between the thresholds
        let h = feed(&p, 0, 30, rps(4, 300.0));
        assert_eq!(reason(decide(&p, &h, secs(30), 4)), HoldReason::Steady);
        // the same 300 rps over 2 replicas is 150 per replica
        let h = feed(&p, 0, 30, rps(2, 300.0));
        let Decision::ScaleOut { to: 3, because } = decide(&p, &h, secs(30), 2) else {
            panic!("expected a scale-out");
        };
        assert_eq!(because[0].metric, Metric::Rps);
        assert_eq!(because[0].value, 150.0);
        // with no replica running, the whole load counts against one
        let p = Policy {
            min_replicas: 0,
            ..p
        };
        let h = feed(&p, 0, 30, rps(0, 150.0));
        assert!(matches!(
            decide(&p, &h, secs(30), 0),
            Decision::ScaleOut { to: 1, .. }
        ));
    }

    #[test]
    fn p95_is_compared_with_its_maximum() {
        let p = Policy {
            cpu_target_pct: None,
            max_p95_ms: Some(200.0),
            ..policy()
        };
        let p95 = |ms: f64| {
            move |t| Sample {
                at: secs(t),
                replicas: 3,
                p95_ms: Some(ms),
                ..Sample::default()
            }
        };
        let h = feed(&p, 0, 30, p95(250.0));
        assert!(matches!(
            decide(&p, &h, secs(30), 3),
            Decision::ScaleOut { to: 4, .. }
        ));
        let h = feed(&p, 0, 30, p95(80.0));
        assert!(matches!(
            decide(&p, &h, secs(30), 3),
            Decision::ScaleIn { to: 2, .. }
        ));
    }

    #[test]
    fn any_metric_above_scales_out_and_every_one_above_is_a_cause() {
        let p = Policy {
            memory_target_pct: Some(80.0),
            rps_per_replica: Some(50.0),
            max_p95_ms: Some(300.0),
            ..policy()
        };
        let h = feed(&p, 0, 30, |t| Sample {
            at: secs(t),
            replicas: 2,
            cpu_pct: Some(10.0),    // low
            memory_pct: Some(90.0), // above
            rps: Some(60.0),        // 30 per replica: between
            p95_ms: Some(400.0),    // above
            active_connections: Some(12.0),
        });
        let Decision::ScaleOut { to: 3, because } = decide(&p, &h, secs(30), 2) else {
            panic!("expected a scale-out");
        };
        let metrics: Vec<Metric> = because.iter().map(|c| c.metric).collect();
        assert_eq!(metrics, [Metric::Memory, Metric::P95]);
    }

    #[test]
    fn scales_in_only_when_every_metric_stays_below() {
        let p = Policy {
            rps_per_replica: Some(100.0),
            ..policy()
        };
        let both_low = |t| Sample {
            at: secs(t),
            replicas: 3,
            cpu_pct: Some(20.0),
            rps: Some(60.0),
            ..Sample::default()
        };
        let h = feed(&p, 0, 30, both_low);
        let Decision::ScaleIn { to: 2, because } = decide(&p, &h, secs(30), 3) else {
            panic!("expected a scale-in");
        };
        assert_eq!(because.len(), 2);
        assert_eq!(because[1].metric, Metric::Rps);
        assert_eq!(because[1].value, 20.0);
        // RPS between the thresholds keeps the replicas
        let h = feed(&p, 0, 30, |t| Sample {
            rps: Some(240.0),
            ..both_low(t)
        });
        assert_eq!(reason(decide(&p, &h, secs(30), 3)), HoldReason::Steady);
        // one high CPU reading inside the window keeps them too
        let h = feed(&p, 0, 30, |t| Sample {
            cpu_pct: Some(if t == 29 { 60.0 } else { 20.0 }),
            ..both_low(t)
        });
        assert_eq!(reason(decide(&p, &h, secs(30), 3)), HoldReason::Steady);
    }

    #[test]
    fn unreported_metrics_are_ignored() {
        let p = Policy {
            memory_target_pct: Some(80.0),
            rps_per_replica: Some(100.0),
            ..policy()
        };
        // only CPU is reported: it decides alone, both ways
        let h = feed(&p, 0, 30, |t| cpu(t, 10.0));
        assert!(matches!(
            decide(&p, &h, secs(30), 3),
            Decision::ScaleIn { to: 2, .. }
        ));
        let h = feed(&p, 0, 30, |t| cpu(t, 90.0));
        assert!(matches!(
            decide(&p, &h, secs(30), 3),
            Decision::ScaleOut { to: 4, .. }
        ));
        // a gap in the reports is bridged; a NaN counts as a gap
        let h = feed(&p, 0, 30, |t| Sample {
            cpu_pct: match t % 7 {
                3 => None,
                5 => Some(f64::NAN),
                _ => Some(90.0),
            },
            ..cpu(t, 0.0)
        });
        assert!(matches!(
            decide(&p, &h, secs(30), 3),
            Decision::ScaleOut { .. }
        ));
        // a metric reported by nobody at all, in a history that covers the window
        let h = feed(&p, 0, 30, |t| Sample {
            at: secs(t),
            ..Sample::default()
        });
        assert_eq!(
            reason(decide(&p, &h, secs(30), 3)),
            HoldReason::NotEnoughData
        );
    }

    #[test]
    fn a_metric_that_started_reporting_inside_the_window_waits() {
        let p = Policy {
            memory_target_pct: Some(80.0),
            ..policy()
        };
        // memory is reported from t=20 on only, very high; CPU low all along
        let h = feed(&p, 0, 30, |t| Sample {
            memory_pct: (t >= 20).then_some(99.0),
            ..cpu(t, 10.0)
        });
        // memory cannot scale out yet, and it blocks the scale-in CPU alone would allow
        assert_eq!(reason(decide(&p, &h, secs(30), 3)), HoldReason::Steady);
        // CPU not reported, memory only since inside the window: nothing is known yet
        let h = feed(&p, 0, 30, |t| Sample {
            at: secs(t),
            memory_pct: (t >= 20).then_some(99.0),
            ..Sample::default()
        });
        assert_eq!(
            reason(decide(&p, &h, secs(30), 3)),
            HoldReason::NotEnoughData
        );
    }

    #[test]
    fn a_policy_without_targets_holds() {
        let p = Policy {
            cpu_target_pct: None,
            ..policy()
        };
        let h = feed(&p, 0, 30, |t| cpu(t, 99.0));
        assert_eq!(reason(decide(&p, &h, secs(30), 3)), HoldReason::NoMetrics);
    }

    #[test]
    fn never_outside_the_bounds() {
        let p = Policy {
            min_replicas: 2,
            max_replicas: 4,
            ..policy()
        };
        let high = feed(&p, 0, 30, |t| cpu(t, 99.0));
        let low = feed(&p, 0, 30, |t| cpu(t, 1.0));
        let HoldReason::AtMax { because } = reason(decide(&p, &high, secs(30), 4)) else {
            panic!("expected AtMax");
        };
        assert_eq!(because[0].value, 99.0);
        let HoldReason::AtMin { because } = reason(decide(&p, &low, secs(30), 2)) else {
            panic!("expected AtMin");
        };
        assert_eq!(because[0].value, 1.0);
        assert!(matches!(
            decide(&p, &high, secs(30), 3),
            Decision::ScaleOut { to: 4, .. }
        ));
        assert!(matches!(
            decide(&p, &low, secs(30), 3),
            Decision::ScaleIn { to: 2, .. }
        ));
    }

    #[test]
    fn outside_the_bounds_jumps_to_the_nearest_one_at_once() {
        let p = Policy {
            min_replicas: 3,
            max_replicas: 5,
            ..policy()
        };
        let mut h = feed(&p, 0, 30, |t| cpu(t, 1.0));
        h.decided(secs(29)); // in the cooldown, and load is low
        assert_eq!(decide(&p, &h, secs(30), 0), Decision::Clamp { to: 3 });
        assert_eq!(decide(&p, &h, secs(30), 1), Decision::Clamp { to: 3 });
        assert_eq!(decide(&p, &h, secs(30), 9), Decision::Clamp { to: 5 });
        assert_eq!(
            decide(&p, &History::new(p.window), Duration::ZERO, 6),
            Decision::Clamp { to: 5 }
        );
        assert_eq!(Decision::Clamp { to: 5 }.target(), Some(5));
    }

    #[test]
    fn cooldown_holds_then_lets_go() {
        let p = policy();
        let mut h = feed(&p, 0, 100, |t| cpu(t, 99.0));
        h.decided(secs(50));
        assert_eq!(h.last_decision(), Some(secs(50)));
        assert_eq!(
            reason(decide(&p, &h, secs(100), 2)),
            HoldReason::Cooldown {
                remaining: secs(10)
            }
        );
        h.record(cpu(109, 99.0));
        assert_eq!(
            reason(decide(&p, &h, Duration::from_millis(109_500), 2)),
            HoldReason::Cooldown {
                remaining: Duration::from_millis(500)
            }
        );
        h.record(cpu(110, 99.0));
        assert!(matches!(
            decide(&p, &h, secs(110), 2),
            Decision::ScaleOut { to: 3, .. }
        ));
        // a zero cooldown never holds
        let p = Policy {
            cooldown: Duration::ZERO,
            ..p
        };
        h.decided(secs(110));
        assert!(matches!(
            decide(&p, &h, secs(110), 3),
            Decision::ScaleOut { to: 4, .. }
        ));
    }

    #[test]
    fn history_keeps_only_what_the_window_needs() {
        let p = policy();
        let h = feed(&p, 0, 10_000, |t| cpu(t, 50.0));
        // the window's 30 s after the start sample, plus the start sample itself
        assert_eq!(h.samples().len(), 31);
        assert_eq!(h.samples().next().map(|s| s.at), Some(secs(9_970)));
        assert_eq!(h.latest().map(|s| s.at), Some(secs(10_000)));
        assert_eq!(h.window(), secs(30));
        // irregular samples: the newest one at or before the cutoff stays
        let mut h = History::new(secs(30));
        for t in [0, 7, 26, 45, 61] {
            h.record(cpu(t, 50.0));
        }
        let kept: Vec<u64> = h.samples().map(|s| s.at.as_secs()).collect();
        assert_eq!(kept, [26, 45, 61]);
    }

    #[test]
    fn decides_the_same_after_the_ring_buffer_wraps() {
        let p = policy();
        for dip in [None, Some(9_970), Some(9_985), Some(10_000)] {
            let h = feed(&p, 0, 10_000, |t| {
                cpu(t, if Some(t) == dip { 10.0 } else { 99.0 })
            });
            let d = decide(&p, &h, secs(10_000), 2);
            assert_eq!(
                dip.is_none(),
                matches!(d, Decision::ScaleOut { .. }),
                "{dip:?}: {d:?}"
            );
        }
    }

    #[test]
    fn history_is_bounded_by_its_capacity() {
        let mut h = History::with_capacity(secs(30), 10);
        for ms in 0..100_000u64 {
            h.record(Sample {
                at: Duration::from_millis(ms),
                ..cpu(0, 99.0)
            });
        }
        assert_eq!(h.samples().len(), 10);
        // too few samples to cover the window: hold, never a guess
        let p = policy();
        assert_eq!(
            reason(decide(&p, &h, secs(100), 2)),
            HoldReason::NotEnoughData
        );
        assert_eq!(History::with_capacity(secs(1), 0).capacity, 2);
    }

    #[test]
    fn history_takes_samples_in_time_order() {
        let mut h = History::new(secs(30));
        record(&mut h, cpu(10, 1.0));
        record(&mut h, cpu(5, 2.0)); // older: ignored
        record(&mut h, cpu(10, 3.0)); // same time: replaces
        let kept: Vec<(u64, Option<f64>)> =
            h.samples().map(|s| (s.at.as_secs(), s.cpu_pct)).collect();
        assert_eq!(kept, [(10, Some(3.0))]);
    }

    #[test]
    fn samples_newer_than_now_are_not_looked_at() {
        // a caller running behind: the low sample at 35 is after `now`
        let p = policy();
        let mut h = History::new(p.window);
        for t in [0, 10, 20, 30] {
            h.record(cpu(t, 99.0));
        }
        h.record(cpu(35, 10.0));
        assert!(matches!(
            decide(&p, &h, secs(30), 2),
            Decision::ScaleOut { .. }
        ));
    }

    #[test]
    fn causes_serialize_for_events() {
        let c = Cause {
            metric: Metric::P95,
            value: 250.0,
            target: 200.0,
            pct_of_target: 125.0,
            window_pct: 110.0,
        };
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "metric": "p95", "value": 250.0, "target": 200.0,
                "pct_of_target": 125.0, "window_pct": 110.0
            })
        );
        assert_eq!(serde_json::from_value::<Cause>(json).unwrap(), c);
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["cpu", "memory", "rps", "p95"]);
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// A valid policy: up to 15 replicas, cooldown up to 2 min, window up to 1 min, any mix of
    /// targets (at least one when `some_target`).
    fn policies(some_target: bool) -> impl Strategy<Value = Policy> {
        let target = || prop::option::of(1.0f64..500.0);
        (
            (0u32..5, 0u32..11, 0u64..120, 1u64..60),
            (50.0f64..200.0, 0.05f64..0.95),
            (target(), target(), target(), target()),
        )
            .prop_map(
                move |((min, span, cooldown, window), (out, in_frac), (cpu, mem, rps, p95))| {
                    let mut p = Policy {
                        min_replicas: min,
                        max_replicas: (min + span).max(1),
                        cooldown: Duration::from_secs(cooldown),
                        window: Duration::from_secs(window),
                        scale_out_pct: out,
                        scale_in_pct: out * in_frac,
                        cpu_target_pct: cpu,
                        memory_target_pct: mem,
                        rps_per_replica: rps,
                        max_p95_ms: p95,
                    };
                    if some_target && Metric::ALL.iter().all(|m| p.target(*m).is_none()) {
                        p.cpu_target_pct = Some(70.0);
                    }
                    p
                },
            )
    }

    /// A sample where every metric the policy targets is at `pct` percent of its target per
    /// replica.
    fn at_pct(p: &Policy, at: Duration, replicas: u32, pct: [f64; 4]) -> Sample {
        let v = |m: Metric, i: usize| p.target(m).map(|t| t * pct[i] / 100.0);
        Sample {
            at,
            replicas,
            cpu_pct: v(Metric::Cpu, 0),
            memory_pct: v(Metric::Memory, 1),
            rps: v(Metric::Rps, 2).map(|r| r * f64::from(replicas.max(1))),
            p95_ms: v(Metric::P95, 3),
            active_connections: None,
        }
    }

    /// One applied decision of a simulation: when, from how many replicas, and the decision.
    type Applied = (Duration, u32, Decision);

    /// Feeds one sample per second for `seconds`, applying and recording every scaling decision
    /// like the autoscaler loop does. `pct(t, replicas)` gives each metric's percent of target.
    fn simulate(
        p: &Policy,
        start: u32,
        seconds: u64,
        mut pct: impl FnMut(u64, u32) -> [f64; 4],
    ) -> (u32, Vec<Applied>) {
        let mut history = History::new(p.window);
        let mut replicas = start;
        let mut applied = Vec::new();
        for t in 0..seconds {
            let now = Duration::from_secs(t);
            history.record(at_pct(p, now, replicas, pct(t, replicas)));
            let d = decide(p, &history, now, replicas);
            if let Some(to) = d.target() {
                applied.push((now, replicas, d));
                replicas = to;
                history.decided(now);
            }
        }
        (replicas, applied)
    }

    /// A raw sample for arbitrary histories.
    fn samples() -> impl Strategy<Value = Vec<(u64, u32, [Option<f64>; 4])>> {
        let v = || prop::option::of(0.0f64..1000.0);
        prop::collection::vec((0u64..5_000, 0u32..20, [v(), v(), v(), v()]), 0..150)
    }

    proptest! {
        /// (1) The target is within the bounds and one step from `replicas`; outside the bounds
        /// it is the nearest bound.
        #[test]
        fn decisions_respect_the_bounds(
            p in policies(false),
            raw in samples(),
            replicas in 0u32..20,
            late_ms in 0u64..10_000,
            last in prop::option::of(0u64..200_000),
        ) {
            let mut h = History::new(p.window);
            let mut at = Duration::ZERO;
            for (gap, n, [cpu, mem, rps, p95]) in raw {
                at += Duration::from_millis(gap);
                h.record(Sample {
                    at,
                    replicas: n,
                    cpu_pct: cpu,
                    memory_pct: mem,
                    rps,
                    p95_ms: p95,
                    active_connections: None,
                });
            }
            if let Some(ms) = last {
                h.decided(Duration::from_millis(ms));
            }
            let now = at + Duration::from_millis(late_ms);
            let d = decide(&p, &h, now, replicas);
            if let Some(to) = d.target() {
                prop_assert!((p.min_replicas..=p.max_replicas).contains(&to), "{d:?}");
                if replicas < p.min_replicas {
                    prop_assert_eq!(d, Decision::Clamp { to: p.min_replicas });
                } else if replicas > p.max_replicas {
                    prop_assert_eq!(d, Decision::Clamp { to: p.max_replicas });
                } else {
                    prop_assert_eq!(to.abs_diff(replicas), 1, "{:?}", d);
                    prop_assert!(!matches!(d, Decision::Clamp { .. }), "clamped in bounds: {:?}", d);
                    let cooled = h
                        .last_decision()
                        .is_none_or(|l| now.saturating_sub(l) >= p.cooldown);
                    prop_assert!(cooled, "scaled within the cooldown: {d:?}");
                }
            } else if replicas < p.min_replicas || replicas > p.max_replicas {
                prop_assert!(false, "held outside the bounds: {d:?}");
            }
        }
    }

    proptest! {
        /// (2) Over a long run with changing load that reacts to the replica count, two scaling
        /// decisions are never within the cooldown, every step is one replica, and the count
        /// never leaves the bounds.
        #[test]
        fn cooldown_is_always_respected(
            p in policies(false),
            start_frac in 0.0f64..1.0,
            segments in prop::collection::vec((0.0f64..20.0, 1u64..240, 0.0f64..0.5), 1..12),
        ) {
            let span = p.max_replicas - p.min_replicas;
            let start = p.min_replicas + (f64::from(span) * start_frac) as u32;
            // demand in replicas' worth of load-at-target, wobbling around each level
            let mut demand = Vec::new();
            for (level, len, wobble) in &segments {
                for i in 0..*len {
                    demand.push(level * (1.0 + wobble * (i as f64 * 0.7).sin()));
                }
            }
            let seconds = demand.len() as u64;
            let (_, applied) = simulate(&p, start, seconds, |t, n| {
                let per = demand[t as usize] / f64::from(n.max(1)) * 100.0;
                [per, per * 0.8, per * 1.1, per * 0.9]
            });
            for pair in applied.windows(2) {
                let gap = pair[1].0 - pair[0].0;
                prop_assert!(gap >= p.cooldown, "{gap:?} < {:?}: {pair:?}", p.cooldown);
            }
            for (at, from, d) in &applied {
                let to = d.target().unwrap_or(*from);
                prop_assert!((p.min_replicas..=p.max_replicas).contains(&to));
                prop_assert_eq!(to.abs_diff(*from), 1, "at {:?}: {:?}", at, d);
            }
        }

        /// (3) Input that oscillates across both thresholds in runs shorter than the window
        /// never changes the replica count.
        #[test]
        fn no_flapping_on_oscillating_input(
            p in policies(false),
            start_frac in 0.0f64..1.0,
            runs in prop::array::uniform4((1u64..=60, 0u64..120)),
            over in prop::collection::vec(1.0f64..3.0, 1..50),
            under in prop::collection::vec(0.0f64..0.99, 1..50),
        ) {
            let window = p.window.as_secs();
            let span = p.max_replicas - p.min_replicas;
            let start = p.min_replicas + (f64::from(span) * start_frac) as u32;
            let seconds = 10 * window + 2 * p.cooldown.as_secs() + 60;
            let (end, applied) = simulate(&p, start, seconds, |t, _| {
                let mut pct = [0.0; 4];
                for (i, (run, phase)) in runs.iter().enumerate() {
                    let run = (*run).min(window); // a run of `window` samples spans window - 1 s
                    let k = (t + phase) as usize;
                    pct[i] = if ((t + phase) / run) % 2 == 0 {
                        p.scale_out_pct * over[k % over.len()]
                    } else {
                        p.scale_in_pct * under[k % under.len()]
                    };
                }
                pct
            });
            prop_assert!(applied.is_empty(), "{applied:?}");
            prop_assert_eq!(end, start);
        }

        /// (4) Sustained high load reaches `max_replicas`, sustained low load `min_replicas`,
        /// one step per cooldown.
        #[test]
        fn sustained_load_reaches_the_bounds(
            p in policies(true),
            start_frac in 0.0f64..1.0,
            over in 1.01f64..3.0,
            under in 0.0f64..0.99,
        ) {
            let span = p.max_replicas - p.min_replicas;
            let start = p.min_replicas + (f64::from(span) * start_frac) as u32;
            let steps = u64::from(span) + 1;
            let seconds = p.window.as_secs() + steps * (p.cooldown.as_secs() + 1) + 2;
            let high = p.scale_out_pct * over;
            let (end, applied) = simulate(&p, start, seconds, |_, _| [high; 4]);
            prop_assert_eq!(end, p.max_replicas);
            prop_assert!(
                applied.iter().all(|(_, _, d)| matches!(d, Decision::ScaleOut { .. })),
                "{:?}",
                applied
            );
            let low = p.scale_in_pct * under;
            let (end, applied) = simulate(&p, start, seconds, |_, _| [low; 4]);
            prop_assert_eq!(end, p.min_replicas);
            prop_assert!(
                applied.iter().all(|(_, _, d)| matches!(d, Decision::ScaleIn { .. })),
                "{:?}",
                applied
            );
        }
    }
}
