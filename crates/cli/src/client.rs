//! The typed API client: the same `racer_core::api` types the server uses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use racer_core::api::{
    ApiInfo, App, AppStatus, ContainerAction, ContainerInfo, CreateApp, DeployRequest, Deployed,
    Deployment, DockerfileReport, ErrorBody, Event, Health, InspectRequest, Page, Probe, Release,
    RerunRequest, ScaleRequest, ServerInfo, Upload, ValidateReport,
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::local::Target;

/// What to tell the user about an answer this CLI cannot read: a field it does not know means
/// the server is newer than the CLI; anything else, that it may not be a racer server at all.
fn protocol_hint(detail: &str) -> String {
    if detail.contains("unknown field") || detail.contains("unknown variant") {
        format!(
            "the server is probably newer than this racer ({}): use the racer and racerctl built with the server",
            env!("CARGO_PKG_VERSION")
        )
    } else {
        "is that a racer server?".to_owned()
    }
}

/// Decodes a JSON answer, saying why when it cannot.
async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    let url = resp.url().to_string();
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| ClientError::Protocol {
        url: url.clone(),
        status,
        detail: format!("the body could not be read: {e}"),
    })?;
    decode_bytes(&bytes, url, status)
}

fn decode_bytes<T: DeserializeOwned>(
    bytes: &[u8],
    url: String,
    status: StatusCode,
) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Protocol {
        url,
        status,
        detail: if bytes.is_empty() {
            "an empty body".to_owned()
        } else {
            e.to_string()
        },
    })
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made.
    #[error("cannot reach the racer server at {url}; is it running? start it with `racerctl server start`, or point --url/RACER_URL at it")]
    Unreachable {
        /// The base URL tried.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error body.
    #[error("{message}{}", field.as_ref().map(|f| format!(" (field: {f})")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The error code (`not_found`, ...).
        code: String,
        /// The server's message.
        message: String,
        /// The offending field.
        field: Option<String>,
    },
    /// The server answered with something that is not racer's API (or a newer one's).
    #[error(
        "unexpected response from {url} (HTTP {status}): {detail}; {}",
        protocol_hint(detail)
    )]
    Protocol {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: StatusCode,
        /// Why the answer could not be read.
        detail: String,
    },
    /// Something on this machine failed (reading the folder to send).
    #[error("{what}: {message}")]
    Local {
        /// What was being done.
        what: String,
        /// The error.
        message: String,
    },
    /// Anything else in transport.
    #[error("request to {url} failed")]
    Transport {
        /// The URL called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } | ClientError::Protocol { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Whether clients made from now on trace their requests ([`set_verbose`]).
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// `--verbose`: every [`Client`] made after this prints each request it sends on stderr as
/// `> METHOD URL` and its answer as `< STATUS in N ms`, never the token. Set once, by `main`.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// A client for one racer server.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    target: Target,
    verbose: bool,
}

