//! Where a replica runs: the scheduler's policies as plain functions (issue 14).
//!
//! [`place`] filters the clusters (reachable, not drained, labels, a pinned cluster, room left),
//! scores the ones left (bin-packing by default: the fullest that fits; or spread: the emptiest)
//! and returns the chosen one. It never overcommits: a cluster is chosen only when its allocated
//! requests plus this one stay within its capacity, in every dimension. [`never_fits`] tells a
//! request no cluster could ever hold (refused at submission, naming the dimension). When nothing
//! fits, [`preempt`] finds the smallest set of running allocations of *strictly lower* priority
//! on one cluster whose removal makes room: fewest victims, then the lowest priorities, then the
//! youngest. Callers hold the store's per-cluster lock while they bind the result.

use std::collections::BTreeMap;

/// Resources in integer units, so sums and comparisons are exact: CPU in millicores, memory in
/// MiB, GPUs in devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Resources {
    /// Millicores (1000 = one core).
    pub cpu_milli: u64,
    /// MiB.
    pub memory_mb: u64,
    /// Devices.
    pub gpu: u64,
}

impl Resources {
    /// `cpu` cores, `memory_mb` MiB and `gpu` devices.
    pub fn new(cpu_milli: u64, memory_mb: u64, gpu: u64) -> Resources {
        Resources {
            cpu_milli,
            memory_mb,
            gpu,
        }
    }

    /// `self + other`, saturating.
    pub fn plus(self, o: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_add(o.cpu_milli),
            memory_mb: self.memory_mb.saturating_add(o.memory_mb),
            gpu: self.gpu.saturating_add(o.gpu),
        }
    }

    /// `self - other`, saturating at zero.
    pub fn minus(self, o: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_sub(o.cpu_milli),
            memory_mb: self.memory_mb.saturating_sub(o.memory_mb),
            gpu: self.gpu.saturating_sub(o.gpu),
        }
    }

    /// Whether `self` fits within `room` in every dimension.
    pub fn fits_in(self, room: Resources) -> bool {
        self.cpu_milli <= room.cpu_milli && self.memory_mb <= room.memory_mb && self.gpu <= room.gpu
    }
}

/// A cluster as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its unique name (ties are broken by name, so decisions are deterministic).
    pub name: String,
    /// What it holds.
    pub capacity: Resources,
    /// The sum of the requests placed on it.
    pub allocated: Resources,
    /// Its labels (`zone=eu`).
    pub labels: BTreeMap<String, String>,
    /// Drained: nothing new is placed.
    pub drained: bool,
    /// Reachable at the last check.
    pub reachable: bool,
}

impl Cluster {
    /// What is left.
    pub fn free(&self) -> Resources {
        self.capacity.minus(self.allocated)
    }
}

/// How an app's replicas spread over clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// The fullest cluster that fits (fewer clusters in use; room kept for big requests).
    #[default]
    BinPack,
    /// The emptiest cluster that fits.
    Spread,
}

/// Priorities run from [`MIN_PRIORITY`] (lowest) to [`MAX_PRIORITY`]; [`DEFAULT_PRIORITY`]
/// unless set.
pub const MIN_PRIORITY: u8 = 1;
/// The highest priority.
pub const MAX_PRIORITY: u8 = 5;
/// The priority of work that names none.
pub const DEFAULT_PRIORITY: u8 = 3;

/// What one replica asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its requests.
    pub resources: Resources,
    /// 1 (lowest) to 5 (highest).
    pub priority: u8,
    /// Labels the cluster must carry, each with this value.
    pub labels: BTreeMap<String, String>,
    /// Only this cluster, if set.
    pub cluster: Option<String>,
    /// Bin-packing or spread.
    pub strategy: Strategy,
}

/// Why a cluster was left out, for "why does it wait" answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unfit {
    /// Not the cluster the request names.
    NotPinned,
    /// Unreachable at the last check.
    Unreachable,
    /// Drained.
    Drained,
    /// Lacks a label the request needs.
    Labels,
    /// Not enough room now.
    Room,
}

/// Whether `c` could take `r` apart from room: the filters before the capacity check.
fn eligible(c: &Cluster, r: &Request) -> Result<(), Unfit> {
    if r.cluster.as_deref().is_some_and(|p| p != c.name) {
        return Err(Unfit::NotPinned);
    }
    if !c.reachable {
        return Err(Unfit::Unreachable);
    }
    if c.drained {
        return Err(Unfit::Drained);
    }
    if !r.labels.iter().all(|(k, v)| c.labels.get(k) == Some(v)) {
        return Err(Unfit::Labels);
    }
    Ok(())
}

/// How full `c` would be with `extra` placed, in millionths summed over the dimensions it has.
fn fullness(c: &Cluster, extra: Resources) -> u64 {
    let after = c.allocated.plus(extra);
    let part = |used: u64, cap: u64| {
        if cap == 0 {
            0
        } else {
            (u128::from(used) * 1_000_000 / u128::from(cap)) as u64
        }
    };
    part(after.cpu_milli, c.capacity.cpu_milli)
        + part(after.memory_mb, c.capacity.memory_mb)
        + part(after.gpu, c.capacity.gpu)
}

