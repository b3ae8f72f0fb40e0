//! How fast `autoscale::decide` is with a full window of history.
//!
//! `cargo bench -p racer-core --bench autoscale`; criterion reports decisions per second as
//! "elem/s". The history holds one sample per second for a 60 s window with all four metrics,
//! so every call scans 61 samples.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use racer_core::autoscale::{decide, Decision, History, Policy, Sample};

fn policy() -> Policy {
    Policy {
        min_replicas: 1,
        max_replicas: 20,
        cooldown: Duration::from_secs(120),
        window: Duration::from_secs(60),
        scale_out_pct: 100.0,
        scale_in_pct: 50.0,
        cpu_target_pct: Some(70.0),
        memory_target_pct: Some(80.0),
        rps_per_replica: Some(100.0),
        max_p95_ms: Some(250.0),
    }
}

/// Ten minutes of samples, one per second, at `load` times each target.
fn history(p: &Policy, load: f64) -> History {
    let mut h = History::new(p.window);
    for t in 0..600u64 {
        let wobble = 1.0 + 0.05 * (t as f64).sin();
        h.record(Sample {
            at: Duration::from_secs(t),
            replicas: 5,
            cpu_pct: Some(70.0 * load * wobble),
            memory_pct: Some(80.0 * load * wobble),
            rps: Some(5.0 * 100.0 * load * wobble),
            p95_ms: Some(250.0 * load * wobble),
            active_connections: Some(40.0),
        });
    }
    h
}

fn bench_decide(c: &mut Criterion) {
    let p = policy();
    let now = Duration::from_secs(599);
    let mut group = c.benchmark_group("autoscale_decide");
    group.throughput(Throughput::Elements(1));
    let cases = [
        ("scale_out", 1.5, "ScaleOut"),
        ("steady", 0.8, "Hold"),
        ("scale_in", 0.3, "ScaleIn"),
    ];
    for (name, load, expect) in cases {
        let h = history(&p, load);
        let d = decide(&p, &h, now, 5);
        let got = match d {
            Decision::Hold { .. } => "Hold",
            Decision::ScaleOut { .. } => "ScaleOut",
            Decision::ScaleIn { .. } => "ScaleIn",
            Decision::Clamp { .. } => "Clamp",
        };
        assert_eq!(got, expect, "{name}: {d:?}");
        group.bench_function(name, |b| {
            b.iter(|| decide(black_box(&p), black_box(&h), black_box(now), black_box(5)))
        });
    }
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_decide(&mut c);
    c.final_summary();
}
