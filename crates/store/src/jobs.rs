//! The durable work queue (issue 14): jobs with a lease.
//!
//! Written on racer's own store rather than with a queue crate: the jobs share the store's
//! migrations, backends and transactions (a placement and its job change in one transaction),
//! the two backends need one code path (sqlxmq is PostgreSQL only; apalis brings its own
//! schema, runtime and many crates to build on two cores), and the whole of it is the four
//! statements below.
//!
//! A claim is one `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING …`: on PostgreSQL the
//! inner select takes `FOR UPDATE SKIP LOCKED`, so concurrent claimers skip each other's rows
//! instead of waiting or sharing them; on SQLite the statement runs in a `BEGIN IMMEDIATE`
//! transaction, which holds the one write lock. A claimable job is pending and visible (its
//! delay or backoff passed), or running with an expired lease (its worker died). Every later
//! step (heartbeat, complete, fail) names the lease owner, so a worker that lost its lease
//! changes nothing.

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::{now_ms, Backend, Error, Store};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What to do: `build`, `place`, `requeue`…
    pub kind: String,
    /// Its arguments, as JSON text.
    pub payload: String,
    /// 1 (lowest) to 5; higher is claimed first.
    pub priority: u8,
    /// Not claimable before this much time passed.
    pub delay: Duration,
    /// Attempts before the job is dead.
    pub max_attempts: u32,
    /// At most one job with this key exists: enqueuing it again returns the existing one.
    pub dedupe_key: Option<String>,
}

impl NewJob {
    /// A job of `kind` with `payload`, priority 3, no delay, 5 attempts.
    pub fn new(kind: &str, payload: String) -> NewJob {
        NewJob {
            kind: kind.to_owned(),
            payload,
            priority: 3,
            delay: Duration::ZERO,
            max_attempts: 5,
            dedupe_key: None,
        }
    }
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its payload.
    pub payload: String,
    /// Its priority.
    pub priority: u8,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Who holds the lease.
    pub owner: String,
    /// When the lease ends unless renewed (ms since epoch).
    pub lease_until: i64,
    /// The error of the previous attempt, if it failed.
    pub last_error: Option<String>,
}

/// How a failed attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Pending again, claimable after the delay.
    Retrying,
    /// Out of attempts: dead, with its last error.
    Dead,
    /// The lease was no longer this owner's: nothing changed.
    LostLease,
}

/// Jobs of one kind by state, for `racerctl queue status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// The kind.
    pub kind: String,
    /// Claimable now.
    pub pending: i64,
    /// Leased to a worker whose lease has not expired.
    pub running: i64,
    /// Waiting out a delay (never tried yet).
    pub deferred: i64,
    /// Failed at least once, waiting to retry.
    pub failed: i64,
    /// Out of attempts.
    pub dead: i64,
    /// Done.
    pub done: i64,
}

/// The parameters of a claim: `$1` owner, `$2` lease end, `$3` now, `$4` the ids of the jobs
/// done (comma-joined), then the kinds.
struct ClaimArgs<'a> {
    owner: &'a str,
    lease_end: i64,
    now: i64,
    done: &'a str,
    kinds: &'a [&'a str],
}

impl ClaimArgs<'_> {
    fn bind<'q>(
        &self,
        sql: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let mut q = sqlx::query(sql)
            .bind(self.owner.to_owned())
            .bind(self.lease_end)
            .bind(self.now)
            .bind(self.done.to_owned());
        for k in self.kinds {
            q = q.bind((*k).to_owned());
        }
        q
    }
}

/// The jobs repository.
pub struct Jobs<'a> {
    pub(crate) store: &'a Store,
}

/// Running jobs whose lease expired after their last attempt are dead: nobody may retry. `$3`
/// is now.
const BURY: &str = "UPDATE jobs SET state = 'dead', lease_owner = NULL, updated_at = $3, \
                    last_error = COALESCE(last_error, 'the worker stopped renewing its lease') \
                    WHERE state = 'running' AND lease_until < $3 AND attempts >= max_attempts";

