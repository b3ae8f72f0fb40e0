//! The rolling-update step, as a pure function: start new replicas one at a time (max surge 1),
//! retire an old replica for every new one that is healthy.

/// One replica of the release that should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct New {
    /// Replica index.
    pub index: u32,
    /// Passing its health check.
    pub healthy: bool,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Replica indexes of the new release to start.
    pub start: Vec<u32>,
    /// How many replicas of older releases to take out of rotation and retire.
    pub retire: usize,
}

/// Given `want` replicas of the new release, the new replicas that exist (after dead ones were
/// replaced) and the count of old replicas still serving, decides the next step. Without old
/// replicas (first deploy, scale up) every missing replica starts at once; with them, at most
/// `max_surge` unhealthy new replicas exist at a time, and old replicas stay until enough new
/// ones are healthy to carry `want`.
pub fn step(want: u32, new: &[New], old_serving: usize, max_surge: u32) -> Step {
    let healthy = new.iter().filter(|n| n.healthy).count() as u32;
    let existing: Vec<u32> = new.iter().map(|n| n.index).collect();
    let missing: Vec<u32> = (0..want).filter(|i| !existing.contains(i)).collect();
    if old_serving == 0 {
        return Step {
            start: missing,
            retire: 0,
        };
    }
    let unhealthy = new.len() as u32 - healthy;
    let room = max_surge.max(1).saturating_sub(unhealthy) as usize;
    let start = missing.into_iter().take(room).collect();
    // Old replicas needed so that healthy new + old still make `want`.
    let keep_old = want.saturating_sub(healthy) as usize;
    Step {
        start,
        retire: old_serving.saturating_sub(keep_old),
    }
}

/// Where a rollout stands after a reconcile step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every wanted replica of the new release is healthy and no old one is left: it is done.
    Done,
    /// Still going: replicas starting, or old ones draining.
    Going,
    /// Not enough new replicas passed their health check within the deadline: roll back.
    Expired,
}

/// Judges a rollout: `healthy` of `want` new replicas pass their check, `old_left` old replicas
/// still serve or drain, and the rollout started `age` ago with `deadline` to succeed.
pub fn verdict(
    healthy: usize,
    want: usize,
    old_left: usize,
    age: std::time::Duration,
    deadline: std::time::Duration,
) -> Verdict {
    if healthy == want {
        if old_left == 0 {
            Verdict::Done
        } else {
            Verdict::Going
        }
    } else if age > deadline {
        Verdict::Expired
    } else {
        Verdict::Going
    }
}

/// Why a rollback cannot happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackRefusal {
    /// The app has no release at all.
    NoRelease,
    /// The release asked for does not exist.
    NoSuchRelease(i64),
    /// No release is older than the current one.
    NothingBefore(i64),
    /// The release asked for is the current one.
    AlreadyCurrent(i64),
}

impl RollbackRefusal {
    /// What to tell the user about app `app`.
    pub fn message(&self, app: &str) -> String {
        match self {
            RollbackRefusal::NoRelease => format!("app {app} has no release yet"),
            RollbackRefusal::NoSuchRelease(n) => format!("app {app} has no release {n}"),
            RollbackRefusal::NothingBefore(c) => format!("app {app} has no release before {c}"),
            RollbackRefusal::AlreadyCurrent(c) => {
                format!("release {c} is already the current release")
            }
        }
    }

    /// The request field at fault (`to`), when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RollbackRefusal::NoSuchRelease(_) | RollbackRefusal::AlreadyCurrent(_) => Some("to"),
            RollbackRefusal::NoRelease | RollbackRefusal::NothingBefore(_) => None,
        }
    }
}

/// The release a rollback points the app at: `to` when given (it must exist and not be the
/// current one), else the newest release older than `current`.
pub fn rollback_target(
    current: Option<i64>,
    releases: &[i64],
    to: Option<i64>,
) -> Result<i64, RollbackRefusal> {
    let current = current.ok_or(RollbackRefusal::NoRelease)?;
    let target = match to {
        Some(n) if releases.contains(&n) => n,
        Some(n) => return Err(RollbackRefusal::NoSuchRelease(n)),
        None => releases
            .iter()
            .copied()
            .filter(|r| *r < current)
            .max()
            .ok_or(RollbackRefusal::NothingBefore(current))?,
    };
    if target == current {
        return Err(RollbackRefusal::AlreadyCurrent(current));
    }
    Ok(target)
}

