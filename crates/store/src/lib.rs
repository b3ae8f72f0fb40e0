//! racer's persistence: versioned forward-only migrations and repositories, over SQLite (the
//! default, one file in the data directory) or PostgreSQL (by URL), through one code path.
//!
//! Nothing but this crate writes SQL. Ids are stored as text and times as milliseconds since the
//! Unix epoch so that both backends read and write exactly the same values.

mod apps;
mod auth;
mod clusters;
mod deployments;
mod error;
mod events;
mod jobs;
mod leases;
mod pools;
mod secrets;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use apps::Apps;
pub use auth::{Invites, NewInvite, NewToken, NewUser, Orgs, Tokens, Users};
pub use clusters::{ClusterRecord, Clusters};
pub use deployments::{Deployments, NewDeployment, NewRelease};
pub use error::Error;
pub use events::{EventFilter, Events, NewEvent};
pub use jobs::{Failed, Job, Jobs, KindCounts, NewJob};
pub use leases::{Acquired, LeaseRecord, Leases};
pub use pools::{ClaimRecord, MemberRecord, NewClaim, PoolRecord, Pools};
pub use secrets::{SecretRecord, Secrets};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    pages: std::sync::Arc<PageCache>,
}

/// Pages of the app list, kept while no app changed. `GET /api/v1/apps` is read far more often
/// than apps change, and decoding 50 rows costs ~10x a cached page. Every write to `apps` through
/// this store bumps the generation, so this server never serves a stale page; writes by *other*
/// servers on a shared PostgreSQL are seen within [`PAGE_TTL`].
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    generation: std::sync::atomic::AtomicU64,
    pages: std::sync::Mutex<std::collections::HashMap<PageKey, CachedPage>>,
}

/// A page's key: organisation, limit and cursor.
type PageKey = (Option<String>, i64, Option<String>);
/// A cached page: the generation it was read at, when, and the page.
type CachedPage = (
    u64,
    std::time::Instant,
    racer_core::api::Page<racer_core::api::App>,
);

/// How long a cached page may be served without a local write (bounds staleness across servers).
pub const PAGE_TTL: Duration = Duration::from_secs(1);

