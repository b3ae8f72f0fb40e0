//! App secrets (issue 19), sealed by the caller: the store never sees a value in clear.

use sqlx::Row;

use crate::{now_ms, Error, Store};

/// A secret as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Its name (an environment variable's).
    pub name: String,
    /// The sealed value.
    pub sealed: String,
    /// A keyed digest of the value.
    pub digest: String,
    /// When it was last set (ms).
    pub updated_at: i64,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// The secrets repository.
pub struct Secrets<'a> {
    pub(crate) store: &'a Store,
}

impl Secrets<'_> {
    /// Sets (or replaces) secrets of an app, all at once.
    pub async fn set(&self, app_id: &str, items: &[(String, String, String)]) -> Result<(), Error> {
        let mut tx = self.store.write_tx().await?;
        let now = now_ms();
        for (name, sealed, digest) in items {
            sqlx::query(
                "INSERT INTO secrets (app_id, name, sealed, digest, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (app_id, name) DO UPDATE SET sealed = excluded.sealed, \
                 digest = excluded.digest, updated_at = excluded.updated_at",
            )
            .bind(app_id)
            .bind(name)
            .bind(sealed)
            .bind(digest)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        }
        tx.commit().await.map_err(Error::query)
    }

    /// An app's secrets, by name.
    pub async fn list(&self, app_id: &str) -> Result<Vec<SecretRecord>, Error> {
        let rows = sqlx::query(
            "SELECT name, sealed, digest, updated_at FROM secrets WHERE app_id = $1 ORDER BY name",
        )
        .bind(app_id)
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter()
            .map(|r| {
                Ok(SecretRecord {
                    name: r.try_get("name").map_err(Error::query)?,
                    sealed: r.try_get("sealed").map_err(Error::query)?,
                    digest: r.try_get("digest").map_err(Error::query)?,
                    updated_at: r.try_get("updated_at").map_err(Error::query)?,
                })
            })
            .collect()
    }

    /// Removes one secret; returns whether it existed.
    pub async fn unset(&self, app_id: &str, name: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM secrets WHERE app_id = $1 AND name = $2")
            .bind(app_id)
            .bind(name)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        Ok(done.rows_affected() > 0)
    }
}
