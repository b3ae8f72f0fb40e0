//! The decision rule: [`decide`] and what it answers ([`Decision`], [`HoldReason`], [`Cause`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{History, Metric, Policy, Sample};

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
