//! What an app's replicas should do next, as a pure function: which containers to keep, start
//! again, remove, take out of rotation and retire, and which replica indexes to start. The
//! reconciler reads the containers it runs, asks [`replicas`], and carries out the answer.
//!
//! The rolling update itself (how many new replicas to start while old ones serve, how many old
//! ones may go) is [`crate::rollout::step`]; this adds the bookkeeping around it: one container
//! per replica index, dead ones restarted or removed, drains waited out.

use crate::rollout;

/// Whether a container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Running.
    Running,
    /// The engine is restarting it (its restart policy): leave it be.
    Restarting,
    /// Created, exited or dead.
    Stopped,
}

/// Where an old replica is in its drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// In rotation.
    No,
    /// Out of rotation, still finishing in-flight requests.
    Draining,
    /// Out of rotation and its drain time is over: stop it.
    Done,
}

/// One container of the app, as the reconciler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// The container id.
    pub id: String,
    /// Its release (`racer.release`).
    pub release: Option<i64>,
    /// Its replica index (`racer.replica`).
    pub index: Option<u32>,
    /// Whether it runs.
    pub run: Run,
    /// Whether it passed its health check (thresholds applied).
    pub healthy: bool,
    /// Where it is in its drain.
    pub drain: Drain,
}

/// What to do with an app's containers now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Containers to stop and remove now: a second container for one index, an index past the
    /// replica count, an old replica that died.
    pub remove: Vec<String>,
    /// Containers of the current release that died: start them again (keeping name and port).
    pub restart: Vec<String>,
    /// Replica indexes of the current release to create.
    pub start: Vec<u32>,
    /// Old replicas to take out of rotation now (they drain, then retire).
    pub drain: Vec<String>,
    /// Old replicas whose drain is over: stop and remove them.
    pub retire: Vec<String>,
    /// Old replicas that stay in rotation.
    pub serving: Vec<String>,
    /// Current-release replicas kept (running or restarting), by index.
    pub keep: Vec<(u32, String)>,
    /// Current-release replicas that passed their health check.
    pub healthy: usize,
    /// Old replicas still draining (not yet due to retire).
    pub draining: usize,
    /// The newest old release still serving before this step: where a failed rollout goes back.
    pub previous_release: Option<i64>,
}

impl Plan {
    /// Whether the plan changes anything, or waits on something (a drain, a restart), so the
    /// reconciler should look again soon.
    pub fn changes(&self) -> bool {
        !(self.remove.is_empty()
            && self.restart.is_empty()
            && self.start.is_empty()
            && self.drain.is_empty()
            && self.retire.is_empty())
            || self.draining > 0
    }

    /// Old replicas left after this step (serving or draining).
    pub fn old_left(&self) -> usize {
        self.serving.len() + self.draining
    }
}

