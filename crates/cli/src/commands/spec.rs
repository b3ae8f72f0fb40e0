//! A project's spec and what the server makes of it: `racer apply` (create or update an app from
//! a spec file), `racer validate` and `racer dockerfile`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use racer_core::api::{Deployed, InspectRequest, RunConfig, Source};

use crate::client::Client;
use crate::deploy::{self, parse_env};
use crate::output;

/// `racer validate`, and the project `racer dockerfile` looks at.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// A project folder on this machine (sent to the server as a tarball).
    #[arg(long, conflicts_with = "git", required_unless_present = "git")]
    pub path: Option<PathBuf>,
    /// A git repository, optionally with #branch, #tag or #sha.
    #[arg(long)]
    pub git: Option<String>,
    /// Environment variables the project needs (KEY=VALUE), for validation of required ones.
    #[arg(long = "env", visible_alias = "environment", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
}

/// `racer validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The project.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The conda-project command a deploy would run (default: the project's first).
    #[arg(long)]
    pub command: Option<String>,
    /// Validate on this machine, without the server (the same checks; done anyway for --path
    /// when no server answers).
    #[arg(long)]
    pub local: bool,
}

/// `racer dockerfile`.
#[derive(Debug, Args)]
pub struct DockerfileArgs {
    /// The project.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Write it to this file instead of printing it.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The port the app listens on.
    #[arg(long)]
    pub app_port: Option<u16>,
    /// The command to run (a conda-project command name or a command line).
    #[arg(long)]
    pub command: Option<String>,
    /// Base image for conda-projects.
    #[arg(long)]
    pub base_image: Option<String>,
}

/// `racer apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The spec file.
    #[arg(long, short = 'f')]
    pub file: PathBuf,
    /// Return once accepted instead of waiting for a new release to run.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the deployment.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

async fn inspect_source(client: &Client, a: &SourceArgs, quiet: bool) -> anyhow::Result<Source> {
    match (&a.path, &a.git) {
        (Some(p), _) => deploy::send_folder(client, p, quiet).await,
        (_, Some(g)) => Ok(deploy::git_source(g)),
        _ => bail!("give --path or --git"),
    }
}

