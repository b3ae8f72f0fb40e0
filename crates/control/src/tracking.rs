//! What the loops know about replicas between passes, behind small types: the health of each
//! (thresholds applied), which are draining, which are being retired. Each is shared by the
//! reconciler, the health checker and the services, and locks only inside its methods.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use racer_core::health::{self, HealthState};
use tokio::sync::Notify;
use uuid::Uuid;

/// Health of each replica (or Swarm task, under `swarm:<service>:<task>`), by container id, with
/// when it was last checked.
#[derive(Debug, Default)]
pub struct Health(Mutex<HashMap<String, (HealthState, Instant)>>);

impl Health {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (HealthState, Instant)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The replica's health, if it was checked.
    pub fn get(&self, id: &str) -> Option<HealthState> {
        self.map().get(id).map(|(s, _)| *s)
    }

    /// The replica's health and when it was last checked.
    pub fn last(&self, id: &str) -> Option<(HealthState, Instant)> {
        self.map().get(id).copied()
    }

    /// Whether the replica passed its check (thresholds applied).
    pub fn is_healthy(&self, id: &str) -> bool {
        self.get(id).is_some_and(|s| s.healthy)
    }

    /// Applies one check's result with its thresholds; returns the health before (if it was
    /// known) and after.
    pub fn observe(
        &self,
        id: &str,
        passed: bool,
        success_threshold: u32,
        failure_threshold: u32,
    ) -> (Option<HealthState>, HealthState) {
        let mut map = self.map();
        let previous = map.get(id).map(|(s, _)| *s);
        let next = health::observe(
            previous.unwrap_or_default(),
            passed,
            success_threshold,
            failure_threshold,
        );
        map.insert(id.to_owned(), (next, Instant::now()));
        (previous, next)
    }

    /// Forgets a replica (it restarts, or is gone).
    pub fn forget(&self, id: &str) {
        self.map().remove(id);
    }

    /// Keeps only the replicas `keep` says yes to.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.map().retain(|id, _| keep(id));
    }

    /// Healthy or not, for every key under `prefix`, by the rest of the key (Swarm tasks of one
    /// service).
    pub fn healthy_under(&self, prefix: &str) -> HashMap<String, bool> {
        self.map()
            .iter()
            .filter_map(|(k, (h, _))| k.strip_prefix(prefix).map(|t| (t.to_owned(), h.healthy)))
            .collect()
    }
}

/// Replicas taken out of the routes, waiting out their drain time, by container id.
#[derive(Debug, Default)]
pub struct Drains(Mutex<HashMap<String, Instant>>);

impl Drains {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts draining a replica now.
    pub fn begin(&self, id: &str) {
        self.map().insert(id.to_owned(), Instant::now());
    }

    /// Whether the replica is draining.
    pub fn contains(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }

    /// Every draining replica and since when.
    pub fn snapshot(&self) -> HashMap<String, Instant> {
        self.map().clone()
    }

    /// The ids of every draining replica.
    pub fn ids(&self) -> HashSet<String> {
        self.map().keys().cloned().collect()
    }

    /// The replica is gone: forget it.
    pub fn end(&self, id: &str) {
        self.map().remove(id);
    }

    /// Keeps only the replicas `keep` says yes to.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.map().retain(|id, _| keep(id));
    }
}

/// Drained replicas being stopped and removed in the background, by container id.
#[derive(Debug, Default)]
pub struct Retiring(Mutex<HashSet<String>>);

impl Retiring {
    /// Marks a replica as being retired; false if it already was (do not retire it twice).
    pub fn begin(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned())
    }

    /// The replica is retired (or retiring failed and the next pass tries again).
    pub fn end(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// Which apps the reconciler was asked to look at since it last took the list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Woken {
    /// Every app (something changed that may concern any of them).
    pub all: bool,
    /// These apps.
    pub apps: HashSet<Uuid>,
}

impl Woken {
    /// Whether `app` was woken.
    pub fn includes(&self, app: Uuid) -> bool {
        self.all || self.apps.contains(&app)
    }
}

