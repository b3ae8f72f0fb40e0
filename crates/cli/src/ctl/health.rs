//! Whether the server is well: `racerctl health` (store and engine too; exit 1 if unhealthy),
//! `liveness`, `readiness` and `info`.

use std::process::ExitCode;

use racer_core::api::{Probe, ServerInfo};

use crate::client::Client;
use crate::output;

/// `racerctl health`: the server, its store and the Docker engine; exit 1 if unhealthy.
pub async fn health(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let h = client.health().await?;
    if json {
        output::json(&h)?;
    } else {
        println!("status: {}", h.status);
        let rows: Vec<Vec<String>> = h
            .components
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    if c.healthy { "healthy" } else { "UNHEALTHY" }.into(),
                    c.detail.clone(),
                ]
            })
            .collect();
        output::table(&["COMPONENT", "STATE", "DETAIL"], &rows)?;
    }
    Ok(if h.status == "unhealthy" {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `racerctl liveness` and `readiness`: prints a probe's answer.
pub fn probe(p: Probe, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        output::json(&p)?;
    } else {
        println!("{}", p.status);
    }
    Ok(ExitCode::SUCCESS)
}

/// `racerctl info`: facts about the running server.
pub async fn info(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let info = client.server_info().await?;
    if json {
        output::json(&info)?;
    } else {
        print_info(&info, None);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the server's facts, with its log file when known.
pub fn print_info(info: &ServerInfo, log: Option<&str>) {
    println!("racer server {} is running", info.version);
    println!("  pid:       {}", info.pid);
    println!("  uptime:    {}", output::duration(info.uptime_seconds));
    println!("  API:       {}", info.api_url);
    if let Some(p) = &info.proxy_url {
        println!("  proxy:     {p}");
    }
    println!("  store:     {}", info.store);
    println!("  data dir:  {}", info.data_dir);
    println!(
        "  docker:    {}",
        info.docker_version.as_deref().unwrap_or("unreachable")
    );
    for (what, l) in [
        ("controller", &info.controller),
        ("autoscaler", &info.autoscaler),
    ] {
        if let Some(l) = l {
            println!("  {what}: {}", leadership(l));
        }
    }
    if let Some(l) = log {
        println!("  log:       {l}");
    }
}

/// `leader (epoch 3)`, `follower (leader: 5f1c…, epoch 3)`, `off (--no-worker)`.
fn leadership(l: &racer_core::api::Leadership) -> String {
    match l.role.as_str() {
        "leader" => format!("leader (this server, epoch {})", l.epoch),
        "off" => "off (--no-worker: a worker or another server acts)".into(),
        _ => match &l.holder {
            Some(h) => format!("follower (leader: {h}, epoch {})", l.epoch),
            None => "follower (nobody holds the lease now)".into(),
        },
    }
}
