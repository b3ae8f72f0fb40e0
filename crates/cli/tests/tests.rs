//! Black-box tests of the real `racer`, `racerctl` and `racer-server` binaries.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod util;

mod accounts;
mod api;
mod backup;
mod browser;
mod clusters;
mod conda;
mod deploy;
mod hostile;
mod leases;
mod pools;
mod quickstart;
mod rbac;
mod scheduling;
mod secrets;
mod security;
mod seedcli;
mod seedenv;
mod server;
mod spec;
mod swarm;
mod takeover;
mod tls;
mod traffic;
mod websocket;
mod workspaces;
