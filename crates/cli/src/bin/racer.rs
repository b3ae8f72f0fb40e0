//! `racer`: the developer's tool. Creates apps, deploys them, watches them.
//!
//! This file parses the command line and dispatches; each command's body is in
//! `racer_cli::commands` (and `racer_cli::account` for the account commands).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use racer_cli::account::{self, InvitesCmd, LoginArgs, RegisterArgs, TokensCmd};
use racer_cli::commands::apps::{self, AppsCmd, StatusArgs};
use racer_cli::commands::deploy::{self, RerunArgs, RollbackArgs, RunArgs};
use racer_cli::commands::logs::{self, EventsArgs, LogsArgs};
use racer_cli::commands::scale::{self, Direction, PolicyArgs, ScaleArgs, ScaleStepArgs};
use racer_cli::commands::spec::{self, ApplyArgs, DockerfileArgs, ValidateArgs};
use racer_cli::commands::swarm::{self, SwarmLogsArgs};
use racer_cli::commands::NameArg;
use racer_cli::local::{self, Target};
use racer_cli::Client;

/// racer: deploy and run apps on your own Docker hosts.
#[derive(Debug, Parser)]
#[command(name = "racer", version, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: racer_cli::Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build (unless --image) and run a project: from a folder, a git repository or an image.
    Run(RunArgs),
    /// Check a project: what racer would build, and every problem with its field path.
    Validate(ValidateArgs),
    /// Print (or write) the Dockerfile a deploy of the project would build.
    Dockerfile(DockerfileArgs),
    /// List projects (apps) with their release and instances.
    ListProjects,
    /// List deployments of every project (or one), newest first, and why each queued one waits.
    #[command(subcommand)]
    Deployments(racer_cli::commands::deployments::DeploymentsCmd),
    /// Set, list and unset an app's secrets (encrypted at rest, given to replicas as env).
    #[command(subcommand)]
    Secrets(racer_cli::commands::secrets::SecretsCmd),
    /// Create, list, show, resize and delete warm pools of pre-started containers.
    #[command(subcommand)]
    Pools(racer_cli::commands::pools::PoolsCmd),
    /// Claim a container of a pool: a ready one in milliseconds, else one started now.
    Claim(racer_cli::commands::pools::ClaimArgs),
    /// List, show and release claims.
    #[command(subcommand)]
    Claims(racer_cli::commands::pools::ClaimsCmd),
    /// Show a project's status and containers (the only project if none is named; every project
    /// with --list).
    Status(StatusArgs),
    /// Show a project's container logs (--json: one object a line).
    Logs(LogsArgs),
    /// Make a new release from the recorded source (rebuilt unless --no-rebuild); --list shows
    /// the projects that can be.
    Rerun(RerunArgs),
    /// Roll back to the previous release (or --to N): its image and config, no rebuild.
    Rollback(RollbackArgs),
    /// Create or update an app from a spec file (YAML or JSON); prints what changed.
    Apply(ApplyArgs),
    /// Show a project's traffic, replicas and scaling history.
    Metrics(NameArg),
    /// Set a project's scaling policy from a file (the spec.scaling.policy fields).
    Policy(PolicyArgs),
    /// Start a stopped project again with the instances it had.
    Up(NameArg),
    /// Stop every container of a project, keeping its spec and releases.
    Down(NameArg),
    /// Set how many instances of a project run; with --path, --git or --image, deploy it first.
    Scale(ScaleArgs),
    /// Scale a project up to --instances N (refused if it runs more).
    ScaleUp(ScaleStepArgs),
    /// Scale a project down to --instances N (refused if it runs fewer).
    ScaleDown(ScaleStepArgs),
    /// List a project's releases.
    Releases(NameArg),
    /// Delete a project: its record, containers and images.
    Delete(NameArg),
    /// Create, list, show and delete apps.
    #[command(subcommand)]
    Apps(AppsCmd),
    /// Show the event (audit) log.
    Events(EventsArgs),
    /// Log in with your email and password; the session is saved for this server.
    Login(LoginArgs),
    /// Forget the saved session for this server.
    Logout,
    /// Show who you are to the server: user, organisation, role.
    Whoami,
    /// Create your account with an invite code and set a password.
    Register(RegisterArgs),
    /// Invite people to your organisation (admin).
    #[command(subcommand)]
    Invites(InvitesCmd),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// Show a project's Swarm service: replicas desired and running, its tasks (server on --cluster swarm).
    SwarmStatus(NameArg),
    /// Show a project's Swarm service log, every task merged.
    SwarmLogs(SwarmLogsArgs),
    /// Remove a project's Swarm service; the project is down, its spec and releases are kept.
    SwarmRemove(NameArg),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("racer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    racer_cli::finish("racer", rt.block_on(run(cli)))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    racer_cli::client::set_verbose(g.verbose);
    let data_dir = g.data_dir.clone().unwrap_or_else(local::default_data_dir);
    let client = Client::new(Target::resolve(g.url, g.token, &data_dir));
    let c = &client;
    let json = g.json;
    match cli.command {
        Cmd::Login(a) => account::login(c, a, json).await,
        Cmd::Logout => account::logout(c),
        Cmd::Whoami => account::whoami(c, json).await,
        Cmd::Register(a) => account::register(c, a, json).await,
        Cmd::Invites(cmd) => account::invites(c, cmd, json).await,
        Cmd::Tokens(cmd) => account::tokens(c, cmd, json).await,
        Cmd::Run(a) => deploy::run(c, a, json).await,
        Cmd::Rerun(a) => deploy::rerun(c, a, json).await,
        Cmd::Rollback(a) => deploy::rollback(c, a, json).await,
        Cmd::Validate(a) => spec::validate(c, a, json).await,
        Cmd::Dockerfile(a) => spec::dockerfile(c, a, json).await,
        Cmd::Apply(a) => spec::apply(c, a, json).await,
        Cmd::ListProjects => apps::list_projects(c, json).await,
        Cmd::Deployments(d) => racer_cli::commands::deployments::deployments(c, d, json).await,
        Cmd::Status(a) => apps::status(c, a, json).await,
        Cmd::Pools(p) => racer_cli::commands::pools::pools(c, p, json).await,
        Cmd::Secrets(s) => racer_cli::commands::secrets::secrets(c, s, json).await,
        Cmd::Claim(a) => racer_cli::commands::pools::claim(c, a, json).await,
        Cmd::Claims(p) => racer_cli::commands::pools::claims(c, p, json).await,
        Cmd::Releases(n) => apps::releases(c, n, json).await,
        Cmd::Up(n) => apps::set_running(c, n, true, json).await,
        Cmd::Down(n) => apps::set_running(c, n, false, json).await,
        Cmd::Delete(n) => apps::delete(c, n, json).await,
        Cmd::Apps(cmd) => apps::apps(c, cmd, json).await,
        Cmd::Scale(a) => scale::scale(c, a, json).await,
        Cmd::ScaleUp(a) => scale::scale_step(c, a, Direction::Up, json).await,
        Cmd::ScaleDown(a) => scale::scale_step(c, a, Direction::Down, json).await,
        Cmd::Metrics(n) => scale::metrics(c, n, json).await,
        Cmd::Policy(a) => scale::policy(c, a, json).await,
        Cmd::Logs(a) => logs::logs(c, a, json).await,
        Cmd::Events(a) => logs::events(c, a, json).await,
        Cmd::SwarmStatus(n) => swarm::status(c, n, json).await,
        Cmd::SwarmLogs(a) => swarm::logs(c, a).await,
        Cmd::SwarmRemove(n) => swarm::remove(c, n, json).await,
    }
}
