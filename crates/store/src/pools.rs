//! Warm pools (issue 15): pools, their members (pre-started containers) and claims.
//!
//! A claim is one write transaction: the oldest `ready` member of the pool becomes `claimed` and
//! the claim row is written with it (PostgreSQL skips members another claim has locked;
//! SQLite's `BEGIN IMMEDIATE` lets one writer in at a time), so two claims — even from two
//! servers on one PostgreSQL — never get the same container.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{json, now_ms, to_json, Backend, Error, Store};

/// A pool as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolRecord {
    /// Its id (UUID).
    pub id: String,
    /// Its name, unique in the install.
    pub name: String,
    /// The organisation it belongs to.
    pub org: String,
    /// The image its containers run.
    pub image: String,
    /// How many ready, unclaimed containers it keeps.
    pub size: u32,
    /// Its named ports: (name, container port), in order.
    pub ports: Vec<(String, u16)>,
    /// CPU limit of each container, millicores.
    pub cpu_milli: u64,
    /// Memory limit of each container, MiB.
    pub memory_mb: u64,
    /// How long a claim lasts, seconds.
    pub claim_ttl_s: u64,
    /// A claim with no proxied request for this long ends, seconds.
    pub idle_timeout_s: Option<u64>,
    /// HTTP path that answers 2xx once a container is ready (on the first port); `None`: a
    /// TCP connection to the first port.
    pub health_path: Option<String>,
    /// Environment of every container of the pool.
    pub env: BTreeMap<String, String>,
    /// Where a claim's workspace lives in the container.
    pub workspace_path: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

/// A pool's container as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Its id, also its container's name.
    pub id: String,
    /// Its pool.
    pub pool_id: String,
    /// The engine's id of its container, once created.
    pub container_id: Option<String>,
    /// Its container's address on the engine's network.
    pub ip: Option<String>,
    /// `starting`, `ready`, `reserved` (started for a claim) or `claimed`.
    pub state: String,
    /// The claim holding it.
    pub claim_id: Option<String>,
    /// When it was created (ms).
    pub created_at: i64,
    /// When it became ready (ms).
    pub ready_at: Option<i64>,
}

/// A claim as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// Its id (UUID).
    pub id: String,
    /// The pool's id and name.
    pub pool_id: String,
    /// The pool's name.
    pub pool_name: String,
    /// The member claimed.
    pub member_id: String,
    /// Its container.
    pub container_id: Option<String>,
    /// Its container's address.
    pub ip: Option<String>,
    /// Who may see it: the claimer's organisation.
    pub org: String,
    /// Who made it.
    pub actor: String,
    /// Hex SHA-256 of its access token (the token itself is never stored).
    pub token_sha256: String,
    /// Taken from the ready members (`false`: started cold because none was ready).
    pub warm: bool,
    /// The claim's own environment.
    pub env: BTreeMap<String, String>,
    /// `active`, `released`, `expired`, `idle` or `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// How long the claim took, ms.
    pub claim_ms: i64,
    /// When it was made, when it expires and when it ended (ms).
    pub created_at: i64,
    /// See `created_at`.
    pub expires_at: i64,
    /// See `created_at`.
    pub ended_at: Option<i64>,
    /// Its workspace, `s3://bucket/prefix`.
    pub workspace: Option<String>,
    /// What both sides held at the last sync, by path (JSON).
    pub sync_state: String,
    /// Why the last sync failed.
    pub sync_error: Option<String>,
    /// When it last synced (ms).
    pub synced_at: Option<i64>,
    /// Bytes restored into the container when claimed.
    pub restored_bytes: Option<i64>,
    /// How long the restore took, ms.
    pub restore_ms: Option<i64>,
}

/// A claim to record.
#[derive(Debug, Clone)]
pub struct NewClaim {
    /// Its id.
    pub id: String,
    /// Who may see it.
    pub org: String,
    /// Who makes it.
    pub actor: String,
    /// Hex SHA-256 of its token.
    pub token_sha256: String,
    /// Its own environment.
    pub env: BTreeMap<String, String>,
    /// When it expires (ms).
    pub expires_at: i64,
    /// Its workspace, `s3://bucket/prefix`.
    pub workspace: Option<String>,
}

