//! Integration tests of racer-build, compiled into one binary with one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conda;
mod context;
mod detect;
mod dockerfile;
mod git;
mod reference;
mod util;
