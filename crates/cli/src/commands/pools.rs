//! `racer pools …`, `racer claim` and `racer claims …` (issue 15): warm pools of pre-started
//! containers, and claims of them.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use racer_core::api::{ClaimInfo, ClaimRequest, NewPool, PoolInfo};

use crate::client::Client;
use crate::output;

/// `racer pools …`.
#[derive(Debug, Subcommand)]
pub enum PoolsCmd {
    /// Create a pool: its containers start in the background and wait to be claimed.
    Create(Box<CreateArgs>),
    /// The pools, with their containers ready, starting and claimed.
    List,
    /// One pool, and why it is below its size if the resource guard holds it there.
    Show {
        /// The pool's name or id.
        pool: String,
    },
    /// Change how many ready containers a pool keeps.
    Resize {
        /// The pool's name or id.
        pool: String,
        /// The new size.
        #[arg(long)]
        size: u32,
    },
    /// Delete a pool: its claims end and its containers are removed.
    Delete {
        /// The pool's name or id.
        pool: String,
    },
}

/// `racer pools create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The pool's name.
    pub name: String,
    /// The image its containers run (it must be on the engine: racer does not pull).
    #[arg(long, conflicts_with = "app", required_unless_present = "app")]
    pub image: Option<String>,
    /// Or: the current release's image of this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Ready containers to keep. Default: the server's (PRE_WARMED_QUEUE_SIZE, 2).
    #[arg(long)]
    pub size: Option<u32>,
    /// A named port, name=port (repeat): each claim answers at /<name>/<claim>/ on the proxy.
    /// Default: web=8080.
    #[arg(long = "port")]
    pub ports: Vec<String>,
    /// CPU limit of each container, cores. Default: the server's (RESOURCE_CPU_LIMIT).
    #[arg(long)]
    pub cpu: Option<f64>,
    /// Memory limit of each container, e.g. 4Gi. Default: the server's (RESOURCE_MEMORY_LIMIT).
    #[arg(long)]
    pub memory: Option<String>,
    /// How long a claim lasts, e.g. 8h. Default: 8h.
    #[arg(long)]
    pub claim_ttl: Option<String>,
    /// End a claim after this long without a proxied request, e.g. 30m. Default: never.
    #[arg(long)]
    pub idle_timeout: Option<String>,
    /// HTTP path answering 2xx once a container is ready (default: a TCP connection).
    #[arg(long)]
    pub health_path: Option<String>,
    /// Environment of every container, KEY=value (repeat).
    #[arg(long)]
    pub env: Vec<String>,
    /// Where a claim's workspace lives in the container. Default: /workspace.
    #[arg(long)]
    pub workspace_path: Option<String>,
}

/// `racer claim`.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// The pool's name or id.
    pub pool: String,
    /// The claim's own environment, KEY=value (repeat): written to /racer-claim.env in the
    /// container before the claim answers.
    #[arg(long)]
    pub env: Vec<String>,
    /// s3://bucket/prefix: restored into the container's workspace before the claim answers,
    /// synced while claimed, pushed on release (storage and credentials: the server's).
    #[arg(long)]
    pub workspace: Option<String>,
    /// The workspace's S3 region instead of the server's.
    #[arg(long, requires = "workspace")]
    pub s3_region: Option<String>,
    /// An access key for the workspace's bucket instead of the server's (with the secret key;
    /// prefer the variable). The server keeps it in memory only.
    #[arg(
        long,
        env = "RACER_CLAIM_S3_ACCESS_KEY",
        hide_env_values = true,
        requires = "workspace"
    )]
    pub s3_access_key: Option<String>,
    /// The secret key that goes with --s3-access-key (prefer the variable: ps shows flags).
    #[arg(
        long,
        env = "RACER_CLAIM_S3_SECRET_KEY",
        hide_env_values = true,
        requires = "workspace"
    )]
    pub s3_secret_key: Option<String>,
}

/// `racer claims …`.
#[derive(Debug, Subcommand)]
pub enum ClaimsCmd {
    /// Your organisation's claims, newest first.
    List {
        /// Ended claims too.
        #[arg(long)]
        all: bool,
    },
    /// One claim.
    Show {
        /// The claim's id.
        id: String,
    },
    /// Release a claim: its workspace is pushed a last time, its routes answer 404 at once, its
    /// container is removed.
    Release {
        /// The claim's id.
        id: String,
        /// Skip the last push of the workspace (what was not synced yet is lost).
        #[arg(long)]
        no_sync: bool,
    },
}

fn print_pool(p: &PoolInfo) {
    println!("pool {} ({})", p.name, p.id);
    println!("  image:      {}", p.image);
    println!(
        "  size:       {} (ready {}, starting {}, claimed {})",
        p.size, p.ready, p.starting, p.claimed
    );
    let ports: Vec<String> = p.ports.iter().map(|(n, v)| format!("{n}={v}")).collect();
    println!("  ports:      {}", ports.join(" "));
    println!("  limits:     {} cpu, {}Mi", p.cpus, p.memory_mb);
    println!(
        "  claims:     last {}{}",
        output::duration(p.claim_ttl_seconds),
        p.idle_timeout_seconds
            .map(|s| format!(", end after {} idle", output::duration(s)))
            .unwrap_or_default()
    );
    if let Some(h) = &p.held {
        println!("  held:       {h}");
    }
}

