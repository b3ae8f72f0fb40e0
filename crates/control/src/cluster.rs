//! Where apps run, behind one trait, and the runner that reconciles them app by app.
//!
//! A [`Cluster`] is a kind of place containers run: [`crate::reconcile::LocalEngine`] (one
//! container per replica on a Docker engine) or [`crate::swarm::SwarmCluster`] (one Swarm
//! service per app). The kind is chosen once, at wiring ([`crate::start`]); nothing else asks which it
//! is.
//!
//! [`run`] is shaped like kube-runtime's controller: every app has its own requeue time, a pass
//! reconciles only the apps that are due (their time came, or a service woke them), and a failed
//! app backs off on its own ([`crate::reconcile::error_policy`]) without holding up the others.
//! One app's fast requeue (2 ms after starting a replica) does not drag every other app into
//! that pass. The periodic resync (every app at least every `resync`) is what makes it correct
//! when a wake-up is lost.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use racer_core::api::App;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::{Action, Ctx, Error};

/// A kind of cluster: how its apps are converged, and the loops it needs besides.
pub trait Cluster: Send + Sync + 'static {
    /// What the cluster keeps from one pass to the next.
    type State: Default + Send;

    /// `local` or `swarm`.
    fn name(&self) -> &'static str;

    /// Starts the loops this kind needs besides the reconciler (an event follower, a health
    /// checker), on `tracker`, until `shutdown`.
    fn spawn_helpers(&self, ctx: &Ctx, shutdown: &CancellationToken, tracker: &TaskTracker);

    /// One pass: converges each app of `apps` that is in `due` and returns when to look at each
    /// again; also removes what no app of `apps` owns any more.
    fn pass(
        &self,
        ctx: &Ctx,
        state: &mut Self::State,
        apps: &[App],
        due: &HashSet<Uuid>,
    ) -> impl Future<Output = Result<Vec<(Uuid, Action)>, Error>> + Send;

    /// A pass of a process that does not hold the controller's lease ([`crate::lease`]): it
    /// changes nothing on the engines, and keeps only what this process serves current (its
    /// proxy's routes). By default it does nothing and looks again after the resync.
    fn follow(
        &self,
        ctx: &Ctx,
        state: &mut Self::State,
        apps: &[App],
        due: &HashSet<Uuid>,
    ) -> impl Future<Output = Result<Vec<(Uuid, Action)>, Error>> + Send {
        let _ = (apps, state);
        let resync = ctx.settings.resync;
        let actions = due.iter().map(|a| (*a, Action::requeue(resync))).collect();
        std::future::ready(Ok(actions))
    }
}

/// What to do after a failed reconcile: back off, never retry inline.
pub fn error_policy(e: &Error) -> std::time::Duration {
    match e.kind() {
        racer_core::ErrorKind::Unavailable => std::time::Duration::from_secs(5),
        _ => std::time::Duration::from_secs(2),
    }
}

/// When each app is due next.
///
/// Requeues of a resync or longer are put on one grid (multiples of `grid` from the runner's
/// start), so apps at rest come due together, one pass per resync as with a single loop, instead
/// of each at its own moment (a thousand passes a second for a thousand apps). Shorter requeues
/// (right after a start, while a rollout waits) keep their own time.
#[derive(Debug)]
pub struct Schedule {
    due: HashMap<Uuid, Instant>,
    epoch: Instant,
    grid: Duration,
}

impl Schedule {
    /// An empty schedule whose resync grid is `grid`, starting now.
    pub fn new(grid: Duration) -> Schedule {
        Schedule {
            due: HashMap::new(),
            epoch: Instant::now(),
            grid: grid.max(Duration::from_millis(1)),
        }
    }

    /// When an app requeued `after` at `now` is due: on the grid for a resync or longer.
    fn at(&self, now: Instant, after: Duration) -> Instant {
        let t = now + after;
        if after < self.grid {
            return t;
        }
        let since = t.saturating_duration_since(self.epoch).as_nanos();
        let grid = self.grid.as_nanos();
        let ticks = since.div_ceil(grid);
        let nanos = u64::try_from(ticks.saturating_mul(grid)).unwrap_or(u64::MAX);
        self.epoch + Duration::from_nanos(nanos)
    }

    /// The apps due at `now`: woken ones, new ones, and those whose requeue time came.
    pub fn due(&self, apps: &[App], woken: &crate::tracking::Woken, now: Instant) -> HashSet<Uuid> {
        apps.iter()
            .filter(|a| woken.includes(a.id) || self.due.get(&a.id).is_none_or(|t| *t <= now))
            .map(|a| a.id)
            .collect()
    }

