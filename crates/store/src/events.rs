use racer_core::api::{App, Event, Page};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::{cursor, from_ms, now_ms, Error, Store};

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Who did it.
    pub actor: String,
    /// What happened, dotted: `app.created`.
    pub kind: String,
    /// The app concerned.
    pub app_id: Option<Uuid>,
    /// The app's name at the time.
    pub app_name: Option<String>,
    /// A human-readable line. Must never contain a secret.
    pub message: String,
    /// The organisation it belongs to; when `None`, the app's (if there is an app).
    pub org: Option<String>,
}

impl NewEvent {
    /// An event about `app`.
    pub fn app(actor: &str, kind: &str, app: &App, message: String) -> NewEvent {
        NewEvent {
            actor: actor.to_owned(),
            kind: kind.to_owned(),
            app_id: Some(app.id),
            app_name: Some(app.name.clone()),
            message,
            org: Some(app.org.clone()),
        }
    }
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events about this app id.
    pub app_id: Option<Uuid>,
    /// Only events about an app of this name (for apps that no longer exist).
    pub app_name: Option<String>,
    /// Only events of this kind, or, ending in `.`, this kind prefix (`app.`).
    pub kind: Option<String>,
    /// Only events at or after this time (ms since epoch).
    pub since_ms: Option<i64>,
    /// Only events of this organisation (every user but the install's admin is held to theirs).
    pub org: Option<String>,
}

pub(crate) async fn insert_event(conn: &mut AnyConnection, e: &NewEvent) -> Result<i64, Error> {
    let row = sqlx::query(
        "INSERT INTO events (at, actor, kind, app_id, app_name, message, org) \
         VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, (SELECT org FROM apps WHERE id = $4))) \
         RETURNING id",
    )
    .bind(now_ms())
    .bind(&e.actor)
    .bind(&e.kind)
    .bind(e.app_id.map(|id| id.to_string()))
    .bind(e.app_name.as_deref())
    .bind(&e.message)
    .bind(e.org.as_deref())
    .fetch_one(conn)
    .await
    .map_err(Error::query)?;
    row.try_get("id").map_err(Error::query)
}

fn event_from_row(row: &AnyRow) -> Result<Event, Error> {
    let app_id: Option<String> = row.try_get("app_id").map_err(Error::query)?;
    Ok(Event {
        id: row.try_get("id").map_err(Error::query)?,
        at: from_ms(row.try_get("at").map_err(Error::query)?),
        actor: row.try_get("actor").map_err(Error::query)?,
        kind: row.try_get("kind").map_err(Error::query)?,
        app_id: app_id
            .map(|s| {
                Uuid::parse_str(&s).map_err(|_| Error::Corrupt {
                    what: "event app id",
                })
            })
            .transpose()?,
        app_name: row.try_get("app_name").map_err(Error::query)?,
        message: row.try_get("message").map_err(Error::query)?,
        org: row.try_get("org").map_err(Error::query)?,
    })
}

/// The append-only audit log.
pub struct Events<'a> {
    pub(crate) store: &'a Store,
}

impl Events<'_> {
    /// Appends one event on its own.
    pub async fn append(&self, e: &NewEvent) -> Result<i64, Error> {
        let mut conn = self.store.pool.acquire().await.map_err(Error::query)?;
        insert_event(&mut conn, e).await
    }

    /// The newest event's id (0 when there is none).
    pub async fn last_id(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS n FROM events")
            .fetch_one(&self.store.pool)
            .await
            .map_err(Error::query)?;
        row.try_get::<i64, _>("n").map_err(Error::query)
    }

    /// Events after id `after` matching `filter`, oldest first, at most `limit`.
    pub async fn list_after(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, Error> {
        let cursor = cursor::encode("ev", &after.to_string());
        Ok(self.list(filter, limit, Some(&cursor)).await?.items)
    }

    /// The newest `limit` events, newest first (the dashboard's view of the log).
    pub async fn recent(&self, filter: &EventFilter, limit: i64) -> Result<Vec<Event>, Error> {
        self.select(filter, 0, limit, "DESC").await
    }

    /// One page of events in the order they happened, oldest first.
    pub async fn list(
        &self,
        filter: &EventFilter,
        limit: i64,
        after: Option<&str>,
    ) -> Result<Page<Event>, Error> {
        let after: i64 = match after {
            Some(c) => cursor::decode("ev", c)?
                .parse()
                .map_err(|_| Error::BadCursor)?,
            None => 0,
        };
        let mut items = self.select(filter, after, limit + 1, "").await?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items
                .last()
                .map(|e| cursor::encode("ev", &e.id.to_string()))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Events after id `after` matching `filter`, at most `limit`, by id (`order` "" or "DESC").
    async fn select(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: i64,
        order: &str,
    ) -> Result<Vec<Event>, Error> {
        let (kind_exact, kind_prefix) = match filter.kind.as_deref() {
            Some(k) if k.ends_with('.') => (None, Some(format!("{k}%"))),
            Some(k) => (Some(k.to_owned()), None),
            None => (None, None),
        };
        let rows = sqlx::query(&format!(
            "SELECT id, at, actor, kind, app_id, app_name, message, org FROM events \
             WHERE id > $1 \
               AND ($2 IS NULL OR app_id = $2) \
               AND ($3 IS NULL OR kind = $3) \
               AND ($4 IS NULL OR kind LIKE $4) \
               AND ($5 IS NULL OR at >= $5) \
               AND ($6 IS NULL OR app_name = $6) \
               AND ($8 IS NULL OR org = $8) \
             ORDER BY id {order} LIMIT $7"
        ))
        .bind(after)
        .bind(filter.app_id.map(|id| id.to_string()))
        .bind(kind_exact)
        .bind(kind_prefix)
        .bind(filter.since_ms)
        .bind(filter.app_name.as_deref())
        .bind(limit)
        .bind(filter.org.as_deref())
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(event_from_row).collect()
    }
}
