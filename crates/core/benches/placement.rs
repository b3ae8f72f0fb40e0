//! The scheduler's placement and preemption through the real `core::placement` code (issue 14):
//! `cargo bench -p racer-core --bench placement`.
//!
//! 1. Placement throughput: a simulated fleet of 5,000 clusters (mixed sizes, 1 in 10 with GPUs,
//!    labels on a third) takes 100,000 allocations one decision at a time, each bound before the
//!    next (the fleet fills up as a real one does). Target ≥ 10,000 decisions/s (Nomad's C1M
//!    published ~3,750/s; the Kubernetes scheduler is quoted near 1,000 pods/s).
//! 2. Preemption latency: 20,000 running allocations on a full fleet, 2,000 priority-5 requests
//!    that fit nowhere; p50/p99/max of one `preempt` decision. Target p99 ≤ 2 ms.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use racer_core::placement::{
    never_fits, place, preempt, Allocation, Cluster, Request, Resources, Strategy,
};

/// A small deterministic generator (no dependency, same fleet every run).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fleet(n: usize, rng: &mut Rng) -> Vec<Cluster> {
    (0..n)
        .map(|i| {
            let cores = [8u64, 16, 32, 64][rng.below(4) as usize];
            let mut labels = BTreeMap::new();
            if i % 3 == 0 {
                labels.insert(
                    "zone".to_string(),
                    ["eu", "us", "ap"][i % 9 / 3].to_string(),
                );
            }
            Cluster {
                name: format!("c{i:05}"),
                capacity: Resources::new(
                    cores * 1000,
                    cores * 4096,
                    if i % 10 == 0 { 4 } else { 0 },
                ),
                allocated: Resources::default(),
                labels,
                drained: false,
                reachable: true,
            }
        })
        .collect()
}

fn request(rng: &mut Rng, priority: u8) -> Request {
    let cpu = [250u64, 500, 1000, 2000][rng.below(4) as usize];
    let mut labels = BTreeMap::new();
    if rng.below(10) == 0 {
        labels.insert("zone".to_string(), "eu".to_string());
    }
    Request {
        resources: Resources::new(cpu, cpu * 2, u64::from(rng.below(50) == 0)),
        priority,
        labels,
        cluster: None,
        strategy: if rng.below(4) == 0 {
            Strategy::Spread
        } else {
            Strategy::BinPack
        },
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // 1. Placement throughput.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut clusters = fleet(5_000, &mut rng);
    let requests: Vec<Request> = (0..100_000)
        .map(|_| {
            let p = 1 + rng.below(5) as u8;
            request(&mut rng, p)
        })
        .collect();
    let (mut placed, mut refused, mut waiting) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    for r in &requests {
        match place(&clusters, r) {
            Ok(i) => {
                clusters[i].allocated = clusters[i].allocated.plus(r.resources);
                placed += 1;
            }
            Err(_) if never_fits(&clusters, r).is_some() => refused += 1,
            Err(_) => waiting += 1,
        }
    }
    let took = start.elapsed();
    let rate = requests.len() as f64 / took.as_secs_f64();
    for c in &clusters {
        assert!(c.allocated.fits_in(c.capacity), "overcommitted {}", c.name);
    }
    println!(
        "placement: 5000 clusters, 100000 decisions in {:.1} ms: {:.0} decisions/s ({placed} placed, {waiting} waiting, {refused} never fit); target >= 10000/s: {}; ratio to Nomad C1M (3750/s): {:.1}x",
        took.as_secs_f64() * 1000.0,
        rate,
        if rate >= 10_000.0 { "PASS" } else { "FAIL" },
        rate / 3750.0
    );

    // 2. Preemption latency on a full fleet with 20,000 running allocations.
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut clusters = fleet(2_000, &mut rng);
    let mut allocs = Vec::new();
    let mut t = 0u64;
    while allocs.len() < 20_000 {
        let p = 1 + rng.below(4) as u8;
        let r = request(&mut rng, p);
        let ci = rng.below(clusters.len() as u64) as usize;
        if r.resources.fits_in(clusters[ci].free()) {
            clusters[ci].allocated = clusters[ci].allocated.plus(r.resources);
            t += 1;
            allocs.push(Allocation {
                cluster: ci,
                resources: r.resources,
                priority: r.priority,
                started: t,
            });
        } else if clusters.iter().all(|c| c.free().cpu_milli < 250) {
            break;
        }
    }
    // Fill what is left so nothing fits without preemption.
    for c in clusters.iter_mut() {
        c.allocated = c.capacity;
    }
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..2_000 {
        let mut r = request(&mut rng, 5);
        r.resources.gpu = 0;
        let t0 = Instant::now();
        let p = preempt(&clusters, &allocs, &r);
        times.push(t0.elapsed());
        if let Some(p) = p {
            found += 1;
            assert!(p.victims.iter().all(|&v| allocs[v].priority < 5));
        }
    }
    times.sort();
    let p99 = percentile(&times, 0.99);
    // The hard case: a request bigger than any running allocation, so every answer has several
    // victims and the exact search runs.
    let mut multi = Vec::new();
    let mut victims = 0usize;
    for _ in 0..500 {
        let mut r = request(&mut rng, 5);
        r.resources = Resources::new(6000, 12288, 0);
        let t0 = Instant::now();
        let p = preempt(&clusters, &allocs, &r);
        multi.push(t0.elapsed());
        if let Some(p) = p {
            victims += p.victims.len();
        }
    }
    multi.sort();
    println!(
        "preemption, several victims each (6 cores asked, allocations of at most 2): 500 decisions, {:.1} victims on average: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        victims as f64 / 500.0,
        percentile(&multi, 0.5).as_secs_f64() * 1000.0,
        percentile(&multi, 0.99).as_secs_f64() * 1000.0,
        multi.last().unwrap().as_secs_f64() * 1000.0,
    );
    println!(
        "preemption: {} running allocations on 2000 full clusters, 2000 priority-5 decisions ({found} found victims): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; target p99 <= 2 ms: {}",
        allocs.len(),
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        times.last().unwrap().as_secs_f64() * 1000.0,
        if p99 <= Duration::from_millis(2) { "PASS" } else { "FAIL" }
    );
}
