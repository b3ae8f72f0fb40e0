//! A control plane of one's own: store, runtime, loops and services, torn down on drop.

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use racer_control::service::{Caller, ProxyUrls, Services};
use racer_control::{Ctx, Settings};
use racer_runtime::Runtime;
use racer_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct Plane {
    pub services: Services,
    pub ctx: Ctx,
    pub install: String,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    images: Vec<String>,
    _dir: tempfile::TempDir,
}

/// The install's admin token, as the services see it.
pub fn admin() -> Caller {
    Caller {
        actor: "admin".into(),
        org: None,
    }
}

/// A member of `org`.
pub fn member(org: &str) -> Caller {
    Caller {
        actor: format!("someone@{org}"),
        org: Some(org.into()),
    }
}

impl Plane {
    /// Starts the loops over a fresh SQLite store on the local engine.
    pub async fn start() -> Plane {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("racer.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let install = store.install_id().await.unwrap();
        let runtime = Runtime::connect_local().unwrap().for_install(&install);
        let tracker = TaskTracker::new();
        let ctx = Ctx::new(
            store.clone(),
            runtime,
            dir.path().to_path_buf(),
            Settings {
                rollout_deadline: Duration::from_secs(30),
                drain: Duration::from_millis(200),
                stop_grace_secs: 1,
                ..Settings::default()
            },
            Default::default(),
            tracker.clone(),
        );
        let shutdown = CancellationToken::new();
        racer_control::start(ctx.clone(), shutdown.clone(), &tracker);
        let services = Services::new(
            store,
            Some(ctx.clone()),
            None,
            ProxyUrls::plain("http://127.0.0.1:1", "localhost", 1),
        );
        Plane {
            services,
            ctx,
            install,
            shutdown,
            tracker,
            images: Vec::new(),
            _dir: dir,
        }
    }

    /// Builds the bundled example app into an image of this test's own (needs
    /// `scripts/build-example.sh` to have built `examples/hello/hello`).
    pub fn hello_image(&mut self) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/hello");
        assert!(
            std::path::Path::new(dir).join("hello").exists(),
            "run scripts/build-example.sh first"
        );
        let tag = format!("racer-control-test:{}", uuid::Uuid::new_v4().simple());
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &tag, dir])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.images.push(tag.clone());
        tag
    }

    /// Stops the loops and waits for every task they started.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(30), self.tracker.wait())
            .await
            .expect("the loops did not stop within 30 s");
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let filter = format!("label=racer.install={}", self.install);
        for round in 0..2 {
            if round == 1 {
                std::thread::sleep(Duration::from_millis(300));
            }
            let out = Command::new("docker")
                .args(["ps", "-aq", "--filter", &filter])
                .output()
                .unwrap();
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        for tag in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
        }
    }
}

/// Polls `check` until it returns `Some`, or fails after `within` saying what it waited for.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
