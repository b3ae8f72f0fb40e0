//! racer's built-in L7 proxy. Every app answers at `http://<app>.<domain>:<port>/` (Host routing)
//! and at `http://<bind>:<port>/apps/<app>/` (path routing, prefix stripped,
//! `X-Forwarded-Prefix` set). The route table is rebuilt by the reconciler from the replicas that
//! answer and swapped in atomically: the request path takes no lock.
//!
//! One concern a module: `route` (which app a request is for), `table` (the route table and
//! what is known of each replica), `config`, `proxy` (the [`Proxy`] and what its threads
//! share), `listener` (accepting, one event loop per thread), `forward` (one request, upgrades
//! included), `balance` (replica choice, passive health, concurrency limits), `headers`,
//! `metrics` (per-app counters, latency histogram, p95) and `upstream` (connection pools,
//! the response body).

mod balance;
mod config;
mod forward;
mod headers;
mod listener;
mod metrics;
mod proxy;
mod route;
mod table;
#[cfg(test)]
mod tests;
mod upstream;

pub use config::{Balance, Config, DEFAULT_REPLICA_CONCURRENCY};
pub use metrics::{p95_ms, AppMetrics, TrafficSnapshot, LATENCY_BUCKETS, LATENCY_BUCKETS_MS};
pub use proxy::Proxy;
pub use route::{route_for, Target};
pub use table::{Backend, BackendStats, Epoch, RouteTable, Routes};
pub use upstream::ProxyBody;
