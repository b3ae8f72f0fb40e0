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

/// The options every command of both CLIs takes.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// API URL. Default: the local server's (from the data directory), else http://127.0.0.1:8001.
    #[arg(long, global = true, env = "RACER_URL")]
    pub url: Option<String>,
    /// API token. Default: your saved login for this server (`racer login`), else the local
    /// admin token in the data directory.
    #[arg(long, global = true, env = "RACER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of the local server. Default: ~/.local/share/racer.
    #[arg(long, global = true, env = "RACER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print machine-readable JSON (the API's types) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}
