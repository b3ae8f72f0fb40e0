use racer_core::api::{App, Page};
use racer_core::{AppName, AppRef};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::events::{insert_event, NewEvent};
use crate::{cursor, from_ms, now_ms, Error, Store};

/// Apps: create, look up by name or id, list, delete. Every change appends an event in the same
/// transaction, so the audit log never misses or invents a change.
pub struct Apps<'a> {
    pub(crate) store: &'a Store,
}

const APP_COLUMNS: &str = "id, name, org, created_at, updated_at, instances, release, source";

fn app_from_row(row: &AnyRow) -> Result<App, Error> {
    let id: String = row.try_get("id").map_err(Error::query)?;
    Ok(App {
        id: Uuid::parse_str(&id).map_err(|_| Error::Corrupt { what: "app id" })?,
        name: row.try_get("name").map_err(Error::query)?,
        org: row.try_get("org").map_err(Error::query)?,
        created_at: from_ms(row.try_get("created_at").map_err(Error::query)?),
        updated_at: from_ms(row.try_get("updated_at").map_err(Error::query)?),
        instances: u32::try_from(row.try_get::<i32, _>("instances").map_err(Error::query)?)
            .unwrap_or(0),
        release: row.try_get("release").map_err(Error::query)?,
        source: crate::json_opt(row, "source")?,
    })
}

/// Inserts an app row; a taken name is a conflict on `field` (the request field that named it).
pub(crate) async fn insert_app(
    conn: &mut sqlx::AnyConnection,
    id: Uuid,
    name: &str,
    org: &str,
    now: i64,
    field: &'static str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO apps (id, name, org, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.to_string())
    .bind(name)
    .bind(org)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| Error::unique_or_query(e, "app", field, name))?;
    Ok(())
}

