//! Accounts from the command line: `racer login|logout|whoami|register|invites|tokens` and
//! `racerctl users|orgs`. Passwords are read from the terminal without echo (or, for scripts,
//! one line on stdin with `--password-stdin`) and never printed; a login's session token is kept
//! in the user's config directory, mode 0600.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use racer_core::auth::{
    ApiToken, CreateInvite, CreateOrg, CreateToken, CreateUser, CreatedInvite, CreatedToken,
    Invite, LoginRequest, LoginResponse, Org, RegisterRequest, Role, User, WhoAmI,
};
use reqwest::Method;

use crate::client::{path_segment, Client};
use crate::credentials::{read_credentials, write_credentials};
use crate::output;

// Kept here too, where they were before `credentials` held them.
pub use crate::credentials::{config_dir, saved_token, Credential};

/// Reads a password: from the terminal without echo, or one line of stdin with
/// `--password-stdin` (or when stdin is not a terminal).
fn read_password(prompt: &str, from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            bail!("no password on stdin");
        }
        return Ok(pw);
    }
    rpassword::prompt_password(prompt).context("cannot read the password from the terminal")
}

fn new_password(from_stdin: bool) -> anyhow::Result<String> {
    let pw = read_password("New password: ", from_stdin)?;
    if let Err(m) = racer_core::auth::check_password(&pw) {
        bail!("{m}");
    }
    if !from_stdin && std::io::stdin().is_terminal() {
        let again = read_password("Repeat it: ", false)?;
        if again != pw {
            bail!("the passwords do not match; nothing was changed");
        }
    }
    Ok(pw)
}

/// `racer login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Your account's email.
    #[arg(long)]
    pub email: String,
    /// Read the password from stdin (one line) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `racer register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The invite code you were given.
    #[arg(long)]
    pub invite: String,
    /// The email the invite was made for.
    #[arg(long)]
    pub email: String,
    /// Read the new password from stdin (one line) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `racer invites …`.
#[derive(Debug, Subcommand)]
pub enum InvitesCmd {
    /// Invite someone to your organisation (admin); prints a one-time code.
    Create {
        /// Their email.
        email: String,
        /// Their role: viewer, developer or admin.
        #[arg(long, default_value = "developer")]
        role: Role,
        /// How long the code works (e.g. 24h, 7d).
        #[arg(long, default_value = "7d")]
        expires: String,
        /// The organisation (only with the install's admin token).
        #[arg(long)]
        org: Option<String>,
    },
    /// List your organisation's invites.
    List,
}

/// `racer tokens …`.
#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// Create an API token with your organisation and role; the secret is shown once.
    Create {
        /// A label, e.g. ci.
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. 30d; never expires without it.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List your tokens (an admin sees the organisation's).
    List,
    /// Revoke a token by id; it stops working on the next request.
    Revoke {
        /// The token's id (from `racer tokens list`).
        id: String,
    },
}

/// `racerctl users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Create a user (bootstrap: with the install's admin token, creating the org if needed).
    Create {
        /// Their email.
        email: String,
        /// Their organisation.
        #[arg(long)]
        org: Option<String>,
        /// Their role: viewer, developer or admin.
        #[arg(long, default_value = "developer")]
        role: Role,
        /// Read their password from stdin (one line) instead of prompting; without a
        /// password (`--no-password`) they need an invite to set one.
        #[arg(long)]
        password_stdin: bool,
        /// Create the user without a password.
        #[arg(long, conflicts_with = "password_stdin")]
        no_password: bool,
    },
    /// List users.
    List,
    /// Disable a user: they cannot log in and their tokens stop working.
    Disable {
        /// The user's id.
        id: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's id.
        id: String,
    },
}

/// `racerctl orgs …`.
#[derive(Debug, Subcommand)]
pub enum OrgsCmd {
    /// Create an organisation.
    Create {
        /// Its name (lowercase letters, digits and '-').
        name: String,
    },
    /// List organisations.
    List,
}

fn user_rows(users: &[User]) -> Vec<Vec<String>> {
    users
        .iter()
        .map(|u| {
            vec![
                u.id.to_string(),
                u.email.clone(),
                u.org.clone(),
                u.role.to_string(),
                if u.disabled { "disabled" } else { "active" }.to_owned(),
                output::time(&u.created_at),
            ]
        })
        .collect()
}

