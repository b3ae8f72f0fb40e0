//! Saved logins on this machine: `credentials.json` in the user's config directory, one session
//! token per server URL, mode 0600. `racer login`/`logout` write it; finding the token to send
//! (`Target::resolve` in `local`) reads it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A saved login for one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    /// The session token.
    pub token: String,
    /// Whose.
    pub email: String,
    /// Until when.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// `credentials.json`: one login per server URL.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    pub(crate) servers: BTreeMap<String, Credential>,
}

/// `$RACER_CONFIG_DIR`, else `$XDG_CONFIG_HOME/racer`, else `~/.config/racer`.
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RACER_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return d.into();
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("racer");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".config/racer")
}

fn credentials_path() -> PathBuf {
    config_dir().join("credentials.json")
}

pub(crate) fn read_credentials() -> Credentials {
    std::fs::read(credentials_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub(crate) fn write_credentials(c: &Credentials) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let path = credentials_path();
    let dir = config_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // An existing file keeps its mode on open: make sure it is 0600.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(&serde_json::to_vec_pretty(c)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The saved login for `url`, if any.
pub fn saved_token(url: &str) -> Option<String> {
    read_credentials()
        .servers
        .get(url.trim_end_matches('/'))
        .map(|c| c.token.clone())
}
