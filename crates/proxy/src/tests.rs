//! End-to-end tests: a proxy serving on 127.0.0.1 in front of test replicas.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{token_digest, Backend, ClaimRoute, Config, Proxy, Routes};

/// A replica on 127.0.0.1 that counts the connections it accepts: `/chunked` answers with a
/// chunked body, anything else with a fixed one. Without `keep_alive` it closes each
/// connection after one response, without saying so (as a replica's idle timeout does).
async fn replica(conns: Arc<AtomicUsize>, keep_alive: bool) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            conns.fetch_add(1, Ordering::SeqCst);
            if !keep_alive {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut chunk = [0u8; 1024];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 22\r\n\r\nhello from the replica",
                        )
                        .await;
                });
                continue;
            }
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let body = Full::new(Bytes::from_static(b"hello from the replica"));
                    let resp = if req.uri().path() == "/chunked" {
                        // no size hint: sent chunked
                        Response::new(body.map_frame(|f| f).boxed())
                    } else {
                        Response::new(body.boxed())
                    };
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A proxy routing `web` to `upstream`, and a keep-alive client connection to it.
async fn proxy_to(
    upstream: SocketAddr,
) -> (
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    CancellationToken,
) {
    let (addr, stop) = start_proxy(upstream, Config::default()).await;
    (client_to(addr).await, stop)
}

/// A proxy with `config` routing `web` to `upstream`: its address.
async fn start_proxy(upstream: SocketAddr, config: Config) -> (SocketAddr, CancellationToken) {
    let (addr, stop, _) = start_proxy_with(Backend::new(upstream), config).await;
    (addr, stop)
}

/// [`start_proxy`] with `backend` as `web`'s replica, and the proxy.
async fn start_proxy_with(
    backend: Backend,
    config: Config,
) -> (SocketAddr, CancellationToken, Arc<Proxy>) {
    let routes = Routes::default();
    routes.set("web", vec![backend]);
    let proxy = Proxy::new(routes, config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
    tokio::spawn(proxy.clone().serve(listener, stop.clone(), tracker));
    (addr, stop, proxy)
}

/// A keep-alive client connection to `addr`.
async fn client_to(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// A replica on 127.0.0.1 that answers each request with `head`, then waits for `go` (a
/// permit per response), then writes `body`: the head and the body in separate writes.
async fn split_replica(
    head: &'static [u8],
    body: &'static [u8],
    go: Arc<tokio::sync::Semaphore>,
) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let go = go.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut buf = Vec::new();
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut chunk = [0u8; 1024];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = stream.write_all(head).await;
                if let Ok(permit) = go.acquire().await {
                    permit.forget();
                }
                let _ = stream.write_all(body).await;
            });
        }
    });
    addr
}

