//! Projects (apps) and their state: `racer list-projects`, `status`, `releases`, `up`, `down`,
//! `delete`, and `racer apps create|list|show|delete`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use racer_core::api::App;

use super::NameArg;
use crate::client::Client;
use crate::{deploy, output};

/// `racer status`. Without a selector: the only project, if there is one.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// By project name.
    #[arg(long, group = "which")]
    pub project_name: Option<String>,
    /// By project UUID.
    #[arg(long, group = "which")]
    pub project_id: Option<String>,
    /// By container id (or a unique prefix).
    #[arg(long, group = "which")]
    pub container_id: Option<String>,
    /// Every project.
    #[arg(long, group = "which")]
    pub list: bool,
}

/// `racer apps …`.
#[derive(Debug, Subcommand)]
pub enum AppsCmd {
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

/// Every project, all pages.
pub async fn all_apps(client: &Client) -> anyhow::Result<Vec<App>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = client.list_apps(Some(200), cursor.as_deref()).await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

fn app_rows(apps: &[App]) -> Vec<Vec<String>> {
    apps.iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.id.to_string(),
                output::time(&a.created_at),
            ]
        })
        .collect()
}

fn print_app(a: &App) {
    println!("name:     {}", a.name);
    println!("id:       {}", a.id);
    println!("created:  {}", output::time(&a.created_at));
    println!("updated:  {}", output::time(&a.updated_at));
}

/// How to make a first project, for the messages that find none.
const DEPLOY_ONE: &str = "deploy one with `racer run --project-name NAME --path DIR`";

/// What `racer rerun` says when no project has a source to rebuild from.
const NONE_RERUNNABLE: &str = "no project can be rerun yet (none has a recorded source)";

