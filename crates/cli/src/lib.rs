//! Shared parts of the `racer` and `racerctl` binaries: finding the server, the typed API client,
//! output, and the commands themselves ([`commands`] for `racer`, [`ctl`] for `racerctl`); the
//! binaries only parse and dispatch. The CLIs talk to the server only over HTTP.

pub mod account;
pub mod client;
pub mod commands;
pub mod credentials;
pub mod ctl;
pub mod deploy;
pub mod local;
pub mod output;
pub mod swarm;

pub use client::{Client, ClientError};

use std::path::PathBuf;
use std::process::ExitCode;

/// Runs a CLI's `run` and turns its outcome into an exit code: 0 success, 1 failure, with the
/// error's whole chain on one line behind the program name. A broken pipe counts as success.
pub fn finish(program: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets each `RACER_*` variable the seeds' name for it gives (`API_PORT` for `RACER_PORT`, …)
/// when it is unset, so `racerctl server start` reads the seeds' settings as `racer-server`
/// does. Call it first in `main`, while the process has one thread.
pub fn apply_seed_env() {
    for (name, value) in racer_core::settings::seed_fallbacks(|k| std::env::var(k).ok()) {
        std::env::set_var(name, value);
    }
}

/// A broken pipe on our own output (`racer logs | head`), not one on a connection to the server.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let from_http = e
        .chain()
        .any(|c| c.is::<reqwest::Error>() || c.is::<ClientError>());
    !from_http
        && e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
}

/// The heading the [`Global`] options are listed under in every `--help`, after the command's own.
pub const GLOBAL_HEADING: &str = "Global options";

/// The options every command of both CLIs takes.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// API URL. Default: the local server's (from the data directory), else http://127.0.0.1:8001.
    #[arg(long, global = true, env = "RACER_URL", help_heading = GLOBAL_HEADING)]
    pub url: Option<String>,
    /// API token. Default: your saved login for this server (`racer login`), else the local
    /// admin token in the data directory.
    #[arg(
        long,
        global = true,
        env = "RACER_TOKEN",
        hide_env_values = true,
        help_heading = GLOBAL_HEADING
    )]
    pub token: Option<String>,
    /// Data directory of the local server. Default: ~/.local/share/racer.
    #[arg(long, global = true, env = "RACER_DATA_DIR", help_heading = GLOBAL_HEADING)]
    pub data_dir: Option<PathBuf>,
    /// Print machine-readable JSON (the API's types) instead of text.
    #[arg(long, global = true, help_heading = GLOBAL_HEADING)]
    pub json: bool,
    /// Print every HTTP request and its answer on stderr (`> GET URL`, `< 200 OK in 12 ms`);
    /// never the token.
    #[arg(long, global = true, help_heading = GLOBAL_HEADING)]
    pub verbose: bool,
}
