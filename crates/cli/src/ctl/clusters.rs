//! `racerctl clusters …`: the Docker engines racer places work on (issue 14).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use racer_core::api::{ClusterInfo, NewCluster};

use crate::client::Client;
use crate::output;

/// `racerctl clusters …`.
#[derive(Debug, Subcommand)]
pub enum ClustersCmd {
    /// Add a Docker engine as a cluster (it must answer).
    Add {
        /// Its name (lowercase letters, digits, -).
        name: String,
        /// The engine: unix:///path/to/docker.sock or tcp://host:port.
        #[arg(long)]
        docker_host: String,
        /// A tcp:// engine over mutual TLS (dockerd --tlsverify): the CA certificate (PEM) its
        /// certificate is signed by. A file on the server, read by it and by every worker; with
        /// --tls-cert and --tls-key.
        #[arg(long, value_name = "FILE")]
        tls_ca: Option<PathBuf>,
        /// The client certificate (PEM) racer presents to the engine.
        #[arg(long, value_name = "FILE")]
        tls_cert: Option<PathBuf>,
        /// The client certificate's private key (PEM); only its path is sent and stored.
        #[arg(long, value_name = "FILE")]
        tls_key: Option<PathBuf>,
        /// Cores (default: the engine's NCPU).
        #[arg(long)]
        cpu: Option<f64>,
        /// Memory, e.g. 128Gi (default: the engine's MemTotal).
        #[arg(long)]
        memory: Option<String>,
        /// GPUs (engines do not report them).
        #[arg(long, default_value_t = 0)]
        gpu: u64,
        /// The engine is a Swarm manager.
        #[arg(long)]
        swarm: bool,
        /// A label requests can ask for, KEY=VALUE (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
    /// List the clusters with their state, capacity and containers.
    List,
    /// Show one cluster.
    Show {
        /// Its name.
        name: String,
    },
    /// Place nothing new on a cluster.
    Drain {
        /// Its name.
        name: String,
    },
    /// Place work on a drained cluster again.
    Undrain {
        /// Its name.
        name: String,
    },
    /// Remove a cluster (refused for local and while anything runs there).
    Remove {
        /// Its name.
        name: String,
    },
}

fn capacity(c: &ClusterInfo) -> String {
    match &c.capacity {
        Some(cap) => format!(
            "{} cpu, {} MiB{}",
            cap.cpu_milli as f64 / 1000.0,
            cap.memory_mb,
            if cap.gpu > 0 {
                format!(", {} gpu", cap.gpu)
            } else {
                String::new()
            }
        ),
        None => "unknown".to_owned(),
    }
}

fn print(c: &ClusterInfo) {
    println!("cluster:  {}", c.name);
    println!(
        "engine:   {}",
        c.docker_host
            .as_deref()
            .unwrap_or("the server's own (DOCKER_HOST, else the default socket)")
    );
    println!(
        "state:    {}{}",
        c.state,
        c.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    let sources: Vec<String> = c
        .capacity_source
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("capacity: {} ({})", capacity(c), sources.join(", "));
    if let Some(t) = &c.tls {
        println!(
            "tls:      yes (ca {}, cert {}, key {})",
            t.ca, t.cert, t.key
        );
    } else if c
        .docker_host
        .as_deref()
        .is_some_and(|h| h.starts_with("tcp://"))
    {
        println!("tls:      no");
    }
    if let Some(v) = &c.engine_version {
        println!("version:  {v}");
    }
    println!("running:  {} container(s) of this install", c.containers);
    if !c.labels.is_empty() {
        let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("labels:   {}", labels.join(", "));
    }
}

/// A file the server reads, as the path to send it: a relative path is taken from this
/// directory (the usual case of a server on this machine); the server checks it exists.
fn server_path(p: &std::path::Path) -> anyhow::Result<String> {
    let abs = std::path::absolute(p)
        .map_err(|e| anyhow::anyhow!("{}: cannot make it an absolute path: {e}", p.display()))?;
    abs.to_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{}: the path is not UTF-8", abs.display()))
}

/// Runs `racerctl clusters …`.
pub async fn clusters(client: &Client, cmd: ClustersCmd, json: bool) -> anyhow::Result<ExitCode> {
    let one = match cmd {
        ClustersCmd::List => {
            let list = client.clusters().await?;
            if json {
                output::json(&list)?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.state.clone(),
                            capacity(c),
                            c.containers.to_string(),
                            match (&c.docker_host, &c.tls) {
                                (None, _) => "(server's)".into(),
                                (Some(h), None) => h.clone(),
                                (Some(h), Some(_)) => format!("{h} (tls)"),
                            },
                        ]
                    })
                    .collect();
                output::table(&["NAME", "STATE", "CAPACITY", "RUNNING", "ENGINE"], &rows)?;
                for c in list.iter().filter(|c| c.error.is_some()) {
                    println!("{}: {}", c.name, c.error.as_deref().unwrap_or_default());
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        ClustersCmd::Add {
            name,
            docker_host,
            tls_ca,
            tls_cert,
            tls_key,
            cpu,
            memory,
            gpu,
            swarm,
            labels,
        } => {
            let mut map = BTreeMap::new();
            for l in labels {
                let Some((k, v)) = l.split_once('=') else {
                    bail!("--label {l:?}: write KEY=VALUE, e.g. --label zone=eu");
                };
                map.insert(k.to_owned(), v.to_owned());
            }
            client
                .add_cluster(&NewCluster {
                    name,
                    docker_host,
                    cpu,
                    memory,
                    gpu,
                    swarm,
                    labels: map,
                    tls_ca: tls_ca.map(|p| server_path(&p)).transpose()?,
                    tls_cert: tls_cert.map(|p| server_path(&p)).transpose()?,
                    tls_key: tls_key.map(|p| server_path(&p)).transpose()?,
                })
                .await?
        }
        ClustersCmd::Show { name } => client.cluster(&name).await?,
        ClustersCmd::Drain { name } => client.drain_cluster(&name, true).await?,
        ClustersCmd::Undrain { name } => client.drain_cluster(&name, false).await?,
        ClustersCmd::Remove { name } => {
            let gone = client.remove_cluster(&name).await?;
            if json {
                output::json(&gone)?;
            } else {
                println!("cluster {} removed", gone.name);
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    if json {
        output::json(&one)?;
    } else {
        print(&one);
    }
    Ok(ExitCode::SUCCESS)
}

/// `racerctl queue …`.
#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// The work waiting and running, per kind (builds, and the job queue's kinds).
    Status,
}

/// Runs `racerctl queue status`.
pub async fn queue(client: &Client, cmd: QueueCmd, json: bool) -> anyhow::Result<ExitCode> {
    let QueueCmd::Status = cmd;
    let kinds = client.queue_status().await?;
    if json {
        output::json(&kinds)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = kinds
        .iter()
        .map(|k| {
            vec![
                k.kind.clone(),
                k.pending.to_string(),
                k.running.to_string(),
                k.deferred.to_string(),
                k.failed.to_string(),
                k.dead.to_string(),
            ]
        })
        .collect();
    output::table(
        &["KIND", "PENDING", "RUNNING", "DEFERRED", "FAILED", "DEAD"],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}
