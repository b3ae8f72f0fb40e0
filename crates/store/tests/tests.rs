//! The store contract: every test here runs unchanged against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `RACER_TEST_DATABASE_URL` (the test script installs and starts a server
//! and sets it). Without it the PostgreSQL half is skipped with a message, unless
//! `RACER_REQUIRE_POSTGRES=1`, which the CI sets, makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod util;

mod auth;
mod clusters;
mod contract;
mod jobs;
mod leases;
mod pools;