/// A replica on 127.0.0.1 that answers every request after `delay`, counting the requests
/// it holds at once: (now, most ever).
async fn slow_replica(delay: Duration, seen: Arc<(AtomicUsize, AtomicUsize)>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let now = seen.0.fetch_add(1, Ordering::SeqCst) + 1;
                        seen.1.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        seen.0.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"slow"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// `GET /` on `client`: the status and the whole body.
async fn fetch(
    mut client: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
) -> (StatusCode, Bytes) {
    client.ready().await.unwrap();
    let resp = client.send_request(get("/")).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::builder()
        .uri(path)
        .header(header::HOST, "web.localhost")
        .body(Empty::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_replica_closed_is_not_reused() {
    let conns = Arc::new(AtomicUsize::new(0));
    let (mut client, stop) = proxy_to(replica(conns.clone(), false).await).await;
    for i in 0..10 {
        client.ready().await.unwrap();
        let resp = client.send_request(get("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "request {i}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello from the replica");
        // the replica's close reaches the proxy before the next request
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(conns.load(Ordering::SeqCst), 10);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_kept_alive_and_reused() {
    let conns = Arc::new(AtomicUsize::new(0));
    let (mut client, stop) = proxy_to(replica(conns.clone(), true).await).await;
    let mut ids = std::collections::HashSet::new();
    for (i, (method, path)) in std::iter::repeat_n(("GET", "/"), 20)
        .chain([
            ("GET", "/chunked"),
            ("HEAD", "/"),
            ("GET", "/chunked"),
            ("GET", "/"),
        ])
        .enumerate()
    {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "web.localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        client.ready().await.unwrap();
        let resp = client.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "request {i}");
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32);
        assert!(ids.insert(id), "request ids are unique");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let want: &[u8] = if method == "HEAD" {
            b""
        } else {
            b"hello from the replica"
        };
        assert_eq!(&body[..], want, "request {i}: {method} {path}");
    }
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "one upstream connection, reused"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_length_body_written_after_its_head_arrives_whole() {
    let go = Arc::new(tokio::sync::Semaphore::new(0));
    let upstream = split_replica(
        b"HTTP/1.1 200 OK\r\ncontent-length: 22\r\n\r\n",
        b"hello from the replica",
        go.clone(),
    )
    .await;
    let (client, stop) = proxy_to(upstream).await;
    // The proxy waits for the body's first bytes before it answers: the body comes late.
    let pending = tokio::spawn(fetch(client));
    tokio::time::sleep(Duration::from_millis(50)).await;
    go.add_permits(1);
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"hello from the replica");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_head_is_not_held_back_for_its_body() {
    let go = Arc::new(tokio::sync::Semaphore::new(0));
    let upstream = split_replica(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        go.clone(),
    )
    .await;
    let (mut client, stop) = proxy_to(upstream).await;
    client.ready().await.unwrap();
    // The body is only written once the client has the head: held back, this times out.
    let resp = tokio::time::timeout(Duration::from_secs(5), client.send_request(get("/")))
        .await
        .expect("the head of a chunked response arrives before its body")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    go.add_permits(1);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
    stop.cancel();
}

/// Six clients at once through a proxy with `config` to one replica with `concurrency`,
/// where the limit that applies is 2: four wait in the proxy (and the snapshot that feeds
/// /metrics says so), all six get their answer, and the replica never sees more than two.
async fn six_clients_two_at_a_time(config: Config, concurrency: Option<u32>) {
    let seen = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let upstream = slow_replica(Duration::from_millis(100), seen.clone()).await;
    let backend = Backend {
        addr: upstream,
        concurrency,
    };
    let (addr, stop, proxy) = start_proxy_with(backend, config).await;
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(tokio::spawn(fetch(client_to(addr).await)));
    }
    let queued = || proxy.snapshot().first().map_or(0, |t| t.queued);
    let deadline = Instant::now() + Duration::from_secs(2);
    while queued() != 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(queued(), 4, "four requests queued behind the limit");
    for c in clients {
        let (status, body) = c.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"slow");
    }
    assert_eq!(
        seen.1.load(Ordering::SeqCst),
        2,
        "six clients at once, two requests at the replica at most (and at least)"
    );
    assert_eq!(queued(), 0, "nothing left waiting");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_a_replicas_concurrency_limit_wait_their_turn() {
    let config = Config {
        replica_concurrency: 2,
        ..Config::default()
    };
    six_clients_two_at_a_time(config, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_own_concurrency_limit_overrides_the_proxys() {
    // The proxy's default (80) would let all six through at once; the replica's release
    // asks for 2.
    six_clients_two_at_a_time(Config::default(), Some(2)).await;
    // And a release may lift a proxy-wide limit: 0 is none.
    let seen = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let upstream = slow_replica(Duration::from_millis(400), seen.clone()).await;
    let config = Config {
        replica_concurrency: 1,
        ..Config::default()
    };
    let backend = Backend {
        addr: upstream,
        concurrency: Some(0),
    };
    let (addr, stop, _) = start_proxy_with(backend, config).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(tokio::spawn(fetch(client_to(addr).await)));
    }
    for c in clients {
        assert_eq!(c.await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(
        seen.1.load(Ordering::SeqCst),
        4,
        "no limit: all four at once"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_queued_past_the_timeout_gets_503_with_retry_after() {
    let seen = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let upstream = slow_replica(Duration::from_millis(1500), seen.clone()).await;
    let config = Config {
        replica_concurrency: 1,
        queue_timeout: Duration::from_millis(100),
        ..Config::default()
    };
    let (addr, stop) = start_proxy(upstream, config).await;
    let mut first = client_to(addr).await;
    let first = tokio::spawn(async move {
        first.ready().await.unwrap();
        first.send_request(get("/")).await.unwrap().status()
    });
    // The first request holds the replica's only slot.
    while seen.0.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut second = client_to(addr).await;
    second.ready().await.unwrap();
    let resp = second.send_request(get("/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("concurrency limit"));
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert_eq!(seen.1.load(Ordering::SeqCst), 1);
    stop.cancel();
}

// Claims (warm pools): `/<port>/<claim>/...` behind the claim's token.

const CLAIM: &str = "4f9c2a1b0d";
const TOKEN: &str = "s3cret-token";

/// A claimed container's port on 127.0.0.1, called `name`: answers `<name> <path and query>`
/// and says in `x-seen-*` headers what it was sent (`-`: nothing); an upgrade request is
/// answered 101, then what comes on the connection is echoed back.
async fn claim_port(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(move |mut req: Request<Incoming>| async move {
                    let seen = |h: &str| {
                        req.headers()
                            .get_all(h)
                            .iter()
                            .map(|v| v.to_str().unwrap().to_owned())
                            .collect::<Vec<_>>()
                            .join(" | ")
                    };
                    let mut resp = Response::builder();
                    for h in [
                        "x-forwarded-prefix",
                        "cookie",
                        "authorization",
                        "x-racer-claim-token",
                    ] {
                        let v = seen(h);
                        resp = resp.header(
                            format!("x-seen-{h}"),
                            if v.is_empty() { "-".to_owned() } else { v },
                        );
                    }
                    if req.headers().contains_key(header::UPGRADE) {
                        let upgrade = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            let io = TokioIo::new(upgrade.await.unwrap());
                            let (mut r, mut w) = tokio::io::split(io);
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        });
                        let resp = resp
                            .status(StatusCode::SWITCHING_PROTOCOLS)
                            .header(header::CONNECTION, "upgrade")
                            .header(header::UPGRADE, "websocket")
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                        return Ok::<_, Infallible>(resp);
                    }
                    let body = format!("{name} {}", req.uri());
                    Ok(resp.body(Full::new(Bytes::from(body))).unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// A proxy routing `web` to a replica and claim [`CLAIM`] (token [`TOKEN`]) with ports `code`
/// and `web`, and a claim `other0001` with a `vnc` port: the proxy's address, and the proxy.
async fn claims_proxy() -> (SocketAddr, CancellationToken, Arc<Proxy>) {
    let app = replica(Arc::default(), true).await;
    let (addr, stop, proxy) = start_proxy_with(Backend::new(app), Config::default()).await;
    proxy
        .routes
        .set_claim(ClaimRoute {
            claim: CLAIM.into(),
            token_sha256: token_digest(TOKEN),
            ports: vec![
                ("code".into(), claim_port("code").await),
                ("web".into(), claim_port("web").await),
            ],
        })
        .unwrap();
    proxy
        .routes
        .set_claim(ClaimRoute {
            claim: "other0001".into(),
            token_sha256: token_digest("other"),
            ports: vec![("vnc".into(), claim_port("vnc").await)],
        })
        .unwrap();
    (addr, stop, proxy)
}

/// `GET path` with Host `host` and `headers` on `client`: status, headers, body.
async fn send(
    client: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, hyper::HeaderMap, String) {
    let mut req = Request::builder().uri(path).header(header::HOST, host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    client.ready().await.unwrap();
    let resp = client
        .send_request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claims_port_answers_to_its_token_with_the_prefix_stripped() {
    let (addr, stop, proxy) = claims_proxy().await;
    let routes = proxy.routes.clone();
    let mut c = client_to(addr).await;
    let at = |p: &str| format!("/code/{CLAIM}{p}");
    let ip = "127.0.0.1";
    let set_at = routes.claim_last_seen(CLAIM).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // No token, a wrong one: 401, and the claim does not count as used.
    for headers in [
        &[][..],
        &[("x-racer-claim-token", "wrong")][..],
        &[("authorization", "Bearer wrong")][..],
        &[("x-racer-claim-token", "other")][..],
    ] {
        let (status, h, body) = send(&mut c, ip, &at("/"), headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer realm=\"racer claim\"");
        assert!(body.contains("token"), "{body}");
    }
    assert_eq!(routes.claim_last_seen(CLAIM), Some(set_at));

    // The token in a header: the container sees the path without the prefix, the prefix in
    // X-Forwarded-Prefix, and no token.
    let before = Instant::now();
    let (status, h, body) = send(
        &mut c,
        ip,
        &at("/index.html?x=1"),
        &[("x-racer-claim-token", TOKEN)],
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "code /index.html?x=1")
    );
    assert_eq!(h["x-seen-x-forwarded-prefix"], "/code/4f9c2a1b0d");
    assert_eq!(h["x-seen-x-racer-claim-token"], "-");
    assert!(routes.claim_last_seen(CLAIM).unwrap() >= before, "used");

    // As a bearer token: taken off too.
    let bearer = format!("Bearer {TOKEN}");
    let (status, h, body) = send(
        &mut c,
        ip,
        &format!("/web/{CLAIM}/"),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "web /"));
    assert_eq!(h["x-seen-authorization"], "-");

    // The bare prefix gets its slash.
    let token = [("x-racer-claim-token", TOKEN)];
    let (status, h, _) = send(&mut c, ip, &at("?a=b"), &token).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(h[header::LOCATION], "/code/4f9c2a1b0d/?a=b");

    // A port another claim has, one no claim has, a claim never handed out: 404.
    let (status, _, body) = send(&mut c, ip, &format!("/vnc/{CLAIM}/"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no port named \"vnc\""), "{body}");
    let (status, _, _) = send(&mut c, ip, &format!("/jupyter/{CLAIM}/"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = send(&mut c, ip, "/code/0123456789abcdef/", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no claim"), "{body}");
    // Malformed percent-encoding in the path and query: no harm done.
    let (status, _, _) = send(&mut c, ip, &at("/%zz%?token=%e2%28%a1%"), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Apps route as before: by path, and by Host whatever the path.
    let (status, _, body) = send(&mut c, ip, "/apps/web/", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "hello from the replica")
    );
    let (status, _, body) = send(&mut c, "web.localhost", &at("/"), &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "hello from the replica")
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_query_becomes_a_cookie_for_every_port_of_the_claim() {
    let (addr, stop, _proxy) = claims_proxy().await;
    let mut c = client_to(addr).await;
    let ip = "127.0.0.1";
    let first = format!("/code/{CLAIM}/a/b?x=1&token={TOKEN}&y=2");
    let (status, h, _) = send(&mut c, ip, &first, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = h[header::LOCATION].to_str().unwrap();
    assert_eq!(location, "/code/4f9c2a1b0d/a/b?x=1&y=2");
    assert!(!location.contains(TOKEN));
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    let cookies: Vec<&str> = h
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        [
            "racer_claim_4f9c2a1b0d=s3cret-token; Path=/code/4f9c2a1b0d; HttpOnly; SameSite=Lax",
            "racer_claim_4f9c2a1b0d=s3cret-token; Path=/web/4f9c2a1b0d; HttpOnly; SameSite=Lax",
        ]
    );

    // The browser follows with the cookie: through, and the container does not see it (its
    // own cookies it does).
    let cookie = format!("theme=dark; racer_claim_{CLAIM}={TOKEN}");
    let (status, h, body) = send(&mut c, ip, location, &[("cookie", &cookie)]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "code /a/b?x=1&y=2")
    );
    assert_eq!(h["x-seen-cookie"], "theme=dark");
    // The same cookie opens the claim's other port.
    let web = format!("/web/{CLAIM}/");
    let (status, _, body) = send(&mut c, ip, &web, &[("cookie", &cookie)]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "web /"));
    // With the cookie, a `token` parameter that is not the claim's is the app's own.
    let own = format!("/code/{CLAIM}/lab?token=jupyter");
    let (status, _, body) = send(&mut c, ip, &own, &[("cookie", &cookie)]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "code /lab?token=jupyter")
    );

    // A wrong token in the query, a wrong cookie: 401, no cookie set.
    let (status, h, _) = send(&mut c, ip, &format!("/code/{CLAIM}/?token=nope"), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(h.get(header::SET_COOKIE).is_none());
    let wrong = format!("racer_claim_{CLAIM}=nope");
    let (status, _, _) = send(&mut c, ip, &web, &[("cookie", &wrong)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A huge cookie: refused like any other wrong one.
    let huge = format!("racer_claim_{CLAIM}={}", "%".repeat(60_000));
    let (status, _, _) = send(&mut c, ip, &web, &[("cookie", &huge)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_claim_answers_404_at_once() {
    let (addr, stop, proxy) = claims_proxy().await;
    let mut c = client_to(addr).await;
    let token = [("x-racer-claim-token", TOKEN)];
    let path = format!("/code/{CLAIM}/");
    assert_eq!(
        send(&mut c, "127.0.0.1", &path, &token).await.0,
        StatusCode::OK
    );
    proxy.routes.remove_claim(CLAIM);
    // The same keep-alive connection, the very next request.
    assert_eq!(
        send(&mut c, "127.0.0.1", &path, &token).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(proxy.routes.claim_last_seen(CLAIM).is_none());
    // retain_claims drops the others.
    let other = [("x-racer-claim-token", "other")];
    let vnc = "/vnc/other0001/";
    assert_eq!(
        send(&mut c, "127.0.0.1", vnc, &other).await.0,
        StatusCode::OK
    );
    proxy.routes.retain_claims(&Default::default());
    assert_eq!(
        send(&mut c, "127.0.0.1", vnc, &other).await.0,
        StatusCode::NOT_FOUND
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_passes_through_a_claim_route() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, stop, proxy) = claims_proxy().await;
    let handshake = |token: &str| {
        format!(
            "GET /code/{CLAIM}/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: racer_claim_{CLAIM}={token}\r\n\r\n"
        )
    };
    async fn head(s: &mut tokio::net::TcpStream) -> String {
        let mut buf = Vec::new();
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut b = [0u8; 1];
            assert_eq!(
                s.read(&mut b).await.unwrap(),
                1,
                "the connection closed early"
            );
            buf.push(b[0]);
        }
        String::from_utf8(buf).unwrap()
    }
    // Without the token: no upgrade.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(handshake("nope").as_bytes()).await.unwrap();
    assert!(head(&mut s).await.starts_with("HTTP/1.1 401"));

    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(handshake(TOKEN).as_bytes()).await.unwrap();
    let h = head(&mut s).await.to_ascii_lowercase();
    assert!(h.starts_with("http/1.1 101"), "{h}");
    assert!(
        h.contains("x-seen-x-forwarded-prefix: /code/4f9c2a1b0d"),
        "{h}"
    );
    assert!(h.contains("x-seen-cookie: -"), "{h}");
    for msg in [&b"hello"[..], b"through the claim", &[0u8, 255, 13, 10]] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .expect("the echo")
            .unwrap();
        assert_eq!(back, msg);
    }
    // An open WebSocket keeps the claim in use.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let t = Instant::now();
    assert!(proxy.routes.claim_last_seen(CLAIM).unwrap() >= t);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // In use, it is seen now; closed, when it closed.
        let seen = proxy.routes.claim_last_seen(CLAIM).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        if proxy.routes.claim_last_seen(CLAIM).unwrap() == seen {
            assert!(seen >= t, "seen when it closed");
            break;
        }
        assert!(Instant::now() < deadline, "still in use after the close");
    }
    stop.cancel();
}

/// A replica that answers each request with a head promising a body, then closes the
/// connection without sending any of it (as one killed between its head and its body does),
/// counting the requests it took.
async fn dying_replica(taken: Arc<AtomicUsize>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let taken = taken.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut chunk = [0u8; 1024];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                taken.fetch_add(1, Ordering::SeqCst);
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 22\r\n\r\n")
                    .await;
                // dropped: the body never comes
            });
        }
    });
    addr
}

/// A GET whose replica died after its head and before any of its body reached the client is
/// sent to the next replica, as one whose replica refused the connection is: nothing of the
/// first answer was passed on (the proxy holds the head until the first body bytes), so the
/// client sees only the second. It was a 502 (`f5_a_replica_dying_under_load_costs_no_request`
/// met it once in a full suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_whose_replica_dies_before_its_body_goes_to_the_next_replica() {
    let taken = Arc::new(AtomicUsize::new(0));
    let dying = dying_replica(taken.clone()).await;
    let good = replica(Arc::new(AtomicUsize::new(0)), true).await;
    let routes = Routes::default();
    routes.set("web", vec![Backend::new(dying), Backend::new(good)]);
    let proxy = Proxy::new(routes, Config::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
    tokio::spawn(proxy.clone().serve(listener, stop.clone(), tracker));
    for i in 0..6 {
        let (status, body) = fetch(client_to(addr).await).await;
        assert_eq!(status, StatusCode::OK, "request {i}: {body:?}");
        assert_eq!(&body[..], b"hello from the replica", "request {i}");
    }
    assert!(
        taken.load(Ordering::SeqCst) >= 1,
        "no request went to the dying replica first"
    );
    stop.cancel();
}
