//! `racer deployments list`: deployments of every app (or one), newest first, and why each
//! waiting one waits (issue 14).

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use racer_core::api::{Deployment, DeploymentStatus, Page};

use crate::client::{path_segment, Client};
use crate::output;

/// `racer deployments …`.
#[derive(Debug, Subcommand)]
pub enum DeploymentsCmd {
    /// List deployments, newest first, with why each waiting one waits.
    List(ListArgs),
}

/// `racer deployments list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this project's (name or UUID).
    #[arg(long)]
    pub project_name: Option<String>,
    /// Only those in this state: queued (or pending), building, rolling-out, running, failed,
    /// rolled-back, superseded.
    #[arg(long)]
    pub state: Option<String>,
    /// How many to read (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

fn parse_state(s: &str) -> anyhow::Result<DeploymentStatus> {
    Ok(match s.replace('_', "-").as_str() {
        "queued" | "pending" => DeploymentStatus::Pending,
        "building" => DeploymentStatus::Building,
        "rolling-out" => DeploymentStatus::RollingOut,
        "running" => DeploymentStatus::Running,
        "failed" => DeploymentStatus::Failed,
        "rolled-back" => DeploymentStatus::RolledBack,
        "superseded" => DeploymentStatus::Superseded,
        other => bail!(
            "--state {other:?}: use queued, building, rolling-out, running, failed, rolled-back or superseded"
        ),
    })
}

/// Why a deployment is where it is, in a few words.
fn why(d: &Deployment, all: &[Deployment]) -> String {
    match d.status {
        DeploymentStatus::Pending => match all.iter().find(|b| {
            b.app_id == d.app_id && b.status == DeploymentStatus::Building && b.id != d.id
        }) {
            Some(b) => format!(
                "waits for the build of {} (one build per app at a time)",
                short(b)
            ),
            None => "waits for a free builder".to_owned(),
        },
        DeploymentStatus::Building => "building its image".to_owned(),
        DeploymentStatus::RollingOut => "starting its replicas".to_owned(),
        DeploymentStatus::Failed | DeploymentStatus::RolledBack => {
            let e = d.error.as_deref().unwrap_or("");
            let first: String = e.chars().take(80).collect();
            if e.chars().count() > 80 {
                format!("{first}…")
            } else {
                first
            }
        }
        DeploymentStatus::Superseded => "replaced by a newer deployment".to_owned(),
        DeploymentStatus::Running => String::new(),
    }
}

fn short(d: &Deployment) -> String {
    d.id.to_string().chars().take(8).collect()
}

/// Runs `racer deployments …`.
pub async fn deployments(
    client: &Client,
    cmd: DeploymentsCmd,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let DeploymentsCmd::List(a) = cmd;
    let state = a.state.as_deref().map(parse_state).transpose()?;
    let limit = a.limit.clamp(1, 200);
    let path = match &a.project_name {
        Some(app) => format!(
            "/api/v1/apps/{}/deployments?limit={limit}",
            path_segment(app)
        ),
        None => format!("/api/v1/deployments?limit={limit}"),
    };
    let page: Page<Deployment> = client
        .call::<(), _>(reqwest::Method::GET, &path, None)
        .await?;
    let shown: Vec<&Deployment> = page
        .items
        .iter()
        .filter(|d| state.is_none_or(|s| d.status == s))
        .collect();
    if json {
        output::json(&shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    if shown.is_empty() {
        println!(
            "no deployments{}",
            if state.is_some() {
                " in that state"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|d| {
            vec![
                short(d),
                d.app_name.clone(),
                d.status.as_str().to_owned(),
                d.release
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "-".into()),
                d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                why(d, &page.items),
            ]
        })
        .collect();
    output::table(&["ID", "APP", "STATE", "RELEASE", "CREATED", "WHY"], &rows)?;
    Ok(ExitCode::SUCCESS)
}
