//! The proxy itself: the route table it serves, its settings, and what its threads share. Its
//! methods live with their concern: `listener` (accepting), `forward` (requests), `balance`
//! (replica choice).

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::headers::RequestIds;
use crate::metrics::TrafficSnapshot;
use crate::table::{Epoch, Routes};

/// The proxy: a route table and a pool of keep-alive HTTP/1.1 connections per replica.
pub struct Proxy {
    pub(crate) routes: Routes,
    pub(crate) config: Config,
    pub(crate) epoch: Epoch,
    /// Request ids: this process's random prefix, then a counter.
    pub(crate) ids: RequestIds,
    /// Upgraded connections (WebSocket) being relayed.
    pub(crate) upgrades: TaskTracker,
    /// Threads serving ([`Proxy::serve_threads`]; 1 for [`Proxy::serve`]): each gets an equal
    /// share of every replica's concurrency limit.
    pub(crate) threads: AtomicUsize,
    /// Open connections by client address ([`Config::max_connections_per_source`]).
    pub(crate) sources: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    /// `Strict-Transport-Security` for answers over TLS ([`Config::hsts_max_age`]).
    pub(crate) hsts: Option<hyper::header::HeaderValue>,
}

/// Who sent a request: the client's address (as a header value, formatted once per
/// connection) and whether it came over TLS.
pub(crate) struct Client {
    pub(crate) ip: hyper::header::HeaderValue,
    pub(crate) secure: bool,
    /// The framing of the connection's requests as sent ([`crate::framing`]).
    pub(crate) framing: Arc<crate::framing::Framing>,
}

impl Proxy {
    /// A proxy over `routes`.
    pub fn new(routes: Routes, config: Config) -> Arc<Proxy> {
        Arc::new(Proxy {
            routes,
            epoch: Epoch::default(),
            ids: RequestIds::new(),
            upgrades: TaskTracker::new(),
            threads: AtomicUsize::new(1),
            sources: Default::default(),
            hsts: (config.hsts_max_age > 0)
                .then(|| format!("max-age={}", config.hsts_max_age))
                .and_then(|v| hyper::header::HeaderValue::from_str(&v).ok()),
            config,
        })
    }

    /// The certificates it serves over TLS and the ACME answers it gives (shared with whoever
    /// holds its [`Routes`]).
    pub fn tls(&self) -> &Arc<crate::tls::Tls> {
        &self.routes.tls
    }

    /// Traffic of every routed app.
    pub fn snapshot(&self) -> Vec<TrafficSnapshot> {
        self.routes.snapshot(&self.epoch)
    }
}
