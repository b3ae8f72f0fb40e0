use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use chrono::{DateTime, Utc};
pub use racer_core::api::ServerFile;
use racer_runtime::Runtime;
use racer_store::Store;

use crate::Error;

/// The admin token's file name in the data directory (mode 0600).
pub const TOKEN_FILE: &str = "admin.token";
/// The running server's description in the data directory; removed on a clean stop.
pub const SERVER_FILE: &str = "server.json";
const LOCK_FILE: &str = "server.lock";

/// State shared by every handler.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) runtime: Option<Runtime>,
    pub(crate) control: Option<racer_control::Ctx>,
    pub(crate) auth: crate::auth::Auth,
    pub(crate) ready: AtomicBool,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) api_addr: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) proxy: ProxyInfo,
    pub(crate) traffic: std::sync::OnceLock<Arc<racer_proxy::Proxy>>,
}

/// Where the proxy answers.
pub(crate) struct ProxyInfo {
    pub(crate) url: String,
    pub(crate) domain: String,
    pub(crate) port: u16,
}

impl ProxyInfo {
    /// `http://web.localhost:8080/` and `http://127.0.0.1:8080/apps/web/`.
    pub(crate) fn urls(&self, app: &str) -> Vec<String> {
        vec![
            format!("http://{app}.{}:{}/", self.domain, self.port),
            format!("{}/apps/{app}/", self.url),
        ]
    }
}

impl Shared {
    pub(crate) fn new(
        store: Store,
        runtime: Option<Runtime>,
        control: Option<racer_control::Ctx>,
        auth: crate::auth::Auth,
        api_addr: SocketAddr,
        data_dir: PathBuf,
        proxy: ProxyInfo,
    ) -> Shared {
        Shared {
            store,
            runtime,
            control,
            auth,
            ready: AtomicBool::new(false),
            started_at: Utc::now(),
            api_addr,
            data_dir,
            proxy,
            traffic: std::sync::OnceLock::new(),
        }
    }
}

/// An exclusive lock on the data directory, held for the server's life, so two servers never
/// share one SQLite file and one token.
pub(crate) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DataDirLock, Error> {
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::DataDir {
                path: dir.to_path_buf(),
                source,
            })?;
        // A server killed a moment ago may still hold the lock while its last threads exit:
        // keep trying for a short while before saying another server is running.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(DataDirLock { _file: file }),
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(_) => {
                    return Err(Error::AlreadyRunning {
                        data_dir: dir.to_path_buf(),
                    })
                }
            }
        }
    }
}