impl Apps<'_> {
    /// Creates an app named `name` owned by `org`, recording `actor` in the event log.
    pub async fn create(&self, name: &AppName, org: &str, actor: &str) -> Result<App, Error> {
        let now = now_ms();
        let app = App {
            id: Uuid::new_v4(),
            name: name.to_string(),
            org: org.to_owned(),
            created_at: from_ms(now),
            updated_at: from_ms(now),
            instances: 1,
            release: None,
            source: None,
        };
        let mut tx = self.store.write_tx().await?;
        insert_app(&mut tx, app.id, &app.name, &app.org, now, "name").await?;
        insert_event(
            &mut tx,
            &NewEvent::app(
                actor,
                "app.created",
                &app,
                format!("app {} created", app.name),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.store.pages.invalidate();
        Ok(app)
    }

    /// Finds an app by name or id.
    pub async fn get(&self, app: &AppRef) -> Result<App, Error> {
        let (sql, key) = match app {
            AppRef::Id(id) => (
                format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"),
                id.to_string(),
            ),
            AppRef::Name(name) => (
                format!("SELECT {APP_COLUMNS} FROM apps WHERE name = $1"),
                name.clone(),
            ),
        };
        let row = sqlx::query(&sql)
            .bind(&key)
            .fetch_optional(&self.store.pool)
            .await
            .map_err(Error::query)?;
        match row {
            Some(row) => app_from_row(&row),
            None => Err(Error::NotFound {
                what: "app",
                key: app.to_string(),
            }),
        }
    }

    /// One page of apps in name order, of one organisation or (`None`) of all. `limit` is
    /// clamped by [`crate::page_limit`].
    pub async fn list(
        &self,
        org: Option<&str>,
        limit: i64,
        after: Option<&str>,
    ) -> Result<Page<App>, Error> {
        let key = (org.map(str::to_owned), limit, after.map(str::to_owned));
        if let Some(page) = self.store.pages.get(&key) {
            return Ok(page);
        }
        let generation = self.store.pages.generation();
        let page = self.list_uncached(org, limit, after).await?;
        self.store.pages.put(key, generation, &page);
        Ok(page)
    }

    async fn list_uncached(
        &self,
        org: Option<&str>,
        limit: i64,
        after: Option<&str>,
    ) -> Result<Page<App>, Error> {
        let after = after.map(|c| cursor::decode("app", c)).transpose()?;
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE name > $1 AND ($3 IS NULL OR org = $3) \
             ORDER BY name LIMIT $2"
        ))
        .bind(after.unwrap_or_default())
        .bind(limit + 1)
        .bind(org)
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        let mut items = rows
            .iter()
            .map(app_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|a| cursor::encode("app", &a.name))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Deletes an app, recording `actor` in the event log; returns what was deleted.
    pub async fn delete(&self, app: &AppRef, actor: &str) -> Result<App, Error> {
        let found = self.get(app).await?;
        let mut tx = self.store.write_tx().await?;
        for table in ["deployments", "releases", "secrets"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE app_id = $1"))
                .bind(found.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(Error::query)?;
        }
        let done = sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(found.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "app",
                key: app.to_string(),
            });
        }
        insert_event(
            &mut tx,
            &NewEvent::app(
                actor,
                "app.deleted",
                &found,
                format!("app {} deleted", found.name),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.store.pages.invalidate();
        Ok(found)
    }

    /// Sets the desired replica count, recording `actor`.
    pub async fn set_instances(
        &self,
        app: &AppRef,
        instances: u32,
        actor: &str,
    ) -> Result<App, Error> {
        let found = self.get(app).await?;
        let mut tx = self.store.write_tx().await?;
        sqlx::query("UPDATE apps SET instances = $1, updated_at = $2 WHERE id = $3")
            .bind(instances as i32)
            .bind(now_ms())
            .bind(found.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        insert_event(
            &mut tx,
            &NewEvent::app(
                actor,
                "app.scaled",
                &found,
                format!(
                    "app {} scaled from {} to {instances} instances",
                    found.name, found.instances
                ),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.store.pages.invalidate();
        self.get(&AppRef::Id(found.id)).await
    }

    /// The spec document an app was last applied with (its identity JSON), if any.
    pub async fn spec(&self, app: uuid::Uuid) -> Result<Option<serde_json::Value>, Error> {
        let row = sqlx::query("SELECT spec FROM apps WHERE id = $1")
            .bind(app.to_string())
            .fetch_optional(&self.store.pool)
            .await
            .map_err(Error::query)?;
        match row {
            Some(r) => crate::json_opt(&r, "spec"),
            None => Ok(None),
        }
    }

    /// Records the spec an app was applied with, and its desired instances, with an event.
    pub async fn set_spec(
        &self,
        app: &App,
        spec: &serde_json::Value,
        instances: u32,
        diff: &[String],
        actor: &str,
    ) -> Result<App, Error> {
        let mut tx = self.store.write_tx().await?;
        sqlx::query("UPDATE apps SET spec = $1, instances = $2, updated_at = $3 WHERE id = $4")
            .bind(crate::to_json(spec))
            .bind(instances as i32)
            .bind(now_ms())
            .bind(app.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        insert_event(
            &mut tx,
            &NewEvent::app(
                actor,
                "app.applied",
                app,
                format!(
                    "spec of {} applied: {}",
                    app.name,
                    if diff.is_empty() {
                        "created".to_owned()
                    } else {
                        diff.join("; ")
                    }
                ),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.store.pages.invalidate();
        self.get(&AppRef::Id(app.id)).await
    }

    /// Stops an app (`down`: 0 instances, remembering how many ran) or starts it again (`up`).
    pub async fn set_running(&self, app: &AppRef, up: bool, actor: &str) -> Result<App, Error> {
        let found = self.get(app).await?;
        let row = sqlx::query("SELECT paused_instances FROM apps WHERE id = $1")
            .bind(found.id.to_string())
            .fetch_one(&self.store.pool)
            .await
            .map_err(Error::query)?;
        let paused: Option<i32> = row.try_get("paused_instances").map_err(Error::query)?;
        let (instances, remember, kind, msg) = if up {
            let n = paused
                .map(|p| p.max(1) as u32)
                .unwrap_or(found.instances.max(1));
            (
                n,
                None,
                "app.up",
                format!("app {} started with {n} instances", found.name),
            )
        } else {
            let keep = if found.instances > 0 {
                found.instances as i32
            } else {
                paused.unwrap_or(1)
            };
            (
                0,
                Some(keep),
                "app.down",
                format!("app {} stopped (was {keep} instances)", found.name),
            )
        };
        let mut tx = self.store.write_tx().await?;
        sqlx::query(
            "UPDATE apps SET instances = $1, paused_instances = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(instances as i32)
        .bind(remember)
        .bind(now_ms())
        .bind(found.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        insert_event(&mut tx, &NewEvent::app(actor, kind, &found, msg)).await?;
        tx.commit().await.map_err(Error::query)?;
        self.store.pages.invalidate();
        self.get(&AppRef::Id(found.id)).await
    }

    /// Apps whose spec asks for autoscaling, with their spec.
    pub async fn autoscaled(&self) -> Result<Vec<(App, serde_json::Value)>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS}, spec FROM apps WHERE spec LIKE '%\"mode\":\"auto\"%' ORDER BY name"
        ))
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        let mut out = Vec::new();
        for r in &rows {
            if let Some(spec) = crate::json_opt(r, "spec")? {
                out.push((app_from_row(r)?, spec));
            }
        }
        Ok(out)
    }

    /// Every app, for the reconciler (ids and names only matter; the fleet is paged through).
    pub async fn all(&self) -> Result<Vec<App>, Error> {
        let rows = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY name"))
            .fetch_all(&self.store.pool)
            .await
            .map_err(Error::query)?;
        rows.iter().map(app_from_row).collect()
    }

    /// How many apps exist.
    pub async fn count(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM apps")
            .fetch_one(&self.store.pool)
            .await
            .map_err(Error::query)?;
        row.try_get("n").map_err(Error::query)
    }
}
