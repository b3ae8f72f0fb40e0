//! One request's way through: routing it to an app (or a claim's port, behind its token),
//! sending it to a replica (trying another for a request without a body), and relaying the
//! answer or the upgraded connection (WebSocket).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::access::{self, claim_path, ClaimPath};
use crate::claims::InUse;
use crate::headers::{
    append_forwarded_for, is_upgrade, peer_ip_value, strip_hop_by_hop, X_FORWARDED_HOST,
    X_FORWARDED_PREFIX, X_FORWARDED_PROTO, X_REQUEST_ID,
};
use crate::proxy::{Client, Proxy};
use crate::route::route_for;
use crate::table::{AppRoute, ClaimEntry};
use crate::upstream::{self, ProxyBody};

/// An upstream try that takes this long is logged (replica, attempt, outcome).
const SLOW_TRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Proxy {
    /// Routes one request from `peer` (as if it came over plain HTTP).
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let client = Client {
            ip: peer_ip_value(peer),
            secure: false,
            framing: Default::default(),
        };
        self.route(req, &client).await
    }

    /// Routes one request; over TLS, the answer carries HSTS when it is on.
    pub(crate) async fn route(
        &self,
        req: Request<Incoming>,
        client: &Client,
    ) -> Response<ProxyBody> {
        let mut resp = self.route_inner(req, client).await;
        if client.secure {
            if let Some(hsts) = &self.hsts {
                resp.headers_mut()
                    .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
        }
        resp
    }

    async fn route_inner(
        &self,
        mut req: Request<Incoming>,
        client: &Client,
    ) -> Response<ProxyBody> {
        if client.framing.ambiguous() {
            // hyper closes the connection after it as well.
            let mut r = page(
                StatusCode::BAD_REQUEST,
                "Content-Length and Transfer-Encoding together are ambiguous: send one\n",
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
        // Cheap copies (reference counts): the target borrows from them while `req` changes.
        let host_value = req.headers().get(header::HOST).cloned();
        let uri = req.uri().clone();
        let host = host_value
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        if !client.secure {
            // ACME's HTTP-01 answers come first: they are how TLS gets its certificates.
            if let Some(token) = racer_core::tls::acme_challenge_token(uri.path()) {
                if let Some(answer) = self.routes.tls.challenge(token) {
                    let mut r = page(StatusCode::OK, &answer);
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    return r;
                }
            }
            if let Some(port) = self.config.https_redirect {
                return match racer_core::tls::https_location(host, port, path_and_query) {
                    Some(location) => {
                        let mut r = page(StatusCode::PERMANENT_REDIRECT, "");
                        if let Ok(v) = HeaderValue::from_str(&location) {
                            r.headers_mut().insert(header::LOCATION, v);
                        }
                        r
                    }
                    None => page(
                        StatusCode::BAD_REQUEST,
                        "this proxy answers over HTTPS; send a Host header naming the app\n",
                    ),
                };
            }
        }
        let Some(target) = route_for(host, path_and_query, &self.config.domain) else {
            // Not an app's: a claim's port, perhaps.
            let claims = self.routes.claims.load();
            if let Some(at) = claim_path(path_and_query, &claims.port_names) {
                let entry = claims.claims.get(at.claim).cloned();
                drop(claims);
                return self.claim(req, at, entry, host_value, client).await;
            }
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
        let Some(route) = table.apps.get(&*target.app) else {
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
        // The upstream request target: the client's, or what is left after the path prefix.
        let upstream_uri = if target.prefix.is_some() {
            match hyper::Uri::try_from(target.path) {
                Ok(u) => u,
                Err(_) => return page(StatusCode::BAD_REQUEST, "bad request target\n"),
            }
        } else if uri.scheme().is_some() || uri.authority().is_some() {
            // absolute-form (`GET http://host/path`): origin-form upstream
            match uri.path_and_query() {
                Some(p) => hyper::Uri::from(p.clone()),
                None => hyper::Uri::from_static("/"),
            }
        } else {
            uri.clone()
        };
        *req.uri_mut() = upstream_uri;
        {
            let headers = req.headers_mut();
            if let Some(host) = &host_value {
                headers.insert(X_FORWARDED_HOST, host.clone());
            }
            if let Some(prefix) = target.prefix {
                if let Ok(v) = HeaderValue::from_str(prefix) {
                    headers.insert(X_FORWARDED_PREFIX, v);
                }
            }
        }
        let started = Instant::now();
        let metrics = &route.metrics;
        metrics.active.fetch_add(1, Ordering::Relaxed);
        let resp = self.forward(req, route, &target.app, client, None).await;
        metrics.active.fetch_sub(1, Ordering::Relaxed);
        metrics.record(resp.status(), started.elapsed());
        resp
    }

    /// A request for claim port `at`: `entry` is the claim, if it is routed. The token is
    /// checked (401), then the port (404); a token presented as `?token=` is moved into a cookie
    /// by a redirect; the rest goes to the port with the prefix stripped and the claim's
    /// credentials taken off. Neither the token nor the query is logged.
    async fn claim(
        &self,
        mut req: Request<Incoming>,
        at: ClaimPath<'_>,
        entry: Option<Arc<ClaimEntry>>,
        host_value: Option<HeaderValue>,
        client: &Client,
    ) -> Response<ProxyBody> {
        let Some(entry) = entry else {
            return page(
                StatusCode::NOT_FOUND,
                &format!(
                    "no claim {:?} here (released, or never handed out)\n",
                    at.claim
                ),
            );
        };
        let query = at.query();
        let access = access::check(req.headers(), at.claim, query, &entry.token_sha256);
        if !access.granted() {
            let mut r = page(
                StatusCode::UNAUTHORIZED,
                "this claim wants its token: ?token=, X-Racer-Claim-Token or Authorization: Bearer\n",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"racer claim\""),
            );
            return r;
        }
        // From here on the claim counts as used (a request without its token does not).
        let in_use = InUse::new(&entry.activity);
        let Some(port) = entry.port(at.port) else {
            return page(
                StatusCode::NOT_FOUND,
                &format!("claim {:?} has no port named {:?}\n", at.claim, at.port),
            );
        };
        if access.query {
            // Into a cookie for every port of the claim, out of the URL.
            let mut r = page(StatusCode::SEE_OTHER, "");
            if let Ok(v) = HeaderValue::from_str(&access::location_without_token(&at)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            if let Some(token) = access::query_token(query, &entry.token_sha256) {
                for p in &entry.ports {
                    if let Some(v) = access::set_cookie(at.claim, &p.name, &token) {
                        r.headers_mut().append(header::SET_COOKIE, v);
                    }
                }
            }
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return r;
        }
        if !at.rest.starts_with('/') {
            // `/code/<claim>` → `/code/<claim>/`, as apps' path routes.
            let mut r = page(StatusCode::PERMANENT_REDIRECT, "");
            if let Ok(v) = HeaderValue::from_str(&format!("{}/{}", at.prefix, at.rest)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        match hyper::Uri::try_from(at.rest) {
            Ok(u) => *req.uri_mut() = u,
            Err(_) => return page(StatusCode::BAD_REQUEST, "bad request target\n"),
        }
        let headers = req.headers_mut();
        access::strip_credentials(headers, &access);
        if let Some(host) = host_value {
            headers.insert(X_FORWARDED_HOST, host);
        }
        if let Ok(v) = HeaderValue::from_str(at.prefix) {
            headers.insert(X_FORWARDED_PREFIX, v);
        }
        self.forward(req, &port.route, &port.label, client, Some(in_use))
            .await
    }

    /// Sends `req` to one of `route`'s replicas and relays the answer. `in_use`, a claim's
    /// request, lives as long as the response body or the upgraded connection.
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        route: &AppRoute,
        app: &str,
        client: &Client,
        mut in_use: Option<InUse>,
    ) -> Response<ProxyBody> {
        let upgrade = is_upgrade(req.headers());
        let request_id = match req.headers().get(X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => self.ids.next(),
        };
        // Only requests without a body can be sent again to another replica.
        let retryable = !upgrade
            && matches!(
                *req.method(),
                hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS
            )
            && !req.headers().contains_key(header::TRANSFER_ENCODING)
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0");
        let mut client_upgrade = if upgrade {
            Some(hyper::upgrade::on(&mut req))
        } else {
            None
        };
        let (parts, body) = req.into_parts();
        let mut parts = Some(parts);
        if let Some(p) = parts.as_mut() {
            let headers = &mut p.headers;
            if !upgrade {
                strip_hop_by_hop(headers);
            }
            append_forwarded_for(headers, &client.ip);
            headers.insert(
                X_FORWARDED_PROTO,
                HeaderValue::from_static(if client.secure { "https" } else { "http" }),
            );
            headers.insert(X_REQUEST_ID, request_id.clone());
        }
        // The retryable request has no body: each try sends an empty one.
        let mut body = if retryable { None } else { Some(body) };
        let candidates = self.candidates(route);
        let candidates = &candidates.idx[..candidates.len];
        let tries = if retryable { candidates.len() } else { 1 };
        for (k, &i) in candidates.iter().take(tries).enumerate() {
            let backend = &route.backends[i];
            let stats = &route.stats[i];
            // A copy of the request head only if another try may need it.
            let p = if k + 1 < tries {
                parts.clone()
            } else {
                parts.take()
            };
            let Some(mut p) = p else { break };
            if !p.headers.contains_key(header::HOST) {
                if let Ok(v) = HeaderValue::from_str(&backend.addr.to_string()) {
                    p.headers.insert(header::HOST, v);
                }
            }
            let b = if retryable {
                Either::Left(Empty::new())
            } else {
                match body.take() {
                    Some(b) => Either::Right(b),
                    None => break,
                }
            };
            let upstream = Request::from_parts(p, b);
            // A slot under the replica's concurrency limit (upgrades are long-lived and not
            // counted), waited for in arrival order.
            let permit = if upgrade {
                None
            } else {
                match self.admit(route, i).await {
                    Ok(p) => p,
                    Err(_) => {
                        let mut r = page(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the app's replicas are all busy (at their concurrency limit)\n",
                        );
                        r.headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                        return r;
                    }
                }
            };
            stats.active.fetch_add(1, Ordering::Relaxed);
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let tried = Instant::now();
            let result = if upgrade {
                tokio::time::timeout(
                    self.config.upstream_timeout,
                    upstream::send_upgrade(backend.addr, upstream, &self.upgrades),
                )
                .await
                .map(|r| r.map(|resp| (resp, None)))
            } else {
                tokio::time::timeout(
                    self.config.upstream_timeout,
                    stats.pool.send(backend.addr, upstream, permit),
                )
                .await
                .map(|r| r.map(|(resp, lease)| (resp, Some(lease))))
            };
            stats.active.fetch_sub(1, Ordering::Relaxed);
            let took = tried.elapsed();
            if took >= SLOW_TRY {
                // What an operator needs to explain a slow request: which replica, which try,
                // and whether it failed (a connect that timed out, a replica that went away).
                let outcome = match &result {
                    Err(_) => "timed out".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok((r, _))) => r.status().to_string(),
                };
                tracing::warn!(app, backend = %backend.addr, attempt = k + 1, took_ms = took.as_millis() as u64, outcome, "slow upstream try");
            }
            match result {
                Err(_) => {
                    self.record_failure(stats);
                    return page(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the app did not answer in time\n",
                    );
                }
                Ok(Err(e)) => {
                    tracing::debug!(app, backend = %backend.addr, error = &e as &dyn std::error::Error, "upstream failed");
                    if e.is_connect() {
                        // Not taking connections: out of rotation at once, not after five more
                        // requests have each found that out (and waited for it).
                        self.eject(stats);
                    } else {
                        self.record_failure(stats);
                    }
                    // A bodiless request can go to the next replica.
                    if !retryable {
                        break;
                    }
                    continue;
                }
                Ok(Ok((resp, lease))) => {
                    if resp.status().is_server_error() {
                        self.record_failure(stats);
                    } else if stats.failures.load(Ordering::Relaxed) != 0 {
                        stats.failures.store(0, Ordering::Relaxed);
                    }
                    let mut out = self.finish(
                        resp,
                        lease,
                        client_upgrade.take(),
                        request_id.clone(),
                        in_use.take(),
                    );
                    // Head and first bytes together (see `ProxyBody::prefetch`).
                    match tokio::time::timeout(
                        self.config.upstream_timeout,
                        out.body_mut().prefetch(),
                    )
                    .await
                    {
                        Ok(Ok(())) => return out,
                        Ok(Err(e)) => {
                            tracing::debug!(app, backend = %backend.addr, error = &e as &dyn std::error::Error, "upstream body failed");
                            self.record_failure(stats);
                            // Nothing of this answer reached the client: a bodiless request
                            // can go to the next replica, as after a refused connection.
                            if retryable {
                                continue;
                            }
                        }
                        Err(_) => {
                            self.record_failure(stats);
                            return page(
                                StatusCode::GATEWAY_TIMEOUT,
                                "the app did not answer in time\n",
                            );
                        }
                    }
                    break;
                }
            }
        }
        page(
            StatusCode::BAD_GATEWAY,
            "the app's replica could not be reached\n",
        )
    }

    fn finish(
        &self,
        resp: Response<Incoming>,
        lease: Option<upstream::Lease>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        request_id: HeaderValue,
        in_use: Option<InUse>,
    ) -> Response<ProxyBody> {
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_side) = client_upgrade {
                let (parts, body) = resp.into_parts();
                let mut upstream_resp = Response::from_parts(parts.clone(), body);
                let server_side = hyper::upgrade::on(&mut upstream_resp);
                self.upgrades.spawn(async move {
                    if let (Ok(c), Ok(s)) = (client_side.await, server_side.await) {
                        let mut c = TokioIo::new(c);
                        let mut s = TokioIo::new(s);
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                    }
                    drop(in_use);
                });
                let mut out = Response::from_parts(parts, ProxyBody::full(Bytes::new()));
                out.headers_mut().insert(X_REQUEST_ID, request_id);
                return out;
            }
        }
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(X_REQUEST_ID, request_id);
        Response::from_parts(parts, ProxyBody::upstream(body, lease).hold(in_use))
    }
}

fn page(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(Bytes::copy_from_slice(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
