//! App secrets (issue 19): set, list (names and digests only) and unset. A change rolls the app
//! to a new release of the same image (its replicas start with the new environment).

use racer_core::api::{RerunRequest, SecretInfo};
use racer_core::ErrorKind;
use racer_store::NewEvent;

use super::{Caller, Services};
use crate::Error;

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with(|c: char| c.is_ascii_digit())
}

impl Services {
    fn secret_key(&self) -> Result<&crate::secrets::SecretKey, Error> {
        self.engine()?.settings.secret_key.as_ref().ok_or_else(|| {
            Error::refused(
                ErrorKind::Unavailable,
                "this server has no secret key (RACER_SECRET_KEY or the data directory's secret.key)",
            )
        })
    }

    /// An app's secrets: names, keyed digests, when set. Never values.
    pub async fn secrets(&self, who: &Caller, app: &str) -> Result<Vec<SecretInfo>, Error> {
        let a = self.find_app(who, app).await?;
        Ok(self
            .store()
            .secrets()
            .list(&a.id.to_string())
            .await?
            .into_iter()
            .map(|s| SecretInfo {
                name: s.name,
                digest: s.digest,
                updated_at: chrono::DateTime::from_timestamp_millis(s.updated_at)
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Sets secrets (sealed before they are stored) and rolls the app if it runs a release.
    pub async fn set_secrets(
        &self,
        who: &Caller,
        app: &str,
        values: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<SecretInfo>, Error> {
        let key = self.secret_key()?;
        if values.is_empty() {
            return Err(Error::invalid("give at least one NAME=value").at("secrets"));
        }
        if let Some(bad) = values.keys().find(|n| !valid_name(n)) {
            return Err(Error::invalid(format!(
                "{bad:?} is not a variable name (letters, digits and _, not starting with a digit)"
            ))
            .at("secrets"));
        }
        if let Some((n, _)) = values.iter().find(|(_, v)| v.len() > 64 * 1024) {
            return Err(Error::invalid(format!("the value of {n} is over 64 KiB")).at("secrets"));
        }
        let a = self.find_app(who, app).await?;
        let id = a.id.to_string();
        let items: Vec<(String, String, String)> = values
            .iter()
            .map(|(n, v)| (n.clone(), key.seal(&id, n, v), key.digest(v)))
            .collect();
        self.store().secrets().set(&id, &items).await?;
        let names: Vec<&str> = values.keys().map(String::as_str).collect();
        self.secrets_changed(
            who,
            &a,
            "secret.set",
            &format!("secrets {} set", names.join(", ")),
        )
        .await?;
        self.secrets(who, app).await
    }

    /// Removes a secret and rolls the app if it runs a release.
    pub async fn unset_secret(&self, who: &Caller, app: &str, name: &str) -> Result<(), Error> {
        let a = self.find_app(who, app).await?;
        if !self
            .store()
            .secrets()
            .unset(&a.id.to_string(), name)
            .await?
        {
            return Err(Error::refused(
                ErrorKind::NotFound,
                format!("app {} has no secret {name:?}", a.name),
            ));
        }
        self.secrets_changed(who, &a, "secret.unset", &format!("secret {name} removed"))
            .await
    }

    async fn secrets_changed(
        &self,
        who: &Caller,
        a: &racer_core::api::App,
        kind: &str,
        message: &str,
    ) -> Result<(), Error> {
        let _ = self
            .store()
            .events()
            .append(&NewEvent::app(
                &who.actor,
                kind,
                a,
                format!("{message} (names only; values are never shown)"),
            ))
            .await;
        if a.release.is_some() {
            let req = RerunRequest {
                no_rebuild: true,
                ..Default::default()
            };
            self.rerun(who, &a.id.to_string(), &req).await?;
        }
        Ok(())
    }
}