impl PageCache {
    pub(crate) fn invalidate(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn get(&self, key: &PageKey) -> Option<racer_core::api::Page<racer_core::api::App>> {
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let pages = self.pages.lock().ok()?;
        let (g, at, page) = pages.get(key)?;
        (*g == generation && at.elapsed() < PAGE_TTL).then(|| page.clone())
    }

    /// Stores a page read at generation `generation` (read before the query ran, so a write
    /// racing the query makes the entry stale at once).
    pub(crate) fn put(
        &self,
        key: PageKey,
        generation: u64,
        page: &racer_core::api::Page<racer_core::api::App>,
    ) {
        if let Ok(mut pages) = self.pages.lock() {
            if pages.len() > 256 {
                pages.clear();
            }
            pages.insert(key, (generation, std::time::Instant::now(), page.clone()));
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite file at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store, Error> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `url`: `sqlite://...` or `postgres://...`/`postgresql://...`.
    ///
    /// Does not run migrations; call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store, Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(url)
            .map_err(|source| Error::Connect { source })?
            .disable_statement_logging();
        // One direct connection first: a pool only reports "timed out", this says why.
        let probe = options
            .connect()
            .await
            .map_err(|source| Error::Connect { source })?;
        let _ = sqlx::Connection::close(probe).await;
        let pool_options = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(8)
                .min_connections(1)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(16).min_connections(1),
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|source| Error::Connect { source })?;
        Ok(Store {
            pool,
            backend,
            pages: Default::default(),
        })
    }

    /// Applies every migration not yet applied. Forward-only and versioned; safe to call on
    /// every start.
    pub async fn migrate(&self) -> Result<(), Error> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| Error::Migrate { source })
    }

    /// Starts a transaction that writes. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so that concurrent writers wait their turn (`busy_timeout`) instead
    /// of failing with "database is locked" when a read transaction cannot become a write one.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(Error::query)
    }

    /// Writes a consistent snapshot of a SQLite store to `path` (`VACUUM INTO`: safe while a
    /// server writes). PostgreSQL stores are backed up with `pg_dump` instead.
    pub async fn snapshot_sqlite(&self, path: &std::path::Path) -> Result<(), Error> {
        if self.backend != Backend::Sqlite {
            return Err(Error::UnsupportedUrl);
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.display().to_string())
            .execute(&self.pool)
            .await
            .map_err(Error::query)?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(Error::query)?;
        Ok(())
    }

    /// This install's id: generated once, shared by every server on this database. Containers
    /// and images carry it as a label, so two installs on one engine never touch each other's.
    pub async fn install_id(&self) -> Result<String, Error> {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let insert = match self.backend {
            Backend::Sqlite => "INSERT OR IGNORE INTO settings (key, value) VALUES ('install_id', $1)",
            Backend::Postgres => {
                "INSERT INTO settings (key, value) VALUES ('install_id', $1) ON CONFLICT (key) DO NOTHING"
            }
        };
        sqlx::query(insert)
            .bind(&fresh)
            .execute(&self.pool)
            .await
            .map_err(Error::query)?;
        let row = sqlx::query("SELECT value FROM settings WHERE key = 'install_id'")
            .fetch_one(&self.pool)
            .await
            .map_err(Error::query)?;
        sqlx::Row::try_get(&row, "value").map_err(Error::query)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The apps repository.
    pub fn apps(&self) -> Apps<'_> {
        Apps { store: self }
    }

    /// The deployments and releases repository.
    pub fn deployments(&self) -> Deployments<'_> {
        Deployments { store: self }
    }

    /// Organisations.
    pub fn orgs(&self) -> Orgs<'_> {
        Orgs { store: self }
    }

    /// Users.
    pub fn users(&self) -> Users<'_> {
        Users { store: self }
    }

    /// Invites.
    pub fn invites(&self) -> Invites<'_> {
        Invites { store: self }
    }

    /// API tokens.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { store: self }
    }

    /// The clusters work is placed on.
    pub fn clusters(&self) -> Clusters<'_> {
        Clusters { store: self }
    }

    /// The durable work queue.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs { store: self }
    }

    /// App secrets (sealed).
    pub fn secrets(&self) -> Secrets<'_> {
        Secrets { store: self }
    }

    /// Warm pools, their members and claims.
    pub fn pools(&self) -> Pools<'_> {
        Pools { store: self }
    }

    /// The control loops' leases.
    pub fn leases(&self) -> Leases<'_> {
        Leases { store: self }
    }

    /// The events repository (the audit log).
    pub fn events(&self) -> Events<'_> {
        Events { store: self }
    }

    /// Closes every connection; waits for them to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, as stored.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Decodes an optional JSON text column.
pub(crate) fn json_opt<T: serde::de::DeserializeOwned>(
    row: &sqlx::any::AnyRow,
    col: &str,
) -> Result<Option<T>, Error> {
    use sqlx::Row;
    let text: Option<String> = row.try_get(col).map_err(Error::query)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|_| Error::Corrupt {
            what: "json column",
        })
    })
    .transpose()
}

/// Decodes a JSON text column.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    row: &sqlx::any::AnyRow,
    col: &str,
) -> Result<T, Error> {
    json_opt(row, col)?.ok_or(Error::Corrupt {
        what: "json column",
    })
}

/// Encodes a value for a JSON text column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// An opaque pagination cursor: the key of the last item of the previous page.
pub(crate) mod cursor {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use crate::Error;

    pub(crate) fn encode(tag: &str, key: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{tag}:{key}"))
    }

    pub(crate) fn decode(tag: &str, cursor: &str) -> Result<String, Error> {
        let raw = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| Error::BadCursor)?;
        let s = String::from_utf8(raw).map_err(|_| Error::BadCursor)?;
        s.strip_prefix(tag)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_owned)
            .ok_or(Error::BadCursor)
    }
}

/// Clamps a requested page size to 1..=200, defaulting to 50.
pub fn page_limit(requested: Option<u32>) -> i64 {
    i64::from(requested.unwrap_or(50).clamp(1, 200))
}