/// The cluster `r` goes to (an index into `clusters`), or, for each cluster, why not.
pub fn place(clusters: &[Cluster], r: &Request) -> Result<usize, Vec<(usize, Unfit)>> {
    let mut best: Option<(usize, u64)> = None;
    let mut why = Vec::new();
    for (i, c) in clusters.iter().enumerate() {
        if let Err(u) = eligible(c, r) {
            why.push((i, u));
            continue;
        }
        if !r.resources.fits_in(c.free()) {
            why.push((i, Unfit::Room));
            continue;
        }
        let score = fullness(c, r.resources);
        let better = match best {
            None => true,
            Some((b, bs)) => {
                let by_score = match r.strategy {
                    Strategy::BinPack => score.cmp(&bs).reverse(),
                    Strategy::Spread => score.cmp(&bs),
                };
                by_score.then_with(|| c.name.cmp(&clusters[b].name)) == std::cmp::Ordering::Less
            }
        };
        if better {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i).ok_or(why)
}

/// Why a request can never be placed, whatever runs: the field and what the largest eligible
/// cluster holds. `None` when some cluster could hold it once empty.
pub fn never_fits(clusters: &[Cluster], r: &Request) -> Option<(&'static str, String)> {
    let candidates: Vec<&Cluster> = clusters
        .iter()
        .filter(|c| {
            r.cluster.as_deref().is_none_or(|p| p == c.name)
                && r.labels.iter().all(|(k, v)| c.labels.get(k) == Some(v))
        })
        .collect();
    if candidates.is_empty() {
        return Some(match &r.cluster {
            Some(p) => (
                "cluster",
                format!("no cluster named {p:?} carries the labels asked for"),
            ),
            None => ("labels", "no cluster carries these labels".to_string()),
        });
    }
    if candidates.iter().any(|c| r.resources.fits_in(c.capacity)) {
        return None;
    }
    let max =
        |f: fn(&Resources) -> u64| candidates.iter().map(|c| f(&c.capacity)).max().unwrap_or(0);
    let (cpu, mem, gpu) = (max(|x| x.cpu_milli), max(|x| x.memory_mb), max(|x| x.gpu));
    Some(if r.resources.cpu_milli > cpu {
        (
            "cpu",
            format!(
                "{} millicores asked, the largest cluster has {cpu}",
                r.resources.cpu_milli
            ),
        )
    } else if r.resources.memory_mb > mem {
        (
            "memory",
            format!(
                "{} MiB asked, the largest cluster has {mem} MiB",
                r.resources.memory_mb
            ),
        )
    } else if r.resources.gpu > gpu {
        (
            "gpu",
            format!(
                "{} GPUs asked, the largest cluster has {gpu}",
                r.resources.gpu
            ),
        )
    } else {
        (
            "resources",
            "no single cluster holds all of cpu, memory and gpu at once".to_string(),
        )
    })
}

/// A running allocation, as preemption sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Index of its cluster in the slice given with it.
    pub cluster: usize,
    /// What it holds.
    pub resources: Resources,
    /// Its priority.
    pub priority: u8,
    /// When it started (any increasing clock): the larger, the younger.
    pub started: u64,
}

/// The allocations to remove (indices into the slice given) and the cluster they free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    /// The cluster the request then goes to.
    pub cluster: usize,
    /// The victims, in the order they were chosen.
    pub victims: Vec<usize>,
}

/// How a victim set compares: fewer victims, then lower priorities (sum), then younger (the
/// larger the sum of start times, the younger), then the lower indices (determinism).
fn cost(allocs: &[Allocation], set: &[usize]) -> (usize, u64, std::cmp::Reverse<u64>, Vec<usize>) {
    let prio: u64 = set.iter().map(|&i| u64::from(allocs[i].priority)).sum();
    let started: u64 = set
        .iter()
        .map(|&i| allocs[i].started)
        .fold(0, u64::saturating_add);
    let mut ids = set.to_vec();
    ids.sort_unstable();
    (set.len(), prio, std::cmp::Reverse(started), ids)
}

/// Most nodes the exact search of one cluster visits before it settles for the greedy answer.
pub const SEARCH_BUDGET: usize = 200_000;

