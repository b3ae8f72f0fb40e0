//! The application services: one function per use case (deploy, rerun, rollback, apply a spec,
//! scale, start and stop, operator actions on containers, …), shared by the HTTP API and the
//! dashboard so nothing is written twice.
//!
//! A service validates its input through `core`, records desired state in the store (one
//! transaction, with its event), and wakes the loop that acts on it. It never waits for the
//! engine to converge. Reads of live state (status, logs) go through the runtime here too, so the
//! server's handlers only parse, authorise, call one service and render.
//!
//! - [`apps`]: find, list, create, delete, up/down, scale, status, releases, metrics, logs.
//! - [`deployments`]: deploy, rerun, rollback, a deployment and its build log.
//! - [`events`]: the audit log, a page at a time or followed live.
//! - [`specs`]: apply a spec document (returns the diff), replace a scaling policy.
//! - [`inspect`]: uploads, validate, the generated Dockerfile, and the preflight of a deploy.
//! - [`containers`]: the operator's view of containers: list, logs, stop, remove, cleanup.
//! - [`pools`]: warm pools and their claims.
//! - [`swarm`]: an app's Swarm service, and the local engine's swarm membership.
//! - [`server`]: the engine's health and version, for `/health` and `/api/v1/info`.

pub mod apps;
pub mod clusters;
pub mod containers;
pub mod deployments;
pub mod events;
pub mod inspect;
pub mod pools;
pub mod secrets;
pub mod server;
pub mod specs;
pub mod swarm;

use std::sync::Arc;

use futures_util::stream::BoxStream;
use racer_core::api::Deployed;
use racer_core::ErrorKind;
use racer_store::{NewDeployment, Store};

use crate::{Ctx, Error};

/// Who is asking: the name events record, and the organisation whose things they may see
/// (`None`: the install's admin token, which sees every organisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// How events name the caller (`alice@example.com`, `admin`); never a secret.
    pub actor: String,
    /// The caller's organisation; `None` for the install's admin token.
    pub org: Option<String>,
}

impl Caller {
    /// The caller's organisation, `None` for the admin token.
    pub fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }

    /// Where things this caller creates belong.
    pub fn home_org(&self) -> &str {
        self.org().unwrap_or(racer_core::auth::DEFAULT_ORG)
    }

    /// Whether the caller may see a resource of `org`.
    pub fn sees(&self, org: &str) -> bool {
        self.org().is_none_or(|mine| mine == org)
    }
}

/// Where the proxy answers, for the URLs services report.
#[derive(Debug, Clone)]
pub struct ProxyUrls {
    /// `http://127.0.0.1:8080`.
    pub url: String,
    /// Apps answer at `<app>.<domain>`.
    pub domain: String,
    /// The proxy's port.
    pub port: u16,
    /// With TLS on, the HTTPS port: apps are reported at `https://` URLs first.
    pub tls_port: Option<u16>,
    /// With TLS on, plain HTTP redirects to HTTPS (`--no-https-redirect` turns that off): the
    /// `http://` URLs are then not reported.
    pub redirect: bool,
}

impl ProxyUrls {
    /// Plain HTTP only: the proxy at `url` (`http://127.0.0.1:8080`), apps at `<app>.<domain>`.
    pub fn plain(url: impl Into<String>, domain: impl Into<String>, port: u16) -> ProxyUrls {
        ProxyUrls {
            url: url.into(),
            domain: domain.into(),
            port,
            tls_port: None,
            redirect: false,
        }
    }

    /// `http://web.localhost:8080/` and `http://127.0.0.1:8080/apps/web/`; with TLS on,
    /// `https://web.localhost:8443/` first (the port left out when it is 443), and the plain ones
    /// only when plain HTTP is not redirected. A certificate names hosts (an ACME one only
    /// `<app>.<domain>`), so there is no `https://` form of the path URL on the proxy's address.
    pub fn of(&self, app: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(tls) = self.tls_port {
            let port = if tls == 443 {
                String::new()
            } else {
                format!(":{tls}")
            };
            out.push(format!("https://{app}.{}{port}/", self.domain));
            if self.redirect {
                return out;
            }
        }
        out.push(format!("http://{app}.{}:{}/", self.domain, self.port));
        out.push(format!("{}/apps/{app}/", self.url));
        out
    }
}