/// `racer list-projects` (and `racer status --list`): every project with its release,
/// instances and source.
pub async fn list_projects(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let apps = all_apps(client).await?;
    if json {
        output::json(&apps)?;
    } else if apps.is_empty() {
        println!("no projects yet; {DEPLOY_ONE}");
    } else {
        projects_table(&mut std::io::stdout().lock(), &apps)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer rerun --list`: the projects that can be rerun (those with a recorded source), as
/// `list-projects` shows them.
pub async fn list_rerunnable(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let apps: Vec<App> = all_apps(client)
        .await?
        .into_iter()
        .filter(rerunnable)
        .collect();
    if json {
        output::json(&apps)?;
    } else if apps.is_empty() {
        println!("{NONE_RERUNNABLE}; {DEPLOY_ONE}");
    } else {
        projects_table(&mut std::io::stdout().lock(), &apps)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `racer rerun` can make a new release of `app`: it has a recorded source.
pub fn rerunnable(app: &App) -> bool {
    app.source.is_some()
}

/// Projects as `list-projects` prints them: name, id, release, instances, source.
fn projects_table(out: &mut impl std::io::Write, apps: &[App]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.id.to_string(),
                a.release
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "-".into()),
                a.instances.to_string(),
                a.source
                    .as_ref()
                    .map(deploy::describe_source)
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    output::table_to(
        out,
        &["NAME", "ID", "RELEASE", "INSTANCES", "SOURCE"],
        rows.as_slice(),
    )
}

/// What a command given no project acts on.
#[derive(Debug)]
pub enum Chosen {
    /// The only project there is.
    App(Box<App>),
    /// No single project: the choices were printed; exit with this code (2, a usage error).
    Exit(ExitCode),
}

/// Which projects a command given none may pick from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Among {
    /// Every project (`racer status`).
    All,
    /// Those with a recorded source (`racer rerun`).
    Rerunnable,
}

/// The project `racer <command>` acts on when it is given none: the only one there is `among`.
/// None is an error saying how to deploy one; several print the list on stderr with a line
/// saying to pick one, and exit 2 (a usage error).
pub async fn choose(client: &Client, command: &str, among: Among) -> anyhow::Result<Chosen> {
    let all = all_apps(client).await?;
    let any = !all.is_empty();
    let mut apps: Vec<App> = all
        .into_iter()
        .filter(|a| among == Among::All || rerunnable(a))
        .collect();
    if apps.len() > 1 {
        projects_table(&mut std::io::stderr().lock(), &apps)?;
        eprintln!(
            "racer: {} projects; pick one with `racer {command} --project-name NAME`",
            apps.len()
        );
        return Ok(Chosen::Exit(ExitCode::from(2)));
    }
    match apps.pop() {
        Some(app) => Ok(Chosen::App(Box::new(app))),
        None if any => bail!("{NONE_RERUNNABLE}; {DEPLOY_ONE}"),
        None => bail!("there are no projects yet; {DEPLOY_ONE}"),
    }
}

/// `racer status`: a project's status and containers, one container, or (`--list`) every
/// project.
pub async fn status(client: &Client, s: StatusArgs, json: bool) -> anyhow::Result<ExitCode> {
    if s.list {
        return list_projects(client, json).await;
    }
    if let Some(c) = &s.container_id {
        let info = client.container(c).await?;
        if json {
            output::json(&info)?;
        } else {
            println!(
                "project:    {}",
                info.app_name.as_deref().unwrap_or("(unknown)")
            );
            deploy::container_table(std::slice::from_ref(&info))?;
        }
    } else {
        let app = match s.project_name.or(s.project_id) {
            Some(app) => app,
            None => match choose(client, "status", Among::All).await? {
                Chosen::App(app) => app.id.to_string(),
                Chosen::Exit(code) => return Ok(code),
            },
        };
        let status = client.app_status(&app).await?;
        if json {
            output::json(&status)?;
        } else {
            deploy::print_status(&status)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer up` (`up: true`) and `racer down`: start a stopped project again, or stop every
/// container of it, keeping its spec and releases.
pub async fn set_running(
    client: &Client,
    n: NameArg,
    up: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let app = client.set_running(&n.project_name, up).await?;
    if json {
        output::json(&app)?;
    } else if up {
        println!("{} is starting {} instance(s)", app.name, app.instances);
    } else {
        println!(
            "{} is stopping; its spec and releases are kept (racer up starts it)",
            app.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer releases`: a project's releases, the current one marked.
pub async fn releases(client: &Client, n: NameArg, json: bool) -> anyhow::Result<ExitCode> {
    let releases = client.releases(&n.project_name).await?;
    if json {
        output::json(&releases)?;
    } else {
        let current = client.get_app(&n.project_name).await?.release;
        let rows: Vec<Vec<String>> = releases
            .iter()
            .map(|r| {
                vec![
                    r.number.to_string(),
                    if Some(r.number) == current {
                        "current".into()
                    } else {
                        "-".into()
                    },
                    r.image.clone(),
                    deploy::describe_source(&r.source),
                    r.commit
                        .as_deref()
                        .map(|c| c.chars().take(12).collect())
                        .unwrap_or_else(|| "-".into()),
                    r.created_by.clone(),
                    output::time(&r.created_at),
                ]
            })
            .collect();
        output::table(
            &[
                "RELEASE", "STATUS", "IMAGE", "SOURCE", "COMMIT", "BY", "CREATED",
            ],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer delete`: deletes a project and waits until its containers are gone.
pub async fn delete(client: &Client, n: NameArg, json: bool) -> anyhow::Result<ExitCode> {
    let app = client.delete_app(&n.project_name).await?;
    // The reconciler removes containers and images; wait until they are gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = client
            .containers(None)
            .await?
            .items
            .into_iter()
            .filter(|c| c.app_id == Some(app.id))
            .count();
        if left == 0 {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "{} still has {left} container(s) after 120s; see `racerctl containers list`",
                app.name
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if json {
        output::json(&app)?;
    } else {
        println!("deleted {} ({}) and its containers", app.name, app.id);
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer apps …`.
pub async fn apps(client: &Client, cmd: AppsCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        AppsCmd::Create { name } => {
            let app = client.create_app(&name).await?;
            if json {
                output::json(&app)?;
            } else {
                println!("created app {} ({})", app.name, app.id);
            }
        }
        AppsCmd::List { limit, cursor, all } => {
            let mut page = client.list_apps(limit, cursor.as_deref()).await?;
            if json {
                output::json(&page)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut apps = std::mem::take(&mut page.items);
            if all {
                while let Some(c) = page.next_cursor.take() {
                    page = client.list_apps(limit, Some(&c)).await?;
                    apps.append(&mut page.items);
                }
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
        AppsCmd::Show { app } => {
            let app = client.get_app(&app).await?;
            if json {
                output::json(&app)?;
            } else {
                print_app(&app);
            }
        }
        AppsCmd::Delete { app } => {
            let app = client.delete_app(&app).await?;
            if json {
                output::json(&app)?;
            } else {
                println!("deleted app {} ({})", app.name, app.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
