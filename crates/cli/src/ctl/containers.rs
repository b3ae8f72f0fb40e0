//! `racerctl containers …`: inspect and act on the containers racer runs.

use std::process::ExitCode;

use clap::Subcommand;
use racer_core::api::{ContainerAction, Page};

use crate::client::{path_segment, Client};
use crate::{deploy, output};

/// `racerctl containers …`.
#[derive(Debug, Subcommand)]
pub enum ContainersCmd {
    /// List every container racer manages.
    List,
    /// Show one container (id, unique id prefix, or name).
    Status {
        /// Container id, prefix or name.
        id: String,
    },
    /// Show one container's log.
    Logs {
        /// Container id, prefix or name.
        id: String,
        /// Keep following.
        #[arg(long, short)]
        follow: bool,
        /// Lines from the end.
        #[arg(long, default_value = "100")]
        tail: String,
    },
    /// Stop a container (racer starts it again while its app wants it).
    Stop {
        /// Container id, prefix or name.
        id: String,
    },
    /// Remove a container (racer replaces it while its app wants it).
    Remove {
        /// Container id, prefix or name.
        id: String,
    },
    /// Remove every racer container that is not running.
    Cleanup,
}

/// `racerctl containers …`.
pub async fn containers(
    client: &Client,
    cmd: ContainersCmd,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        ContainersCmd::List => {
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = client.containers(cursor.as_deref()).await?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            if json {
                output::json(&Page {
                    items: all,
                    next_cursor: None,
                })?;
            } else if all.is_empty() {
                println!("no racer containers");
            } else {
                deploy::container_table(&all)?;
            }
        }
        ContainersCmd::Status { id } => {
            let c = client.container(&id).await?;
            if json {
                output::json(&c)?;
            } else {
                println!("project: {}", c.app_name.as_deref().unwrap_or("(unknown)"));
                deploy::container_table(std::slice::from_ref(&c))?;
            }
        }
        ContainersCmd::Logs { id, follow, tail } => {
            let path = format!(
                "/api/v1/containers/{}/logs?tail={}&follow={follow}",
                path_segment(&id),
                path_segment(&tail)
            );
            output::copy_text(client.text(&path).await?).await?;
        }
        ContainersCmd::Stop { id } => action(client.stop_container(&id).await?, json)?,
        ContainersCmd::Remove { id } => action(client.remove_container(&id).await?, json)?,
        ContainersCmd::Cleanup => action(client.cleanup().await?, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn action(a: ContainerAction, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(&a)
    } else {
        println!("{}", a.message);
        Ok(())
    }
}