    /// Records when to look at `app` again: `after` from `now`.
    pub fn requeue(&mut self, app: Uuid, now: Instant, after: Duration) {
        let at = self.at(now, after);
        self.due.insert(app, at);
    }

    /// Forgets apps that no longer exist.
    pub fn retain(&mut self, live: &HashSet<Uuid>) {
        self.due.retain(|id, _| live.contains(id));
    }

    /// How long until the first app is due, at most `cap`.
    pub fn sleep(&self, now: Instant, cap: Duration) -> Duration {
        self.due
            .values()
            .map(|t| t.saturating_duration_since(now))
            .min()
            .unwrap_or(cap)
            .min(cap)
    }
}

/// Runs the reconciler of `cluster` until `shutdown`: each pass takes the wake-ups, reads the
/// apps, converges the due ones and sleeps until the next is due (or a wake-up comes).
pub async fn run<C: Cluster>(cluster: C, ctx: Ctx, shutdown: CancellationToken) {
    let mut state = C::State::default();
    let mut schedule = Schedule::new(ctx.settings.resync);
    loop {
        let started = Instant::now();
        let woken = ctx.reconcile_wake.take();
        let sleep = match ctx.store.apps().all().await {
            Err(e) => {
                let e = Error::from(e);
                ctx.metrics.reconcile_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e.chain(), "reconcile pass cannot read the apps");
                error_policy(&e)
            }
            Ok(apps) => {
                let due = schedule.due(&apps, &woken, started);
                let passed = if ctx.leases.controller.held() {
                    cluster.pass(&ctx, &mut state, &apps, &due).await
                } else {
                    cluster.follow(&ctx, &mut state, &apps, &due).await
                };
                match passed {
                    Ok(actions) => {
                        let now = Instant::now();
                        for (app, a) in actions {
                            schedule.requeue(app, now, a.requeue_after);
                        }
                    }
                    Err(e) => {
                        let (now, retry) = (Instant::now(), error_policy(&e));
                        for app in &due {
                            schedule.requeue(*app, now, retry);
                        }
                        ctx.metrics.reconcile_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e.chain(), "reconcile pass failed");
                    }
                }
                let live: HashSet<Uuid> = apps.iter().map(|a| a.id).collect();
                schedule.retain(&live);
                schedule.sleep(Instant::now(), ctx.settings.resync)
            }
        };
        let elapsed = started.elapsed();
        ctx.metrics.reconcile_pass.observe(elapsed);
        tracing::debug!(?elapsed, "reconcile pass");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.reconcile_wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::Woken;
    use std::time::Duration;

    fn app(id: Uuid) -> App {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": "a", "org": "default", "instances": 1,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn only_due_apps_are_reconciled() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let apps = [app(a), app(b)];
        let now = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(1));
        assert_eq!(
            s.due(&apps, &Woken::default(), now).len(),
            2,
            "new apps are due"
        );
        s.requeue(a, now, Duration::from_millis(2));
        s.requeue(b, now, Duration::from_secs(1));
        let soon = now + Duration::from_millis(3);
        assert_eq!(
            s.due(&apps, &Woken::default(), soon),
            HashSet::from([a]),
            "a's fast requeue does not make b due"
        );
        let mut woken = Woken::default();
        woken.apps.insert(b);
        assert_eq!(s.due(&apps, &woken, now), HashSet::from([b]));
        woken.all = true;
        assert_eq!(s.due(&apps, &woken, now).len(), 2);
        assert_eq!(
            s.sleep(now, Duration::from_secs(1)),
            Duration::from_millis(2)
        );
        s.retain(&HashSet::from([b]));
        assert_eq!(
            s.sleep(now, Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn apps_at_rest_come_due_together() {
        let grid = Duration::from_millis(1000);
        let mut s = Schedule::new(grid);
        let start = s.epoch;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        // Two apps reconciled 300 ms apart, both at rest: due at the same grid point.
        s.requeue(a, start + Duration::from_millis(100), grid);
        s.requeue(b, start + Duration::from_millis(400), grid);
        assert_eq!(s.due[&a], s.due[&b]);
        assert_eq!(s.due[&a], start + Duration::from_millis(2000));
        // Never earlier than asked.
        assert!(s.due[&a] >= start + Duration::from_millis(1400));
        // A fast requeue keeps its own time.
        s.requeue(
            a,
            start + Duration::from_millis(100),
            Duration::from_millis(2),
        );
        assert_eq!(s.due[&a], start + Duration::from_millis(102));
    }
}
