//! `racer`: the developer's tool. Creates apps, deploys them, watches them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use racer_cli::local::{self, Target};
use racer_cli::{output, Client};
use racer_core::api::App;

/// racer: deploy and run apps on your own Docker hosts.
#[derive(Debug, Parser)]
#[command(name = "racer", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Args)]
struct Global {
    /// API URL. Default: the local server's (from the data directory), else http://127.0.0.1:8001.
    #[arg(long, global = true, env = "RACER_URL")]
    url: Option<String>,
    /// API token. Default: the local admin token in the data directory.
    #[arg(long, global = true, env = "RACER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Data directory of the local server. Default: ~/.local/share/racer.
    #[arg(long, global = true, env = "RACER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON (the API's types) instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create, list, show and delete apps.
    #[command(subcommand)]
    Apps(AppsCmd),
    /// Show the event (audit) log.
    Events(EventsArgs),
}

#[derive(Debug, Subcommand)]
enum AppsCmd {
    /// Create an app (a DNS label: a-z, 0-9, '-').
    Create {
        /// The app's name.
        name: String,
    },
    /// List apps.
    List {
        /// Items per page (the server caps it at 200).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor (from a previous --json page).
        #[arg(long)]
        cursor: Option<String>,
        /// Fetch every page (text output only).
        #[arg(long)]
        all: bool,
    },
    /// Show one app by name or UUID.
    Show {
        /// Name or UUID.
        app: String,
    },
    /// Delete an app by name or UUID.
    Delete {
        /// Name or UUID.
        app: String,
    },
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Only events of this app (name or UUID).
    #[arg(long = "project-name", alias = "app")]
    app: Option<String>,
    /// Items per page.
    #[arg(long)]
    limit: Option<u32>,
    /// Continue after this cursor.
    #[arg(long)]
    cursor: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("racer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    racer_cli::finish("racer", rt.block_on(run(cli)))
}

fn app_rows(apps: &[App]) -> Vec<Vec<String>> {
    apps.iter()
        .map(|a| vec![a.name.clone(), a.id.to_string(), output::time(&a.created_at)])
        .collect()
}

fn print_app(a: &App) {
    println!("name:     {}", a.name);
    println!("id:       {}", a.id);
    println!("created:  {}", output::time(&a.created_at));
    println!("updated:  {}", output::time(&a.updated_at));
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    let data_dir = g.data_dir.clone().unwrap_or_else(local::default_data_dir);
    let client = Client::new(Target::resolve(g.url, g.token, &data_dir));
    match cli.command {
        Cmd::Apps(AppsCmd::Create { name }) => {
            let app = client.create_app(&name).await?;
            if g.json {
                output::json(&app)?;
            } else {
                println!("created app {} ({})", app.name, app.id);
            }
        }
        Cmd::Apps(AppsCmd::List { limit, cursor, all }) => {
            let mut page = client.list_apps(limit, cursor.as_deref()).await?;
            if g.json {
                output::json(&page)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut apps = std::mem::take(&mut page.items);
            while all {
                let Some(c) = page.next_cursor.take() else { break };
                page = client.list_apps(limit, Some(&c)).await?;
                apps.append(&mut page.items);
            }
            if apps.is_empty() {
                println!("no apps yet; create one with `racer apps create NAME`");
            } else {
                output::table(&["NAME", "ID", "CREATED"], &app_rows(&apps))?;
            }
            if let Some(c) = page.next_cursor {
                eprintln!("more apps: use --all, or --cursor {c}");
            }
        }
        Cmd::Apps(AppsCmd::Show { app }) => {
            let app = client.get_app(&app).await?;
            if g.json {
                output::json(&app)?;
            } else {
                print_app(&app);
            }
        }
        Cmd::Apps(AppsCmd::Delete { app }) => {
            let app = client.delete_app(&app).await?;
            if g.json {
                output::json(&app)?;
            } else {
                println!("deleted app {} ({})", app.name, app.id);
            }
        }
        Cmd::Events(a) => {
            let page = client
                .list_events(a.app.as_deref(), a.limit, a.cursor.as_deref())
                .await?;
            if g.json {
                output::json(&page)?;
            } else {
                let rows: Vec<Vec<String>> = page
                    .items
                    .iter()
                    .map(|e| {
                        vec![
                            e.id.to_string(),
                            output::time(&e.at),
                            e.actor.clone(),
                            e.kind.clone(),
                            e.message.clone(),
                        ]
                    })
                    .collect();
                output::table(&["ID", "TIME", "ACTOR", "KIND", "MESSAGE"], &rows)?;
                if let Some(c) = page.next_cursor {
                    eprintln!("more events: --cursor {c}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