/// How long a pass waits before it tries again to start the replicas of an app whose last
/// `failures` starts in a row the engine refused (an image without a command, a name or port
/// taken): 250 ms, doubling to at most 8 s, as a crash-looping pod backs off. Without it the
/// pass that follows a start comes at once and asks the engine a hundred times a second.
pub fn start_retry_after(failures: u32) -> std::time::Duration {
    const FIRST_MS: u64 = 250;
    const MAX_MS: u64 = 8_000;
    let doublings = failures.saturating_sub(1).min(16);
    std::time::Duration::from_millis((FIRST_MS << doublings).min(MAX_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_starts_back_off_to_a_cap() {
        let ms = |n| start_retry_after(n).as_millis();
        assert_eq!(ms(0), 250);
        assert_eq!(ms(1), 250);
        assert_eq!(ms(2), 500);
        assert_eq!(ms(3), 1_000);
        assert_eq!(ms(6), 8_000);
        assert_eq!(ms(7), 8_000);
        assert_eq!(ms(u32::MAX), 8_000);
    }

    fn n(index: u32, healthy: bool) -> New {
        New { index, healthy }
    }

    #[test]
    fn first_deploy_starts_everything() {
        assert_eq!(
            step(3, &[], 0, 1),
            Step {
                start: vec![0, 1, 2],
                retire: 0
            }
        );
    }

    #[test]
    fn rolling_one_at_a_time() {
        // two old serving, nothing new yet: start one
        assert_eq!(
            step(2, &[], 2, 1),
            Step {
                start: vec![0],
                retire: 0
            }
        );
        // the new one is not healthy yet: wait
        assert_eq!(
            step(2, &[n(0, false)], 2, 1),
            Step {
                start: vec![],
                retire: 0
            }
        );
        // it is healthy: retire one old, start the next
        assert_eq!(
            step(2, &[n(0, true)], 2, 1),
            Step {
                start: vec![1],
                retire: 1
            }
        );
        // the old one is gone; second new not healthy: keep the last old
        assert_eq!(
            step(2, &[n(0, true), n(1, false)], 1, 1),
            Step {
                start: vec![],
                retire: 0
            }
        );
        // both healthy: retire the last old
        assert_eq!(
            step(2, &[n(0, true), n(1, true)], 1, 1),
            Step {
                start: vec![],
                retire: 1
            }
        );
    }

    #[test]
    fn serving_capacity_never_drops_below_want() {
        for want in 1..5u32 {
            for healthy in 0..=want {
                for old in 0..=want as usize {
                    let new: Vec<New> = (0..healthy).map(|i| n(i, true)).collect();
                    let s = step(want, &new, old, 1);
                    let after = healthy as usize + old - s.retire;
                    assert!(
                        after >= (want as usize).min(healthy as usize + old),
                        "want {want} healthy {healthy} old {old}: {s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn rollback_picks_the_newest_older_release() {
        assert_eq!(rollback_target(Some(3), &[3, 2, 1], None), Ok(2));
        assert_eq!(rollback_target(Some(3), &[1, 3, 2], None), Ok(2));
        assert_eq!(rollback_target(Some(3), &[3, 2, 1], Some(1)), Ok(1));
        assert_eq!(
            rollback_target(Some(3), &[3, 2, 1], Some(3)),
            Err(RollbackRefusal::AlreadyCurrent(3))
        );
        assert_eq!(
            rollback_target(Some(3), &[3, 2, 1], Some(7)),
            Err(RollbackRefusal::NoSuchRelease(7))
        );
        assert_eq!(
            rollback_target(Some(1), &[1], None),
            Err(RollbackRefusal::NothingBefore(1))
        );
        assert_eq!(
            rollback_target(None, &[], None),
            Err(RollbackRefusal::NoRelease)
        );
        // Rolled back to 1 (current 1, newest 2): "before" means older than the current one.
        assert_eq!(
            rollback_target(Some(1), &[2, 1], None),
            Err(RollbackRefusal::NothingBefore(1))
        );
        assert_eq!(RollbackRefusal::AlreadyCurrent(3).field(), Some("to"));
        assert_eq!(
            RollbackRefusal::NoRelease.message("web"),
            "app web has no release yet"
        );
    }

    #[test]
    fn verdicts() {
        use std::time::Duration;
        let (d, s) = (Duration::from_secs(60), Duration::from_secs);
        assert_eq!(verdict(2, 2, 0, s(1), d), Verdict::Done);
        assert_eq!(
            verdict(2, 2, 1, s(100), d),
            Verdict::Going,
            "old ones drain"
        );
        assert_eq!(verdict(1, 2, 1, s(30), d), Verdict::Going);
        assert_eq!(verdict(1, 2, 1, s(61), d), Verdict::Expired);
    }
}
