//! The control services and loops against the real Docker engine and a real SQLite store: no
//! server, no HTTP. Each test builds its own install (temp data dir, its own install id) and
//! removes every container and image it labelled when it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod services;
mod util;