const POOL_COLUMNS: &str = "id, name, org, image, size, ports, cpu_milli, memory_mb, claim_ttl_s, \
     idle_timeout_s, health_path, env, created_at, workspace_path";
const MEMBER_COLUMNS: &str = "id, pool_id, container_id, ip, state, claim_id, created_at, ready_at";
const CLAIM_COLUMNS: &str = "id, pool_id, pool_name, member_id, container_id, ip, org, actor, \
     token_sha256, warm, env, state, error, claim_ms, created_at, expires_at, ended_at, workspace";
const CLAIM_READ: &str = "id, pool_id, pool_name, member_id, container_id, ip, org, actor, \
     token_sha256, warm, env, state, error, claim_ms, created_at, expires_at, ended_at, workspace, \
     sync_state, sync_error, synced_at, restored_bytes, restore_ms";

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn pool_from_row(r: &AnyRow) -> Result<PoolRecord, Error> {
    let get_i = |c: &str| r.try_get::<i64, _>(c).map_err(Error::query);
    Ok(PoolRecord {
        id: r.try_get("id").map_err(Error::query)?,
        name: r.try_get("name").map_err(Error::query)?,
        org: r.try_get("org").map_err(Error::query)?,
        image: r.try_get("image").map_err(Error::query)?,
        size: u32::try_from(get_i("size")?).unwrap_or(0),
        ports: json(r, "ports")?,
        cpu_milli: u(get_i("cpu_milli")?),
        memory_mb: u(get_i("memory_mb")?),
        claim_ttl_s: u(get_i("claim_ttl_s")?),
        idle_timeout_s: r
            .try_get::<Option<i64>, _>("idle_timeout_s")
            .map_err(Error::query)?
            .map(u),
        health_path: r.try_get("health_path").map_err(Error::query)?,
        env: json(r, "env")?,
        workspace_path: r.try_get("workspace_path").map_err(Error::query)?,
        created_at: get_i("created_at")?,
    })
}

fn member_from_row(r: &AnyRow) -> Result<MemberRecord, Error> {
    Ok(MemberRecord {
        id: r.try_get("id").map_err(Error::query)?,
        pool_id: r.try_get("pool_id").map_err(Error::query)?,
        container_id: r.try_get("container_id").map_err(Error::query)?,
        ip: r.try_get("ip").map_err(Error::query)?,
        state: r.try_get("state").map_err(Error::query)?,
        claim_id: r.try_get("claim_id").map_err(Error::query)?,
        created_at: r.try_get("created_at").map_err(Error::query)?,
        ready_at: r.try_get("ready_at").map_err(Error::query)?,
    })
}

fn claim_from_row(r: &AnyRow) -> Result<ClaimRecord, Error> {
    Ok(ClaimRecord {
        id: r.try_get("id").map_err(Error::query)?,
        pool_id: r.try_get("pool_id").map_err(Error::query)?,
        pool_name: r.try_get("pool_name").map_err(Error::query)?,
        member_id: r.try_get("member_id").map_err(Error::query)?,
        container_id: r.try_get("container_id").map_err(Error::query)?,
        ip: r.try_get("ip").map_err(Error::query)?,
        org: r.try_get("org").map_err(Error::query)?,
        actor: r.try_get("actor").map_err(Error::query)?,
        token_sha256: r.try_get("token_sha256").map_err(Error::query)?,
        warm: r.try_get::<i32, _>("warm").map_err(Error::query)? != 0,
        env: json(r, "env")?,
        state: r.try_get("state").map_err(Error::query)?,
        error: r.try_get("error").map_err(Error::query)?,
        claim_ms: r.try_get("claim_ms").map_err(Error::query)?,
        created_at: r.try_get("created_at").map_err(Error::query)?,
        expires_at: r.try_get("expires_at").map_err(Error::query)?,
        ended_at: r.try_get("ended_at").map_err(Error::query)?,
        workspace: r.try_get("workspace").map_err(Error::query)?,
        sync_state: r.try_get("sync_state").map_err(Error::query)?,
        sync_error: r.try_get("sync_error").map_err(Error::query)?,
        synced_at: r.try_get("synced_at").map_err(Error::query)?,
        restored_bytes: r.try_get("restored_bytes").map_err(Error::query)?,
        restore_ms: r.try_get("restore_ms").map_err(Error::query)?,
    })
}

/// The pools repository.
pub struct Pools<'a> {
    pub(crate) store: &'a Store,
}

