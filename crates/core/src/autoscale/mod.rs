//! The autoscaling decision, as a pure function over plain data (issue 6).
//!
//! The autoscaler loop in `control` reads CPU and memory from the engine's stats and RPS, p95
//! latency and active connections from the proxy, once per tick for each app whose
//! `scaling.policy.mode` is `auto`. Each reading becomes a [`Sample`], recorded in the app's
//! [`History`]; [`decide`] then says whether to scale. The loop applies a scaling decision,
//! records it with [`History::decided`] and writes it as an event carrying the decision's
//! [`Cause`]s. Time is a [`Duration`](std::time::Duration) since any fixed epoch the caller
//! picks (a monotonic clock); nothing here reads a clock.
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

mod policy;
mod rule;
mod windows;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use policy::{Metric, Policy, PolicyError};
pub use rule::{decide, Cause, Decision, HoldReason};
pub use windows::{record, History, Sample};
