//! The unit tests of the decision rule, the policy checks and the history.

use std::time::Duration;

use super::*;
use crate::ErrorKind;

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
    let kept: Vec<(u64, Option<f64>)> = h.samples().map(|s| (s.at.as_secs(), s.cpu_pct)).collect();
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
