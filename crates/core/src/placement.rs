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

impl Strategy {
    /// `binpack` or `spread`.
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "binpack" | "bin-pack" => Some(Strategy::BinPack),
            "spread" => Some(Strategy::Spread),
            _ => None,
        }
    }
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

/// Why a request waits: how many clusters each filter left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Not the cluster the request names.
    pub not_pinned: usize,
    /// Unreachable.
    pub unreachable: usize,
    /// Drained.
    pub drained: usize,
    /// Lacking a label.
    pub labels: usize,
    /// Without room now.
    pub room: usize,
}

impl Waiting {
    fn count(&mut self, u: Unfit) {
        match u {
            Unfit::NotPinned => self.not_pinned += 1,
            Unfit::Unreachable => self.unreachable += 1,
            Unfit::Drained => self.drained += 1,
            Unfit::Labels => self.labels += 1,
            Unfit::Room => self.room += 1,
        }
    }
}

impl std::fmt::Display for Waiting {
    /// `no cluster has room (2 full, 1 drained)`: the filters that left clusters out, the
    /// emptiest counts left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            (self.room, "without room"),
            (self.drained, "drained"),
            (self.unreachable, "unreachable"),
            (self.labels, "without the labels asked for"),
            (self.not_pinned, "not the cluster asked for"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            return write!(f, "no cluster is known");
        }
        write!(f, "no cluster can take it now: {}", parts.join(", "))
    }
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
    let part = |used: u64, cap: u64| used.saturating_mul(1_000_000).checked_div(cap).unwrap_or(0);
    part(after.cpu_milli, c.capacity.cpu_milli)
        + part(after.memory_mb, c.capacity.memory_mb)
        + part(after.gpu, c.capacity.gpu)
}

