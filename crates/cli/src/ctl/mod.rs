//! `racerctl`'s commands, one module per group of subcommands; the binary parses the command
//! line and dispatches here.
//!
//! - [`server`]: `server start|stop|status|restart`, the local server process.
//! - [`health`]: `health`, `liveness`, `readiness`, `info`.
//! - [`clusters`]: `clusters add|list|show|drain|undrain|remove`.
//! - [`containers`]: `containers list|status|logs|stop|remove|cleanup`.
//! - [`swarm`]: `swarm init|leave|status`, run by `racer-server swarm`.
//!
//! `users` and `orgs` are in [`crate::account`].

pub mod clusters;
pub mod containers;
pub mod health;
pub mod server;
pub mod swarm;
