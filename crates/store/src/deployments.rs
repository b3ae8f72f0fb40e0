use racer_core::api::{App, Deployment, DeploymentStatus, Page, Release, RunConfig, Source};
use racer_core::{AppName, AppRef};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::events::{insert_event, NewEvent};
use crate::{cursor, from_ms, json, now_ms, to_json, Error, Store};

/// Deployments (durable build-and-rollout jobs) and the releases they make.
pub struct Deployments<'a> {
    pub(crate) store: &'a Store,
}

/// A release to record when a build finishes.
#[derive(Debug, Clone)]
pub struct NewRelease {
    /// Its number: the next one of the app (builds of one app never overlap).
    pub number: i64,
    /// The run configuration, with defaults resolved (e.g. the app port from the image).
    pub config: RunConfig,
    /// Image reference.
    pub image: String,
    /// Engine image id.
    pub image_id: String,
    /// Git commit, if any.
    pub commit: Option<String>,
}

const DEPLOYMENT_COLUMNS: &str = "id, app_id, app_name, status, release, source, config, \
     image_from_release, error, created_by, created_at, updated_at";
const RELEASE_COLUMNS: &str = "app_id, number, image, image_id, source, commit_sha, config, \
     deployment_id, created_by, created_at";

fn uuid_col(row: &AnyRow, col: &str) -> Result<Uuid, Error> {
    let s: String = row.try_get(col).map_err(Error::query)?;
    Uuid::parse_str(&s).map_err(|_| Error::Corrupt { what: "uuid" })
}

fn deployment_from_row(row: &AnyRow) -> Result<Deployment, Error> {
    let status: String = row.try_get("status").map_err(Error::query)?;
    Ok(Deployment {
        id: uuid_col(row, "id")?,
        app_id: uuid_col(row, "app_id")?,
        app_name: row.try_get("app_name").map_err(Error::query)?,
        status: DeploymentStatus::parse(&status).ok_or(Error::Corrupt {
            what: "deployment status",
        })?,
        release: row.try_get("release").map_err(Error::query)?,
        source: json(row, "source")?,
        config: json(row, "config")?,
        image_from_release: row.try_get("image_from_release").map_err(Error::query)?,
        error: row.try_get("error").map_err(Error::query)?,
        created_by: row.try_get("created_by").map_err(Error::query)?,
        created_at: from_ms(row.try_get("created_at").map_err(Error::query)?),
        updated_at: from_ms(row.try_get("updated_at").map_err(Error::query)?),
    })
}

fn release_from_row(row: &AnyRow) -> Result<Release, Error> {
    Ok(Release {
        app_id: uuid_col(row, "app_id")?,
        number: row.try_get("number").map_err(Error::query)?,
        image: row.try_get("image").map_err(Error::query)?,
        image_id: row.try_get("image_id").map_err(Error::query)?,
        source: json(row, "source")?,
        commit: row.try_get("commit_sha").map_err(Error::query)?,
        config: json(row, "config")?,
        deployment_id: uuid_col(row, "deployment_id")?,
        created_by: row.try_get("created_by").map_err(Error::query)?,
        created_at: from_ms(row.try_get("created_at").map_err(Error::query)?),
    })
}

/// A deployment to record.
#[derive(Debug, Clone, Copy)]
pub struct NewDeployment<'a> {
    /// The app (created if it does not exist).
    pub name: &'a AppName,
    /// Where the code comes from.
    pub source: &'a Source,
    /// How to run it.
    pub config: &'a RunConfig,
    /// New desired instances, if they change.
    pub instances: Option<u32>,
    /// Reuse this release's image instead of building (rerun --no-rebuild, rollback).
    pub image_from_release: Option<i64>,
    /// The organisation a new app belongs to; an existing app of another one is a conflict.
    pub org: &'a str,
}

