//! `racerctl`: the operator's tool. Starts and stops the server, checks its health, manages
//! containers.
//!
//! This file parses the command line and dispatches; each command's body is in
//! `racer_cli::ctl` (and `racer_cli::account` for users and organisations).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use racer_cli::account::{self, OrgsCmd, UsersCmd};
use racer_cli::ctl::clusters::{self, ClustersCmd, QueueCmd};
use racer_cli::ctl::containers::{self, ContainersCmd};
use racer_cli::ctl::health;
use racer_cli::ctl::server::{self, ServerCmd};
use racer_cli::ctl::swarm::{self, SwarmCmd};
use racer_cli::local::{self, Target};
use racer_cli::Client;

/// racerctl: operate a racer server: start and stop it, check its health, manage its containers,
/// users and organisations.
#[derive(Debug, Parser)]
#[command(name = "racerctl", version, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: racer_cli::Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start, stop and inspect the local server process.
    #[command(subcommand)]
    Server(ServerCmd),
    /// Check the server, its store and the Docker engine (exit 1 if unhealthy).
    Health,
    /// Check that the server process answers.
    Liveness,
    /// Check that the server is ready to take requests.
    Readiness,
    /// Show facts about the running server.
    Info,
    /// Inspect and act on the containers racer runs.
    #[command(subcommand)]
    Containers(ContainersCmd),
    /// Add, list, drain and remove the Docker engines racer places work on.
    #[command(subcommand)]
    Clusters(ClustersCmd),
    /// The work waiting and running: builds and queued jobs.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Run a worker on the server's store, in this terminal: it builds queued deployments and,
    /// holding the controller's lease, places and runs replicas (see `racerctl server start
    /// --no-worker`).
    Worker(server::WorkerArgs),
    /// Back the store up to a file: a consistent SQLite snapshot (safe while the server runs), or
    /// pg_dump of PostgreSQL.
    Backup {
        /// The file to write (must not exist).
        #[arg(long)]
        output: std::path::PathBuf,
        #[command(flatten)]
        store: server::StoreArgs,
    },
    /// Restore a backup onto a stopped server's store; the restored install's running containers
    /// are adopted at the next start, not restarted.
    Restore {
        /// The backup file.
        input: std::path::PathBuf,
        #[command(flatten)]
        store: server::StoreArgs,
    },
    /// Create, list, disable and enable users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Create and list organisations.
    #[command(subcommand)]
    Orgs(OrgsCmd),
    /// Make the local Docker engine a single-node swarm, leave it, or show its membership.
    #[command(subcommand)]
    Swarm(SwarmCmd),
}

fn main() -> ExitCode {
    racer_cli::apply_seed_env();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("racerctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    racer_cli::finish("racerctl", rt.block_on(run(cli)))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    racer_cli::client::set_verbose(g.verbose);
    let data_dir = g.data_dir.clone().unwrap_or_else(local::default_data_dir);
    let target = || Target::resolve_operator(g.url.clone(), g.token.clone(), &data_dir);
    let json = g.json;
    match cli.command {
        Cmd::Server(ServerCmd::Start(a)) => server::start(&data_dir, *a, json).await,
        Cmd::Server(ServerCmd::Stop(a)) => server::stop(&data_dir, &a, json).await,
        Cmd::Server(ServerCmd::Status) => server::status(&data_dir, target(), json).await,
        Cmd::Server(ServerCmd::Restart(a)) => server::restart(&data_dir, *a, json).await,
        Cmd::Users(c) => account::users(&Client::new(target()), c, json).await,
        Cmd::Orgs(c) => account::orgs(&Client::new(target()), c, json).await,
        Cmd::Health => health::health(&Client::new(target()), json).await,
        Cmd::Liveness => health::probe(Client::new(target()).liveness().await?, json),
        Cmd::Readiness => health::probe(Client::new(target()).readiness().await?, json),
        Cmd::Info => health::info(&Client::new(target()), json).await,
        Cmd::Containers(c) => containers::containers(&Client::new(target()), c, json).await,
        Cmd::Clusters(c) => clusters::clusters(&Client::new(target()), c, json).await,
        Cmd::Queue(c) => clusters::queue(&Client::new(target()), c, json).await,
        Cmd::Swarm(c) => swarm::swarm(c, json),
        Cmd::Worker(a) => server::worker(&data_dir, a),
        Cmd::Backup { output, store } => {
            server::store_command(&data_dir, &store, "backup", &output)
        }
        Cmd::Restore { input, store } => {
            server::store_command(&data_dir, &store, "restore", &input)
        }
    }
}