/// Decides the next step for an app that wants `want` replicas of release `current`, given every
/// container it has (`observed`), with at most `max_surge` unhealthy new replicas at a time while
/// old ones serve.
pub fn replicas(current: i64, want: u32, observed: &[Replica], max_surge: u32) -> Plan {
    let mut plan = Plan::default();
    let want_n = want as usize;
    // One container per replica index; prefer a running one; everything else goes.
    let mut slots: Vec<Option<&Replica>> = vec![None; want_n];
    let mut old: Vec<&Replica> = Vec::new();
    for r in observed {
        if r.release != Some(current) {
            old.push(r);
            continue;
        }
        match r.index.map(|i| i as usize) {
            Some(i) if i < want_n => match slots[i] {
                None => slots[i] = Some(r),
                Some(existing) if existing.run != Run::Running && r.run == Run::Running => {
                    plan.remove.push(existing.id.clone());
                    slots[i] = Some(r);
                }
                Some(_) => plan.remove.push(r.id.clone()),
            },
            _ => plan.remove.push(r.id.clone()),
        }
    }
    let mut views = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let Some(r) = slot else { continue };
        let index = i as u32;
        if r.run == Run::Stopped {
            plan.restart.push(r.id.clone());
            views.push(rollout::New {
                index,
                healthy: false,
            });
            continue;
        }
        let healthy = r.healthy && r.run == Run::Running;
        plan.healthy += usize::from(healthy);
        plan.keep.push((index, r.id.clone()));
        views.push(rollout::New { index, healthy });
    }
    // Old replicas: dead ones go now; drained ones retire; draining ones wait; the rest serve.
    let mut serving: Vec<&Replica> = Vec::new();
    for r in old {
        if r.run != Run::Running {
            plan.remove.push(r.id.clone());
            continue;
        }
        match r.drain {
            Drain::Done => plan.retire.push(r.id.clone()),
            Drain::Draining => plan.draining += 1,
            Drain::No => serving.push(r),
        }
    }
    plan.previous_release = serving.iter().filter_map(|r| r.release).max();
    // Retire the newest-indexed old replicas first.
    serving.sort_by_key(|r| std::cmp::Reverse((r.release, r.index)));
    let step = rollout::step(want, &views, serving.len(), max_surge);
    plan.start = step.start;
    plan.drain = serving
        .iter()
        .take(step.retire)
        .map(|r| r.id.clone())
        .collect();
    plan.serving = serving
        .iter()
        .skip(step.retire)
        .map(|r| r.id.clone())
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn r(id: &str, release: i64, index: u32, run: Run, healthy: bool, drain: Drain) -> Replica {
        Replica {
            id: id.into(),
            release: Some(release),
            index: Some(index),
            run,
            healthy,
            drain,
        }
    }

    #[test]
    fn first_deploy_starts_every_replica() {
        let p = replicas(1, 3, &[], 1);
        assert_eq!(p.start, vec![0, 1, 2]);
        assert!(p.changes());
    }

    #[test]
    fn converged_app_changes_nothing() {
        let obs = [
            r("a", 1, 0, Run::Running, true, Drain::No),
            r("b", 1, 1, Run::Running, true, Drain::No),
        ];
        let p = replicas(1, 2, &obs, 1);
        assert!(!p.changes(), "{p:?}");
        assert_eq!(p.healthy, 2);
        assert_eq!(p.keep.len(), 2);
    }

    #[test]
    fn duplicates_and_extra_indexes_go_and_dead_ones_restart() {
        let obs = [
            r("dead0", 1, 0, Run::Stopped, false, Drain::No),
            r("live0", 1, 0, Run::Running, true, Drain::No),
            r("dead1", 1, 1, Run::Stopped, false, Drain::No),
            r("extra", 1, 5, Run::Running, true, Drain::No),
        ];
        let p = replicas(1, 2, &obs, 1);
        assert_eq!(p.remove, vec!["dead0".to_string(), "extra".to_string()]);
        assert_eq!(p.restart, vec!["dead1".to_string()]);
        assert_eq!(p.keep, vec![(0, "live0".to_string())]);
        assert!(p.start.is_empty());
    }

    #[test]
    fn a_rollout_drains_one_old_replica_per_healthy_new_one() {
        let obs = [
            r("old0", 1, 0, Run::Running, true, Drain::No),
            r("old1", 1, 1, Run::Running, true, Drain::No),
            r("new0", 2, 0, Run::Running, true, Drain::No),
        ];
        let p = replicas(2, 2, &obs, 1);
        assert_eq!(p.start, vec![1]);
        assert_eq!(p.drain, vec!["old1".to_string()], "newest index first");
        assert_eq!(p.serving, vec!["old0".to_string()]);
        assert_eq!(p.previous_release, Some(1));
    }

    #[test]
    fn drained_replicas_retire_and_dead_old_ones_are_removed() {
        let obs = [
            r("done", 1, 0, Run::Running, true, Drain::Done),
            r("wait", 1, 1, Run::Running, true, Drain::Draining),
            r("dead", 1, 2, Run::Stopped, false, Drain::No),
            r("new0", 2, 0, Run::Running, true, Drain::No),
        ];
        let p = replicas(2, 1, &obs, 1);
        assert_eq!(p.retire, vec!["done".to_string()]);
        assert_eq!(p.remove, vec!["dead".to_string()]);
        assert_eq!(p.draining, 1);
        assert!(p.changes(), "a drain is still running");
        assert_eq!(p.old_left(), 1);
    }

    fn replica() -> impl Strategy<Value = (i64, Option<u32>, u8, bool, u8)> {
        (
            1i64..4,
            proptest::option::of(0u32..6),
            0u8..3,
            any::<bool>(),
            0u8..3,
        )
    }

    proptest! {
        #[test]
        fn every_container_gets_exactly_one_fate(
            current in 1i64..4,
            want in 0u32..6,
            raw in proptest::collection::vec(replica(), 0..12),
            surge in 1u32..3,
        ) {
            let observed: Vec<Replica> = raw.iter().enumerate().map(|(n, (rel, idx, run, healthy, drain))| Replica {
                id: format!("c{n}"),
                release: Some(*rel),
                index: *idx,
                run: [Run::Running, Run::Restarting, Run::Stopped][*run as usize],
                healthy: *healthy,
                drain: [Drain::No, Drain::Draining, Drain::Done][*drain as usize],
            }).collect();
            let p = replicas(current, want, &observed, surge);
            // Fates: remove, restart, keep, drain, retire, serving, or still draining.
            let mut seen = HashSet::new();
            let named: Vec<&String> = p.remove.iter()
                .chain(&p.restart)
                .chain(p.keep.iter().map(|(_, id)| id))
                .chain(&p.drain)
                .chain(&p.retire)
                .chain(&p.serving)
                .collect();
            for id in &named {
                prop_assert!(seen.insert((*id).clone()), "{id} has two fates: {p:?}");
            }
            let still_draining = observed.iter().filter(|r| r.release != Some(current) && r.run == Run::Running && r.drain == Drain::Draining).count();
            prop_assert_eq!(named.len() + still_draining, observed.len());
            prop_assert_eq!(p.draining, still_draining);

            // At most one container per index of the current release, each below `want`.
            let mut indexes: Vec<u32> = p.keep.iter().map(|(i, _)| *i).collect();
            for id in &p.restart {
                let c = observed.iter().find(|r| &r.id == id).unwrap();
                indexes.push(c.index.unwrap());
            }
            let before = indexes.len();
            for i in &p.start { indexes.push(*i); }
            let unique: HashSet<u32> = indexes.iter().copied().collect();
            prop_assert_eq!(unique.len(), indexes.len(), "an index twice: {:?}", p);
            prop_assert!(indexes.iter().all(|i| *i < want));
            prop_assert!(before <= want as usize);

            // Never take traffic below what was healthy: old replicas only leave rotation when
            // healthy new ones carry `want`.
            let old_serving_before = p.drain.len() + p.serving.len();
            if old_serving_before > 0 {
                prop_assert!(p.healthy + p.serving.len() >= (want as usize).min(p.healthy + old_serving_before));
                // While old replicas serve, at most `surge` unhealthy new ones exist.
                let unhealthy_new = p.keep.len() + p.restart.len() - p.healthy + p.start.len();
                prop_assert!(unhealthy_new as u32 <= surge.max(unhealthy_new as u32 - p.start.len() as u32));
            } else {
                // Without old replicas every missing index starts at once.
                prop_assert_eq!(p.keep.len() + p.restart.len() + p.start.len(), want as usize);
            }
        }
    }
}
