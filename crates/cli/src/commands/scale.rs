//! How many replicas run and why: `racer scale`, `scale-up`, `scale-down`, `racer metrics`
//! (traffic, replicas and scaling history) and `racer policy` (the autoscaling policy).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::NameArg;
use crate::client::Client;
use crate::output;

/// `racer scale`, `scale-up` and `scale-down`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: String,
    /// Desired instances.
    #[arg(long)]
    pub instances: u32,
}

/// `racer policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The project (name or UUID).
    #[arg(long)]
    pub project_name: String,
    /// The policy file (YAML or JSON): mode, cooldownSeconds, windowSeconds, cpu, memory, http,
    /// scaleOutThresholdPct, scaleInThresholdPct, and optionally minReplicas/maxReplicas.
    #[arg(long, short = 'f')]
    pub file: PathBuf,
}

/// `racer scale` (and `scale-up`, `scale-down`): sets how many instances run.
pub async fn scale(client: &Client, s: ScaleArgs, json: bool) -> anyhow::Result<ExitCode> {
    let app = client.scale(&s.project_name, s.instances).await?;
    if json {
        output::json(&app)?;
    } else {
        println!("{} scaled to {} instance(s)", app.name, app.instances);
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer metrics`: a project's traffic, replicas and scaling history.
pub async fn metrics(client: &Client, n: NameArg, json: bool) -> anyhow::Result<ExitCode> {
    let m = client.app_metrics(&n.project_name).await?;
    if json {
        output::json(&m)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("app:       {}", m.app);
    println!(
        "replicas:  {} ready of {} desired",
        m.replicas_ready, m.replicas_desired
    );
    let reqs: Vec<String> = m.requests.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "requests:  {}",
        if reqs.is_empty() {
            "none yet".into()
        } else {
            reqs.join(", ")
        }
    );
    println!("in flight: {}", m.active_requests);
    println!(
        "p95:       {}",
        m.p95_ms
            .map(|p| format!("<= {p} ms"))
            .unwrap_or_else(|| "-".into())
    );
    if !m.replicas.is_empty() {
        let rows: Vec<Vec<String>> = m
            .replicas
            .iter()
            .map(|r| {
                vec![
                    r.addr.clone(),
                    r.requests.to_string(),
                    r.active.to_string(),
                    if r.ejected {
                        "ejected".into()
                    } else {
                        "-".into()
                    },
                ]
            })
            .collect();
        output::table(&["REPLICA", "REQUESTS", "IN FLIGHT", "PASSIVE"], &rows)?;
    }
    if !m.scaling_history.is_empty() {
        println!("scaling history:");
        for e in &m.scaling_history {
            println!("  {}  {:<11} {}", output::time(&e.at), e.actor, e.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer policy`: sets a project's scaling policy from a file and prints what changed.
pub async fn policy(client: &Client, p: PolicyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&p.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.file.display()))?;
    let result = client.put_policy(&p.project_name, &text).await?;
    if json {
        output::json(&result)?;
    } else if !result.changed {
        println!("{}: no change", result.app.name);
    } else {
        println!("{}: policy applied", result.app.name);
        for line in &result.diff {
            println!("  {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
