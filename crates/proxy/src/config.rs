//! The proxy's settings and how it balances.

use std::time::Duration;

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
    /// Open connections one client address may hold (0: no limit); more are answered 429 and
    /// closed at once.
    pub max_connections_per_source: usize,
    /// The largest request head (request line and headers together), bytes; larger is a 431
    /// (or 414 for the request line alone).
    pub max_head_bytes: usize,
    /// When TLS is on: plain-HTTP requests are redirected (308) to HTTPS on this port, except
    /// ACME's HTTP-01 challenges. `None`: plain HTTP is served as it is.
    pub https_redirect: Option<u16>,
    /// `Strict-Transport-Security: max-age=<this>` on answers over TLS; 0: not sent.
    pub hsts_max_age: u64,
}

/// [`Config::replica_concurrency`]'s default, as Cloud Run's per-instance default: an app is
/// sent at most this many requests at once per replica.
pub const DEFAULT_REPLICA_CONCURRENCY: usize = 80;

/// [`Config::max_connections_per_source`]'s default.
pub const DEFAULT_MAX_CONNECTIONS_PER_SOURCE: usize = 1024;

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
            max_connections_per_source: DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
            max_head_bytes: 64 * 1024,
            https_redirect: None,
            hsts_max_age: 0,
        }
    }
}
