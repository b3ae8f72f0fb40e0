//! racer's built-in L7 proxy. Every app answers at `http://<app>.<domain>:<port>/` (Host routing)
//! and at `http://<bind>:<port>/apps/<app>/` (path routing, prefix stripped,
//! `X-Forwarded-Prefix` set). The route table is rebuilt by the reconciler from the replicas that
//! answer and swapped in atomically: the request path takes no lock.

mod route;

pub use route::{route_for, Target};

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type Body = BoxBody<Bytes, hyper::Error>;

/// One replica that may receive traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Where it listens (its address on the engine's network).
    pub addr: SocketAddr,
}

/// The replicas of one app and its round-robin position.
#[derive(Debug, Default)]
struct AppRoute {
    backends: Vec<Backend>,
    next: AtomicUsize,
}

/// The route table: app name → replicas that answer. Rebuilt, never edited in place.
#[derive(Debug, Default)]
pub struct RouteTable {
    apps: HashMap<String, Arc<AppRoute>>,
}

/// A shared, atomically swapped route table.
#[derive(Debug, Default, Clone)]
pub struct Routes {
    table: Arc<ArcSwap<RouteTable>>,
}

impl Routes {
    /// Replaces one app's backends (an empty list: the app exists but nothing answers → 503).
    pub fn set(&self, app: &str, backends: Vec<Backend>) {
        let current = self.table.load();
        if current
            .apps
            .get(app)
            .is_some_and(|r| r.backends == backends)
        {
            return;
        }
        let mut apps = current.apps.clone();
        apps.insert(
            app.to_owned(),
            Arc::new(AppRoute {
                backends,
                next: AtomicUsize::new(0),
            }),
        );
        self.table.store(Arc::new(RouteTable { apps }));
    }

    /// Keeps only the apps named (deleted apps disappear → 404).
    pub fn retain(&self, live: &[String]) {
        let current = self.table.load();
        if current.apps.keys().all(|k| live.contains(k)) {
            return;
        }
        let apps = current
            .apps
            .iter()
            .filter(|(k, _)| live.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.table.store(Arc::new(RouteTable { apps }));
    }

    /// The backends of an app, if it is routed.
    pub fn backends(&self, app: &str) -> Option<Vec<Backend>> {
        self.table.load().apps.get(app).map(|r| r.backends.clone())
    }
}

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Apps answer at `<app>.<domain>`.
    pub domain: String,
    /// How long to wait for an upstream's response headers.
    pub upstream_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            domain: "localhost".into(),
            upstream_timeout: Duration::from_secs(60),
        }
    }
}

/// The proxy: a route table and a pooled keep-alive HTTP/1.1 client.
pub struct Proxy {
    routes: Routes,
    client: Client<HttpConnector, Incoming>,
    config: Config,
}

impl Proxy {
    /// A proxy over `routes`.
    pub fn new(routes: Routes, config: Config) -> Arc<Proxy> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        Arc::new(Proxy {
            routes,
            client,
            config,
        })
    }

    /// Serves connections from `listener` until `shutdown`; connections are tracked.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            let stop = shutdown.clone();
            tracker.spawn(async move {
                let svc = service_fn(move |req| {
                    let me = me.clone();
                    async move { Ok::<_, Infallible>(me.handle(req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades();
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stop.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
                    }
                }
            });
        }
    }

    /// Routes one request.
    pub async fn handle(&self, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let Some(target) = route_for(&host, &path_and_query, &self.config.domain) else {
            return page(
                StatusCode::NOT_FOUND,
                "no app here: use http://<app>.localhost:PORT/ or /apps/<app>/\n",
            );
        };
        if let Some(location) = target.redirect {
            let mut r = page(StatusCode::PERMANENT_REDIRECT, "");
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        let table = self.routes.table.load();
        let Some(route) = table.apps.get(&target.app) else {
            return page(
                StatusCode::NOT_FOUND,
                &format!("no app named {:?}\n", target.app),
            );
        };
        if route.backends.is_empty() {
            let mut r = page(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{} has no healthy replica right now\n", target.app),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
        let n = route.next.fetch_add(1, Ordering::Relaxed);
        let backend = &route.backends[n % route.backends.len()];

        let upgrade = is_upgrade(req.headers());
        let request_id = req
            .headers()
            .get("x-request-id")
            .cloned()
            .unwrap_or_else(|| {
                HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
                    .unwrap_or_else(|_| HeaderValue::from_static("-"))
            });
        let uri = format!("http://{}{}", backend.addr, target.path);
        let Ok(uri) = uri.parse::<hyper::Uri>() else {
            return page(StatusCode::BAD_REQUEST, "bad request target\n");
        };
        let client_upgrade = if upgrade {
            Some(hyper::upgrade::on(&mut req))
        } else {
            None
        };
        let (mut parts, body) = req.into_parts();
        parts.uri = uri;
        let headers = &mut parts.headers;
        if !upgrade {
            strip_hop_by_hop(headers);
        }
        append_forwarded_for(headers, peer);
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );
        if let Ok(v) = HeaderValue::from_str(&host) {
            headers.insert(HeaderName::from_static("x-forwarded-host"), v);
        }
        if let Some(prefix) = &target.prefix {
            if let Ok(v) = HeaderValue::from_str(prefix) {
                headers.insert(HeaderName::from_static("x-forwarded-prefix"), v);
            }
        }
        headers.insert(HeaderName::from_static("x-request-id"), request_id.clone());
        let upstream = Request::from_parts(parts, body);

        let resp = match tokio::time::timeout(
            self.config.upstream_timeout,
            self.client.request(upstream),
        )
        .await
        {
            Err(_) => {
                return page(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the app did not answer in time\n",
                )
            }
            Ok(Err(e)) => {
                tracing::debug!(app = %target.app, backend = %backend.addr, error = %e, "upstream failed");
                return page(
                    StatusCode::BAD_GATEWAY,
                    "the app's replica could not be reached\n",
                );
            }
            Ok(Ok(r)) => r,
        };
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_side) = client_upgrade {
                let (parts, body) = resp.into_parts();
                let mut upstream_resp = Response::from_parts(parts.clone(), body);
                let server_side = hyper::upgrade::on(&mut upstream_resp);
                tokio::spawn(async move {
                    if let (Ok(c), Ok(s)) = (client_side.await, server_side.await) {
                        let mut c = TokioIo::new(c);
                        let mut s = TokioIo::new(s);
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                    }
                });
                let mut out = Response::from_parts(parts, empty());
                out.headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), request_id);
                return out;
            }
        }
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(HeaderName::from_static("x-request-id"), request_id);
        Response::from_parts(parts, body.boxed())
    }
}

fn is_upgrade(h: &hyper::HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn strip_hop_by_hop(h: &mut hyper::HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
    ] {
        h.remove(name);
    }
}

fn append_forwarded_for(h: &mut hyper::HeaderMap, peer: SocketAddr) {
    let ip = peer.ip().to_string();
    let value = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

fn page(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(text.to_owned()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