#[cfg(test)]
mod url_tests {
    use super::ProxyUrls;

    #[test]
    fn https_first_when_tls_is_on() {
        let plain = ProxyUrls::plain("http://127.0.0.1:8080", "localhost", 8080);
        assert_eq!(
            plain.of("web"),
            [
                "http://web.localhost:8080/",
                "http://127.0.0.1:8080/apps/web/"
            ]
        );
        let tls = ProxyUrls {
            tls_port: Some(8443),
            redirect: true,
            ..plain.clone()
        };
        assert_eq!(tls.of("web"), ["https://web.localhost:8443/"]);
        let both = ProxyUrls {
            tls_port: Some(443),
            redirect: false,
            ..plain
        };
        assert_eq!(
            both.of("web"),
            [
                "https://web.localhost/",
                "http://web.localhost:8080/",
                "http://127.0.0.1:8080/apps/web/"
            ]
        );
    }
}

/// A text answer: whole, or streamed as it is produced (`--follow`).
pub enum Text {
    /// All of it.
    Whole(String),
    /// Chunks as they come; an error ends the stream.
    Stream(BoxStream<'static, Result<String, std::io::Error>>),
}

/// The services, built once at wiring and cloned into every handler.
#[derive(Clone)]
pub struct Services {
    store: Store,
    engine: Option<Ctx>,
    traffic: Option<Arc<racer_proxy::Proxy>>,
    urls: Arc<ProxyUrls>,
}

impl Services {
    /// Services over `store`; `engine` is `None` when no Docker engine is configured (reads and
    /// store-only writes still work; deploys say the engine is unavailable).
    pub fn new(
        store: Store,
        engine: Option<Ctx>,
        traffic: Option<Arc<racer_proxy::Proxy>>,
        urls: ProxyUrls,
    ) -> Services {
        Services {
            store,
            engine,
            traffic,
            urls: Arc::new(urls),
        }
    }

    /// The store, for the parts of the API that are only records (users, tokens, events).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The loops' context, or why deploys are unavailable.
    pub fn engine(&self) -> Result<&Ctx, Error> {
        self.engine.as_ref().ok_or_else(|| {
            Error::refused(
                ErrorKind::Unavailable,
                "no docker engine is configured (DOCKER_HOST); deploys are unavailable",
            )
        })
    }

    /// Where the proxy answers.
    pub fn urls(&self) -> &ProxyUrls {
        &self.urls
    }

    /// Wakes the reconciler for one app, when there is a reconciler.
    pub fn wake_app(&self, app: uuid::Uuid) {
        if let Some(ctx) = &self.engine {
            ctx.reconcile_wake.app(app);
        }
    }

    /// Wakes the reconciler for every app.
    pub fn wake_all(&self) {
        if let Some(ctx) = &self.engine {
            ctx.reconcile_wake.all();
        }
    }

    /// Records a deployment (and its app, if new) in one transaction with its event, and wakes
    /// the builder: the one way every use case (deploy, rerun, rollback, apply) starts a release.
    async fn record(
        &self,
        ctx: &Ctx,
        new: &NewDeployment<'_>,
        actor: &str,
    ) -> Result<Deployed, Error> {
        let (app, deployment) = self.store.deployments().create(new, actor).await?;
        ctx.build_wake.notify_one();
        Ok(Deployed { app, deployment })
    }

    /// Appends an event; a failure is logged, not returned (the action it records happened).
    async fn event(&self, e: racer_store::NewEvent) {
        if let Err(err) = self.store.events().append(&e).await {
            tracing::error!(error = %err, kind = %e.kind, "cannot record event");
        }
    }
}
