use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{
    cost, eligible, never_fits, place, preempt, Allocation, Cluster, Request, Resources, Waiting,
};

fn cluster(name: &str, cpu: u64, mem: u64, gpu: u64) -> Cluster {
    Cluster {
        name: name.to_string(),
        capacity: Resources::new(cpu, mem, gpu),
        allocated: Resources::default(),
        labels: BTreeMap::new(),
        drained: false,
        reachable: true,
    }
}

fn request(cpu: u64, mem: u64, gpu: u64, priority: u8) -> Request {
    Request {
        resources: Resources::new(cpu, mem, gpu),
        priority,
        labels: BTreeMap::new(),
        cluster: None,
        strategy: super::Strategy::BinPack,
    }
}

#[test]
fn bin_packing_takes_the_fullest_that_fits_and_spread_the_emptiest() {
    let mut a = cluster("a", 4000, 8192, 0);
    a.allocated = Resources::new(3000, 1024, 0);
    let b = cluster("b", 4000, 8192, 0);
    let cs = vec![a, b];
    let mut r = request(1000, 512, 0, 3);
    assert_eq!(place(&cs, &r), Ok(0));
    r.strategy = super::Strategy::Spread;
    assert_eq!(place(&cs, &r), Ok(1));
    // 2 cores do not fit on a any more.
    r.strategy = super::Strategy::BinPack;
    r.resources.cpu_milli = 2000;
    assert_eq!(place(&cs, &r), Ok(1));
}

#[test]
fn filters_say_why_each_cluster_was_left_out() {
    let mut a = cluster("a", 4000, 8192, 0);
    a.drained = true;
    let mut b = cluster("b", 4000, 8192, 0);
    b.reachable = false;
    let mut c = cluster("c", 4000, 8192, 0);
    c.labels.insert("zone".into(), "us".into());
    let d = cluster("d", 500, 8192, 0);
    let mut r = request(1000, 512, 0, 3);
    r.labels.insert("zone".into(), "eu".into());
    let why = place(&[a, b, c, d.clone()], &r).unwrap_err();
    assert_eq!(
        why,
        Waiting {
            drained: 1,
            unreachable: 1,
            labels: 2,
            ..Waiting::default()
        }
    );
    r.labels.clear();
    r.cluster = Some("d".into());
    assert_eq!(place(&[d], &r).unwrap_err().room, 1);
}

#[test]
fn a_request_no_cluster_could_hold_names_its_field() {
    let cs = vec![cluster("a", 4000, 8192, 0), cluster("b", 8000, 4096, 2)];
    assert_eq!(never_fits(&cs, &request(8000, 4096, 1, 3)), None);
    assert_eq!(never_fits(&cs, &request(16000, 1, 0, 3)).unwrap().0, "cpu");
    assert_eq!(
        never_fits(&cs, &request(1, 16384, 0, 3)).unwrap().0,
        "memory"
    );
    assert_eq!(never_fits(&cs, &request(1, 1, 4, 3)).unwrap().0, "gpu");
    // Each dimension fits somewhere, but never all three on one cluster.
    assert_eq!(
        never_fits(&cs, &request(8000, 8192, 0, 3)).unwrap().0,
        "resources"
    );
    let mut pinned = request(1, 1, 0, 3);
    pinned.cluster = Some("zz".into());
    assert_eq!(never_fits(&cs, &pinned).unwrap().0, "cluster");
}

#[test]
fn preemption_takes_the_fewest_lowest_youngest_and_never_an_equal_priority() {
    let mut a = cluster("a", 4000, 8192, 0);
    a.allocated = Resources::new(4000, 4096, 0);
    let allocs = vec![
        Allocation {
            cluster: 0,
            resources: Resources::new(1000, 1024, 0),
            priority: 1,
            started: 1,
        },
        Allocation {
            cluster: 0,
            resources: Resources::new(1000, 1024, 0),
            priority: 1,
            started: 2,
        },
        Allocation {
            cluster: 0,
            resources: Resources::new(2000, 2048, 0),
            priority: 2,
            started: 3,
        },
    ];
    // 2 cores: the one 2-core victim (one beats two), though its priority is higher.
    let p = preempt(
        std::slice::from_ref(&a),
        &allocs,
        &request(2000, 1024, 0, 5),
    )
    .unwrap();
    assert_eq!(p.victims, vec![2]);
    // 1 core: the youngest of the two lowest.
    let p = preempt(
        std::slice::from_ref(&a),
        &allocs,
        &request(1000, 1024, 0, 5),
    )
    .unwrap();
    assert_eq!(p.victims, vec![1]);
    // Priority 2 may only take priority 1: two of them.
    let p = preempt(
        std::slice::from_ref(&a),
        &allocs,
        &request(2000, 1024, 0, 2),
    )
    .unwrap();
    let mut v = p.victims.clone();
    v.sort();
    assert_eq!(v, vec![0, 1]);
    // Priority 1 preempts nothing.
    assert_eq!(preempt(&[a], &allocs, &request(1000, 1024, 0, 1)), None);
}

