//! What happened: `racer logs` (a project's container logs) and `racer events` (the event log,
//! one page or followed).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use futures_util::StreamExt;
use racer_core::api::Event;
use serde::{Deserialize, Serialize};

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

/// One line of `racer logs --json`: the app, the container that wrote it, and the line without
/// its end. The API sends logs as text (`<container> | <line>` when several containers run);
/// this is that text, split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The app's name.
    pub app: String,
    /// The container's name (`web-1-0`), when it is known.
    pub container: Option<String>,
    /// The line.
    pub line: String,
}

/// `racer logs`: a project's container logs, copied to stdout as they come; with `--json`, one
/// [`LogLine`] object a line.
pub async fn logs(client: &Client, l: LogsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/api/v1/apps/{}/logs?tail={}&follow={}",
        path_segment(&l.project_name),
        path_segment(&l.tail),
        l.follow
    );
    if !json {
        output::copy_text(client.text(&path).await?).await?;
        return Ok(ExitCode::SUCCESS);
    }
    // The containers whose logs the server merges: the current release's (every one before the
    // first release), as it picks them; their names are the prefixes it writes.
    let status = client.app_status(&l.project_name).await?;
    let current: Vec<String> = status
        .containers
        .iter()
        .filter(|c| status.app.release.is_none() || c.release == status.app.release)
        .map(|c| c.name.clone())
        .collect();
    let mut split = Splitter {
        app: status.app.name.clone(),
        names: status.containers.iter().map(|c| c.name.clone()).collect(),
        last: match current.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        },
    };
    let mut stream = client.text(&path).await?;
    let mut pending = String::new();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        pending.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            serde_json::to_writer(&mut out, &split.line(&line))?;
            writeln!(out)?;
        }
        out.flush()?;
    }
    if !pending.is_empty() {
        serde_json::to_writer(&mut out, &split.line(&pending))?;
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Turns the server's log text back into [`LogLine`]s.
struct Splitter {
    app: String,
    /// Every container name of the app: a line starting `<name> | ` is that container's.
    names: Vec<String>,
    /// The container of the line before: a write of several lines carries the prefix once.
    last: Option<String>,
}

impl Splitter {
    fn line(&mut self, raw: &str) -> LogLine {
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let prefixed = self.names.iter().find_map(|n| {
            raw.strip_prefix(n.as_str())
                .and_then(|rest| rest.strip_prefix(" | "))
                .map(|rest| (n.clone(), rest))
        });
        let line = match prefixed {
            Some((name, rest)) => {
                self.last = Some(name);
                rest
            }
            None => raw,
        };
        LogLine {
            app: self.app.clone(),
            container: self.last.clone(),
            line: line.to_owned(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn splitter(names: &[&str], only: Option<&str>) -> Splitter {
        Splitter {
            app: "web".into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            last: only.map(str::to_owned),
        }
    }

    #[test]
    fn one_container_lines_are_its_own() {
        let mut s = splitter(&["web-1-0"], Some("web-1-0"));
        let l = s.line("hello: listening on :8000\n");
        assert_eq!(l.container.as_deref(), Some("web-1-0"));
        assert_eq!(l.line, "hello: listening on :8000");
    }

    #[test]
    fn prefixed_lines_name_their_container_and_lose_the_prefix() {
        let mut s = splitter(&["web-1-0", "web-1-1"], None);
        let l = s.line("web-1-1 | GET / 200\r\n");
        assert_eq!(l.container.as_deref(), Some("web-1-1"));
        assert_eq!(l.line, "GET / 200");
        // The rest of the same write has no prefix: still that container's.
        let l = s.line("second line\n");
        assert_eq!(l.container.as_deref(), Some("web-1-1"));
        // A prefix only counts for a container of the app.
        let l = s.line("web-9-9 | x\n");
        assert_eq!(l.line, "web-9-9 | x");
    }
}
