//! What the CLIs find on this machine: the data directory, the running server's file, the admin
//! token. This is how `racer` and `racerctl` "just work" next to a local server.

use std::path::{Path, PathBuf};

pub use racer_core::api::ServerFile;

/// The default data directory: `$RACER_DATA_DIR`, else `~/.local/share/racer`.
pub fn default_data_dir() -> PathBuf {
    racer_core::data_dir_from(std::env::var_os("RACER_DATA_DIR"), std::env::var_os("HOME"))
}

/// Reads `server.json` from `data_dir`, if present and parseable.
pub fn read_server_file(data_dir: &Path) -> Option<ServerFile> {
    let bytes = std::fs::read(data_dir.join("server.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads the admin token from `data_dir`, if readable.
pub fn read_admin_token(data_dir: &Path) -> Option<String> {
    let s = std::fs::read_to_string(data_dir.join("admin.token")).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Whether `pid` is a live racer server process (not a zombie, not a reused pid).
pub fn server_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ..." — the state follows the last ')'.
    let Some((head, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let state = rest.trim_start().chars().next().unwrap_or('?');
    let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
    state != 'Z' && state != 'X' && comm.starts_with("racer-server")
}

/// The admin token an operator chose for the server (`RACER_ADMIN_TOKEN`, else the seeds'
/// `API_KEY`): such a server writes no admin.token, so the shell that started it holds it.
fn operator_token() -> Option<String> {
    ["RACER_ADMIN_TOKEN", "API_KEY"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Where the CLIs send requests and with which token.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URL of the API.
    pub url: String,
    /// Bearer token, if one was found.
    pub token: Option<String>,
}

impl Target {
    /// `--url`/`RACER_URL`, else the local server's file, else `http://127.0.0.1:8001`;
    /// `--token`/`RACER_TOKEN`, else the saved login for that URL (`racer login`), else the
    /// local admin token, else the operator's chosen one (`RACER_ADMIN_TOKEN`, `API_KEY`).
    pub fn resolve(url: Option<String>, token: Option<String>, data_dir: &Path) -> Target {
        let url = url
            .filter(|u| !u.is_empty())
            .or_else(|| read_server_file(data_dir).map(|f| f.api_url))
            .unwrap_or_else(|| "http://127.0.0.1:8001".to_owned());
        let url = url.trim_end_matches('/').to_owned();
        let token = token
            .filter(|t| !t.is_empty())
            .or_else(|| crate::credentials::saved_token(&url))
            .or_else(|| read_admin_token(data_dir))
            .or_else(operator_token);
        Target { url, token }
    }

    /// Like [`Target::resolve`] but for the operator's `racerctl`: the local admin token comes
    /// before a saved login.
    pub fn resolve_operator(url: Option<String>, token: Option<String>, data_dir: &Path) -> Target {
        let explicit = token.filter(|t| !t.is_empty());
        let admin = read_admin_token(data_dir);
        let mut t = Target::resolve(url, explicit.clone().or(admin), data_dir);
        if explicit.is_none() && t.token.is_none() {
            t.token = crate::credentials::saved_token(&t.url);
        }
        t
    }
}
