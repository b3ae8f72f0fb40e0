use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use racer_control::service::Services;
pub use racer_core::api::ServerFile;
use racer_store::Store;

use crate::Error;

pub use crate::auth::TOKEN_FILE;
/// The running server's description in the data directory; removed on a clean stop.
pub const SERVER_FILE: &str = "server.json";
const LOCK_FILE: &str = "server.lock";

/// State shared by every handler.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

impl AppState {
    /// The application services every handler calls.
    pub(crate) fn services(&self) -> &Services {
        &self.0.services
    }
}

pub(crate) struct Shared {
    /// The use cases (deploy, scale, …).
    pub(crate) services: Services,
    /// The records only the auth endpoints and metrics read directly (users, tokens, counts).
    pub(crate) store: Store,
    /// The loops' context, for their own measurements in `/metrics`.
    pub(crate) control: Option<racer_control::Ctx>,
    pub(crate) auth: crate::auth::Auth,
    pub(crate) ready: AtomicBool,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) api_addr: SocketAddr,
    pub(crate) data_dir: PathBuf,
    /// Where the proxy answers.
    pub(crate) proxy_url: String,
    /// The proxy, for its traffic counters in `/metrics`.
    pub(crate) traffic: Arc<racer_proxy::Proxy>,
    /// Each app's traffic over the last minutes, for the dashboard's charts.
    pub(crate) history: Arc<crate::history::History>,
    /// The settings `/api/v1/info` reports.
    pub(crate) facts: Facts,
}

/// Settings of this server that `/api/v1/info` reports.
pub(crate) struct Facts {
    pub(crate) domain: String,
    pub(crate) docker_host: Option<String>,
    pub(crate) container_memory_mb: u32,
    pub(crate) container_cpus: f64,
    pub(crate) admin_token_given: bool,
}

impl Shared {
    /// The store.
    pub(crate) fn store(&self) -> &Store {
        &self.store
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