/// `racer login`: stores a session token for this server.
pub async fn login(client: &Client, a: LoginArgs, json: bool) -> anyhow::Result<ExitCode> {
    let password = read_password(&format!("Password for {}: ", a.email), a.password_stdin)?;
    let resp: LoginResponse = client
        .call(
            Method::POST,
            "/auth/login",
            Some(&LoginRequest {
                email: a.email,
                password,
            }),
        )
        .await?;
    let mut creds = read_credentials();
    creds.servers.insert(
        client.url().to_owned(),
        Credential {
            token: resp.token.clone(),
            email: resp.user.email.clone(),
            expires_at: resp.expires_at,
        },
    );
    let path = write_credentials(&creds)?;
    if json {
        output::json(&resp.user)?;
    } else {
        println!(
            "logged in to {} as {} ({} in {}) until {}; session saved in {}",
            client.url(),
            resp.user.email,
            resp.user.role,
            resp.user.org,
            output::time(&resp.expires_at),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer logout`: forgets the saved session for this server.
pub fn logout(client: &Client) -> anyhow::Result<ExitCode> {
    let mut creds = read_credentials();
    match creds.servers.remove(client.url()) {
        Some(c) => {
            write_credentials(&creds)?;
            println!("logged out {} from {}", c.email, client.url());
        }
        None => println!("not logged in to {}", client.url()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer whoami`.
pub async fn whoami(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let me: WhoAmI = client
        .call::<(), _>(Method::GET, "/api/v1/whoami", None)
        .await?;
    if json {
        output::json(&me)?;
    } else if let Some(u) = &me.user {
        println!(
            "{} ({} in org {}, via {}) at {}",
            u.email,
            me.role,
            u.org,
            me.via,
            client.url()
        );
    } else {
        println!(
            "the install's admin token (superuser, every org) at {}",
            client.url()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer register`.
pub async fn register(client: &Client, a: RegisterArgs, json: bool) -> anyhow::Result<ExitCode> {
    let password = new_password(a.password_stdin)?;
    let user: User = client
        .call(
            Method::POST,
            "/auth/register",
            Some(&RegisterRequest {
                invite: a.invite,
                email: a.email,
                password,
            }),
        )
        .await?;
    if json {
        output::json(&user)?;
    } else {
        println!(
            "registered {} as {} in {}; now run `racer login --email {}`",
            user.email, user.role, user.org, user.email
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer invites …`.
pub async fn invites(client: &Client, cmd: InvitesCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        InvitesCmd::Create {
            email,
            role,
            expires,
            org,
        } => {
            let created: CreatedInvite = client
                .call(
                    Method::POST,
                    "/api/v1/invites",
                    Some(&CreateInvite {
                        email,
                        role,
                        org,
                        expires: Some(expires),
                    }),
                )
                .await?;
            if json {
                output::json(&created)?;
            } else {
                let i = &created.invite;
                println!("{}", created.code);
                eprintln!(
                    "invite for {} as {} in {}, valid until {}; it works once. They run:\n  racer register --invite {} --email {}",
                    i.email,
                    i.role,
                    i.org,
                    output::time(&i.expires_at),
                    created.code,
                    i.email
                );
            }
        }
        InvitesCmd::List => {
            let list: Vec<Invite> = client
                .call::<(), _>(Method::GET, "/api/v1/invites", None)
                .await?;
            if json {
                output::json(&list)?;
            } else {
                let rows: Vec<_> = list
                    .iter()
                    .map(|i| {
                        let state = if i.used_at.is_some() {
                            "used"
                        } else if i.expires_at <= chrono::Utc::now() {
                            "expired"
                        } else {
                            "open"
                        };
                        vec![
                            i.id.to_string(),
                            i.email.clone(),
                            i.role.to_string(),
                            state.to_owned(),
                            output::time(&i.expires_at),
                            i.created_by.clone(),
                        ]
                    })
                    .collect();
                output::table(&["ID", "EMAIL", "ROLE", "STATE", "EXPIRES", "BY"], &rows)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `racer tokens …`.
pub async fn tokens(client: &Client, cmd: TokensCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        TokensCmd::Create { name, expires } => {
            let created: CreatedToken = client
                .call(
                    Method::POST,
                    "/api/v1/tokens",
                    Some(&CreateToken { name, expires }),
                )
                .await?;
            if json {
                output::json(&created)?;
            } else {
                println!("{}", created.secret);
                eprintln!(
                    "token {:?} ({}) created{}; this is the only time the secret is shown. Use it as RACER_TOKEN or --token.",
                    created.token.name,
                    created.token.id,
                    created
                        .token
                        .expires_at
                        .map(|e| format!(", valid until {}", output::time(&e)))
                        .unwrap_or_default()
                );
            }
        }
        TokensCmd::List => {
            let list: Vec<ApiToken> = client
                .call::<(), _>(Method::GET, "/api/v1/tokens", None)
                .await?;
            if json {
                output::json(&list)?;
            } else {
                let now = chrono::Utc::now();
                let rows: Vec<_> = list
                    .iter()
                    .map(|t| {
                        let state = if t.revoked_at.is_some() {
                            "revoked"
                        } else if t.expires_at.is_some_and(|e| e <= now) {
                            "expired"
                        } else {
                            "active"
                        };
                        vec![
                            t.id.to_string(),
                            t.name.clone(),
                            t.email.clone(),
                            state.to_owned(),
                            t.expires_at
                                .map(|e| output::time(&e))
                                .unwrap_or_else(|| "never".into()),
                        ]
                    })
                    .collect();
                output::table(&["ID", "NAME", "OWNER", "STATE", "EXPIRES"], &rows)?;
            }
        }
        TokensCmd::Revoke { id } => {
            let t: ApiToken = client
                .call::<(), _>(
                    Method::DELETE,
                    &format!("/api/v1/tokens/{}", path_segment(&id)),
                    None,
                )
                .await?;
            if json {
                output::json(&t)?;
            } else {
                println!("revoked token {:?} ({})", t.name, t.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `racerctl users …`.
pub async fn users(client: &Client, cmd: UsersCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        UsersCmd::Create {
            email,
            org,
            role,
            password_stdin,
            no_password,
        } => {
            let password = if no_password {
                None
            } else {
                Some(new_password(password_stdin)?)
            };
            let user: User = client
                .call(
                    Method::POST,
                    "/api/v1/users",
                    Some(&CreateUser {
                        email,
                        org,
                        role,
                        password,
                    }),
                )
                .await?;
            if json {
                output::json(&user)?;
            } else {
                println!(
                    "created user {} ({}) as {} in {}",
                    user.email, user.id, user.role, user.org
                );
            }
        }
        UsersCmd::List => {
            let list: Vec<User> = client
                .call::<(), _>(Method::GET, "/api/v1/users", None)
                .await?;
            if json {
                output::json(&list)?;
            } else {
                output::table(
                    &["ID", "EMAIL", "ORG", "ROLE", "STATE", "CREATED"],
                    &user_rows(&list),
                )?;
            }
        }
        UsersCmd::Disable { id } => set_user(client, &id, "disable", json).await?,
        UsersCmd::Enable { id } => set_user(client, &id, "enable", json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_user(client: &Client, id: &str, verb: &str, json: bool) -> anyhow::Result<()> {
    let user: User = client
        .call::<(), _>(
            Method::POST,
            &format!("/api/v1/users/{}/{verb}", path_segment(id)),
            None,
        )
        .await?;
    if json {
        output::json(&user)?;
    } else {
        println!("{verb}d user {} ({})", user.email, user.id);
    }
    Ok(())
}

/// `racerctl orgs …`.
pub async fn orgs(client: &Client, cmd: OrgsCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        OrgsCmd::Create { name } => {
            let org: Org = client
                .call(Method::POST, "/api/v1/orgs", Some(&CreateOrg { name }))
                .await?;
            if json {
                output::json(&org)?;
            } else {
                println!("created org {} ({})", org.name, org.id);
            }
        }
        OrgsCmd::List => {
            let list: Vec<Org> = client
                .call::<(), _>(Method::GET, "/api/v1/orgs", None)
                .await?;
            if json {
                output::json(&list)?;
            } else {
                let rows: Vec<_> = list
                    .iter()
                    .map(|o| {
                        vec![
                            o.name.clone(),
                            o.id.to_string(),
                            output::time(&o.created_at),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "ID", "CREATED"], &rows)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
