//! Which replica a request goes to: candidates in turn or by load (ejected ones last), passive
//! health (ejection after failures), and a slot under a replica's concurrency limit.

use std::sync::atomic::Ordering;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::error::Elapsed;

use crate::config::Balance;
use crate::proxy::Proxy;
use crate::table::{AppRoute, BackendStats};
use crate::upstream;

/// One proxy thread's share of a replica's concurrency limit `limit` when `threads` threads
/// serve (rounded up; 0: no limit).
fn limit_share(limit: usize, threads: usize) -> usize {
    limit.div_ceil(threads.clamp(1, upstream::SHARDS))
}

/// How many replicas one request without a body is tried on.
const MAX_TRIES: usize = 3;

/// [`Proxy::candidates`]' answer: replica indexes, best first.
pub(crate) struct Candidates {
    pub(crate) idx: [usize; MAX_TRIES],
    pub(crate) len: usize,
}

impl Proxy {
    /// The first [`MAX_TRIES`] candidate replicas for one request, best first, ejected ones
    /// last (so a pool whose every replica is ejected still gets tried rather than refused).
    /// On the stack: this runs for every request.
    pub(crate) fn candidates(&self, route: &AppRoute) -> Candidates {
        let n = route.backends.len();
        let mut out = Candidates {
            idx: [0; MAX_TRIES],
            len: 0,
        };
        if n == 0 {
            return out;
        }
        let start = route.next.fetch_add(1, Ordering::Relaxed);
        if n == 1 {
            out.len = 1;
            return out;
        }
        let at = |k: usize| (start + k) % n;
        // Power of two choices: of the first two in the rotating order, the less busy first.
        let mut first = [at(0), at(1)];
        if self.config.balance == Balance::LeastConnections {
            let busy = |i: usize| route.stats[i].active.load(Ordering::Relaxed);
            if busy(first[1]) < busy(first[0]) {
                first.swap(0, 1);
            }
        }
        let order = |k: usize| if k < 2 { first[k] } else { at(k) };
        let now = self.epoch.now_ms();
        let ejected = |i: usize| route.stats[i].ejected_until.load(Ordering::Relaxed) > now;
        for want_ejected in [false, true] {
            for k in 0..n {
                let i = order(k);
                if ejected(i) == want_ejected {
                    out.idx[out.len] = i;
                    out.len += 1;
                    if out.len == MAX_TRIES {
                        return out;
                    }
                }
            }
        }
        out
    }

    pub(crate) fn record_failure(&self, s: &BackendStats) {
        let f = s.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if f >= self.config.eject_after {
            self.eject(s);
        }
    }

    /// Leaves a replica out for [`crate::Config::eject_for`] (it is still tried when every replica is
    /// out).
    pub(crate) fn eject(&self, s: &BackendStats) {
        let until = self.epoch.now_ms() + self.config.eject_for.as_millis() as u64;
        s.ejected_until.store(until, Ordering::Relaxed);
        s.failures.store(0, Ordering::Relaxed);
    }

    /// A slot for one request under replica `i`'s concurrency limit (this thread's share of
    /// it), waited for in arrival order: `Ok(None)` without a limit, `Err` once the wait
    /// outlasts [`Config::queue_timeout`](crate::config::Config::queue_timeout).
    pub(crate) async fn admit(
        &self,
        route: &AppRoute,
        i: usize,
    ) -> Result<Option<OwnedSemaphorePermit>, Elapsed> {
        let limit = route.backends[i]
            .concurrency
            .map_or(self.config.replica_concurrency, |n| n as usize);
        let per_thread = limit_share(limit, self.threads.load(Ordering::Relaxed));
        tokio::time::timeout(
            self.config.queue_timeout,
            route.stats[i].pool.admit(per_thread, &route.metrics.queued),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::table::{Backend, Routes};
    use std::net::SocketAddr;

    #[test]
    fn candidates_rotate_put_ejected_replicas_last_and_stop_at_three() {
        let routes = Routes::default();
        let backends: Vec<Backend> = (0..5)
            .map(|i| Backend::new(SocketAddr::from(([127, 0, 0, 1], 9000 + i))))
            .collect();
        routes.set("web", backends);
        let proxy = Proxy::new(routes.clone(), Config::default());
        let table = routes.table.load();
        let route = table.apps.get("web").unwrap();
        let take = |c: Candidates| c.idx[..c.len].to_vec();
        assert_eq!(take(proxy.candidates(route)), [0, 1, 2]);
        assert_eq!(take(proxy.candidates(route)), [1, 2, 3]);
        // 2 and 3 ejected: skipped while others are left, in rotating order.
        for i in [2, 3] {
            route.stats[i]
                .ejected_until
                .store(u64::MAX, Ordering::Relaxed);
        }
        assert_eq!(take(proxy.candidates(route)), [4, 0, 1]);
        // Every replica ejected: still tried, rather than refused.
        for s in &route.stats {
            s.ejected_until.store(u64::MAX, Ordering::Relaxed);
        }
        assert_eq!(take(proxy.candidates(route)), [3, 4, 0]);
        // One replica: always it.
        routes.set(
            "one",
            vec![Backend::new(SocketAddr::from(([127, 0, 0, 1], 9100)))],
        );
        let table = routes.table.load();
        assert_eq!(take(proxy.candidates(table.apps.get("one").unwrap())), [0]);
    }
}