/// Every subset, cheapest first by the same order: the reference for small cases.
fn brute_force(
    clusters: &[Cluster],
    allocs: &[Allocation],
    r: &Request,
) -> Option<(usize, Vec<usize>)> {
    let mut best: Option<(usize, Vec<usize>)> = None;
    for (ci, c) in clusters.iter().enumerate() {
        if eligible(c, r).is_err() || !r.resources.fits_in(c.capacity) {
            continue;
        }
        let need = r.resources.minus(c.free());
        let cands: Vec<usize> = (0..allocs.len())
            .filter(|&i| allocs[i].cluster == ci && allocs[i].priority < r.priority)
            .collect();
        if cands.is_empty() {
            continue;
        }
        for mask in 1u32..(1 << cands.len()) {
            let set: Vec<usize> = (0..cands.len())
                .filter(|k| mask & (1 << k) != 0)
                .map(|k| cands[k])
                .collect();
            let freed = set
                .iter()
                .fold(Resources::default(), |a, &i| a.plus(allocs[i].resources));
            if !need.fits_in(freed) {
                continue;
            }
            let better = match &best {
                None => true,
                Some((bc, b)) => {
                    (cost(allocs, &set), &c.name) < (cost(allocs, b), &clusters[*bc].name)
                }
            };
            if better {
                best = Some((ci, set));
            }
        }
    }
    best
}

fn arb_case() -> impl proptest::strategy::Strategy<Value = (Vec<Cluster>, Vec<Allocation>, Request)>
{
    let clusters = prop::collection::vec((1u64..8, 1u64..8, 0u64..3), 1..4);
    (
        clusters,
        prop::collection::vec(
            (0usize..4, 0u64..4, 0u64..4, 0u64..2, 1u8..=5, 0u64..50),
            0..9,
        ),
        (0u64..6, 0u64..6, 0u64..2, 1u8..=5),
    )
        .prop_map(|(cs, allocs, (rc, rm, rg, rp))| {
            let mut clusters: Vec<Cluster> = cs
                .iter()
                .enumerate()
                .map(|(i, &(c, m, g))| cluster(&format!("c{i}"), c * 1000, m * 1024, g))
                .collect();
            let mut placed = Vec::new();
            for (ci, c, m, g, p, s) in allocs {
                let ci = ci % clusters.len();
                let res = Resources::new(c * 1000, m * 1024, g);
                // Only what fits is running: the fleet is never overcommitted to begin with.
                if res.fits_in(clusters[ci].free()) {
                    clusters[ci].allocated = clusters[ci].allocated.plus(res);
                    placed.push(Allocation {
                        cluster: ci,
                        resources: res,
                        priority: p,
                        started: s,
                    });
                }
            }
            (clusters, placed, request(rc * 1000, rm * 1024, rg, rp))
        })
}

proptest! {
    #[test]
    fn placement_never_overcommits((clusters, _allocs, r) in arb_case()) {
        if let Ok(i) = place(&clusters, &r) {
            let c = &clusters[i];
            prop_assert!(c.allocated.plus(r.resources).fits_in(c.capacity));
            prop_assert!(c.reachable && !c.drained);
        } else {
            prop_assert!(clusters.iter().all(|c| !r.resources.fits_in(c.free())));
        }
    }

    #[test]
    fn preemption_is_minimal_strictly_lower_and_makes_room((clusters, allocs, r) in arb_case()) {
        // Preemption is asked only when nothing fits as it is.
        if place(&clusters, &r).is_ok() {
            return Ok(());
        }
        let got = preempt(&clusters, &allocs, &r);
        let want = brute_force(&clusters, &allocs, &r);
        prop_assert_eq!(got.as_ref().map(|p| (p.cluster, cost(&allocs, &p.victims))),
            want.as_ref().map(|(c, v)| (*c, cost(&allocs, v))));
        if let Some(p) = got {
            let c = &clusters[p.cluster];
            let freed = p.victims.iter().fold(Resources::default(), |a, &i| a.plus(allocs[i].resources));
            prop_assert!(r.resources.fits_in(c.free().plus(freed)));
            for &v in &p.victims {
                prop_assert!(allocs[v].priority < r.priority);
                prop_assert_eq!(allocs[v].cluster, p.cluster);
            }
            // After the victims leave and r is placed, the cluster is within capacity.
            prop_assert!(c.allocated.minus(freed).plus(r.resources).fits_in(c.capacity));
        }
    }
}

#[test]
fn why_a_request_waits_names_each_filter() {
    let mut a = cluster("a", 1000, 1024, 0);
    a.allocated = Resources::new(1000, 0, 0);
    let mut b = cluster("b", 4000, 8192, 0);
    b.drained = true;
    let why = place(&[a, b], &request(500, 128, 0, 3)).unwrap_err();
    assert_eq!(
        why.to_string(),
        "no cluster can take it now: 1 without room, 1 drained"
    );
    assert_eq!(Waiting::default().to_string(), "no cluster is known");
    assert_eq!(
        super::Strategy::parse("spread"),
        Some(super::Strategy::Spread)
    );
    assert_eq!(
        super::Strategy::parse("binpack"),
        Some(super::Strategy::BinPack)
    );
    assert_eq!(super::Strategy::parse("random"), None);
}
