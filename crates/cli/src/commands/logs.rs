//! What happened: `racer logs` (a project's container logs) and `racer events` (the event log,
//! one page or followed).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use futures_util::StreamExt;
use racer_core::api::Event;

use crate::client::{path_segment, Client};
use crate::output;

/// `racer logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: String,
    /// Keep following new output.
    #[arg(long, short)]
    pub follow: bool,
    /// Lines from the end of each container's log.
    #[arg(long, default_value = "100")]
    pub tail: String,
}

/// `racer events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of this app (name or UUID).
    #[arg(long = "project-name", alias = "app")]
    pub app: Option<String>,
    /// Items per page.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after this cursor.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Keep printing new events as they happen (like `docker events`).
    #[arg(long, short)]
    pub follow: bool,
    /// Only events of this kind (`deployment.running`) or kind prefix (`deployment.`).
    #[arg(long)]
    pub kind: Option<String>,
}

/// `racer logs`: a project's container logs, copied to stdout as they come.
pub async fn logs(client: &Client, l: LogsArgs) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/api/v1/apps/{}/logs?tail={}&follow={}",
        path_segment(&l.project_name),
        path_segment(&l.tail),
        l.follow
    );
    output::copy_text(client.text(&path).await?).await?;
    Ok(ExitCode::SUCCESS)
}

/// `racer events`: one page of the event log, or (`--follow`) new events as they happen.
pub async fn events(client: &Client, a: EventsArgs, json: bool) -> anyhow::Result<ExitCode> {
    if a.follow {
        return follow_events(client, &a, json).await;
    }
    let page = client
        .list_events(
            a.app.as_deref(),
            a.kind.as_deref(),
            a.limit,
            a.cursor.as_deref(),
        )
        .await?;
    if json {
        output::json(&page)?;
    } else {
        let rows: Vec<Vec<String>> = page
            .items
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    output::time(&e.at),
                    e.actor.clone(),
                    e.kind.clone(),
                    e.message.clone(),
                ]
            })
            .collect();
        output::table(&["ID", "TIME", "ACTOR", "KIND", "MESSAGE"], &rows)?;
        if let Some(c) = page.next_cursor {
            eprintln!("more events: --cursor {c}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the events of `/api/v1/events/stream` (server-sent events) until it ends.
async fn follow_events(client: &Client, a: &EventsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut q = Vec::new();
    if let Some(app) = &a.app {
        q.push(format!("app={}", path_segment(app)));
    }
    if let Some(k) = &a.kind {
        q.push(format!("kind={}", path_segment(k)));
    }
    let path = format!("/api/v1/events/stream?{}", q.join("&"));
    let mut stream = client.text(&path).await?;
    let mut pending = String::new();
    while let Some(chunk) = stream.next().await {
        pending.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let e: Event = serde_json::from_str(data.trim())?;
            if json {
                println!("{}", serde_json::to_string(&e)?);
            } else {
                println!(
                    "{}  {}  {:<8} {:<22} {}",
                    e.id,
                    output::time(&e.at),
                    e.actor,
                    e.kind,
                    e.message
                );
            }
            std::io::stdout().flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
