//! What the engine runs, kept in memory so that a reconcile pass does not ask for it: one full
//! list of the install's containers, then the engine's event stream (filtered by the install
//! label) says which ones changed, and only those are read again, as a kube-rs reflector does
//! with list + watch.
//!
//! - The follower task ([`follow`]) marks a container stale on each event about it and wakes the
//!   reconciler. The reconciler marks the containers it creates, starts, stops and removes
//!   itself ([`Observer::mark`]), so its next pass never misses its own change, whatever the
//!   event delivery delay.
//! - A pass ([`Observer::snapshot`]) inspects the stale containers (concurrently), then answers
//!   from memory. Inspects are idempotent: an event seen twice, or replayed after a reconnect,
//!   only costs one more read.
//! - A pass lists everything on the first pass, after the stream reconnects (events may have
//!   been missed) and on every pass while the stream is down, so a broken stream makes racer
//!   slower, never wrong. As a safety net the follower also lists every
//!   [`crate::Settings::observer_resync`], in the background ([`Observer::resync`]), so no
//!   pass pays for it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use racer_runtime::{Observed, Runtime};
use tokio_util::sync::CancellationToken;

use crate::{Ctx, Error};

/// How often the cache is rebuilt from a full list even when the event stream is healthy, by
/// default ([`crate::Settings::observer_resync`]).
pub const FULL_RESYNC: Duration = Duration::from_secs(30);

/// How many containers a pass reads at once.
const CONCURRENT_READS: usize = 32;

/// Events that say nothing about a container's state, address or existence.
fn irrelevant(action: &str) -> bool {
    action.starts_with("exec_")
        || matches!(
            action,
            "attach" | "detach" | "resize" | "top" | "export" | "commit" | "copy"
        )
        || action.starts_with("archive-path")
        || action.starts_with("extract-to-dir")
}

/// The install's containers as last seen, by id.
#[derive(Debug, Default)]
pub struct Observer {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    containers: HashMap<String, Observed>,
    /// To read again before the next pass uses the cache.
    stale: HashSet<String>,
    /// A full list is due before the cache can be trusted.
    unsynced: bool,
    /// When the last full list was taken.
    listed_at: Option<Instant>,
    /// Whether the event stream is followed; while not, every pass lists.
    following: bool,
    /// While a background resync lists: every container marked meanwhile (read again after the
    /// list replaced the cache, since the list may predate its change).
    touched: Option<HashSet<String>>,
}

impl Observer {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The container changed (racer changed it, or an event said so): read it again before the
    /// next pass.
    pub fn mark(&self, id: &str) {
        let mut s = self.lock();
        s.stale.insert(id.to_owned());
        if let Some(t) = &mut s.touched {
            t.insert(id.to_owned());
        }
    }

    /// Forces a full list on the next pass.
    pub fn invalidate(&self) {
        self.lock().unsynced = true;
    }

    fn following(&self, yes: bool) {
        let mut s = self.lock();
        s.following = yes;
        // Whatever happened while the stream was down is only known from a list.
        s.unsynced = true;
    }

    /// Every container of the install, current as of now: stale ones read again, or everything
    /// listed when a full list is due.
    pub async fn snapshot(&self, ctx: &Ctx) -> Result<Vec<Observed>, Error> {
        let stale = {
            let mut s = self.lock();
            // The periodic resync is the follower's ([`Observer::resync`]), off the pass.
            let due = s.unsynced || !s.following || s.listed_at.is_none();
            if due {
                // Marks made from here on are newer than the list: they stay.
                s.stale.clear();
                s.unsynced = false;
                None
            } else {
                Some(std::mem::take(&mut s.stale))
            }
        };
        match stale {
            None => self.list(ctx).await?,
            Some(ids) if !ids.is_empty() => self.read(ctx, ids).await?,
            Some(_) => {}
        }
        Ok(self.lock().containers.values().cloned().collect())
    }

    async fn list(&self, ctx: &Ctx) -> Result<(), Error> {
        let started = Instant::now();
        match ctx.runtime.list(None).await {
            Ok(all) => {
                ctx.metrics.observer_lists.fetch_add(1, Ordering::Relaxed);
                let mut s = self.lock();
                s.containers = all.into_iter().map(|c| (c.id.clone(), c)).collect();
                s.listed_at = Some(started);
                Ok(())
            }
            Err(e) => {
                self.invalidate();
                Err(e.into())
            }
        }
    }