impl<'a> NewDeployment<'a> {
    /// A deployment of `name` in the default organisation that changes nothing else: no new
    /// instance count, a fresh build.
    pub fn of(name: &'a AppName, source: &'a Source, config: &'a RunConfig) -> NewDeployment<'a> {
        NewDeployment {
            name,
            source,
            config,
            instances: None,
            image_from_release: None,
            org: racer_core::auth::DEFAULT_ORG,
        }
    }
}

impl Deployments<'_> {
    /// Records a deployment of `name` (creating the app if it does not exist) in one
    /// transaction: the app's recorded source and desired instances change with it. Older
    /// pending deployments of the app are superseded.
    pub async fn create(
        &self,
        new: &NewDeployment<'_>,
        actor: &str,
    ) -> Result<(App, Deployment), Error> {
        let NewDeployment {
            name,
            source,
            config,
            instances,
            image_from_release,
            org,
        } = *new;
        let now = now_ms();
        let mut tx = self.store.write_tx().await?;
        let existing = sqlx::query("SELECT id, instances, org FROM apps WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::query)?;
        let app_id = match existing {
            Some(row) => {
                let owner: String = row.try_get("org").map_err(Error::query)?;
                if owner != org {
                    // The name is taken by another organisation's app: a conflict, like any
                    // taken name, without saying whose it is.
                    return Err(Error::Conflict {
                        what: "app",
                        field: "app",
                        value: name.to_string(),
                    });
                }
                uuid_col(&row, "id")?
            }
            None => {
                let id = Uuid::new_v4();
                crate::apps::insert_app(&mut tx, id, name.as_str(), org, now, "app").await?;
                insert_event(
                    &mut tx,
                    &NewEvent {
                        actor: actor.to_owned(),
                        kind: "app.created".into(),
                        app_id: Some(id),
                        app_name: Some(name.to_string()),
                        message: format!("app {name} created"),
                        org: None,
                    },
                )
                .await?;
                id
            }
        };
        // Only path sources re-send; an image-from-release rerun keeps the recorded source.
        sqlx::query(
            "UPDATE apps SET source = $1, instances = COALESCE($2, instances), updated_at = $3 WHERE id = $4",
        )
        .bind(to_json(source))
        .bind(instances.map(|i| i as i32))
        .bind(now)
        .bind(app_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        sqlx::query(
            "UPDATE deployments SET status = 'superseded', updated_at = $1 \
             WHERE app_id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(app_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO deployments (id, app_id, app_name, status, source, config, \
             image_from_release, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.to_string())
        .bind(app_id.to_string())
        .bind(name.as_str())
        .bind(to_json(source))
        .bind(to_json(config))
        .bind(image_from_release)
        .bind(actor)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        insert_event(
            &mut tx,
            &NewEvent {
                actor: actor.to_owned(),
                kind: "deployment.created".into(),
                app_id: Some(app_id),
                app_name: Some(name.to_string()),
                message: format!("deployment {id} of {name} from {}", describe(source)),
                org: None,
            },
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.store.pages.invalidate();
        let app = self.store.apps().get(&AppRef::Id(app_id)).await?;
        let dep = self.get(id).await?;
        Ok((app, dep))
    }

    /// One deployment.
    pub async fn get(&self, id: Uuid) -> Result<Deployment, Error> {
        let row = sqlx::query(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        match row {
            Some(r) => deployment_from_row(&r),
            None => Err(Error::NotFound {
                what: "deployment",
                key: id.to_string(),
            }),
        }
    }

    /// The newest deployment of an app.
    pub async fn latest(&self, app_id: Uuid) -> Result<Option<Deployment>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE app_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(app_id.to_string())
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        row.as_ref().map(deployment_from_row).transpose()
    }

    /// Deployments of an app, newest first.
    pub async fn list(
        &self,
        app_id: Uuid,
        limit: i64,
        after: Option<&str>,
    ) -> Result<Page<Deployment>, Error> {
        let before = page_start(after)?;
        let rows = sqlx::query(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE app_id = $1 AND created_at < $2 \
             ORDER BY created_at DESC LIMIT $3"
        ))
        .bind(app_id.to_string())
        .bind(before)
        .bind(limit + 1)
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        deployment_page(&rows, limit)
    }

    /// Deployments of every app (of organisation `org`, or of all when `None`), newest first.
    pub async fn list_all(
        &self,
        org: Option<&str>,
        limit: i64,
        after: Option<&str>,
    ) -> Result<Page<Deployment>, Error> {
        let before = page_start(after)?;
        let rows = match org {
            Some(org) => {
                sqlx::query(&format!(
                    "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE created_at < $1 \
                     AND app_id IN (SELECT id FROM apps WHERE org = $2) \
                     ORDER BY created_at DESC LIMIT $3"
                ))
                .bind(before)
                .bind(org.to_owned())
                .bind(limit + 1)
                .fetch_all(&self.store.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE created_at < $1 \
                     ORDER BY created_at DESC LIMIT $2"
                ))
                .bind(before)
                .bind(limit + 1)
                .fetch_all(&self.store.pool)
                .await
            }
        }
        .map_err(Error::query)?;
        deployment_page(&rows, limit)
    }

    /// Every app's newest deployment when it is rolling out (what [`Deployments::latest`] gives
    /// for each app, kept only if its status is `rolling_out`), in one query: the reconciler
    /// asks this once per pass instead of once per app.
    pub async fn latest_rolling_out(&self) -> Result<Vec<Deployment>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments d WHERE d.status = 'rolling_out' \
             AND NOT EXISTS (SELECT 1 FROM deployments n WHERE n.app_id = d.app_id \
             AND (n.created_at > d.created_at OR (n.created_at = d.created_at AND n.id > d.id)))"
        ))
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(deployment_from_row).collect()
    }

    /// Deployments in the given statuses (for the builder and the rollout watcher).
    pub async fn in_status(&self, status: DeploymentStatus) -> Result<Vec<Deployment>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE status = $1 ORDER BY created_at"
        ))
        .bind(status.as_str())
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(deployment_from_row).collect()
    }

    /// Takes the oldest pending deployment whose app has no build running, marking it
    /// `building` by `builder` (a server's id). Two builds of one app never run at once.
    pub async fn claim_next(&self, builder: &str) -> Result<Option<Deployment>, Error> {
        let mut tx = self.store.write_tx().await?;
        // On PostgreSQL several servers claim at once: skip deployments another claimer holds,
        // then lock the app's row and look again, so that two servers never start two builds
        // of one app (SQLite's BEGIN IMMEDIATE already lets one writer in at a time).
        let lock = match self.store.backend {
            crate::Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!(
            "SELECT d.id, d.app_id FROM deployments d WHERE d.status = 'pending' AND NOT EXISTS \
             (SELECT 1 FROM deployments b WHERE b.app_id = d.app_id AND b.status = 'building') \
             ORDER BY d.created_at LIMIT 1{lock}"
        ))
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::query)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id = uuid_col(&row, "id")?;
        if self.store.backend == crate::Backend::Postgres {
            let app: String = row.try_get("app_id").map_err(Error::query)?;
            sqlx::query("SELECT id FROM apps WHERE id = $1 FOR UPDATE")
                .bind(&app)
                .fetch_optional(&mut *tx)
                .await
                .map_err(Error::query)?;
            let busy = sqlx::query(
                "SELECT 1 AS busy FROM deployments WHERE app_id = $1 AND status = 'building'",
            )
            .bind(&app)
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::query)?;
            if busy.is_some() {
                return Ok(None);
            }
        }
        let done = sqlx::query(
            "UPDATE deployments SET status = 'building', updated_at = $1, builder = $3 \
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(now_ms())
        .bind(id.to_string())
        .bind(builder)
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        tx.commit().await.map_err(Error::query)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.get(id).await.map(Some)
    }

    /// The build queue: deployments waiting for their build, building, and whose build failed.
    pub async fn build_counts(&self) -> Result<(i64, i64, i64), Error> {
        let row = sqlx::query(
            "SELECT \
               SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending, \
               SUM(CASE WHEN status = 'building' THEN 1 ELSE 0 END) AS building, \
               SUM(CASE WHEN status = 'failed' AND release IS NULL THEN 1 ELSE 0 END) AS failed \
             FROM deployments",
        )
        .fetch_one(&self.store.pool)
        .await
        .map_err(Error::query)?;
        let n = |c: &str| -> Result<i64, Error> {
            row.try_get::<Option<i64>, _>(c)
                .map(|v| v.unwrap_or(0))
                .map_err(Error::query)
        };
        Ok((n("pending")?, n("building")?, n("failed")?))
    }

    /// Says that `builder` is still building `id` (its lease): a build nobody touches for
    /// longer than the stale time of [`Deployments::requeue_interrupted`] goes back to the queue.
    pub async fn touch_building(&self, id: Uuid, builder: &str) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE deployments SET updated_at = $1 \
             WHERE id = $2 AND status = 'building' AND builder = $3",
        )
        .bind(now_ms())
        .bind(id.to_string())
        .bind(builder)
        .execute(&self.store.pool)
        .await
        .map_err(Error::query)?;
        Ok(done.rows_affected() == 1)
    }

    /// Builds that stopped: those of `mine` (this server, restarted: its builds in flight died
    /// with it; `None` to take none) and those of any builder untouched for `stale` (that server
    /// died, or lost the database) go back to the queue, each with a line in its log and an
    /// event. Returns how many.
    pub async fn requeue_interrupted(
        &self,
        mine: Option<&str>,
        stale: std::time::Duration,
    ) -> Result<u64, Error> {
        let now = now_ms();
        let cutoff = now - i64::try_from(stale.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.store.write_tx().await?;
        let rows = sqlx::query(&format!(
            "SELECT {DEPLOYMENT_COLUMNS}, builder FROM deployments WHERE status = 'building' \
             AND (builder = $1 OR builder IS NULL OR updated_at < $2)"
        ))
        .bind(mine.unwrap_or(""))
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::query)?;
        let mut n = 0;
        for row in &rows {
            let d = deployment_from_row(row)?;
            let by: Option<String> = row.try_get("builder").map_err(Error::query)?;
            let restarted = mine.is_some() && by.as_deref() == mine;
            let (line, why) = if restarted || by.is_none() {
                (
                    "\n--- the server restarted during this build; building again ---\n",
                    "interrupted by a restart",
                )
            } else {
                (
                    "\n--- the server building this stopped answering; building again ---\n",
                    "its builder stopped answering",
                )
            };
            let done = sqlx::query(
                "UPDATE deployments SET status = 'pending', builder = NULL, log = log || $1, \
                 updated_at = $2 WHERE id = $3 AND status = 'building'",
            )
            .bind(line)
            .bind(now)
            .bind(d.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
            if done.rows_affected() == 0 {
                continue;
            }
            n += 1;
            insert_event(
                &mut tx,
                &NewEvent {
                    actor: "racer".into(),
                    kind: "deployment.resumed".into(),
                    app_id: Some(d.app_id),
                    app_name: Some(d.app_name.clone()),
                    message: format!("deployment {} {why}; queued again", d.id),
                    org: None,
                },
            )
            .await?;
        }
        tx.commit().await.map_err(Error::query)?;
        Ok(n)
    }

    /// Appends build output.
    pub async fn append_log(&self, id: Uuid, text: &str) -> Result<(), Error> {
        sqlx::query("UPDATE deployments SET log = log || $1 WHERE id = $2")
            .bind(text)
            .bind(id.to_string())
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        Ok(())
    }

    /// The build log from byte `offset` on.
    pub async fn log(&self, id: Uuid, offset: usize) -> Result<String, Error> {
        let row = sqlx::query("SELECT log FROM deployments WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.store.pool)
            .await
            .map_err(Error::query)?;
        let Some(row) = row else {
            return Err(Error::NotFound {
                what: "deployment",
                key: id.to_string(),
            });
        };
        let log: String = row.try_get("log").map_err(Error::query)?;
        Ok(log.get(offset..).unwrap_or("").to_owned())
    }

    /// A build finished: records the next release and points the app at it, in one transaction.
    pub async fn release(&self, d: &Deployment, r: &NewRelease) -> Result<Release, Error> {
        let now = now_ms();
        let mut tx = self.store.write_tx().await?;
        let number = r.number;
        sqlx::query(&format!(
            "INSERT INTO releases ({RELEASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(d.app_id.to_string())
        .bind(number)
        .bind(&r.image)
        .bind(&r.image_id)
        .bind(to_json(&d.source))
        .bind(r.commit.as_deref())
        .bind(to_json(&r.config))
        .bind(d.id.to_string())
        .bind(&d.created_by)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::unique_or_query(e, "release", "number", &number.to_string()))?;
        sqlx::query(
            "UPDATE deployments SET status = 'rolling_out', release = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(number)
        .bind(now)
        .bind(d.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        sqlx::query("UPDATE apps SET release = $1, updated_at = $2 WHERE id = $3")
            .bind(number)
            .bind(now)
            .bind(d.app_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        insert_event(
            &mut tx,
            &NewEvent {
                actor: d.created_by.clone(),
                kind: "release.created".into(),
                app_id: Some(d.app_id),
                app_name: Some(d.app_name.clone()),
                message: format!("release {number} of {} ({})", d.app_name, r.image),
                org: None,
            },
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.store.pages.invalidate();
        self.release_of(d.app_id, number).await
    }

    /// Moves a deployment to a final or intermediate status, with an event.
    pub async fn set_status(
        &self,
        d: &Deployment,
        status: DeploymentStatus,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let mut tx = self.store.write_tx().await?;
        let done = sqlx::query(
            "UPDATE deployments SET status = $1, error = COALESCE($2, error), updated_at = $3 \
             WHERE id = $4 AND status = $5",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(now_ms())
        .bind(d.id.to_string())
        .bind(d.status.as_str())
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        if done.rows_affected() == 0 {
            // Someone else moved it first; nothing to record.
            return Ok(());
        }
        let message = match error {
            Some(e) => format!(
                "deployment {} of {} {}: {e}",
                d.id,
                d.app_name,
                status.as_str()
            ),
            None => format!("deployment {} of {} {}", d.id, d.app_name, status.as_str()),
        };
        insert_event(
            &mut tx,
            &NewEvent {
                actor: "racer".into(),
                kind: format!("deployment.{}", status.as_str()),
                app_id: Some(d.app_id),
                app_name: Some(d.app_name.clone()),
                message,
                org: None,
            },
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        Ok(())
    }

    /// Points an app back at an earlier release (after a failed rollout).
    pub async fn point_app_at(&self, app_id: Uuid, release: Option<i64>) -> Result<(), Error> {
        sqlx::query("UPDATE apps SET release = $1, updated_at = $2 WHERE id = $3")
            .bind(release)
            .bind(now_ms())
            .bind(app_id.to_string())
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        self.store.pages.invalidate();
        Ok(())
    }

    /// One release.
    pub async fn release_of(&self, app_id: Uuid, number: i64) -> Result<Release, Error> {
        let row = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = $1 AND number = $2"
        ))
        .bind(app_id.to_string())
        .bind(number)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        match row {
            Some(r) => release_from_row(&r),
            None => Err(Error::NotFound {
                what: "release",
                key: number.to_string(),
            }),
        }
    }

    /// The number the next release of an app gets.
    pub async fn next_release_number(&self, app_id: Uuid) -> Result<i64, Error> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(number), 0) AS n FROM releases WHERE app_id = $1")
                .bind(app_id.to_string())
                .fetch_one(&self.store.pool)
                .await
                .map_err(Error::query)?;
        Ok(row.try_get::<i64, _>("n").map_err(Error::query)? + 1)
    }

    /// Releases of an app, newest first.
    pub async fn releases(&self, app_id: Uuid) -> Result<Vec<Release>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = $1 ORDER BY number DESC"
        ))
        .bind(app_id.to_string())
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(release_from_row).collect()
    }

    /// How many deployments ended in each final status (running, failed, rolled back,
    /// superseded), per app name, in app then status order. A deleted app's deployments are
    /// gone, so are its counts.
    pub async fn outcomes(&self) -> Result<Vec<(String, DeploymentStatus, u64)>, Error> {
        let rows = sqlx::query(
            "SELECT app_name, status, COUNT(*) AS n FROM deployments \
             WHERE status IN ('running', 'failed', 'rolled_back', 'superseded') \
             GROUP BY app_name, status ORDER BY app_name, status",
        )
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status").map_err(Error::query)?;
                Ok((
                    r.try_get("app_name").map_err(Error::query)?,
                    DeploymentStatus::parse(&status).ok_or(Error::Corrupt {
                        what: "deployment status",
                    })?,
                    u64::try_from(r.try_get::<i64, _>("n").map_err(Error::query)?).unwrap_or(0),
                ))
            })
            .collect()
    }
}

fn describe(source: &Source) -> String {
    match source {
        Source::Path { path, .. } => format!("path {path}"),
        Source::Git { url, reference } => match reference {
            Some(r) => format!("git {url}#{r}"),
            None => format!("git {url}"),
        },
        Source::Image { image } => format!("image {image}"),
    }
}

/// Where a newest-first page of deployments starts: before the cursor's time, or at the newest.
fn page_start(after: Option<&str>) -> Result<i64, Error> {
    match after {
        Some(c) => cursor::decode("dep", c)?
            .parse()
            .map_err(|_| Error::BadCursor),
        None => Ok(i64::MAX),
    }
}

/// A page of deployments from up to `limit + 1` rows: the extra row only says there is more.
fn deployment_page(rows: &[AnyRow], limit: i64) -> Result<Page<Deployment>, Error> {
    let mut items = rows
        .iter()
        .map(deployment_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|d| cursor::encode("dep", &d.created_at.timestamp_millis().to_string()))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
