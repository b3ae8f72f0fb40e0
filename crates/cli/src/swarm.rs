//! Swarm in the CLIs: `racer swarm-status | swarm-logs | swarm-remove` talk to the server's
//! `/api/v1/apps/{app}/swarm` endpoints; `racerctl swarm init | leave | status` run
//! `racer-server swarm ...`, the binary that talks to the local engine.

use racer_core::api::swarm::{SwarmRemoved, SwarmStatus};
use reqwest::Method;

use crate::client::{path_segment, Client, ClientError, TextStream};
use crate::output;

impl Client {
    /// `GET /api/v1/apps/{app}/swarm`.
    pub async fn swarm_status(&self, app: &str) -> Result<SwarmStatus, ClientError> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/v1/apps/{}/swarm", path_segment(app)),
            None,
        )
        .await
    }

    /// `GET /api/v1/apps/{app}/swarm/logs` as a stream of text.
    pub async fn swarm_logs(
        &self,
        app: &str,
        tail: &str,
        follow: bool,
    ) -> Result<TextStream, ClientError> {
        self.text(&format!(
            "/api/v1/apps/{}/swarm/logs?tail={}&follow={follow}",
            path_segment(app),
            path_segment(tail)
        ))
        .await
    }

    /// `DELETE /api/v1/apps/{app}/swarm`.
    pub async fn swarm_remove(&self, app: &str) -> Result<SwarmRemoved, ClientError> {
        self.call::<(), _>(
            Method::DELETE,
            &format!("/api/v1/apps/{}/swarm", path_segment(app)),
            None,
        )
        .await
    }
}

/// Prints an app's service and its tasks.
pub fn print_status(s: &SwarmStatus) -> anyhow::Result<()> {
    let Some(svc) = &s.service else {
        println!(
            "{}: no swarm service ({} instance(s) desired{}); racer creates it when the app has a release and instances",
            s.app,
            s.instances,
            s.release
                .map(|r| format!(", release {r}"))
                .unwrap_or_default()
        );
        return Ok(());
    };
    println!("project:   {}", s.app);
    println!("service:   {} ({})", svc.name, svc.id);
    println!(
        "release:   {} (image {})",
        svc.release
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into()),
        svc.image
    );
    println!(
        "replicas:  {}/{} running (version {})",
        svc.replicas_running, svc.replicas_desired, svc.version
    );
    if let Some(u) = &svc.update_state {
        println!(
            "update:    {u}{}",
            svc.update_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
    }
    for u in &s.urls {
        println!("url:       {u}");
    }
    let rows: Vec<Vec<String>> = s
        .tasks
        .iter()
        .map(|t| {
            let dash = || "-".to_owned();
            vec![
                t.id.chars().take(12).collect(),
                t.slot.map(|n| n.to_string()).unwrap_or_else(dash),
                t.release.map(|n| n.to_string()).unwrap_or_else(dash),
                t.state.clone(),
                t.desired_state.clone(),
                t.health.clone().unwrap_or_else(dash),
                t.node
                    .as_deref()
                    .map(|n| n.chars().take(12).collect())
                    .unwrap_or_else(dash),
                t.error
                    .clone()
                    .or_else(|| t.message.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        println!();
        output::table(
            &[
                "TASK", "SLOT", "RELEASE", "STATE", "DESIRED", "HEALTH", "NODE", "MESSAGE",
            ],
            &rows,
        )?;
    }
    Ok(())
}
