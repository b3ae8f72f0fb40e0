//! `racer secrets set|list|unset` (issue 19): app secrets, encrypted at rest on the server,
//! given to replicas as environment variables, never shown again.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use racer_core::api::{SecretInfo, SetSecrets};

use crate::client::Client;
use crate::output;

/// `racer secrets …`.
#[derive(Debug, Subcommand)]
pub enum SecretsCmd {
    /// Set secrets: NAME=value (repeat), or NAME alone to read its value from stdin (one line).
    /// The app rolls to a new release with them.
    Set {
        /// The project (app) name or UUID.
        #[arg(long)]
        project_name: String,
        /// NAME=value, or NAME with the value on stdin.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// List an app's secrets: names and digests (values are never shown).
    List {
        /// The project (app) name or UUID.
        #[arg(long)]
        project_name: String,
    },
    /// Remove a secret; the app rolls to a new release without it.
    Unset {
        /// The project (app) name or UUID.
        #[arg(long)]
        project_name: String,
        /// The secret's name.
        name: String,
    },
}

fn print(list: &[SecretInfo]) {
    if list.is_empty() {
        println!("no secrets: set one with `racer secrets set --project-name APP NAME=value`");
        return;
    }
    println!("{:<32} {:<18} UPDATED", "NAME", "DIGEST");
    for s in list {
        println!(
            "{:<32} {:<18} {}",
            s.name,
            s.digest,
            s.updated_at.format("%Y-%m-%d %H:%M")
        );
    }
}

/// Runs `racer secrets …`.
pub async fn secrets(c: &Client, cmd: SecretsCmd, json: bool) -> anyhow::Result<ExitCode> {
    let list = match cmd {
        SecretsCmd::Set {
            project_name,
            pairs,
        } => {
            let mut req = SetSecrets::default();
            let stdin_names: Vec<&String> = pairs.iter().filter(|p| !p.contains('=')).collect();
            if stdin_names.len() > 1 {
                bail!("only one NAME can take its value from stdin; give the others as NAME=value");
            }
            for p in &pairs {
                match p.split_once('=') {
                    Some((k, v)) => {
                        req.secrets.insert(k.to_owned(), v.to_owned());
                    }
                    None => {
                        let mut line = String::new();
                        std::io::stdin().lock().read_line(&mut line)?;
                        let v = line.trim_end_matches(['\n', '\r']).to_owned();
                        if v.is_empty() {
                            bail!("no value for {p} on stdin");
                        }
                        req.secrets.insert(p.clone(), v);
                    }
                }
            }
            let list = c.set_secrets(&project_name, &req).await?;
            if !json {
                println!(
                    "set {} secret(s) of {project_name}; it rolls to a new release with them",
                    req.secrets.len()
                );
            }
            list
        }
        SecretsCmd::List { project_name } => c.secrets(&project_name).await?,
        SecretsCmd::Unset { project_name, name } => {
            let list = c.unset_secret(&project_name, &name).await?;
            if !json {
                println!(
                    "removed {name} from {project_name}; it rolls to a new release without it"
                );
            }
            list
        }
    };
    if json {
        output::json(&list)?;
    } else {
        print(&list);
    }
    Ok(ExitCode::SUCCESS)
}
