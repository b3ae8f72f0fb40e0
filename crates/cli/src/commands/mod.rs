//! `racer`'s commands, one module per group of subcommands. The binary parses the command line
//! and hands each subcommand's arguments to its function here; every function returns the exit
//! code (0 success, 1 failure).
//!
//! - [`deploy`]: `run`, `rerun`, `rollback`.
//! - [`spec`]: `apply`, `validate`, `dockerfile`.
//! - [`apps`]: `list-projects`, `status`, `releases`, `up`, `down`, `delete`, `apps …`.
//! - [`scale`]: `scale` (with a source: deploy, then scale), `scale-up`, `scale-down`, `metrics`,
//!   `policy`.
//! - [`logs`]: `logs`, `events`.
//! - [`pools`]: `pools …`, `claim`, `claims …` (warm pools).
//! - [`swarm`]: `swarm-status`, `swarm-logs`, `swarm-remove`.
//!
//! The account commands (`login`, `tokens`, …) are in [`crate::account`].

pub mod apps;
pub mod deploy;
pub mod deployments;
pub mod logs;
pub mod pools;
pub mod scale;
pub mod secrets;
pub mod spec;
pub mod swarm;

use clap::Args;

/// The commands that take only a project.
#[derive(Debug, Args)]
pub struct NameArg {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: String,
}
