//! racer's built-in L7 proxy. Every app answers at `http://<app>.<domain>:<port>/` (Host routing)
//! and at `http://<bind>:<port>/apps/<app>/` (path routing, prefix stripped,
//! `X-Forwarded-Prefix` set). The route table is rebuilt by the reconciler from the replicas that
//! answer and swapped in atomically: the request path takes no lock.

mod route;
mod upstream;

pub use route::{route_for, Target};
pub use upstream::ProxyBody;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One replica that may receive traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Where it listens (its address on the engine's network).
    pub addr: SocketAddr,
    /// Requests it is sent at once (its release's `concurrency`): `None` for the proxy's
    /// [`Config::replica_concurrency`], 0 for no limit.
    pub concurrency: Option<u32>,
}

impl Backend {
    /// A replica at `addr` under the proxy's default concurrency limit.
    pub fn new(addr: SocketAddr) -> Backend {
        Backend {
            addr,
            concurrency: None,
        }
    }
}

/// What the proxy knows of one replica: in-flight requests, passive health.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Requests in flight.
    pub active: AtomicUsize,
    /// Requests sent.
    pub requests: AtomicU64,
    /// Consecutive 5xx answers or connection failures.
    failures: AtomicU32,
    /// Milliseconds since the proxy's epoch until which the replica is ejected.
    ejected_until: AtomicU64,
    /// Idle keep-alive connections to the replica.
    pool: Arc<upstream::Pool>,
}

/// The replicas of one app and its round-robin position.
#[derive(Debug, Default)]
struct AppRoute {
    backends: Vec<Backend>,
    stats: Vec<Arc<BackendStats>>,
    next: AtomicUsize,
    metrics: Arc<AppMetrics>,
}

/// Latency histogram bucket bounds, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/// Per-app traffic counters, kept in memory for the autoscaler and `/metrics`.
#[derive(Debug, Default)]
pub struct AppMetrics {
    /// Requests answered, by status class: index 0 = 1xx ... 4 = 5xx.
    pub by_class: [AtomicU64; 5],
    /// Requests in flight.
    pub active: AtomicUsize,
    /// Requests waiting for a replica under its concurrency limit.
    pub queued: AtomicUsize,
    /// Latency histogram: counts per bucket of [`LATENCY_BUCKETS_MS`], plus one for larger.
    pub latency: [AtomicU64; 13],
    /// Sum of latencies, microseconds.
    pub latency_sum_us: AtomicU64,
}

/// A point-in-time copy of one app's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSnapshot {
    /// The app.
    pub app: String,
    /// Requests by status class (1xx..5xx).
    pub by_class: [u64; 5],
    /// In flight (the queued ones included).
    pub active: usize,
    /// Waiting for a replica under its concurrency limit.
    pub queued: usize,
    /// Histogram counts (not cumulative) per bucket, then the overflow bucket.
    pub latency: [u64; 13],
    /// Sum of latencies in seconds.
    pub latency_sum_seconds: f64,
    /// Per replica: address, requests, in flight, ejected now.
    pub replicas: Vec<(SocketAddr, u64, usize, bool)>,
}

/// The route table: app name → replicas that answer. Rebuilt, never edited in place.
#[derive(Debug, Default)]
pub struct RouteTable {
    apps: HashMap<String, Arc<AppRoute>>,
}

/// A shared, atomically swapped route table.
#[derive(Debug, Default, Clone)]
pub struct Routes {
    table: Arc<ArcSwap<RouteTable>>,
}

impl Routes {
    /// Replaces one app's backends (an empty list: the app exists but nothing answers → 503).
    pub fn set(&self, app: &str, backends: Vec<Backend>) {
        let current = self.table.load();
        if current
            .apps
            .get(app)
            .is_some_and(|r| r.backends == backends)
        {
            return;
        }
        // Keep what is known of replicas that stay, and the app's counters.
        let previous = current.apps.get(app);
        let stats = backends
            .iter()
            .map(|b| {
                previous
                    .and_then(|p| {
                        p.backends
                            .iter()
                            .position(|x| x == b)
                            .map(|i| p.stats[i].clone())
                    })
                    .unwrap_or_default()
            })
            .collect();
        let metrics = previous.map(|p| p.metrics.clone()).unwrap_or_default();
        let mut apps = current.apps.clone();
        apps.insert(
            app.to_owned(),
            Arc::new(AppRoute {
                backends,
                stats,
                next: AtomicUsize::new(0),
                metrics,
            }),
        );
        self.table.store(Arc::new(RouteTable { apps }));
    }

