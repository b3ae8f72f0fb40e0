//! The policy types: [`Policy`], its validation ([`PolicyError`]) and the [`Metric`]s it sets
//! targets for.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ErrorKind;

/// An app's autoscaling policy: `spec.scaling`, with durations and the `auto` mode resolved.
///
/// Percentages are plain numbers: `scale_out_pct: 100.0` means "at the target". Build it from the
/// spec and check it with [`Policy::validate`]; [`decide`](super::decide) assumes a valid policy.
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
    /// Checks the rules [`decide`](super::decide) relies on: `1 <= maxReplicas`,
    /// `minReplicas <= maxReplicas`, a non-zero window, positive finite targets and scale-out
    /// threshold, and a scale-in threshold that is not negative and lies below the scale-out
    /// threshold (the hysteresis band).
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