/// `racer validate`: what racer would build, and every problem with its field path. Exit 1 if
/// the project is invalid. On the server, or (`--local`, or `--path` with no server answering)
/// with the same code here: the output is the same.
pub async fn validate(client: &Client, a: ValidateArgs, json: bool) -> anyhow::Result<ExitCode> {
    let env = parse_env(&a.source.env)?;
    let report = if a.local {
        local_validate(&a, &env)?
    } else {
        let remote = async {
            let req = InspectRequest {
                source: inspect_source(client, &a.source, json).await?,
                config: RunConfig {
                    env: env.clone(),
                    command: a.command.clone(),
                    ..Default::default()
                },
            };
            Ok::<_, anyhow::Error>(client.validate(&req).await?)
        };
        match remote.await {
            Ok(r) => r,
            Err(e)
                if a.source.path.is_some()
                    && e.chain().any(|c| {
                        matches!(
                            c.downcast_ref::<crate::ClientError>(),
                            Some(crate::ClientError::Unreachable { .. })
                        )
                    }) =>
            {
                eprintln!(
                    "racer: no server answers at {}; validating on this machine (--local)",
                    client.url()
                );
                local_validate(&a, &env)?
            }
            Err(e) => return Err(e),
        }
    };
    if json {
        output::json(&report)?;
    } else if report.valid {
        println!(
            "valid {}{}",
            report.kind.as_deref().unwrap_or("project"),
            report
                .project_name
                .as_deref()
                .map(|n| format!(" {n:?}"))
                .unwrap_or_default()
        );
        if !report.environments.is_empty() {
            println!("  environments: {}", report.environments.join(", "));
        }
        if !report.commands.is_empty() {
            println!("  commands:     {}", report.commands.join(", "));
        }
        for n in &report.notes {
            println!("  note: {}: {}", n.field, n.message);
        }
    } else {
        println!("invalid {}:", report.kind.as_deref().unwrap_or("project"));
        for p in &report.problems {
            println!("  {}: {}", p.field, p.message);
        }
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `racer validate --local`: the server's checks ([`racer_build::validate_report`]) on this
/// machine; a `--git` source is cloned into a temporary folder first, as the server would.
fn local_validate(
    a: &ValidateArgs,
    env: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<racer_core::api::ValidateReport> {
    let command = a.command.as_deref();
    match (&a.source.path, &a.source.git) {
        (Some(p), _) => Ok(racer_build::validate_report(p, command, env)?),
        (_, Some(g)) => {
            let tmp = tempfile::Builder::new()
                .prefix("racer-validate-")
                .tempdir()?;
            let (url, reference) = racer_build::git::split_ref(g);
            let source = Source::Git {
                url: url.to_owned(),
                reference: reference.map(str::to_owned),
            };
            let dest = tmp.path().join(source.folder_name());
            let commit = racer_build::git::checkout(url, reference, &dest)?;
            let mut report = racer_build::validate_report(&dest, command, env)?;
            report.commit = Some(commit);
            Ok(report)
        }
        _ => bail!("give --path or --git"),
    }
}

/// `racer dockerfile`: prints (or writes) the Dockerfile a deploy would build.
pub async fn dockerfile(
    client: &Client,
    a: DockerfileArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let req = InspectRequest {
        source: inspect_source(client, &a.source, json).await?,
        config: RunConfig {
            app_port: a.app_port,
            env: parse_env(&a.source.env)?,
            command: a.command.clone(),
            base_image: a.base_image.clone(),
            ..Default::default()
        },
    };
    let report = client.dockerfile(&req).await?;
    if json {
        output::json(&report)?;
    } else if let Some(out) = &a.output {
        std::fs::write(out, &report.dockerfile)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
        eprintln!("wrote {} ({})", out.display(), report.kind);
    } else {
        print!("{}", report.dockerfile);
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer apply`: creates or updates an app from a spec file, prints what changed, and follows
/// the deployment that starts, if any.
pub async fn apply(client: &Client, a: ApplyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.file.display()))?;
    // Checked here too, so a bad spec is reported before anything is sent.
    let mut doc = racer_build::spec::parse(&text).map_err(|e| {
        let problems: Vec<String> = e.problems().iter().map(|p| p.to_string()).collect();
        if problems.is_empty() {
            anyhow::anyhow!("{}: {e}", a.file.display())
        } else {
            anyhow::anyhow!(
                "{} is invalid:\n  {}",
                a.file.display(),
                problems.join("\n  ")
            )
        }
    })?;
    if let Some(path) = doc.spec.build.as_ref().and_then(|b| b.path.clone()) {
        let base = a.file.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let Source::Path { upload, .. } =
            deploy::send_folder(client, &base.join(&path), json).await?
        else {
            bail!("unexpected upload result");
        };
        if let Some(b) = doc.spec.build.as_mut() {
            b.upload = Some(upload);
        }
    }
    let result = client.apply(&serde_json::to_string(&doc)?).await?;
    if json {
        output::json(&result)?;
    } else if !result.changed {
        println!("{}: no change", result.app.name);
    } else {
        println!("{}: applied", result.app.name);
        for line in &result.diff {
            println!("  {line}");
        }
    }
    if !json {
        for n in &result.notes {
            eprintln!("note: {}: {}", n.field, n.message);
        }
    }
    if let Some(d) = result.deployment.clone() {
        let deployed = Deployed {
            app: result.app.clone(),
            deployment: d,
        };
        return deploy::follow(
            client,
            deployed,
            a.no_wait,
            json,
            Duration::from_secs(a.timeout),
        )
        .await;
    }
    Ok(ExitCode::SUCCESS)
}
