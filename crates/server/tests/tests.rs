//! The server started in-process on 127.0.0.1:0 (temp data dir, SQLite, the real engine), driven
//! over real HTTP: the API's own tests, apart from the CLI's black-box ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod pools;
mod schemathesis;
mod seeds;
mod ui;
mod uploads;
mod util;
