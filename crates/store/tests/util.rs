use std::future::Future;

use racer_store::Store;
use sqlx::{Connection, Executor};

/// A store on a fresh database; dropped at the end of the test.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("racer.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        TestDb {
            store,
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    pub async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var("RACER_TEST_DATABASE_URL") else {
            if std::env::var("RACER_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("RACER_REQUIRE_POSTGRES=1 but RACER_TEST_DATABASE_URL is not set");
            }
            eprintln!("skipping the PostgreSQL half: RACER_TEST_DATABASE_URL is not set");
            return None;
        };
        sqlx::any::install_default_drivers();
        let db = format!("racer_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(&base).await.unwrap();
        admin
            .execute(format!("CREATE DATABASE {db}").as_str())
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = with_database(&base, &db);
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        Some(TestDb {
            store,
            url,
            _dir: None,
            pg: Some((base, db)),
        })
    }

    /// Opens a second, independent handle on the same database (a restart).
    pub async fn reopen(&self) -> Store {
        let s = Store::connect(&self.url).await.unwrap();
        s.migrate().await.unwrap();
        s
    }

    pub async fn finish(self) {
        self.store.close().await;
        if let Some((base, db)) = self.pg {
            let mut admin = sqlx::AnyConnection::connect(&base).await.unwrap();
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
                .await;
        }
    }
}

fn with_database(base: &str, db: &str) -> String {
    // postgres://user@host:port/dbname?params -> replace dbname
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = head[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(head.len());
    let mut url = format!("{}/{}", &head[..path_start], db);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Runs `body` against SQLite, then against PostgreSQL when available.
pub async fn on_both<F, Fut>(body: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = TestDb>,
{
    let db = body(TestDb::sqlite().await).await;
    db.finish().await;
    if let Some(pg) = TestDb::postgres().await {
        let db = body(pg).await;
        db.finish().await;
    }
}

/// Declares a contract test that runs on both backends.
#[macro_export]
macro_rules! contract {
    ($name:ident, |$db:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::util::on_both(|$db: $crate::util::TestDb| async move {
                $body;
                $db
            })
            .await;
        }
    };
}
