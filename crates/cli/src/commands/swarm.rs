//! An app's Swarm service (a server on `--cluster swarm`): `racer swarm-status`, `swarm-logs`
//! and `swarm-remove`. The client calls and the status printer are in [`crate::swarm`].

use std::process::ExitCode;

use clap::Args;

use super::NameArg;
use crate::client::Client;
use crate::{output, swarm};

/// `racer swarm-logs`.
#[derive(Debug, Args)]
pub struct SwarmLogsArgs {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: String,
    /// Lines from the end of each task's log, or `all`.
    #[arg(long, default_value = "50")]
    pub tail: String,
    /// Keep following.
    #[arg(long, short)]
    pub follow: bool,
}

/// `racer swarm-status`: the service's replicas, desired and running, and its tasks.
pub async fn status(client: &Client, n: NameArg, json: bool) -> anyhow::Result<ExitCode> {
    let s = client.swarm_status(&n.project_name).await?;
    if json {
        output::json(&s)?;
    } else {
        swarm::print_status(&s)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer swarm-logs`: the service's log, every task merged.
pub async fn logs(client: &Client, l: SwarmLogsArgs) -> anyhow::Result<ExitCode> {
    let stream = client
        .swarm_logs(&l.project_name, &l.tail, l.follow)
        .await?;
    output::copy_text(stream).await?;
    Ok(ExitCode::SUCCESS)
}

/// `racer swarm-remove`: removes the service; the project is down, its spec and releases kept.
pub async fn remove(client: &Client, n: NameArg, json: bool) -> anyhow::Result<ExitCode> {
    let r = client.swarm_remove(&n.project_name).await?;
    if json {
        output::json(&r)?;
    } else {
        println!("{}", r.message);
    }
    Ok(ExitCode::SUCCESS)
}
