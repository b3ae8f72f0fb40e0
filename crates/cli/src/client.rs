//! The typed API client: the same `racer_core::api` types the server uses.

use std::time::Duration;

use racer_core::api::{
    App, ApiInfo, CreateApp, ErrorBody, Event, Health, Page, Probe, ServerInfo,
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::local::Target;

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
    /// The server answered with something that is not racer's API.
    #[error("unexpected response from {url} (HTTP {status}); is that a racer server?")]
    Protocol {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: StatusCode,
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
            ClientError::Api { status, .. } | ClientError::Protocol { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// A client for one racer server.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    target: Target,
}

impl Client {
    /// A client for `target`.
    pub fn new(target: Target) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("racer-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Client { http, target }
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
        let resp = self.send(method, path, body).await?;
        let url = resp.url().to_string();
        let status = resp.status();
        resp.json::<T>()
            .await
            .map_err(|_| ClientError::Protocol { url, status })
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.target.url, path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.target.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|source| {
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
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        match resp.json::<ErrorBody>().await {
            Ok(b) => Err(ClientError::Api {
                status,
                code: b.error.code,
                message: b.error.message,
                field: b.error.field,
            }),
            Err(_) => Err(ClientError::Protocol { url, status }),
        }
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
        let resp = self.http.get(&url).send().await.map_err(|source| {
            ClientError::Unreachable {
                url: self.target.url.clone(),
                source,
            }
        })?;
        let status = resp.status();
        resp.json::<Health>()
            .await
            .map_err(|_| ClientError::Protocol { url, status })
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
        self.get(&format!("/api/v1/apps/{}", path_segment(app))).await
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

    /// `GET /api/v1/events` (one page).
    pub async fn list_events(
        &self,
        app: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Event>, ClientError> {
        let mut q = page_query(limit, cursor);
        if let Some(a) = app {
            q.push(if q.is_empty() { '?' } else { '&' });
            q.push_str(&format!("app={}", path_segment(a)));
        }
        self.get(&format!("/api/v1/events{q}")).await
    }
}

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
