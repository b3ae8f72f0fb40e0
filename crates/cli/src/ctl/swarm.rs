//! `racerctl swarm init|leave|status`: the local engine's swarm membership. The server binary
//! is what talks to the engine, so these run `racer-server swarm ...`.

use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Subcommand;

use super::server::server_binary;

/// `racerctl swarm …`.
#[derive(Debug, Subcommand)]
pub enum SwarmCmd {
    /// Make the local engine a single-node swarm (a manager), so `racerctl server start
    /// --cluster swarm` can run apps as services. Does nothing if it is in a swarm already.
    Init {
        /// The address the node advertises to other nodes.
        #[arg(long, default_value = "127.0.0.1")]
        advertise_addr: String,
        /// Where the node listens for other nodes.
        #[arg(long, default_value = "127.0.0.1:2377")]
        listen_addr: String,
    },
    /// Make the local engine leave its swarm.
    Leave {
        /// Leave even as the last manager: every service of the swarm is removed.
        #[arg(long)]
        force: bool,
    },
    /// Show the local engine's swarm membership.
    Status,
}

/// Runs `racer-server swarm ...`: the server binary is what talks to the engine.
pub fn swarm(cmd: SwarmCmd, json: bool) -> anyhow::Result<ExitCode> {
    let mut c = Command::new(server_binary());
    c.arg("swarm");
    match cmd {
        SwarmCmd::Init {
            advertise_addr,
            listen_addr,
        } => {
            c.args(["init", "--advertise-addr", &advertise_addr]);
            c.args(["--listen-addr", &listen_addr]);
        }
        SwarmCmd::Leave { force } => {
            c.arg("leave");
            if force {
                c.arg("--force");
            }
        }
        SwarmCmd::Status => {
            c.arg("status");
        }
    }
    if json {
        c.arg("--json");
    }
    let status = c.status().with_context(|| {
        format!(
            "cannot run {}; build it with `cargo build --workspace` or put it on PATH",
            server_binary().display()
        )
    })?;
    // racer-server printed what it did, or its error.
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