    /// Traffic of every routed app.
    pub fn snapshot(&self, epoch: &Epoch) -> Vec<TrafficSnapshot> {
        let table = self.table.load();
        let now = epoch.now_ms();
        let mut out: Vec<TrafficSnapshot> = table
            .apps
            .iter()
            .map(|(name, r)| {
                let m = &r.metrics;
                TrafficSnapshot {
                    app: name.clone(),
                    by_class: std::array::from_fn(|i| m.by_class[i].load(Ordering::Relaxed)),
                    active: m.active.load(Ordering::Relaxed),
                    queued: m.queued.load(Ordering::Relaxed),
                    latency: std::array::from_fn(|i| m.latency[i].load(Ordering::Relaxed)),
                    latency_sum_seconds: m.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
                    replicas: r
                        .backends
                        .iter()
                        .zip(&r.stats)
                        .map(|(b, s)| {
                            (
                                b.addr,
                                s.requests.load(Ordering::Relaxed),
                                s.active.load(Ordering::Relaxed),
                                s.ejected_until.load(Ordering::Relaxed) > now,
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.app.cmp(&b.app));
        out
    }

    /// Keeps only the apps named (deleted apps disappear → 404).
    pub fn retain(&self, live: &[String]) {
        let current = self.table.load();
        let live: std::collections::HashSet<&str> = live.iter().map(String::as_str).collect();
        if current.apps.keys().all(|k| live.contains(k.as_str())) {
            return;
        }
        let apps = current
            .apps
            .iter()
            .filter(|(k, _)| live.contains(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.table.store(Arc::new(RouteTable { apps }));
    }

    /// An app's request count and latency histogram so far (for rates over an interval).
    pub fn counters(&self, app: &str) -> Option<(u64, [u64; 13])> {
        let table = self.table.load();
        let m = &table.apps.get(app)?.metrics;
        let total = m.by_class.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        Some((
            total,
            std::array::from_fn(|i| m.latency[i].load(Ordering::Relaxed)),
        ))
    }

    /// The backends of an app, if it is routed.
    pub fn backends(&self, app: &str) -> Option<Vec<Backend>> {
        self.table.load().apps.get(app).map(|r| r.backends.clone())
    }
}

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Apps answer at `<app>.<domain>`.
    pub domain: String,
    /// How long to wait for an upstream's response headers.
    pub upstream_timeout: Duration,
    /// How a replica is chosen.
    pub balance: Balance,
    /// How long a replica is left out after failing requests (passive health).
    pub eject_for: Duration,
    /// Consecutive 5xx answers or connection failures that eject a replica.
    pub eject_after: u32,
    /// How long a client may take to send a request's headers (idle keep-alive connections are
    /// closed after it too).
    pub header_timeout: Duration,
    /// Requests in flight to one replica at most (0: no limit); more wait in the proxy, in
    /// arrival order. Split evenly between the proxy threads.
    pub replica_concurrency: usize,
    /// How long a request may wait for a replica under its limit before it gets a 503.
    pub queue_timeout: Duration,
}

/// [`Config::replica_concurrency`]'s default, as Cloud Run's per-instance default: an app is
/// sent at most this many requests at once per replica.
pub const DEFAULT_REPLICA_CONCURRENCY: usize = 80;

/// How a replica is chosen among the healthy ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// In turn.
    RoundRobin,
    /// The less busy of two picked at random (power of two choices).
    LeastConnections,
}

impl std::str::FromStr for Balance {
    type Err = String;
    fn from_str(s: &str) -> Result<Balance, String> {
        match s {
            "round-robin" | "round_robin" | "rr" => Ok(Balance::RoundRobin),
            "least-connections" | "least_conn" | "p2c" => Ok(Balance::LeastConnections),
            other => Err(format!(
                "unknown balancing {other:?}: use round-robin or least-connections"
            )),
        }
    }
}

/// The proxy's clock for ejection deadlines.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(Instant);

impl Default for Epoch {
    fn default() -> Epoch {
        Epoch(Instant::now())
    }
}

impl Epoch {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            domain: "localhost".into(),
            upstream_timeout: Duration::from_secs(60),
            balance: Balance::RoundRobin,
            eject_for: Duration::from_secs(5),
            eject_after: 5,
            header_timeout: Duration::from_secs(30),
            replica_concurrency: DEFAULT_REPLICA_CONCURRENCY,
            queue_timeout: Duration::from_secs(10),
        }
    }
}

/// One proxy thread's share of a replica's concurrency limit `limit` when `threads` threads
/// serve (rounded up; 0: no limit).
fn limit_share(limit: usize, threads: usize) -> usize {
    limit.div_ceil(threads.clamp(1, upstream::SHARDS))
}

/// How many replicas one request without a body is tried on.
const MAX_TRIES: usize = 3;

/// [`Proxy::candidates`]' answer: replica indexes, best first.
struct Candidates {
    idx: [usize; MAX_TRIES],
    len: usize,
}

/// The proxy: a route table and a pool of keep-alive HTTP/1.1 connections per replica.
pub struct Proxy {
    routes: Routes,
    config: Config,
    epoch: Epoch,
    /// Request ids: this process's random prefix, then a counter.
    ids: RequestIds,
    /// Upgraded connections (WebSocket) being relayed.
    upgrades: TaskTracker,
    /// Threads serving ([`Proxy::serve_threads`]; 1 for [`Proxy::serve`]): each gets an equal
    /// share of every replica's concurrency limit.
    threads: AtomicUsize,
}

/// Unique request ids without asking the kernel for randomness each time: 32 hex digits, a
/// random prefix drawn once per process and a counter.
struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
        let (prefix, _) = uuid::Uuid::new_v4().as_u64_pair();
        RequestIds {
            prefix,
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = [0u8; 32];
        for (i, word) in [self.prefix, n].into_iter().enumerate() {
            for j in 0..16 {
                out[i * 16 + j] = HEX[((word >> (60 - 4 * j)) & 0xf) as usize];
            }
        }
        HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

impl Proxy {
    /// A proxy over `routes`.
    pub fn new(routes: Routes, config: Config) -> Arc<Proxy> {
        Arc::new(Proxy {
            routes,
            epoch: Epoch::default(),
            ids: RequestIds::new(),
            upgrades: TaskTracker::new(),
            threads: AtomicUsize::new(1),
            config,
        })
    }

    /// Traffic of every routed app.
    pub fn snapshot(&self) -> Vec<TrafficSnapshot> {
        self.routes.snapshot(&self.epoch)
    }

    /// The first [`MAX_TRIES`] candidate replicas for one request, best first, ejected ones
    /// last (so a pool whose every replica is ejected still gets tried rather than refused).
    /// On the stack: this runs for every request.
    fn candidates(&self, route: &AppRoute) -> Candidates {
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

    fn record_failure(&self, s: &BackendStats) {
        let f = s.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if f >= self.config.eject_after {
            let until = self.epoch.now_ms() + self.config.eject_for.as_millis() as u64;
            s.ejected_until.store(until, Ordering::Relaxed);
            s.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Serves connections from `listener` until `shutdown`; connections are tracked.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let Some((stream, peer)) = accept(&listener, &shutdown).await else {
                return;
            };
            self.spawn_connection(stream, peer, &shutdown, &tracker, None);
        }
    }

    /// Serves one client connection in a task on the current runtime; `load` (counted up by the
    /// caller when it chose this thread) is counted down when the connection ends.
    fn spawn_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
        load: Option<Arc<AtomicUsize>>,
    ) {
        let _ = stream.set_nodelay(true);
        let me = self.clone();
        let header_timeout = self.config.header_timeout;
        let stop = shutdown.clone();
        tracker.spawn(async move {
            // The client's address, formatted once per connection.
            let peer_ip = peer_ip_value(peer);
            let svc = service_fn(move |req| {
                let me = me.clone();
                let peer_ip = peer_ip.clone();
                async move { Ok::<_, Infallible>(me.route(req, &peer_ip).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
                }
            }
            if let Some(l) = load {
                l.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }

    /// Serves on `threads` threads, each with its own single-threaded runtime, as nginx's
    /// workers do: a connection lives on one thread with its upstream connections, so a
    /// request never hops between threads (a multi-threaded runtime moves wake-ups across its
    /// workers). Every thread accepts from the same listening socket; a thread that accepts a
    /// connection while another serves fewer hands it over (once, at accept), because a burst
    /// of new connections otherwise lands on whichever thread woke first. Each thread drains
    /// its connections on `shutdown`; `tracker` holds one task per thread, done when the
    /// thread is.
    pub fn serve_threads(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        threads: usize,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let threads = threads.max(1);
        self.threads.store(threads, Ordering::Relaxed);
        let loads: Arc<Vec<Arc<AtomicUsize>>> =
            Arc::new((0..threads).map(|_| Arc::default()).collect());
        let mut inboxes = Vec::with_capacity(threads);
        let mut senders = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Handoff>();
            senders.push(tx);
            inboxes.push(rx);
        }
        let senders = Arc::new(senders);
        for (me_index, mut inbox) in inboxes.into_iter().enumerate() {
            let listener = listener.try_clone()?;
            let me = self.clone();
            let stop = shutdown.clone();
            let (loads, senders) = (loads.clone(), senders.clone());
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("racer-proxy-{me_index}"))
                .spawn(move || {
                    upstream::use_shard(me_index);
                    rt.block_on(async move {
                        let listener = match TcpListener::from_std(listener) {
                            Ok(l) => l,
                            Err(e) => {
                                tracing::error!(error = %e, "proxy thread cannot listen");
                                return;
                            }
                        };
                        let local = TaskTracker::new();
                        loop {
                            tokio::select! {
                                accepted = accept(&listener, &stop) => {
                                    let Some((stream, peer)) = accepted else { break };
                                    // Counted at once, so that the next accept (on any thread)
                                    // sees it even before the chosen thread takes it.
                                    let target = least_loaded(&loads, me_index);
                                    loads[target].fetch_add(1, Ordering::Relaxed);
                                    if target != me_index {
                                        let sent = stream
                                            .into_std()
                                            .ok()
                                            .is_some_and(|std| senders[target].send((std, peer)).is_ok());
                                        if !sent {
                                            // That thread is stopping: the connection closes.
                                            loads[target].fetch_sub(1, Ordering::Relaxed);
                                        }
                                        continue;
                                    }
                                    me.spawn_connection(stream, peer, &stop, &local, Some(loads[me_index].clone()));
                                }
                                Some((std, peer)) = inbox.recv() => {
                                    match TcpStream::from_std(std) {
                                        Ok(stream) => me.spawn_connection(stream, peer, &stop, &local, Some(loads[me_index].clone())),
                                        Err(e) => {
                                            loads[me_index].fetch_sub(1, Ordering::Relaxed);
                                            tracing::warn!(error = %e, "proxy handoff failed");
                                        }
                                    }
                                }
                            }
                        }
                        local.close();
                        local.wait().await;
                    });
                    let _ = done_tx.send(());
                })?;
            tracker.spawn(async move {
                let _ = done_rx.await;
            });
        }
        Ok(())
    }

    /// Routes one request from `peer`.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        self.route(req, &peer_ip_value(peer)).await
    }

    async fn route(
        &self,
        mut req: Request<Incoming>,
        peer_ip: &HeaderValue,
    ) -> Response<ProxyBody> {
        // Cheap copies (reference counts): the target borrows from them while `req` changes.
        let host_value = req.headers().get(header::HOST).cloned();
        let uri = req.uri().clone();
        let host = host_value
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        let Some(target) = route_for(host, path_and_query, &self.config.domain) else {
            return page(
                StatusCode::NOT_FOUND,
                "no app here: use http://<app>.localhost:PORT/ or /apps/<app>/\n",
            );
        };
        if let Some(location) = target.redirect {
            let mut r = page(StatusCode::PERMANENT_REDIRECT, "");
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        let table = self.routes.table.load();
        let Some(route) = table.apps.get(&*target.app) else {
            return page(
                StatusCode::NOT_FOUND,
                &format!("no app named {:?}\n", target.app),
            );
        };
        if route.backends.is_empty() {
            let mut r = page(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{} has no healthy replica right now\n", target.app),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
        // The upstream request target: the client's, or what is left after the path prefix.
        let upstream_uri = if target.prefix.is_some() {
            match hyper::Uri::try_from(target.path) {
                Ok(u) => u,
                Err(_) => return page(StatusCode::BAD_REQUEST, "bad request target\n"),
            }
        } else if uri.scheme().is_some() || uri.authority().is_some() {
            // absolute-form (`GET http://host/path`): origin-form upstream
            match uri.path_and_query() {
                Some(p) => hyper::Uri::from(p.clone()),
                None => hyper::Uri::from_static("/"),
            }
        } else {
            uri.clone()
        };
        *req.uri_mut() = upstream_uri;
        {
            let headers = req.headers_mut();
            if let Some(host) = &host_value {
                headers.insert(X_FORWARDED_HOST, host.clone());
            }
            if let Some(prefix) = target.prefix {
                if let Ok(v) = HeaderValue::from_str(prefix) {
                    headers.insert(X_FORWARDED_PREFIX, v);
                }
            }
        }
        let started = Instant::now();
        let metrics = &route.metrics;
        metrics.active.fetch_add(1, Ordering::Relaxed);
        let resp = self.forward(req, route, &target.app, peer_ip).await;
        metrics.active.fetch_sub(1, Ordering::Relaxed);
        let class = (resp.status().as_u16() / 100).clamp(1, 5) as usize - 1;
        metrics.by_class[class].fetch_add(1, Ordering::Relaxed);
        let us = started.elapsed().as_micros() as u64;
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| us <= b * 1000)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        metrics.latency[bucket].fetch_add(1, Ordering::Relaxed);
        metrics.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        resp
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        route: &AppRoute,
        app: &str,
        peer_ip: &HeaderValue,
    ) -> Response<ProxyBody> {
        let upgrade = is_upgrade(req.headers());
        let request_id = match req.headers().get(X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => self.ids.next(),
        };
        // Only requests without a body can be sent again to another replica.
        let retryable = !upgrade
            && matches!(
                *req.method(),
                hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS
            )
            && !req.headers().contains_key(header::TRANSFER_ENCODING)
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0");
        let client_upgrade = if upgrade {
            Some(hyper::upgrade::on(&mut req))
        } else {
            None
        };
        let (parts, body) = req.into_parts();
        let mut parts = Some(parts);
        if let Some(p) = parts.as_mut() {
            let headers = &mut p.headers;
            if !upgrade {
                strip_hop_by_hop(headers);
            }
            append_forwarded_for(headers, peer_ip);
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
            headers.insert(X_REQUEST_ID, request_id.clone());
        }
        // The retryable request has no body: each try sends an empty one.
        let mut body = if retryable { None } else { Some(body) };
        let candidates = self.candidates(route);
        let candidates = &candidates.idx[..candidates.len];
        let tries = if retryable { candidates.len() } else { 1 };
        for (k, &i) in candidates.iter().take(tries).enumerate() {
            let backend = &route.backends[i];
            let stats = &route.stats[i];
            // A copy of the request head only if another try may need it.
            let p = if k + 1 < tries {
                parts.clone()
            } else {
                parts.take()
            };
            let Some(mut p) = p else { break };
            if !p.headers.contains_key(header::HOST) {
                if let Ok(v) = HeaderValue::from_str(&backend.addr.to_string()) {
                    p.headers.insert(header::HOST, v);
                }
            }
            let b = if retryable {
                Either::Left(Empty::new())
            } else {
                match body.take() {
                    Some(b) => Either::Right(b),
                    None => break,
                }
            };
            let upstream = Request::from_parts(p, b);
            // A slot under the replica's concurrency limit (upgrades are long-lived and not
            // counted), waited for in arrival order.
            let permit = if upgrade {
                None
            } else {
                let limit = backend
                    .concurrency
                    .map_or(self.config.replica_concurrency, |n| n as usize);
                let per_thread = limit_share(limit, self.threads.load(Ordering::Relaxed));
                match tokio::time::timeout(
                    self.config.queue_timeout,
                    stats.pool.admit(per_thread, &route.metrics.queued),
                )
                .await
                {
                    Ok(p) => p,
                    Err(_) => {
                        let mut r = page(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the app's replicas are all busy (at their concurrency limit)\n",
                        );
                        r.headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                        return r;
                    }
                }
            };
            stats.active.fetch_add(1, Ordering::Relaxed);
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let result = if upgrade {
                tokio::time::timeout(
                    self.config.upstream_timeout,
                    upstream::send_upgrade(backend.addr, upstream, &self.upgrades),
                )
                .await
                .map(|r| r.map(|resp| (resp, None)))
            } else {
                tokio::time::timeout(
                    self.config.upstream_timeout,
                    stats.pool.send(backend.addr, upstream, permit),
                )
                .await
                .map(|r| r.map(|(resp, lease)| (resp, Some(lease))))
            };
            stats.active.fetch_sub(1, Ordering::Relaxed);
            match result {
                Err(_) => {
                    self.record_failure(stats);
                    return page(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the app did not answer in time\n",
                    );
                }
                Ok(Err(e)) => {
                    tracing::debug!(app, backend = %backend.addr, error = &e as &dyn std::error::Error, "upstream failed");
                    self.record_failure(stats);
                    // A bodiless request can go to the next replica.
                    if !retryable {
                        break;
                    }
                    continue;
                }
                Ok(Ok((resp, lease))) => {
                    if resp.status().is_server_error() {
                        self.record_failure(stats);
                    } else if stats.failures.load(Ordering::Relaxed) != 0 {
                        stats.failures.store(0, Ordering::Relaxed);
                    }
                    let mut out = self.finish(resp, lease, client_upgrade, request_id);
                    // Head and first bytes together (see `ProxyBody::prefetch`).
                    match tokio::time::timeout(
                        self.config.upstream_timeout,
                        out.body_mut().prefetch(),
                    )
                    .await
                    {
                        Ok(Ok(())) => return out,
                        Ok(Err(e)) => {
                            tracing::debug!(app, backend = %backend.addr, error = &e as &dyn std::error::Error, "upstream body failed");
                            self.record_failure(stats);
                        }
                        Err(_) => {
                            self.record_failure(stats);
                            return page(
                                StatusCode::GATEWAY_TIMEOUT,
                                "the app did not answer in time\n",
                            );
                        }
                    }
                    break;
                }
            }
        }
        page(
            StatusCode::BAD_GATEWAY,
            "the app's replica could not be reached\n",
        )
    }

    fn finish(
        &self,
        resp: Response<Incoming>,
        lease: Option<upstream::Lease>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        request_id: HeaderValue,
    ) -> Response<ProxyBody> {
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_side) = client_upgrade {
                let (parts, body) = resp.into_parts();
                let mut upstream_resp = Response::from_parts(parts.clone(), body);
                let server_side = hyper::upgrade::on(&mut upstream_resp);
                self.upgrades.spawn(async move {
                    if let (Ok(c), Ok(s)) = (client_side.await, server_side.await) {
                        let mut c = TokioIo::new(c);
                        let mut s = TokioIo::new(s);
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                    }
                });
                let mut out = Response::from_parts(parts, ProxyBody::full(Bytes::new()));
                out.headers_mut().insert(X_REQUEST_ID, request_id);
                return out;
            }
        }
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(X_REQUEST_ID, request_id);
        Response::from_parts(parts, ProxyBody::upstream(body, lease))
    }
}

/// A connection accepted on one proxy thread and handed to another.
type Handoff = (std::net::TcpStream, SocketAddr);

/// The next connection, or `None` on `shutdown`. Accept errors (out of file descriptors) are
/// logged and retried after a pause.
async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = listener.accept() => match r {
                Ok(x) => return Some(x),
                Err(e) => {
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// The thread that should serve a new connection: `me` unless another serves fewer.
fn least_loaded(loads: &[Arc<AtomicUsize>], me: usize) -> usize {
    let mine = loads[me].load(Ordering::Relaxed);
    let (best, load) = loads
        .iter()
        .enumerate()
        .map(|(i, l)| (i, l.load(Ordering::Relaxed)))
        .min_by_key(|(_, l)| *l)
        .unwrap_or((me, mine));
    if load < mine {
        best
    } else {
        me
    }
}

fn is_upgrade(h: &hyper::HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Removes the hop-by-hop headers (RFC 9110 7.6.1): the fixed ones, and every header the
/// `Connection` header names.
fn strip_hop_by_hop(h: &mut hyper::HeaderMap) {
    if h.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            h.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ] {
        h.remove(name);
    }
}

/// The client's IP as a header value.
fn peer_ip_value(peer: SocketAddr) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(peer.ip().to_string()))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

fn append_forwarded_for(h: &mut hyper::HeaderMap, peer_ip: &HeaderValue) {
    let value = match h.get(X_FORWARDED_FOR).map(|v| v.as_bytes()) {
        Some(prev) => {
            let mut v = Vec::with_capacity(prev.len() + 2 + peer_ip.len());
            v.extend_from_slice(prev);
            v.extend_from_slice(b", ");
            v.extend_from_slice(peer_ip.as_bytes());
            match HeaderValue::from_maybe_shared(Bytes::from(v)) {
                Ok(v) => v,
                Err(_) => return,
            }
        }
        None => peer_ip.clone(),
    };
    h.insert(X_FORWARDED_FOR, value);
}

fn page(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(Bytes::copy_from_slice(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The p95 latency in milliseconds of the requests between two histogram readings: the upper
/// bound of the bucket that holds the 95th percentile (the overflow bucket counts as twice the
/// largest bound).
pub fn p95_ms(before: &[u64; 13], after: &[u64; 13]) -> Option<f64> {
    let delta: Vec<u64> = after
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let total: u64 = delta.iter().sum();
    if total == 0 {
        return None;
    }
    let need = (total as f64 * 0.95).ceil() as u64;
    let mut seen = 0;
    for (i, n) in delta.iter().enumerate() {
        seen += n;
        if seen >= need {
            let bound = LATENCY_BUCKETS_MS
                .get(i)
                .copied()
                .unwrap_or(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1] * 2);
            return Some(bound as f64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    /// A replica on 127.0.0.1 that counts the connections it accepts: `/chunked` answers with a
    /// chunked body, anything else with a fixed one. Without `keep_alive` it closes each
    /// connection after one response, without saying so (as a replica's idle timeout does).
    async fn replica(conns: Arc<AtomicUsize>, keep_alive: bool) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                conns.fetch_add(1, Ordering::SeqCst);
                if !keep_alive {
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut chunk = [0u8; 1024];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 22\r\n\r\nhello from the replica")
                            .await;
                    });
                    continue;
                }
                tokio::spawn(async move {
                    let svc = service_fn(|req: Request<Incoming>| async move {
                        let body = Full::new(Bytes::from_static(b"hello from the replica"));
                        let resp = if req.uri().path() == "/chunked" {
                            // no size hint: sent chunked
                            Response::new(body.map_frame(|f| f).boxed())
                        } else {
                            Response::new(body.boxed())
                        };
                        Ok::<_, Infallible>(resp)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }

    /// A proxy routing `web` to `upstream`, and a keep-alive client connection to it.
    async fn proxy_to(
        upstream: SocketAddr,
    ) -> (
        hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        CancellationToken,
    ) {
        let (addr, stop) = start_proxy(upstream, Config::default()).await;
        (client_to(addr).await, stop)
    }

    /// A proxy with `config` routing `web` to `upstream`: its address.
    async fn start_proxy(upstream: SocketAddr, config: Config) -> (SocketAddr, CancellationToken) {
        let (addr, stop, _) = start_proxy_with(Backend::new(upstream), config).await;
        (addr, stop)
    }

    /// [`start_proxy`] with `backend` as `web`'s replica, and the proxy.
    async fn start_proxy_with(
        backend: Backend,
        config: Config,
    ) -> (SocketAddr, CancellationToken, Arc<Proxy>) {
        let routes = Routes::default();
        routes.set("web", vec![backend]);
        let proxy = Proxy::new(routes, config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
        tokio::spawn(proxy.clone().serve(listener, stop.clone(), tracker));
        (addr, stop, proxy)
    }

    /// A keep-alive client connection to `addr`.
    async fn client_to(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// A replica on 127.0.0.1 that answers each request with `head`, then waits for `go` (a
    /// permit per response), then writes `body`: the head and the body in separate writes.
    async fn split_replica(
        head: &'static [u8],
        body: &'static [u8],
        go: Arc<tokio::sync::Semaphore>,
    ) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let go = go.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let mut buf = Vec::new();
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut chunk = [0u8; 1024];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = stream.write_all(head).await;
                    if let Ok(permit) = go.acquire().await {
                        permit.forget();
                    }
                    let _ = stream.write_all(body).await;
                });
            }
        });
        addr
    }

    /// A replica on 127.0.0.1 that answers every request after `delay`, counting the requests
    /// it holds at once: (now, most ever).
    async fn slow_replica(delay: Duration, seen: Arc<(AtomicUsize, AtomicUsize)>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |_req: Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let now = seen.0.fetch_add(1, Ordering::SeqCst) + 1;
                            seen.1.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(delay).await;
                            seen.0.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                b"slow",
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }

    /// `GET /` on `client`: the status and the whole body.
    async fn fetch(
        mut client: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    ) -> (StatusCode, Bytes) {
        client.ready().await.unwrap();
        let resp = client.send_request(get("/")).await.unwrap();
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    }

    fn get(path: &str) -> Request<Empty<Bytes>> {
        Request::builder()
            .uri(path)
            .header(header::HOST, "web.localhost")
            .body(Empty::new())
            .unwrap()
    }

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

    #[test]
    fn a_new_connection_goes_to_the_least_loaded_thread_else_stays() {
        let loads = |v: &[usize]| -> Vec<Arc<AtomicUsize>> {
            v.iter().map(|n| Arc::new(AtomicUsize::new(*n))).collect()
        };
        assert_eq!(least_loaded(&loads(&[0, 0]), 1), 1, "a tie stays");
        assert_eq!(least_loaded(&loads(&[3, 2]), 0), 1);
        assert_eq!(least_loaded(&loads(&[2, 3]), 0), 0);
        assert_eq!(least_loaded(&loads(&[5, 1, 0, 4]), 3), 2);
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = hyper::HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret-Hop"),
        );
        h.append(header::CONNECTION, HeaderValue::from_static("x-other"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("x-other", HeaderValue::from_static("1"));
        h.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_the_replica_closed_is_not_reused() {
        let conns = Arc::new(AtomicUsize::new(0));
        let (mut client, stop) = proxy_to(replica(conns.clone(), false).await).await;
        for i in 0..10 {
            client.ready().await.unwrap();
            let resp = client.send_request(get("/")).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "request {i}");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"hello from the replica");
            // the replica's close reaches the proxy before the next request
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(conns.load(Ordering::SeqCst), 10);
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upstream_connections_are_kept_alive_and_reused() {
        let conns = Arc::new(AtomicUsize::new(0));
        let (mut client, stop) = proxy_to(replica(conns.clone(), true).await).await;
        let mut ids = std::collections::HashSet::new();
        for (i, (method, path)) in std::iter::repeat_n(("GET", "/"), 20)
            .chain([
                ("GET", "/chunked"),
                ("HEAD", "/"),
                ("GET", "/chunked"),
                ("GET", "/"),
            ])
            .enumerate()
        {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, "web.localhost")
                .body(Empty::<Bytes>::new())
                .unwrap();
            client.ready().await.unwrap();
            let resp = client.send_request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "request {i}");
            let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
            assert_eq!(id.len(), 32);
            assert!(ids.insert(id), "request ids are unique");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let want: &[u8] = if method == "HEAD" {
                b""
            } else {
                b"hello from the replica"
            };
            assert_eq!(&body[..], want, "request {i}: {method} {path}");
        }
        assert_eq!(
            conns.load(Ordering::SeqCst),
            1,
            "one upstream connection, reused"
        );
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_known_length_body_written_after_its_head_arrives_whole() {
        let go = Arc::new(tokio::sync::Semaphore::new(0));
        let upstream = split_replica(
            b"HTTP/1.1 200 OK\r\ncontent-length: 22\r\n\r\n",
            b"hello from the replica",
            go.clone(),
        )
        .await;
        let (client, stop) = proxy_to(upstream).await;
        // The proxy waits for the body's first bytes before it answers: the body comes late.
        let pending = tokio::spawn(fetch(client));
        tokio::time::sleep(Duration::from_millis(50)).await;
        go.add_permits(1);
        let (status, body) = tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"hello from the replica");
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_head_is_not_held_back_for_its_body() {
        let go = Arc::new(tokio::sync::Semaphore::new(0));
        let upstream = split_replica(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            go.clone(),
        )
        .await;
        let (mut client, stop) = proxy_to(upstream).await;
        client.ready().await.unwrap();
        // The body is only written once the client has the head: held back, this times out.
        let resp = tokio::time::timeout(Duration::from_secs(5), client.send_request(get("/")))
            .await
            .expect("the head of a chunked response arrives before its body")
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        go.add_permits(1);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        stop.cancel();
    }

    /// Six clients at once through a proxy with `config` to one replica with `concurrency`,
    /// where the limit that applies is 2: four wait in the proxy (and the snapshot that feeds
    /// /metrics says so), all six get their answer, and the replica never sees more than two.
    async fn six_clients_two_at_a_time(config: Config, concurrency: Option<u32>) {
        let seen = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let upstream = slow_replica(Duration::from_millis(100), seen.clone()).await;
        let backend = Backend {
            addr: upstream,
            concurrency,
        };
        let (addr, stop, proxy) = start_proxy_with(backend, config).await;
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(tokio::spawn(fetch(client_to(addr).await)));
        }
        let queued = || proxy.snapshot().first().map_or(0, |t| t.queued);
        let deadline = Instant::now() + Duration::from_secs(2);
        while queued() != 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(queued(), 4, "four requests queued behind the limit");
        for c in clients {
            let (status, body) = c.await.unwrap();
            assert_eq!(status, StatusCode::OK);
            assert_eq!(&body[..], b"slow");
        }
        assert_eq!(
            seen.1.load(Ordering::SeqCst),
            2,
            "six clients at once, two requests at the replica at most (and at least)"
        );
        assert_eq!(queued(), 0, "nothing left waiting");
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_over_a_replicas_concurrency_limit_wait_their_turn() {
        let config = Config {
            replica_concurrency: 2,
            ..Config::default()
        };
        six_clients_two_at_a_time(config, None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_apps_own_concurrency_limit_overrides_the_proxys() {
        // The proxy's default (80) would let all six through at once; the replica's release
        // asks for 2.
        six_clients_two_at_a_time(Config::default(), Some(2)).await;
        // And a release may lift a proxy-wide limit: 0 is none.
        let seen = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let upstream = slow_replica(Duration::from_millis(400), seen.clone()).await;
        let config = Config {
            replica_concurrency: 1,
            ..Config::default()
        };
        let backend = Backend {
            addr: upstream,
            concurrency: Some(0),
        };
        let (addr, stop, _) = start_proxy_with(backend, config).await;
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(tokio::spawn(fetch(client_to(addr).await)));
        }
        for c in clients {
            assert_eq!(c.await.unwrap().0, StatusCode::OK);
        }
        assert_eq!(
            seen.1.load(Ordering::SeqCst),
            4,
            "no limit: all four at once"
        );
        stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_queued_past_the_timeout_gets_503_with_retry_after() {
        let seen = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let upstream = slow_replica(Duration::from_millis(1500), seen.clone()).await;
        let config = Config {
            replica_concurrency: 1,
            queue_timeout: Duration::from_millis(100),
            ..Config::default()
        };
        let (addr, stop) = start_proxy(upstream, config).await;
        let mut first = client_to(addr).await;
        let first = tokio::spawn(async move {
            first.ready().await.unwrap();
            first.send_request(get("/")).await.unwrap().status()
        });
        // The first request holds the replica's only slot.
        while seen.0.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut second = client_to(addr).await;
        second.ready().await.unwrap();
        let resp = second.send_request(get("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("concurrency limit"));
        assert_eq!(first.await.unwrap(), StatusCode::OK);
        assert_eq!(seen.1.load(Ordering::SeqCst), 1);
        stop.cancel();
    }

    #[test]
    fn p95_is_the_bucket_holding_the_95th_percentile() {
        let before = [0u64; 13];
        let mut after = [0u64; 13];
        after[0] = 90; // <= 1 ms
        after[3] = 10; // <= 10 ms
        assert_eq!(super::p95_ms(&before, &after), Some(10.0));
        after[0] = 100;
        after[3] = 0;
        assert_eq!(super::p95_ms(&before, &after), Some(1.0));
        assert_eq!(super::p95_ms(&after, &after), None);
    }
}