fn print_claim(c: &ClaimInfo) {
    println!(
        "claim {}  ({}, {} ms)",
        c.id,
        if c.warm {
            "warm"
        } else {
            "cold start: no container was ready"
        },
        c.claim_ms
    );
    println!("  pool:       {}", c.pool);
    println!("  state:      {}", c.state);
    for (name, url) in &c.urls {
        println!("  {name:<10}  {url}");
    }
    if let Some(t) = &c.token {
        println!("  token:      {t}");
        println!("              (shown once: send it as X-Racer-Claim-Token, or open a URL with ?token=…)");
    }
    println!(
        "  expires:    {}",
        c.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(e) = &c.error {
        println!("  error:      {e}");
    }
    if let Some(w) = &c.workspace {
        println!("  workspace:  {}", w.url);
        if let (Some(b), Some(ms)) = (w.restored_bytes, w.restore_ms) {
            println!("  restored:   {b} bytes in {ms} ms");
        }
        if let Some(t) = w.synced_at {
            println!("  synced:     {}", t.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        if let Some(e) = &w.sync_error {
            println!("  sync error: {e} (retried)");
        }
    }
}

/// Runs `racer pools …`.
pub async fn pools(c: &Client, cmd: PoolsCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        PoolsCmd::Create(a) => {
            let a = *a;
            let req = NewPool {
                name: a.name,
                image: a.image,
                app: a.app,
                size: a.size,
                ports: a.ports,
                cpus: a.cpu,
                memory: a.memory,
                claim_ttl: a.claim_ttl,
                idle_timeout: a.idle_timeout,
                health_path: a.health_path,
                env: a.env,
                workspace_path: a.workspace_path,
            };
            let p = c.create_pool(&req).await?;
            if json {
                output::json(&p)?;
            } else {
                print_pool(&p);
                println!(
                    "its containers are starting: `racer pools show {}` follows them",
                    p.name
                );
            }
        }
        PoolsCmd::List => {
            let ps = c.pools().await?;
            if json {
                output::json(&ps)?;
            } else if ps.is_empty() {
                println!(
                    "no pools: create one with `racer pools create NAME --image IMAGE --size 3`"
                );
            } else {
                println!(
                    "{:<20} {:>4} {:>5} {:>8} {:>7}  IMAGE",
                    "NAME", "SIZE", "READY", "STARTING", "CLAIMED"
                );
                for p in &ps {
                    println!(
                        "{:<20} {:>4} {:>5} {:>8} {:>7}  {}{}",
                        p.name,
                        p.size,
                        p.ready,
                        p.starting,
                        p.claimed,
                        p.image,
                        if p.held.is_some() {
                            "  (held by the resource guard)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        PoolsCmd::Show { pool } => {
            let p = c.pool(&pool).await?;
            if json {
                output::json(&p)?;
            } else {
                print_pool(&p);
            }
        }
        PoolsCmd::Resize { pool, size } => {
            let p = c.resize_pool(&pool, size).await?;
            if json {
                output::json(&p)?;
            } else {
                print_pool(&p);
            }
        }
        PoolsCmd::Delete { pool } => {
            let p = c.delete_pool(&pool).await?;
            if json {
                output::json(&p)?;
            } else {
                println!(
                    "deleted pool {}: its claims ended, its containers are being removed",
                    p.name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `racer claim`.
pub async fn claim(c: &Client, a: ClaimArgs, json: bool) -> anyhow::Result<ExitCode> {
    let info = c
        .claim(
            &a.pool,
            &ClaimRequest {
                env: a.env,
                workspace: a.workspace,
                s3_region: a.s3_region,
                s3_access_key: a.s3_access_key,
                s3_secret_key: a.s3_secret_key,
            },
        )
        .await?;
    if json {
        output::json(&info)?;
    } else {
        print_claim(&info);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `racer claims …`.
pub async fn claims(c: &Client, cmd: ClaimsCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        ClaimsCmd::List { all } => {
            let cs = c.claims(all).await?;
            if json {
                output::json(&cs)?;
            } else if cs.is_empty() {
                println!("no claims: make one with `racer claim POOL`");
            } else {
                println!(
                    "{:<36}  {:<16} {:<9} {:<5}  EXPIRES",
                    "ID", "POOL", "STATE", "WARM"
                );
                for x in &cs {
                    println!(
                        "{:<36}  {:<16} {:<9} {:<5}  {}",
                        x.id,
                        x.pool,
                        x.state,
                        if x.warm { "yes" } else { "no" },
                        x.expires_at.format("%Y-%m-%d %H:%M")
                    );
                }
            }
        }
        ClaimsCmd::Show { id } => {
            let x = c.claim_of(&id).await?;
            if json {
                output::json(&x)?;
            } else {
                print_claim(&x);
            }
        }
        ClaimsCmd::Release { id, no_sync } => {
            let x = c.release_claim(&id, no_sync).await?;
            if json {
                output::json(&x)?;
            } else {
                println!(
                    "released claim {}: its routes answer 404, its container is being removed",
                    x.id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