/// Marks a job done: `$1` now, `$2` id, `$3` the lease owner.
const COMPLETE: &str = "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, \
                        updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'";

const COLUMNS: &str =
    "id, kind, payload, priority, attempts, max_attempts, lease_owner, lease_until, last_error";

fn job_from_row(row: &AnyRow) -> Result<Job, Error> {
    let get_i32 =
        |c: &str| -> Result<i32, Error> { row.try_get::<i32, _>(c).map_err(Error::query) };
    Ok(Job {
        id: row.try_get("id").map_err(Error::query)?,
        kind: row.try_get("kind").map_err(Error::query)?,
        payload: row.try_get("payload").map_err(Error::query)?,
        priority: u8::try_from(get_i32("priority")?).unwrap_or(3),
        attempts: u32::try_from(get_i32("attempts")?).unwrap_or(0),
        max_attempts: u32::try_from(get_i32("max_attempts")?).unwrap_or(0),
        owner: row
            .try_get::<Option<String>, _>("lease_owner")
            .map_err(Error::query)?
            .unwrap_or_default(),
        lease_until: row
            .try_get::<Option<i64>, _>("lease_until")
            .map_err(Error::query)?
            .unwrap_or(0),
        last_error: row.try_get("last_error").map_err(Error::query)?,
    })
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Jobs<'_> {
    /// Adds a job; with a dedupe key already present, returns that job's id instead.
    pub async fn enqueue(&self, job: &NewJob) -> Result<String, Error> {
        let now = now_ms();
        let id = Uuid::new_v4().to_string();
        let insert = match self.store.backend {
            Backend::Sqlite => "INSERT OR IGNORE INTO jobs",
            Backend::Postgres => "INSERT INTO jobs",
        };
        let conflict = match self.store.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " ON CONFLICT (dedupe_key) DO NOTHING",
        };
        let sql = format!(
            "{insert} (id, kind, payload, state, priority, attempts, max_attempts, visible_at, \
             dedupe_key, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, 0, $5, $6, $7, $8, $8){conflict}"
        );
        let done = sqlx::query(&sql)
            .bind(&id)
            .bind(&job.kind)
            .bind(&job.payload)
            .bind(i32::from(job.priority))
            .bind(i32::try_from(job.max_attempts.clamp(1, 1000)).unwrap_or(1000))
            .bind(now.saturating_add(ms(job.delay)))
            .bind(job.dedupe_key.as_deref())
            .bind(now)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        if done.rows_affected() == 1 {
            return Ok(id);
        }
        let row = sqlx::query("SELECT id FROM jobs WHERE dedupe_key = $1")
            .bind(job.dedupe_key.as_deref())
            .fetch_one(&self.store.pool)
            .await
            .map_err(Error::query)?;
        row.try_get("id").map_err(Error::query)
    }

    /// The payloads of the jobs of `kind` that wait to be claimed, each with when it becomes
    /// claimable (ms since the epoch): what is deferred, and until when.
    pub async fn pending(&self, kind: &str) -> Result<Vec<(String, i64)>, Error> {
        let rows = sqlx::query(
            "SELECT payload, visible_at FROM jobs WHERE kind = $1 AND state = 'pending' \
             ORDER BY visible_at",
        )
        .bind(kind)
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("payload").map_err(Error::query)?,
                    r.try_get("visible_at").map_err(Error::query)?,
                ))
            })
            .collect()
    }

    /// Claims the most important claimable job of one of `kinds` (any kind when empty) for
    /// `owner`, leased for `lease`: highest priority first, then the longest waiting.
    pub async fn claim(
        &self,
        owner: &str,
        kinds: &[&str],
        lease: Duration,
    ) -> Result<Option<Job>, Error> {
        self.complete_and_claim(None, owner, kinds, lease).await
    }

    /// Marks `done` (a job `owner` holds) done and claims the next job, in one commit: a
    /// worker's loop commits once per job. A `done` whose lease is no longer `owner`'s is left
    /// as it is (as [`Jobs::complete`] would).
    pub async fn complete_and_claim(
        &self,
        done: Option<&str>,
        owner: &str,
        kinds: &[&str],
        lease: Duration,
    ) -> Result<Option<Job>, Error> {
        let done: Vec<&str> = done.into_iter().collect();
        let mut jobs = self
            .complete_and_claim_many(&done, owner, kinds, lease, 1)
            .await?;
        Ok(jobs.pop())
    }

    /// Marks every job of `done` (held by `owner`) done and claims up to `max` jobs, in one
    /// commit (one statement on PostgreSQL): first those whose worker died (their lease ran
    /// out), then the most important pending ones, highest priority first, then the longest
    /// waiting. Workers that take several at a time commit once per batch.
    pub async fn complete_and_claim_many(
        &self,
        done: &[&str],
        owner: &str,
        kinds: &[&str],
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Job>, Error> {
        let now = now_ms();
        let max = max.clamp(1, 1000);
        let kind_filter = if kinds.is_empty() {
            String::new()
        } else {
            let marks: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 5)).collect();
            format!(" AND kind IN ({})", marks.join(", "))
        };
        // $4: the ids of `done`, comma-joined (ids are UUIDs).
        let joined = done.join(",");
        let args = ClaimArgs {
            owner,
            lease_end: now.saturating_add(ms(lease)),
            now,
            done: &joined,
            kinds,
        };
        let take = |picks: &str| {
            format!(
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
                 attempts = attempts + 1, updated_at = $3 WHERE id IN ({picks}) \
                 RETURNING {COLUMNS}"
            )
        };
        // Each pick is an index scan that stops at its first rows: jobs whose worker died,
        // then pending ones. (`$4 IS NOT NULL` only names `$4`, which SQLite's picks would
        // otherwise leave unused.)
        let pick = |expired: bool, limit: usize, extra: &str| {
            let (which, order) = if expired {
                (
                    "state = 'running' AND lease_until < $3",
                    "state, lease_until",
                )
            } else {
                (
                    "state = 'pending' AND visible_at <= $3",
                    "state, priority DESC, visible_at, created_at",
                )
            };
            format!(
                "SELECT id{extra} FROM jobs WHERE {which} AND attempts < max_attempts \
                 AND $4 IS NOT NULL{kind_filter} ORDER BY {order} LIMIT {limit}"
            )
        };
        let rows = match self.store.backend {
            // One statement: the completions, the burial of dead leases and the claim. Other
            // claimers' rows are skipped (SKIP LOCKED); of the expired and pending rows picked,
            // the first `max` are taken, expired first.
            Backend::Postgres => {
                let lock = " FOR UPDATE SKIP LOCKED";
                let sql = format!(
                    "WITH fin AS (UPDATE jobs SET state = 'done', lease_owner = NULL, \
                       lease_until = NULL, updated_at = $3 \
                       WHERE id = ANY(string_to_array($4, ',')) AND lease_owner = $1 \
                       AND state = 'running'), \
                     bury AS ({BURY}), \
                     exp AS ({}{lock}), \
                     pend AS ({}{lock}), \
                     pick AS (SELECT id FROM (SELECT id, 0 AS k, 0 AS p, lease_until AS t FROM exp \
                       UNION ALL SELECT id, 1 AS k, -priority AS p, visible_at AS t FROM pend) c \
                       ORDER BY k, p, t LIMIT {max}) {}",
                    // Never the jobs being completed: one statement must not update a row
                    // twice.
                    pick(true, max, ", lease_until").replace(
                        " ORDER BY",
                        " AND NOT (id = ANY(string_to_array($4, ','))) ORDER BY"
                    ),
                    pick(false, max, ", priority, visible_at"),
                    take("SELECT id FROM pick")
                );
                args.bind(&sql)
                    .fetch_all(&self.store.pool)
                    .await
                    .map_err(Error::query)?
            }
            // SQLite has no UPDATE in a WITH: the same steps in one write transaction (BEGIN
            // IMMEDIATE: one writer at a time, so nothing needs skipping).
            Backend::Sqlite => {
                let mut tx = self.store.write_tx().await?;
                for id in done {
                    sqlx::query(COMPLETE)
                        .bind(now)
                        .bind(*id)
                        .bind(owner)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::query)?;
                }
                sqlx::query(&BURY.replace("$3", "$1"))
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::query)?;
                let mut rows = Vec::new();
                for expired in [true, false] {
                    let left = max - rows.len();
                    if left == 0 {
                        break;
                    }
                    let sql = take(&pick(expired, left, ""));
                    rows.extend(
                        args.bind(&sql)
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(Error::query)?,
                    );
                }
                tx.commit().await.map_err(Error::query)?;
                rows
            }
        };
        rows.iter().map(job_from_row).collect()
    }

    /// Renews `owner`'s lease on job `id` for `lease`; false if the lease is not theirs any more.
    pub async fn heartbeat(&self, id: &str, owner: &str, lease: Duration) -> Result<bool, Error> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 \
             WHERE id = $3 AND lease_owner = $4 AND state = 'running' AND lease_until >= $2",
        )
        .bind(now.saturating_add(ms(lease)))
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.store.pool)
        .await
        .map_err(Error::query)?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks job `id` done; false if the lease is not `owner`'s any more.
    pub async fn complete(&self, id: &str, owner: &str) -> Result<bool, Error> {
        let done = sqlx::query(COMPLETE)
            .bind(now_ms())
            .bind(id)
            .bind(owner)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt of job `id`: pending again after `retry_after`, or dead when it
    /// has no attempts left.
    pub async fn fail(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        retry_after: Duration,
    ) -> Result<Failed, Error> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET \
               state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'pending' END, \
               visible_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL, \
               updated_at = $3 \
             WHERE id = $4 AND lease_owner = $5 AND state = 'running' \
             RETURNING state",
        )
        .bind(now.saturating_add(ms(retry_after)))
        .bind(error)
        .bind(now)
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        Ok(match done {
            None => Failed::LostLease,
            Some(row) => {
                let state: String = row.try_get("state").map_err(Error::query)?;
                if state == "dead" {
                    Failed::Dead
                } else {
                    Failed::Retrying
                }
            }
        })
    }

    /// The state of job `id` (`pending`, `running`, `done`, `dead`) and its attempts.
    pub async fn state(&self, id: &str) -> Result<(String, u32, Option<String>), Error> {
        let row = sqlx::query("SELECT state, attempts, last_error FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await
            .map_err(Error::query)?
            .ok_or_else(|| Error::NotFound {
                what: "job",
                key: id.to_owned(),
            })?;
        Ok((
            row.try_get("state").map_err(Error::query)?,
            u32::try_from(row.try_get::<i32, _>("attempts").map_err(Error::query)?).unwrap_or(0),
            row.try_get("last_error").map_err(Error::query)?,
        ))
    }

    /// Jobs by kind and state, kinds in name order.
    pub async fn counts(&self) -> Result<Vec<KindCounts>, Error> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT kind, \
               SUM(CASE WHEN state = 'pending' AND visible_at <= $1 AND attempts = 0 THEN 1 ELSE 0 END) AS pending, \
               SUM(CASE WHEN state = 'running' AND lease_until >= $1 THEN 1 ELSE 0 END) AS running, \
               SUM(CASE WHEN state = 'pending' AND visible_at > $1 AND attempts = 0 THEN 1 ELSE 0 END) AS deferred, \
               SUM(CASE WHEN (state = 'pending' AND attempts > 0) \
                         OR (state = 'running' AND lease_until < $1) THEN 1 ELSE 0 END) AS failed, \
               SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) AS dead, \
               SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END) AS done \
             FROM jobs GROUP BY kind ORDER BY kind",
        )
        .bind(now)
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| -> Result<i64, Error> {
                    r.try_get::<Option<i64>, _>(c)
                        .map(|v| v.unwrap_or(0))
                        .map_err(Error::query)
                };
                Ok(KindCounts {
                    kind: r.try_get("kind").map_err(Error::query)?,
                    pending: n("pending")?,
                    running: n("running")?,
                    deferred: n("deferred")?,
                    failed: n("failed")?,
                    dead: n("dead")?,
                    done: n("done")?,
                })
            })
            .collect()
    }
}