impl Pools<'_> {
    /// Records a new pool. A taken name is a conflict naming `name`.
    pub async fn create(&self, p: &PoolRecord) -> Result<PoolRecord, Error> {
        let now = now_ms();
        sqlx::query(&format!(
            "INSERT INTO pools ({POOL_COLUMNS}, updated_at) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13)"
        ))
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.org)
        .bind(&p.image)
        .bind(i64::from(p.size))
        .bind(to_json(&p.ports))
        .bind(i(p.cpu_milli))
        .bind(i(p.memory_mb))
        .bind(i(p.claim_ttl_s))
        .bind(p.idle_timeout_s.map(i))
        .bind(p.health_path.as_deref())
        .bind(to_json(&p.env))
        .bind(now)
        .bind(&p.workspace_path)
        .execute(&self.store.pool)
        .await
        .map_err(|e| Error::unique_or_query(e, "pool", "name", &p.name))?;
        self.get(&p.name).await
    }

    /// A pool by name or id.
    pub async fn get(&self, name_or_id: &str) -> Result<PoolRecord, Error> {
        let row = sqlx::query(&format!(
            "SELECT {POOL_COLUMNS} FROM pools WHERE name = $1 OR id = $1"
        ))
        .bind(name_or_id)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?
        .ok_or_else(|| Error::NotFound {
            what: "pool",
            key: name_or_id.to_owned(),
        })?;
        pool_from_row(&row)
    }

    /// Every pool, by name.
    pub async fn list(&self) -> Result<Vec<PoolRecord>, Error> {
        let rows = sqlx::query(&format!("SELECT {POOL_COLUMNS} FROM pools ORDER BY name"))
            .fetch_all(&self.store.pool)
            .await
            .map_err(Error::query)?;
        rows.iter().map(pool_from_row).collect()
    }

    /// Sets a pool's size.
    pub async fn resize(&self, id: &str, size: u32) -> Result<(), Error> {
        sqlx::query("UPDATE pools SET size = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(size))
            .bind(now_ms())
            .bind(id)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        Ok(())
    }

    /// Deletes a pool's record (its members' and active claims' containers are the
    /// maintainer's to remove: it removes what no pool owns).
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let mut tx = self.store.write_tx().await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE claims SET state = 'released', ended_at = $1 WHERE pool_id = $2 AND state = 'active'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        for sql in [
            "DELETE FROM pool_members WHERE pool_id = $1",
            "DELETE FROM pools WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(Error::query)?;
        }
        tx.commit().await.map_err(Error::query)
    }

    /// Records a member being started: `starting` for the pool, or `reserved` for the claim that
    /// starts it (a cold start, which the maintainer neither counts nor removes).
    pub async fn add_member(&self, pool_id: &str, id: &str, reserved: bool) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO pool_members (id, pool_id, state, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(pool_id)
        .bind(if reserved { "reserved" } else { "starting" })
        .bind(now_ms())
        .execute(&self.store.pool)
        .await
        .map_err(Error::query)?;
        Ok(())
    }

    /// Records a member's container once created.
    pub async fn set_container(
        &self,
        id: &str,
        container_id: &str,
        ip: Option<&str>,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE pool_members SET container_id = $1, ip = $2 WHERE id = $3")
            .bind(container_id)
            .bind(ip)
            .bind(id)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        Ok(())
    }

    /// A starting member answers: it is ready to be claimed.
    pub async fn mark_ready(&self, id: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE pool_members SET state = 'ready', ready_at = $1 WHERE id = $2 AND state = 'starting'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.store.pool)
        .await
        .map_err(Error::query)?;
        Ok(())
    }

    /// Forgets a member (its container is gone or being removed).
    pub async fn remove_member(&self, id: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM pool_members WHERE id = $1")
            .bind(id)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        Ok(())
    }

    /// Every member of every pool.
    pub async fn members(&self) -> Result<Vec<MemberRecord>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM pool_members ORDER BY created_at"
        ))
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(member_from_row).collect()
    }

    /// Claims the oldest ready member of `pool` (or, with `member`, that one: a cold start's
    /// own, which must be `starting` or `ready`), in one transaction; `None` when there is none.
    pub async fn claim(
        &self,
        pool: &PoolRecord,
        member: Option<&str>,
        c: &NewClaim,
        started: std::time::Instant,
    ) -> Result<Option<ClaimRecord>, Error> {
        let mut tx = self.store.write_tx().await?;
        let lock = match self.store.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let row = match member {
            None => sqlx::query(&format!(
                "SELECT {MEMBER_COLUMNS} FROM pool_members WHERE pool_id = $1 AND state = 'ready' \
                 ORDER BY ready_at LIMIT 1{lock}"
            ))
            .bind(&pool.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::query)?,
            Some(id) => sqlx::query(&format!(
                "SELECT {MEMBER_COLUMNS} FROM pool_members WHERE id = $1 \
                 AND state IN ('starting', 'ready', 'reserved'){lock}"
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::query)?,
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let m = member_from_row(&row)?;
        let taken = sqlx::query(
            "UPDATE pool_members SET state = 'claimed', claim_id = $1 WHERE id = $2 AND state <> 'claimed'",
        )
        .bind(&c.id)
        .bind(&m.id)
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        if taken.rows_affected() != 1 {
            return Ok(None);
        }
        let now = now_ms();
        let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        sqlx::query(&format!(
            "INSERT INTO claims ({CLAIM_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', NULL, $12, $13, $14, NULL, $15)"
        ))
        .bind(&c.id)
        .bind(&pool.id)
        .bind(&pool.name)
        .bind(&m.id)
        .bind(m.container_id.as_deref())
        .bind(m.ip.as_deref())
        .bind(&c.org)
        .bind(&c.actor)
        .bind(&c.token_sha256)
        .bind(i32::from(member.is_none()))
        .bind(to_json(&c.env))
        .bind(ms)
        .bind(now)
        .bind(c.expires_at)
        .bind(c.workspace.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        tx.commit().await.map_err(Error::query)?;
        self.claim_by_id(&c.id).await.map(Some)
    }

    /// A claim by id.
    pub async fn claim_by_id(&self, id: &str) -> Result<ClaimRecord, Error> {
        let row = sqlx::query(&format!("SELECT {CLAIM_READ} FROM claims WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await
            .map_err(Error::query)?
            .ok_or_else(|| Error::NotFound {
                what: "claim",
                key: id.to_owned(),
            })?;
        claim_from_row(&row)
    }

    /// Claims, newest first: only active ones unless `all`; only `org`'s when given.
    pub async fn claims(&self, org: Option<&str>, all: bool) -> Result<Vec<ClaimRecord>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {CLAIM_READ} FROM claims WHERE ($1 IS NULL OR org = $1) \
             AND ($2 = 1 OR state = 'active') ORDER BY created_at DESC LIMIT 1000"
        ))
        .bind(org)
        .bind(i32::from(all))
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(claim_from_row).collect()
    }

    /// Ends an active claim (`released`, `expired`, `idle`, `failed` with `error`) and forgets
    /// its member; returns the claim as it ended, `None` if it was not active.
    pub async fn end_claim(
        &self,
        id: &str,
        state: &str,
        error: Option<&str>,
    ) -> Result<Option<ClaimRecord>, Error> {
        let mut tx = self.store.write_tx().await?;
        let done = sqlx::query(
            "UPDATE claims SET state = $1, error = $2, ended_at = $3 WHERE id = $4 AND state = 'active'",
        )
        .bind(state)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM pool_members WHERE claim_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        tx.commit().await.map_err(Error::query)?;
        self.claim_by_id(id).await.map(Some)
    }

    /// Records a sync of a claim's workspace: the state both sides held, or why it failed
    /// (the state is then left as it was).
    pub async fn record_sync(
        &self,
        id: &str,
        state: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE claims SET sync_state = COALESCE($1, sync_state), sync_error = $2, \
             synced_at = CASE WHEN $2 IS NULL THEN $3 ELSE synced_at END WHERE id = $4",
        )
        .bind(state)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.store.pool)
        .await
        .map_err(Error::query)?;
        Ok(())
    }

    /// Records a claim's restore.
    pub async fn record_restore(&self, id: &str, bytes: i64, ms: i64) -> Result<(), Error> {
        sqlx::query("UPDATE claims SET restored_bytes = $1, restore_ms = $2 WHERE id = $3")
            .bind(bytes)
            .bind(ms)
            .bind(id)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        Ok(())
    }
}
