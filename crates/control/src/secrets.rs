//! App secrets (issue 19): sealed with ChaCha20-Poly1305 under the install's secret key (a file
//! in the data directory, mode 0600, or `RACER_SECRET_KEY`), bound to their app and name (the
//! associated data), opened only to start a replica, whose environment gets them. The API lists
//! names and keyed digests, never values.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

/// The install's secret key.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<hidden>)")
    }
}

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secret.key";

impl SecretKey {
    /// The key given as base64 of 32 bytes (`RACER_SECRET_KEY`), else the data directory's
    /// `secret.key`, made (0600) if missing. Servers and workers sharing one database must share
    /// it.
    pub fn load(data_dir: &Path, given: Option<&str>) -> Result<SecretKey, String> {
        if let Some(g) = given.map(str::trim).filter(|g| !g.is_empty()) {
            let bytes = B64
                .decode(g)
                .map_err(|_| "RACER_SECRET_KEY is not base64".to_owned())?;
            return <[u8; 32]>::try_from(bytes.as_slice())
                .map(SecretKey)
                .map_err(|_| "RACER_SECRET_KEY must be 32 bytes (44 characters of base64: `head -c32 /dev/urandom | base64`)".to_owned());
        }
        let path = data_dir.join(KEY_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes = B64
                .decode(text.trim())
                .map_err(|_| format!("{} is not base64 of 32 bytes", path.display()))?;
            return <[u8; 32]>::try_from(bytes.as_slice())
                .map(SecretKey)
                .map_err(|_| format!("{} is not base64 of 32 bytes", path.display()));
        }
        let mut key = [0u8; 32];
        // Two v4 UUIDs: 244 random bits of the system's generator, hashed to 32 bytes.
        let seed = format!("{}{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        key.copy_from_slice(&Sha256::digest(seed.as_bytes()));
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        f.write_all(B64.encode(key).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(SecretKey(key))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Seals `value` for `app`'s secret `name`: base64 of nonce ‖ ciphertext.
    pub fn seal(&self, app: &str, name: &str, value: &str) -> String {
        let nonce_src = Sha256::digest(format!("{}{app}{name}", uuid::Uuid::new_v4()).as_bytes());
        let nonce = Nonce::from_slice(&nonce_src[..12]);
        let aad = format!("{app}\0{name}");
        let ct = self
            .cipher()
            .encrypt(
                nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        B64.encode(out)
    }

    /// Opens a sealed value of `app`'s secret `name`; `None` if it was not sealed with this key
    /// for this app and name.
    pub fn open(&self, app: &str, name: &str, sealed: &str) -> Option<String> {
        let bytes = B64.decode(sealed).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ct) = bytes.split_at(12);
        let aad = format!("{app}\0{name}");
        let plain = self
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }

    /// A keyed digest of a value: tells values apart without showing them.
    pub fn digest(&self, value: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update(value.as_bytes());
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// `KEY=value` environment entries of an app's secrets, for a replica about to start. A secret
/// that cannot be opened (another key) is left out and logged by name.
pub async fn env_of(ctx: &crate::Ctx, app: uuid::Uuid) -> Result<Vec<String>, crate::Error> {
    let Some(key) = ctx.settings.secret_key.as_ref() else {
        return Ok(Vec::new());
    };
    let app_id = app.to_string();
    let mut out = Vec::new();
    for s in ctx.store.secrets().list(&app_id).await? {
        match key.open(&app_id, &s.name, &s.sealed) {
            Some(v) => out.push(format!("{}={v}", s.name)),
            None => {
                tracing::warn!(%app, secret = %s.name, "cannot open a secret (sealed with another key?); left out")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_app_and_name_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let k = SecretKey::load(dir.path(), None).unwrap();
        let again = SecretKey::load(dir.path(), None).unwrap();
        assert_eq!(k.0, again.0, "the key file is read back");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = k.seal("app1", "TOKEN", "hunter2-very-secret");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            k.seal("app1", "TOKEN", "hunter2-very-secret"),
            "a fresh nonce each time"
        );
        assert_eq!(
            k.open("app1", "TOKEN", &sealed).as_deref(),
            Some("hunter2-very-secret")
        );
        assert_eq!(k.open("app2", "TOKEN", &sealed), None, "bound to its app");
        assert_eq!(k.open("app1", "OTHER", &sealed), None, "bound to its name");
        let other = SecretKey::load(dir.path(), Some(&B64.encode([7u8; 32]))).unwrap();
        assert_eq!(
            other.open("app1", "TOKEN", &sealed),
            None,
            "another key opens nothing"
        );
        assert_eq!(k.digest("a"), k.digest("a"));
        assert_ne!(k.digest("a"), other.digest("a"), "digests are keyed");
        assert!(SecretKey::load(dir.path(), Some("short")).is_err());
    }
}