impl Client {
    /// A client for `target`.
    pub fn new(target: Target) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("racer-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Client {
            http,
            target,
            verbose: VERBOSE.load(Ordering::Relaxed),
        }
    }

    /// Sends a request: the one place every call goes through, so `--verbose` sees them all.
    async fn execute(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let req = req.build()?;
        if !self.verbose {
            return self.http.execute(req).await;
        }
        let mut url = req.url().clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        eprintln!("> {} {url}", req.method());
        let start = Instant::now();
        let answer = self.http.execute(req).await;
        let ms = start.elapsed().as_millis();
        match &answer {
            Ok(resp) => eprintln!("< {} in {ms} ms", resp.status()),
            Err(e) => eprintln!("< no answer in {ms} ms: {e}"),
        }
        answer
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.target.url
    }

    /// Sends a request and decodes a JSON answer.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let resp = self
            .send(method, path, body, Some(Duration::from_secs(600)))
            .await?;
        decode(resp).await
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.target.url, path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(t) = &self.target.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.execute(req).await.map_err(|source| {
            if source.is_connect() || source.is_timeout() {
                ClientError::Unreachable {
                    url: self.target.url.clone(),
                    source,
                }
            } else {
                ClientError::Transport {
                    url: url.clone(),
                    source,
                }
            }
        })?;
        Self::check(resp).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    /// `GET /`.
    pub async fn api_info(&self) -> Result<ApiInfo, ClientError> {
        self.get("/").await
    }

    /// `GET /health`. A 503 still carries a health report; it is returned as `Ok`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let url = format!("{}/health", self.target.url);
        let resp =
            self.execute(self.http.get(&url))
                .await
                .map_err(|source| ClientError::Unreachable {
                    url: self.target.url.clone(),
                    source,
                })?;
        decode(resp).await
    }

    /// `GET /liveness`.
    pub async fn liveness(&self) -> Result<Probe, ClientError> {
        self.get("/liveness").await
    }

    /// `GET /ready`.
    pub async fn readiness(&self) -> Result<Probe, ClientError> {
        self.get("/ready").await
    }

    /// `GET /api/v1/info`.
    pub async fn server_info(&self) -> Result<ServerInfo, ClientError> {
        self.get("/api/v1/info").await
    }

    /// `POST /api/v1/apps`.
    pub async fn create_app(&self, name: &str) -> Result<App, ClientError> {
        let body = CreateApp {
            name: name.to_owned(),
            repo_url: None,
            branch: None,
        };
        self.call(Method::POST, "/api/v1/apps", Some(&body)).await
    }

    /// `GET /api/v1/apps` (one page).
    pub async fn list_apps(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<App>, ClientError> {
        self.get(&format!("/api/v1/apps{}", page_query(limit, cursor)))
            .await
    }

    /// `GET /api/v1/apps/{app}`.
    pub async fn get_app(&self, app: &str) -> Result<App, ClientError> {
        self.get(&format!("/api/v1/apps/{}", path_segment(app)))
            .await
    }

    /// `DELETE /api/v1/apps/{app}`.
    pub async fn delete_app(&self, app: &str) -> Result<App, ClientError> {
        self.call::<(), App>(
            Method::DELETE,
            &format!("/api/v1/apps/{}", path_segment(app)),
            None,
        )
        .await
    }

    /// Streams a build-context tarball from a file (`POST /api/v1/uploads`).
    pub async fn upload(&self, tar: &std::path::Path) -> Result<Upload, ClientError> {
        // A refused upload is answered before its body is read, and the answer can be lost to a
        // broken pipe while the folder is still being sent: ask who we are first.
        let me: racer_core::auth::WhoAmI = self.get("/api/v1/whoami").await?;
        if !me.role.allows(racer_core::auth::Role::Developer) {
            return Err(ClientError::Api {
                status: StatusCode::FORBIDDEN,
                code: "forbidden".into(),
                message: format!(
                    "sending a project needs the developer role; you are {}",
                    me.role
                ),
                field: None,
            });
        }
        let file = tokio::fs::File::open(tar)
            .await
            .map_err(|e| ClientError::Local {
                what: format!("cannot read {}", tar.display()),
                message: e.to_string(),
            })?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        self.send_text(Method::POST, "/api/v1/uploads", "application/x-tar", body)
            .await
    }

    fn transport(&self, url: &str, source: reqwest::Error) -> ClientError {
        if source.is_connect() {
            ClientError::Unreachable {
                url: self.target.url.clone(),
                source,
            }
        } else {
            ClientError::Transport {
                url: url.to_owned(),
                source,
            }
        }
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        match decode::<ErrorBody>(resp).await {
            Ok(b) => Err(ClientError::Api {
                status,
                code: b.error.code,
                message: b.error.message,
                field: b.error.field,
            }),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/v1/validate`.
    pub async fn validate(&self, req: &InspectRequest) -> Result<ValidateReport, ClientError> {
        self.call(Method::POST, "/api/v1/validate", Some(req)).await
    }

    /// `POST /api/v1/dockerfile`.
    pub async fn dockerfile(&self, req: &InspectRequest) -> Result<DockerfileReport, ClientError> {
        self.call(Method::POST, "/api/v1/dockerfile", Some(req))
            .await
    }

    /// `POST /api/v1/deployments`.
    pub async fn deploy(&self, req: &DeployRequest) -> Result<Deployed, ClientError> {
        self.call(Method::POST, "/api/v1/deployments", Some(req))
            .await
    }

    /// `POST /api/v1/apps/{app}/rerun`.
    pub async fn rerun(&self, app: &str, req: &RerunRequest) -> Result<Deployed, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/apps/{}/rerun", path_segment(app)),
            Some(req),
        )
        .await
    }

    /// `POST /api/v1/apps/register` with a spec document.
    pub async fn apply(&self, document: &str) -> Result<racer_core::api::ApplyResult, ClientError> {
        self.send_text(
            Method::POST,
            "/api/v1/apps/register",
            "application/json",
            document.to_owned(),
        )
        .await
    }

    /// Sends a non-JSON body (a document, a tarball stream) and decodes a JSON answer.
    async fn send_text<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{}", self.target.url, path);
        let mut req = self
            .http
            .request(method, &url)
            .header("content-type", content_type)
            .timeout(Duration::from_secs(600))
            .body(body);
        if let Some(t) = &self.target.token {
            req = req.bearer_auth(t);
        }
        let resp = self
            .execute(req)
            .await
            .map_err(|source| self.transport(&url, source))?;
        let resp = Self::check(resp).await?;
        decode(resp).await
    }

    /// `GET /api/v1/apps/{app}/metrics`.
    pub async fn app_metrics(&self, app: &str) -> Result<racer_core::api::AppMetrics, ClientError> {
        self.get(&format!("/api/v1/apps/{}/metrics", path_segment(app)))
            .await
    }

    /// `PUT /api/v1/apps/{app}/policy` with a policy document.
    pub async fn put_policy(
        &self,
        app: &str,
        document: &str,
    ) -> Result<racer_core::api::ApplyResult, ClientError> {
        let path = format!("/api/v1/apps/{}/policy", path_segment(app));
        self.send_text(Method::PUT, &path, "application/yaml", document.to_owned())
            .await
    }

    /// `POST /api/v1/apps/{app}/up` or `/down`.
    pub async fn set_running(&self, app: &str, up: bool) -> Result<App, ClientError> {
        let verb = if up { "up" } else { "down" };
        self.call::<(), App>(
            Method::POST,
            &format!("/api/v1/apps/{}/{verb}", path_segment(app)),
            None,
        )
        .await
    }

    /// `POST /api/v1/apps/{app}/rollback`.
    pub async fn rollback(&self, app: &str, to: Option<i64>) -> Result<Deployed, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/apps/{}/rollback", path_segment(app)),
            Some(&racer_core::api::RollbackRequest { to }),
        )
        .await
    }

    /// `POST /api/v1/apps/{app}/scale`.
    pub async fn scale(&self, app: &str, instances: u32) -> Result<App, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/apps/{}/scale", path_segment(app)),
            Some(&ScaleRequest { instances }),
        )
        .await
    }

    /// `GET /api/v1/deployments/{id}`.
    pub async fn deployment(&self, id: uuid::Uuid) -> Result<Deployment, ClientError> {
        self.get(&format!("/api/v1/deployments/{id}")).await
    }

    /// `GET /api/v1/apps/{app}/status`.
    pub async fn app_status(&self, app: &str) -> Result<AppStatus, ClientError> {
        self.get(&format!("/api/v1/apps/{}/status", path_segment(app)))
            .await
    }

    /// `GET /api/v1/apps/{app}/releases`.
    pub async fn releases(&self, app: &str) -> Result<Vec<Release>, ClientError> {
        self.get(&format!("/api/v1/apps/{}/releases", path_segment(app)))
            .await
    }

    /// `GET /api/v1/containers` (one page).
    pub async fn containers(
        &self,
        cursor: Option<&str>,
    ) -> Result<Page<ContainerInfo>, ClientError> {
        self.get(&format!(
            "/api/v1/containers{}",
            page_query(Some(200), cursor)
        ))
        .await
    }

    /// `GET /api/v1/containers/{id}`.
    pub async fn container(&self, id: &str) -> Result<ContainerInfo, ClientError> {
        self.get(&format!("/api/v1/containers/{}", path_segment(id)))
            .await
    }

    /// `POST /api/v1/containers/{id}/stop`.
    pub async fn stop_container(&self, id: &str) -> Result<ContainerAction, ClientError> {
        self.call::<(), _>(
            Method::POST,
            &format!("/api/v1/containers/{}/stop", path_segment(id)),
            None,
        )
        .await
    }

    /// `DELETE /api/v1/containers/{id}`.
    pub async fn remove_container(&self, id: &str) -> Result<ContainerAction, ClientError> {
        self.call::<(), _>(
            Method::DELETE,
            &format!("/api/v1/containers/{}", path_segment(id)),
            None,
        )
        .await
    }

    /// `GET /api/v1/queue`.
    pub async fn queue_status(&self) -> Result<Vec<racer_core::api::QueueKind>, ClientError> {
        self.get("/api/v1/queue").await
    }

    /// `GET /api/v1/clusters`.
    pub async fn clusters(&self) -> Result<Vec<racer_core::api::ClusterInfo>, ClientError> {
        self.get("/api/v1/clusters").await
    }

    /// `GET /api/v1/clusters/{name}`.
    pub async fn cluster(&self, name: &str) -> Result<racer_core::api::ClusterInfo, ClientError> {
        self.get(&format!("/api/v1/clusters/{}", path_segment(name)))
            .await
    }

    /// `POST /api/v1/clusters`.
    pub async fn add_cluster(
        &self,
        req: &racer_core::api::NewCluster,
    ) -> Result<racer_core::api::ClusterInfo, ClientError> {
        self.call(Method::POST, "/api/v1/clusters", Some(req)).await
    }

    /// `POST /api/v1/clusters/{name}/drain` (or `/undrain`).
    pub async fn drain_cluster(
        &self,
        name: &str,
        drained: bool,
    ) -> Result<racer_core::api::ClusterInfo, ClientError> {
        let verb = if drained { "drain" } else { "undrain" };
        self.call::<(), _>(
            Method::POST,
            &format!("/api/v1/clusters/{}/{verb}", path_segment(name)),
            None,
        )
        .await
    }

    /// `DELETE /api/v1/clusters/{name}`.
    pub async fn remove_cluster(
        &self,
        name: &str,
    ) -> Result<racer_core::api::ClusterInfo, ClientError> {
        self.call::<(), _>(
            Method::DELETE,
            &format!("/api/v1/clusters/{}", path_segment(name)),
            None,
        )
        .await
    }

    /// `GET /api/v1/apps/{app}/secrets`.
    pub async fn secrets(
        &self,
        app: &str,
    ) -> Result<Vec<racer_core::api::SecretInfo>, ClientError> {
        self.get(&format!("/api/v1/apps/{}/secrets", path_segment(app)))
            .await
    }

    /// `PUT /api/v1/apps/{app}/secrets`.
    pub async fn set_secrets(
        &self,
        app: &str,
        req: &racer_core::api::SetSecrets,
    ) -> Result<Vec<racer_core::api::SecretInfo>, ClientError> {
        self.call(
            Method::PUT,
            &format!("/api/v1/apps/{}/secrets", path_segment(app)),
            Some(req),
        )
        .await
    }

    /// `DELETE /api/v1/apps/{app}/secrets/{name}`.
    pub async fn unset_secret(
        &self,
        app: &str,
        name: &str,
    ) -> Result<Vec<racer_core::api::SecretInfo>, ClientError> {
        self.call::<(), _>(
            Method::DELETE,
            &format!(
                "/api/v1/apps/{}/secrets/{}",
                path_segment(app),
                path_segment(name)
            ),
            None,
        )
        .await
    }

    /// `GET /api/v1/pools`.
    pub async fn pools(&self) -> Result<Vec<racer_core::api::PoolInfo>, ClientError> {
        self.get("/api/v1/pools").await
    }

    /// `GET /api/v1/pools/{pool}`.
    pub async fn pool(&self, pool: &str) -> Result<racer_core::api::PoolInfo, ClientError> {
        self.get(&format!("/api/v1/pools/{}", path_segment(pool)))
            .await
    }

    /// `POST /api/v1/pools`.
    pub async fn create_pool(
        &self,
        req: &racer_core::api::NewPool,
    ) -> Result<racer_core::api::PoolInfo, ClientError> {
        self.call(Method::POST, "/api/v1/pools", Some(req)).await
    }

    /// `POST /api/v1/pools/{pool}/resize`.
    pub async fn resize_pool(
        &self,
        pool: &str,
        size: u32,
    ) -> Result<racer_core::api::PoolInfo, ClientError> {
        let req = racer_core::api::ResizePool { size };
        self.call(
            Method::POST,
            &format!("/api/v1/pools/{}/resize", path_segment(pool)),
            Some(&req),
        )
        .await
    }

    /// `DELETE /api/v1/pools/{pool}`.
    pub async fn delete_pool(&self, pool: &str) -> Result<racer_core::api::PoolInfo, ClientError> {
        self.call::<(), _>(
            Method::DELETE,
            &format!("/api/v1/pools/{}", path_segment(pool)),
            None,
        )
        .await
    }

    /// `POST /api/v1/pools/{pool}/claims`.
    pub async fn claim(
        &self,
        pool: &str,
        req: &racer_core::api::ClaimRequest,
    ) -> Result<racer_core::api::ClaimInfo, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/pools/{}/claims", path_segment(pool)),
            Some(req),
        )
        .await
    }

    /// `GET /api/v1/claims[?all=true]`.
    pub async fn claims(&self, all: bool) -> Result<Vec<racer_core::api::ClaimInfo>, ClientError> {
        self.get(if all {
            "/api/v1/claims?all=true"
        } else {
            "/api/v1/claims"
        })
        .await
    }

    /// `GET /api/v1/claims/{id}`.
    pub async fn claim_of(&self, id: &str) -> Result<racer_core::api::ClaimInfo, ClientError> {
        self.get(&format!("/api/v1/claims/{}", path_segment(id)))
            .await
    }

    /// `POST /api/v1/claims/{id}/release`.
    pub async fn release_claim(
        &self,
        id: &str,
        no_sync: bool,
    ) -> Result<racer_core::api::ClaimInfo, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/claims/{}/release", path_segment(id)),
            Some(&racer_core::api::ReleaseRequest { no_sync }),
        )
        .await
    }

    /// `POST /api/v1/containers/cleanup`.
    pub async fn cleanup(&self) -> Result<ContainerAction, ClientError> {
        self.call::<(), _>(Method::POST, "/api/v1/containers/cleanup", None)
            .await
    }

    /// A plain-text stream: build logs, app logs, container logs.
    pub async fn text(&self, path: &str) -> Result<TextStream, ClientError> {
        let resp = self.send::<()>(Method::GET, path, None, None).await?;
        Ok(Box::pin(resp.bytes_stream()))
    }

    /// `GET /api/v1/events` (one page).
    pub async fn list_events(
        &self,
        app: Option<&str>,
        kind: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Event>, ClientError> {
        let mut q = page_query(limit, cursor);
        for (k, v) in [("app", app), ("kind", kind)] {
            if let Some(v) = v {
                q.push(if q.is_empty() { '?' } else { '&' });
                q.push_str(&format!("{k}={}", path_segment(v)));
            }
        }
        self.get(&format!("/api/v1/events{q}")).await
    }
}

/// A streamed plain-text body (logs).
pub type TextStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send>,
>;

fn page_query(limit: Option<u32>, cursor: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(l) = limit {
        parts.push(format!("limit={l}"));
    }
    if let Some(c) = cursor {
        parts.push(format!("cursor={}", path_segment(c)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use racer_core::api::{DeploymentStatus, Page};

    use super::*;

    const URL: &str = "http://127.0.0.1:8001/api/v1/apps/web";

    /// An app as a newer server sends it: every field this CLI knows, and one it does not.
    const APP: &str = r#"{
        "id": "0b6f6a3e-8f7c-4c1e-9d2a-5b8e4f1c2d3a",
        "name": "web",
        "org": "default",
        "created_at": "2026-11-26T11:34:28Z",
        "updated_at": "2026-11-26T11:35:00Z",
        "instances": 2,
        "release": 3,
        "source": {"kind": "image", "image": "web:3"},
        "future_field": 1
    }"#;

    /// A deployment as a newer server sends it, with a field this CLI does not know.
    const DEPLOYMENT: &str = r#"{
        "id": "5d1f0c2e-3b4a-4f6e-8a9b-0c1d2e3f4a5b",
        "app_id": "0b6f6a3e-8f7c-4c1e-9d2a-5b8e4f1c2d3a",
        "app_name": "web",
        "status": "running",
        "release": 3,
        "source": {"kind": "image", "image": "web:3"},
        "config": {"env": {"A": "1"}},
        "image_from_release": null,
        "error": null,
        "created_by": "admin",
        "created_at": "2026-11-26T11:34:28Z",
        "updated_at": "2026-11-26T11:35:00Z",
        "future_field": {"nested": [1, 2]}
    }"#;

    fn ok<T: DeserializeOwned>(body: &str) -> T {
        match decode_bytes::<T>(body.as_bytes(), URL.to_owned(), StatusCode::OK) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_answer_with_a_field_this_cli_does_not_know_still_decodes() {
        let app: App = ok(APP);
        assert_eq!(app.name, "web");
        assert_eq!(app.instances, 2);
        assert_eq!(app.release, Some(3));
        let d: Deployment = ok(DEPLOYMENT);
        assert_eq!(d.status, DeploymentStatus::Running);
        assert_eq!(d.config.env.get("A").map(String::as_str), Some("1"));
        // The same inside a page, and the page itself growing a field.
        let page: Page<App> = ok(&format!(
            r#"{{"items": [{APP}], "next_cursor": null, "total": 1}}"#
        ));
        assert_eq!(page.items.len(), 1);
        let deployed: Deployed = ok(&format!(
            r#"{{"app": {APP}, "deployment": {DEPLOYMENT}, "warnings": []}}"#
        ));
        assert_eq!(deployed.deployment.app_name, "web");
    }

    /// The same deep inside: `Source`, `RunConfig` and `HealthCheck` are request types too, but
    /// answers carry them (in `App`, `Deployment`, `Release`), so they must not refuse new fields.
    #[test]
    fn a_field_this_cli_does_not_know_inside_a_source_or_config_still_decodes() {
        let d: Deployment = ok(&DEPLOYMENT
            .replace(r#""image": "web:3"}"#, r#""image": "web:3", "digest": "sha256:0"}"#)
            .replace(
                r#""config": {"env": {"A": "1"}}"#,
                r#""config": {"env": {}, "colour": 1, "health": {"intervalSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 3, "successThreshold": 1, "grpc": true}}"#,
            ));
        assert_eq!(d.app_name, "web");
    }

    #[test]
    fn an_answer_this_cli_cannot_read_says_why() {
        // A value this CLI does not know (a deployment state added later): the server is newer.
        let e = decode_bytes::<Deployment>(
            DEPLOYMENT
                .replace(r#""status": "running""#, r#""status": "paused""#)
                .as_bytes(),
            URL.to_owned(),
            StatusCode::OK,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown variant `paused`"), "{e}");
        assert!(e.contains("newer than this racer"), "{e}");
        // A type that refuses unknown fields names the field, and the same hint.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // only decoded, never read
        struct Strict {
            env: std::collections::BTreeMap<String, String>,
        }
        let e = decode_bytes::<Strict>(br#"{"env":{},"colour":1}"#, URL.to_owned(), StatusCode::OK)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        assert!(e.contains("newer than this racer"), "{e}");
        // Not JSON at all, or nothing: maybe not a racer server.
        let e = decode_bytes::<ErrorBody>(b"<html>", URL.to_owned(), StatusCode::OK)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is that a racer server?"), "{e}");
        let e = decode_bytes::<ErrorBody>(b"", URL.to_owned(), StatusCode::BAD_GATEWAY)
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP 502 Bad Gateway): an empty body"), "{e}");
    }
}