/// Wake-ups of the reconciler, by app: a service that changed one app's desired state wakes
/// that app only, so its fast requeue does not make every other app reconcile too.
#[derive(Debug, Default)]
pub struct Wakes {
    woken: Mutex<Woken>,
    notify: Notify,
}

impl Wakes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Woken> {
        self.woken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the reconciler for one app.
    pub fn app(&self, app: Uuid) {
        self.lock().apps.insert(app);
        self.notify.notify_one();
    }

    /// Wakes the reconciler for every app.
    pub fn all(&self) {
        self.lock().all = true;
        self.notify.notify_one();
    }

    /// Takes the wake-ups so far, leaving none.
    pub fn take(&self) -> Woken {
        std::mem::take(&mut *self.lock())
    }

    /// Resolves at the next wake-up (at once if one came since the last call).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_flips_after_its_thresholds() {
        let h = Health::default();
        assert!(!h.is_healthy("a"));
        let (before, after) = h.observe("a", true, 2, 3);
        assert_eq!(before, None);
        assert!(!after.healthy, "one success of two needed");
        h.observe("a", true, 2, 3);
        assert!(h.is_healthy("a"));
        h.observe("swarm:s1:t1", true, 1, 1);
        assert_eq!(h.healthy_under("swarm:s1:").get("t1"), Some(&true));
        h.retain(|id| !id.starts_with("swarm:"));
        assert!(h.healthy_under("swarm:s1:").is_empty());
        h.forget("a");
        assert_eq!(h.get("a"), None);
    }

    #[test]
    fn drains_and_retirements() {
        let d = Drains::default();
        d.begin("c1");
        assert!(d.contains("c1"));
        assert_eq!(d.ids().len(), 1);
        d.retain(|id| id != "c1");
        assert!(!d.contains("c1"));
        let r = Retiring::default();
        assert!(r.begin("c1"));
        assert!(!r.begin("c1"), "a replica is retired once");
        r.end("c1");
        assert!(r.begin("c1"));
    }

    #[tokio::test]
    async fn wakes_are_taken_by_app() {
        let w = Wakes::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        w.app(a);
        // The permit is kept for the next waiter.
        tokio::time::timeout(std::time::Duration::from_secs(1), w.notified())
            .await
            .unwrap();
        let got = w.take();
        assert!(got.includes(a) && !got.includes(b));
        assert_eq!(w.take(), Woken::default(), "taking leaves none");
        w.all();
        assert!(w.take().includes(b));
    }
}

/// Replicas chosen as preemption victims, by container id: who preempted them and since when.
/// They drain out of rotation like a scale-in, then leave; their app's replacement waits for
/// its re-queue job.
#[derive(Debug, Default)]
pub struct Preempted(Mutex<HashMap<String, (String, Instant)>>);

impl Preempted {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `id` preempted by `by` (an app's name); a second mark keeps the first.
    pub fn mark(&self, id: &str, by: &str) {
        self.map()
            .entry(id.to_owned())
            .or_insert_with(|| (by.to_owned(), Instant::now()));
    }

    /// Whether `id` is a victim.
    pub fn contains(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }

    /// Every victim's id.
    pub fn ids(&self) -> HashSet<String> {
        self.map().keys().cloned().collect()
    }

    /// Forgets victims for which `keep` is false (they are gone).
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.map().retain(|id, _| keep(id));
    }
}

/// Why each app's replicas that the scheduler could not place wait, by app: shown by
/// `racer deployments list` and `racer status`.
#[derive(Debug, Default)]
pub struct Waiting(Mutex<HashMap<Uuid, String>>);

impl Waiting {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records why `app` waits.
    pub fn set(&self, app: Uuid, why: String) {
        self.map().insert(app, why);
    }

    /// `app` no longer waits.
    pub fn clear(&self, app: Uuid) {
        self.map().remove(&app);
    }

    /// Why `app` waits, if it does.
    pub fn get(&self, app: Uuid) -> Option<String> {
        self.map().get(&app).cloned()
    }
}
