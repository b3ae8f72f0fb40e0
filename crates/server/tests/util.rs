//! A server of one's own, in this process.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use racer_core::api::ErrorBody;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub api: String,
    pub proxy: String,
    pub token: String,
    pub http: reqwest::Client,
    running: Option<racer_server::Running>,
    shutdown: CancellationToken,
    install: Option<String>,
    images: Vec<String>,
}

impl TestServer {
    /// Starts a server on `data_dir` with the API and proxy on free loopback ports.
    pub async fn start(data_dir: &Path) -> TestServer {
        let mut config = racer_server::Config::new(data_dir.to_path_buf());
        config.api_addr = "127.0.0.1:0".parse().unwrap();
        config.proxy_addr = "127.0.0.1:0".parse().unwrap();
        config.proxy_threads = 1;
        config.control.rollout_deadline = Duration::from_secs(30);
        let shutdown = CancellationToken::new();
        let running = racer_server::start(config, shutdown.clone()).await.unwrap();
        let token = std::fs::read_to_string(running.token_path.as_ref().unwrap())
            .unwrap()
            .trim()
            .to_owned();
        let mut s = TestServer {
            api: format!("http://{}", running.api_addr),
            proxy: format!("http://{}", running.proxy_addr),
            token,
            http: reqwest::Client::new(),
            running: Some(running),
            shutdown,
            install: None,
            images: Vec::new(),
        };
        let info: racer_core::api::ServerInfo = s.get("/api/v1/info").await;
        s.install = info.install_id;
        s
    }

    /// Cancels the server and waits for every task it started.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(30), r.wait())
                .await
                .expect("the server did not stop within 30 s");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// GET with the admin token, expecting 200 and a `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// A request with the admin token and a JSON body; the status and the raw body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.bytes().await.unwrap().to_vec())
    }

    /// A request that must answer `want`: its body, decoded (the body is shown when it does not).
    pub async fn expect<T: DeserializeOwned>(
        &self,
        want: StatusCode,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> T {
        let (status, bytes) = self.send(method, path, body).await;
        assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&bytes)))
    }

    /// A request that must fail: its status and error body.
    pub async fn refused(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, ErrorBody) {
        let (status, bytes) = self.send(method, path, body).await;
        let body: ErrorBody = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: not an error body ({e}): {bytes:?}"));
        (status, body)
    }

    /// The bundled example app as an image of this test's own.
    pub fn hello_image(&mut self) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/hello");
        assert!(
            Path::new(dir).join("hello").exists(),
            "run scripts/build-example.sh first"
        );
        let tag = format!("racer-server-test:{}", uuid::Uuid::new_v4().simple());
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
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(install) = &self.install {
            let filter = format!("label=racer.install={install}");
            for _ in 0..2 {
                let out = Command::new("docker")
                    .args(["ps", "-aq", "--filter", &filter])
                    .output()
                    .unwrap();
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("docker").args(["rm", "-f", id]).output();
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        for tag in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
        }
    }
}

/// Polls until `check` says yes, or fails after `secs` naming what it waited for.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The engine's containers of one app, by its `racer.app` label, stopped ones included.
pub fn engine_containers(app: uuid::Uuid) -> Vec<String> {
    let filter = format!("label=racer.app={app}");
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker ps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
