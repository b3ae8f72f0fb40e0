//! racer's built-in L7 proxy. Every app answers at `http://<app>.<domain>:<port>/` (Host routing)
//! and at `http://<bind>:<port>/apps/<app>/` (path routing, prefix stripped,
//! `X-Forwarded-Prefix` set). The route table is rebuilt by the reconciler from the replicas that
//! answer and swapped in atomically: the request path takes no lock.
//!
//! One concern a module: `route` (which app a request is for), `table` (the route table and
//! what is known of each replica), `config`, `proxy` (the [`Proxy`] and what its threads
//! share), `listener` (accepting, one event loop per thread), `forward` (one request, upgrades
//! included), `balance` (replica choice, passive health, concurrency limits), `headers`,
//! `metrics` (per-app counters, latency histogram, p95), `upstream` (connection pools,
//! the response body), `claims` (the claims of warm pools: a claimed container's named ports at
//! `/<port>/<claim>/...`) and `access` (a claim request's token: header, bearer, cookie or
//! `?token=`).
//!
//! A claim's port answers at `http://<bind>:<port>/<port-name>/<claim>/` (prefix stripped,
//! `X-Forwarded-Prefix` set, WebSockets passed through) to a client that presents the claim's
//! token ([`Routes::set_claim`]). It is a path route: a request is a claim's if its Host does
//! not name an app, its path is not `/apps/...`, its first segment is the name of a port of
//! some routed claim and its second looks like a claim id ([`is_claim_id`]). Anything else
//! routes as before.

mod access;
mod balance;
mod claims;
mod config;
mod forward;
mod framing;
mod headers;
mod listener;
mod metrics;
mod proxy;
mod route;
mod table;
#[cfg(test)]
mod tests;
mod tls;
mod upstream;

pub use claims::{is_claim_id, is_port_name, token_digest, ClaimError, ClaimRoute};
pub use config::{
    Balance, Config, DEFAULT_MAX_CONNECTIONS_PER_SOURCE, DEFAULT_REPLICA_CONCURRENCY,
};
pub use metrics::{p95_ms, AppMetrics, TrafficSnapshot, LATENCY_BUCKETS, LATENCY_BUCKETS_MS};
pub use proxy::Proxy;
pub use route::{route_for, Target};
pub use table::{Backend, BackendStats, Epoch, RouteTable, Routes};
pub use tls::{certified_key, load_files, Tls, TlsError};
pub use upstream::ProxyBody;