/// The best victim set on one cluster: exact (iterative deepening over the set size, pruned by
/// what the remaining candidates could free) within [`SEARCH_BUDGET`], else greedy (lowest
/// priority and youngest first until it fits, then each victim reprieved if the rest suffice).
fn victims_on(allocs: &[Allocation], cands: &[usize], need: Resources) -> Option<Vec<usize>> {
    let total = cands
        .iter()
        .fold(Resources::default(), |a, &i| a.plus(allocs[i].resources));
    if !need.fits_in(total) {
        return None;
    }
    // Suffix sums: what candidates k.. could free at most, for pruning.
    let mut suffix = vec![Resources::default(); cands.len() + 1];
    for k in (0..cands.len()).rev() {
        suffix[k] = suffix[k + 1].plus(allocs[cands[k]].resources);
    }
    let mut nodes = 0usize;
    for size in 1..=cands.len() {
        let mut best: Option<Vec<usize>> = None;
        let mut chosen = Vec::with_capacity(size);
        let exhausted = search(
            allocs,
            cands,
            &suffix,
            need,
            Resources::default(),
            0,
            size,
            &mut chosen,
            &mut best,
            &mut nodes,
        );
        if let Some(b) = best {
            return Some(b);
        }
        if exhausted {
            break;
        }
    }
    greedy(allocs, cands, need)
}

/// Depth-first search for the cheapest set of exactly `size` candidates from `start` on that
/// frees `need`. Returns true when the budget ran out.
#[allow(clippy::too_many_arguments)]
fn search(
    allocs: &[Allocation],
    cands: &[usize],
    suffix: &[Resources],
    need: Resources,
    freed: Resources,
    start: usize,
    size: usize,
    chosen: &mut Vec<usize>,
    best: &mut Option<Vec<usize>>,
    nodes: &mut usize,
) -> bool {
    *nodes += 1;
    if *nodes > SEARCH_BUDGET {
        return true;
    }
    if chosen.len() == size {
        if need.fits_in(freed) {
            let set: Vec<usize> = chosen.iter().map(|&k| cands[k]).collect();
            if best
                .as_ref()
                .is_none_or(|b| cost(allocs, &set) < cost(allocs, b))
            {
                *best = Some(set);
            }
        }
        return false;
    }
    let left = size - chosen.len();
    for k in start..cands.len() {
        if cands.len() - k < left {
            break;
        }
        if !need.fits_in(freed.plus(suffix[k])) {
            break;
        }
        chosen.push(k);
        let out = search(
            allocs,
            cands,
            suffix,
            need,
            freed.plus(allocs[cands[k]].resources),
            k + 1,
            size,
            chosen,
            best,
            nodes,
        );
        chosen.pop();
        if out {
            return true;
        }
    }
    false
}

/// Lowest priority and youngest first until `need` is freed, then each victim reprieved (kept
/// running) if the others free enough without it: a set no victim can leave.
fn greedy(allocs: &[Allocation], cands: &[usize], need: Resources) -> Option<Vec<usize>> {
    let mut order = cands.to_vec();
    order.sort_by_key(|&i| (allocs[i].priority, std::cmp::Reverse(allocs[i].started), i));
    let mut set = Vec::new();
    let mut freed = Resources::default();
    for i in order {
        if need.fits_in(freed) {
            break;
        }
        freed = freed.plus(allocs[i].resources);
        set.push(i);
    }
    if !need.fits_in(freed) {
        return None;
    }
    // Reprieve the most important first.
    let mut by_importance = set.clone();
    by_importance.sort_by_key(|&i| (std::cmp::Reverse(allocs[i].priority), allocs[i].started));
    for i in by_importance {
        let without = freed.minus(allocs[i].resources);
        if need.fits_in(without) {
            freed = without;
            set.retain(|&j| j != i);
        }
    }
    Some(set)
}

/// When [`place`] finds no room: the cluster and the fewest strictly-lower-priority allocations
/// to remove there so `r` fits (see [`cost`] for the order), or `None` if no removal would do.
pub fn preempt(clusters: &[Cluster], allocs: &[Allocation], r: &Request) -> Option<Preemption> {
    let mut by_cluster: Vec<Vec<usize>> = vec![Vec::new(); clusters.len()];
    for (i, a) in allocs.iter().enumerate() {
        if a.priority < r.priority && a.cluster < clusters.len() {
            by_cluster[a.cluster].push(i);
        }
    }
    let mut best: Option<Preemption> = None;
    for (ci, c) in clusters.iter().enumerate() {
        if eligible(c, r).is_err() || !r.resources.fits_in(c.capacity) {
            continue;
        }
        let need = r.resources.minus(c.free());
        let mut cands = std::mem::take(&mut by_cluster[ci]);
        if cands.is_empty() {
            continue;
        }
        // Big first: the pruning bound bites early; ties in the cheapest order.
        cands.sort_by_key(|&i| {
            let a = &allocs[i];
            (
                std::cmp::Reverse(a.resources),
                a.priority,
                std::cmp::Reverse(a.started),
                i,
            )
        });
        let Some(victims) = victims_on(allocs, &cands, need) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some(b) => {
                (cost(allocs, &victims), &c.name)
                    < (cost(allocs, &b.victims), &clusters[b.cluster].name)
            }
        };
        if better {
            best = Some(Preemption {
                cluster: ci,
                victims,
            });
        }
    }
    best
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