/// The cluster `r` goes to (an index into `clusters`), or how many clusters each filter left
/// out.
pub fn place(clusters: &[Cluster], r: &Request) -> Result<usize, Waiting> {
    let mut best: Option<(usize, u64)> = None;
    let mut why = Waiting::default();
    for (i, c) in clusters.iter().enumerate() {
        if let Err(u) = eligible(c, r) {
            why.count(u);
            continue;
        }
        if !r.resources.fits_in(c.free()) {
            why.count(Unfit::Room);
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
/// larger the sum of start times, the younger); [`cheaper`] breaks the last ties by index.
pub(crate) fn cost(allocs: &[Allocation], set: &[usize]) -> (usize, u64, std::cmp::Reverse<u64>) {
    let prio: u64 = set.iter().map(|&i| u64::from(allocs[i].priority)).sum();
    let started: u64 = set
        .iter()
        .map(|&i| allocs[i].started)
        .fold(0, u64::saturating_add);
    (set.len(), prio, std::cmp::Reverse(started))
}

/// Whether victim set `a` beats `b`: by [`cost`], then by the sorted indices (determinism).
fn cheaper(allocs: &[Allocation], a: &[usize], b: &[usize]) -> bool {
    match cost(allocs, a).cmp(&cost(allocs, b)) {
        std::cmp::Ordering::Equal => {
            let (mut x, mut y) = (a.to_vec(), b.to_vec());
            x.sort_unstable();
            y.sort_unstable();
            x < y
        }
        o => o == std::cmp::Ordering::Less,
    }
}

/// Most nodes the exact search of one cluster visits before it settles for the greedy answer.
pub const SEARCH_BUDGET: usize = 200_000;

/// The best victim set on one cluster: exact (iterative deepening over the set size, pruned by
/// what the remaining candidates could free) within [`SEARCH_BUDGET`], else greedy (lowest
/// priority and youngest first until it fits, then each victim reprieved if the rest suffice).
fn victims_on(
    allocs: &[Allocation],
    cands: &[usize],
    need: Resources,
    max_size: usize,
    bound: Option<(usize, u64)>,
) -> Option<Vec<usize>> {
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
    // No set smaller than this can free `need`: in each dimension, the fewest candidates whose
    // largest values add up to it.
    let fewest = |get: fn(&Resources) -> u64, want: u64| -> usize {
        if want == 0 {
            return 0;
        }
        let mut v: Vec<u64> = cands.iter().map(|&i| get(&allocs[i].resources)).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        let mut sum = 0u64;
        for (k, x) in v.iter().enumerate() {
            sum = sum.saturating_add(*x);
            if sum >= want {
                return k + 1;
            }
        }
        usize::MAX
    };
    let lower = fewest(|r| r.cpu_milli, need.cpu_milli)
        .max(fewest(|r| r.memory_mb, need.memory_mb))
        .max(fewest(|r| r.gpu, need.gpu))
        .max(1);
    if lower > max_size {
        return None;
    }
    let mut min_prio = vec![u64::MAX; cands.len() + 1];
    for k in (0..cands.len()).rev() {
        min_prio[k] = min_prio[k + 1].min(u64::from(allocs[cands[k]].priority));
    }
    let mut nodes = 0usize;
    for size in lower..=cands.len().min(max_size) {
        let mut search = Search {
            allocs,
            cands,
            suffix: &suffix,
            min_prio: &min_prio,
            need,
            size,
            chosen: Vec::with_capacity(size),
            best: None,
            // Another cluster's set of this size: only a set with no higher priority sum can
            // beat it.
            prio_bound: match bound {
                Some((n, p)) if n == size => p,
                _ => u64::MAX,
            },
            nodes,
        };
        let exhausted = search.run(Resources::default(), 0, 0);
        nodes = search.nodes;
        if let Some(b) = search.best {
            return Some(b);
        }
        if exhausted {
            return greedy(allocs, cands, need).filter(|g| g.len() <= max_size);
        }
    }
    None
}

/// A depth-first search for the cheapest set of exactly `size` candidates that frees `need`,
/// pruned by what the remaining candidates could free and by the priority sum a set must stay
/// under to beat the best one known (here or on another cluster).
struct Search<'a> {
    allocs: &'a [Allocation],
    cands: &'a [usize],
    /// What candidates k.. could free at most.
    suffix: &'a [Resources],
    /// The lowest priority among candidates k...
    min_prio: &'a [u64],
    need: Resources,
    size: usize,
    chosen: Vec<usize>,
    best: Option<Vec<usize>>,
    /// A set whose priority sum is above this cannot win.
    prio_bound: u64,
    nodes: usize,
}

impl Search<'_> {
    /// Returns true when the budget ran out.
    fn run(&mut self, freed: Resources, prio: u64, start: usize) -> bool {
        self.nodes += 1;
        if self.nodes > SEARCH_BUDGET {
            return true;
        }
        if self.chosen.len() == self.size {
            if self.need.fits_in(freed) {
                let set: Vec<usize> = self.chosen.iter().map(|&k| self.cands[k]).collect();
                if self
                    .best
                    .as_ref()
                    .is_none_or(|b| cheaper(self.allocs, &set, b))
                {
                    self.prio_bound = prio;
                    self.best = Some(set);
                }
            }
            return false;
        }
        let left = self.size - self.chosen.len();
        for k in start..self.cands.len() {
            if self.cands.len() - k < left {
                break;
            }
            if !self.need.fits_in(freed.plus(self.suffix[k])) {
                break;
            }
            if prio + left as u64 * self.min_prio[k] > self.prio_bound {
                break;
            }
            let a = &self.allocs[self.cands[k]];
            self.chosen.push(k);
            let out = self.run(freed.plus(a.resources), prio + u64::from(a.priority), k + 1);
            self.chosen.pop();
            if out {
                return true;
            }
        }
        false
    }
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
    // The candidates grouped by cluster in one pass (a counting sort): `order[start[c]..
    // start[c + 1]]` are cluster c's.
    let mut start = vec![0usize; clusters.len() + 1];
    for a in allocs {
        if a.priority < r.priority && a.cluster < clusters.len() {
            start[a.cluster + 1] += 1;
        }
    }
    for c in 0..clusters.len() {
        start[c + 1] += start[c];
    }
    let mut order = vec![0usize; start[clusters.len()]];
    let mut fill = start.clone();
    for (i, a) in allocs.iter().enumerate() {
        if a.priority < r.priority && a.cluster < clusters.len() {
            order[fill[a.cluster]] = i;
            fill[a.cluster] += 1;
        }
    }
    let usable = |ci: usize, c: &Cluster| {
        start[ci] != start[ci + 1] && eligible(c, r).is_ok() && r.resources.fits_in(c.capacity)
    };
    // One victim beats any two: look for single victims everywhere first, with no allocation.
    let mut single: Option<(usize, usize)> = None;
    for (ci, c) in clusters.iter().enumerate() {
        if !usable(ci, c) {
            continue;
        }
        let need = r.resources.minus(c.free());
        for &i in &order[start[ci]..start[ci + 1]] {
            if !need.fits_in(allocs[i].resources) {
                continue;
            }
            let better = match single {
                None => true,
                Some((bc, bi)) => match cost(allocs, &[i]).cmp(&cost(allocs, &[bi])) {
                    std::cmp::Ordering::Equal => (&c.name, i) < (&clusters[bc].name, bi),
                    o => o == std::cmp::Ordering::Less,
                },
            };
            if better {
                single = Some((ci, i));
            }
        }
    }
    if let Some((cluster, i)) = single {
        return Some(Preemption {
            cluster,
            victims: vec![i],
        });
    }
    let mut best: Option<Preemption> = None;
    for (ci, c) in clusters.iter().enumerate() {
        if !usable(ci, c) {
            continue;
        }
        let need = r.resources.minus(c.free());
        // A set larger than the best one so far cannot win: search no further than its size.
        let max_size = best.as_ref().map_or(usize::MAX, |b| b.victims.len());
        let mut cands = order[start[ci]..start[ci + 1]].to_vec();
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
        let bound = best.as_ref().map(|b| {
            let (n, p, _) = cost(allocs, &b.victims);
            (n, p)
        });
        let Some(victims) = victims_on(allocs, &cands, need, max_size, bound) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some(b) => match cost(allocs, &victims).cmp(&cost(allocs, &b.victims)) {
                std::cmp::Ordering::Equal => c.name < clusters[b.cluster].name,
                o => o == std::cmp::Ordering::Less,
            },
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