    /// Rebuilds the cache from a full list, in the background (passes go on meanwhile):
    /// whatever was marked during the list is read again by the next pass.
    pub async fn resync(&self, ctx: &Ctx) -> Result<(), Error> {
        let started = Instant::now();
        self.lock().touched = Some(HashSet::new());
        let listed = ctx.runtime.list(None).await;
        let mut s = self.lock();
        let touched = s.touched.take().unwrap_or_default();
        match listed {
            Ok(all) => {
                ctx.metrics.observer_lists.fetch_add(1, Ordering::Relaxed);
                s.containers = all.into_iter().map(|c| (c.id.clone(), c)).collect();
                s.listed_at = Some(started);
                s.stale.extend(touched);
                Ok(())
            }
            Err(e) => {
                s.unsynced = true;
                Err(e.into())
            }
        }
    }

    async fn read(&self, ctx: &Ctx, ids: HashSet<String>) -> Result<(), Error> {
        let runtime: &Runtime = &ctx.runtime;
        let results: Vec<(String, Result<Option<Observed>, racer_runtime::Error>)> =
            futures_util::stream::iter(ids)
                .map(|id| async move {
                    let r = runtime.observe(&id).await;
                    (id, r)
                })
                .buffer_unordered(CONCURRENT_READS)
                .collect()
                .await;
        ctx.metrics
            .observer_reads
            .fetch_add(results.len() as u64, Ordering::Relaxed);
        let mut s = self.lock();
        let mut failed = None;
        for (id, r) in results {
            match r {
                Ok(Some(c)) => {
                    s.containers.insert(id, c);
                }
                Ok(None) => {
                    s.containers.remove(&id);
                }
                Err(e) => {
                    s.stale.insert(id);
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// Follows the engine's events about the install's containers until `shutdown`, marking each
/// container an event names and waking the reconciler. Reconnects after a second when the
/// stream ends or fails, replaying from the last event seen.
pub async fn follow(ctx: Ctx, shutdown: CancellationToken) {
    let mut since: Option<i64> = None;
    loop {
        // Replay from a second before the last event (or now): the engine keeps recent events,
        // and a replayed one costs only a read.
        let from = since.unwrap_or_else(|| chrono::Utc::now().timestamp()) - 1;
        let mut events = ctx.runtime.container_events(Some(from));
        ctx.observer.following(true);
        ctx.reconcile_wake.all();
        let mut resync = tokio::time::interval_at(
            tokio::time::Instant::now() + ctx.settings.observer_resync,
            ctx.settings.observer_resync,
        );
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = resync.tick() => {
                    if let Err(e) = ctx.observer.resync(&ctx).await {
                        tracing::warn!(error = %e.chain(), "cannot list the engine's containers; the next pass will");
                    }
                    continue;
                }
                e = events.next() => e,
            };
            match next {
                Some(Ok(e)) => {
                    since = Some(e.time);
                    if irrelevant(&e.action) {
                        continue;
                    }
                    ctx.metrics.observer_events.fetch_add(1, Ordering::Relaxed);
                    ctx.observer.mark(&e.id);
                    ctx.reconcile_wake.all();
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "engine event stream failed; listing containers every pass until it is back");
                    break;
                }
                None => {
                    tracing::debug!("engine event stream ended; reconnecting");
                    break;
                }
            }
        }
        ctx.observer.following(false);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_and_attach_events_do_not_mark() {
        assert!(irrelevant("exec_start: sh -c true"));
        assert!(irrelevant("exec_create: ls"));
        assert!(irrelevant("attach"));
        assert!(irrelevant("archive-path"));
        for a in [
            "create", "start", "die", "kill", "stop", "destroy", "rename", "oom",
        ] {
            assert!(!irrelevant(a), "{a}");
        }
    }

    #[test]
    fn marks_survive_until_read_and_invalidate_forces_a_list() {
        let o = Observer::default();
        o.mark("a");
        o.mark("a");
        o.mark("b");
        assert_eq!(o.lock().stale.len(), 2);
        o.following(true);
        assert!(
            o.lock().unsynced,
            "a (re)connected stream needs a list first"
        );
        o.lock().unsynced = false;
        o.invalidate();
        assert!(o.lock().unsynced);
    }
}
