//! Property tests: bounds, cooldown, no flapping and reaching the bounds, over random policies
//! and load.

use std::time::Duration;

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
