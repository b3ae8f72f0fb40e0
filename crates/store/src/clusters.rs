//! The clusters racer places work on (issue 14): their engine, declared capacity, labels and
//! whether they are drained. What they hold and whether they answer is read from the engine.

use std::collections::BTreeMap;

use racer_core::api::ClusterTls;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now_ms, to_json, Error, Store};

/// A cluster as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRecord {
    /// Its name.
    pub name: String,
    /// Its engine; `None` for `local`.
    pub docker_host: Option<String>,
    /// The paths of the files its engine is reached with over mutual TLS; `None` without.
    pub tls: Option<ClusterTls>,
    /// A Swarm manager.
    pub swarm: bool,
    /// Declared millicores, if declared.
    pub cpu_milli: Option<u64>,
    /// Declared MiB, if declared.
    pub memory_mb: Option<u64>,
    /// GPUs.
    pub gpu: u64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Drained.
    pub drained: bool,
}

/// The clusters repository.
pub struct Clusters<'a> {
    pub(crate) store: &'a Store,
}

const COLUMNS: &str =
    "name, docker_host, swarm, cpu_milli, memory_mb, gpu, labels, drained, tls_ca, tls_cert, tls_key";

fn from_row(row: &AnyRow) -> Result<ClusterRecord, Error> {
    let opt = |c: &str| -> Result<Option<u64>, Error> {
        Ok(row
            .try_get::<Option<i64>, _>(c)
            .map_err(Error::query)?
            .and_then(|v| u64::try_from(v).ok()))
    };
    let text = |c: &str| -> Result<Option<String>, Error> { row.try_get(c).map_err(Error::query) };
    // Written all three or none.
    let tls = match (text("tls_ca")?, text("tls_cert")?, text("tls_key")?) {
        (Some(ca), Some(cert), Some(key)) => Some(ClusterTls { ca, cert, key }),
        _ => None,
    };
    Ok(ClusterRecord {
        name: row.try_get("name").map_err(Error::query)?,
        docker_host: row.try_get("docker_host").map_err(Error::query)?,
        tls,
        swarm: row.try_get::<i32, _>("swarm").map_err(Error::query)? != 0,
        cpu_milli: opt("cpu_milli")?,
        memory_mb: opt("memory_mb")?,
        gpu: opt("gpu")?.unwrap_or(0),
        labels: crate::json(row, "labels")?,
        drained: row.try_get::<i32, _>("drained").map_err(Error::query)? != 0,
    })
}

fn i64_of(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

impl Clusters<'_> {
    /// Adds a cluster; its name must be free.
    pub async fn create(&self, c: &ClusterRecord) -> Result<ClusterRecord, Error> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO clusters (name, docker_host, swarm, cpu_milli, memory_mb, gpu, labels, \
             drained, created_at, updated_at, tls_ca, tls_cert, tls_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8, $9, $10, $11)",
        )
        .bind(&c.name)
        .bind(c.docker_host.as_deref())
        .bind(i32::from(c.swarm))
        .bind(i64_of(c.cpu_milli))
        .bind(i64_of(c.memory_mb))
        .bind(i64_of(Some(c.gpu)))
        .bind(to_json(&c.labels))
        .bind(now)
        .bind(c.tls.as_ref().map(|t| t.ca.as_str()))
        .bind(c.tls.as_ref().map(|t| t.cert.as_str()))
        .bind(c.tls.as_ref().map(|t| t.key.as_str()))
        .execute(&self.store.pool)
        .await;
        done.map_err(|e| Error::unique_or_query(e, "cluster", "name", &c.name))?;
        self.get(&c.name).await
    }

    /// One cluster by name.
    pub async fn get(&self, name: &str) -> Result<ClusterRecord, Error> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM clusters WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.store.pool)
            .await
            .map_err(Error::query)?
            .ok_or_else(|| Error::NotFound {
                what: "cluster",
                key: name.to_owned(),
            })?;
        from_row(&row)
    }

    /// Every cluster, by name.
    pub async fn list(&self) -> Result<Vec<ClusterRecord>, Error> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM clusters ORDER BY name"))
            .fetch_all(&self.store.pool)
            .await
            .map_err(Error::query)?;
        rows.iter().map(from_row).collect()
    }

    /// Drains (or undrains) a cluster.
    pub async fn set_drained(&self, name: &str, drained: bool) -> Result<ClusterRecord, Error> {
        let done = sqlx::query("UPDATE clusters SET drained = $1, updated_at = $2 WHERE name = $3")
            .bind(i32::from(drained))
            .bind(now_ms())
            .bind(name)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "cluster",
                key: name.to_owned(),
            });
        }
        self.get(name).await
    }

    /// Removes a cluster record.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let done = sqlx::query("DELETE FROM clusters WHERE name = $1")
            .bind(name)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "cluster",
                key: name.to_owned(),
            });
        }
        Ok(())
    }
}
