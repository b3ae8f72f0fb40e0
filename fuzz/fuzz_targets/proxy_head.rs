//! The proxy's request handling (`Proxy::serve_connection`, the function every accepted
//! connection runs): the input is what a client sends on one connection, written over an
//! in-memory pipe; the client reads the answers until the proxy is quiet, then closes its write
//! side and reads the rest. The route table has an app `web` and a claim `fuzzclaim01` (port `http`, token
//! `fuzz-token`), both in front of an in-process replica that answers 200 with what it was sent,
//! or 101 and echoes for an upgrade. Timeouts are short, so a connection that does not end within
//! [`HANG`] after the client closed its side is a hang, reported as a panic.
#![no_main]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use racer_proxy::{token_digest, Backend, ClaimRoute, Config, Proxy, Routes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// How long one connection may take, in all, before it counts as a hang.
const HANG: Duration = Duration::from_secs(8);
/// Driver polls without a new byte from the proxy after which the client closes its side.
const QUIET_POLLS: u32 = 64;

struct World {
    rt: tokio::runtime::Runtime,
    proxy: Arc<Proxy>,
}

/// The replica: 200 with the request line and body it got, or 101 and an echo for an upgrade.
async fn replica(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let wants_upgrade = req.headers().contains_key(hyper::header::UPGRADE);
    if wants_upgrade {
        let on = hyper::upgrade::on(req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 4096];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert(hyper::header::CONNECTION, "upgrade".parse().expect("valid"));
        r.headers_mut()
            .insert(hyper::header::UPGRADE, "websocket".parse().expect("valid"));
        return Ok(r);
    }
    let line = format!("{} {}\n", req.method(), req.uri());
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::from_static(b"(body failed)"),
    };
    let mut out = line.into_bytes();
    out.extend_from_slice(&body);
    Ok(Response::new(Full::new(Bytes::from(out))))
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let upstream: SocketAddr = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the replica");
            let addr = listener.local_addr().expect("the replica's address");
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service_fn(replica))
                            .with_upgrades()
                            .await;
                    });
                }
            });
            addr
        });
        let routes = Routes::default();
        routes.set("web", vec![Backend::new(upstream)]);
        routes.set("down", vec![]);
        routes
            .set_claim(ClaimRoute {
                claim: "fuzzclaim01".into(),
                token_sha256: token_digest("fuzz-token"),
                ports: vec![("http".into(), upstream)],
            })
            .expect("a valid claim");
        let config = Config {
            upstream_timeout: Duration::from_secs(2),
            header_timeout: Duration::from_secs(2),
            queue_timeout: Duration::from_secs(1),
            eject_for: Duration::from_millis(1),
            ..Config::default()
        };
        let proxy = Proxy::new(routes, config);
        World { rt, proxy }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let proxy = w.proxy.clone();
    let input = data.to_vec();
    w.rt.block_on(async move {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let peer: SocketAddr = "203.0.113.7:40000".parse().expect("an address");
        let serve = proxy.serve_connection(server, peer, CancellationToken::new());
        let talk = async move {
            let (mut rx, mut tx) = tokio::io::split(&mut client);
            let _ = tx.write_all(&input).await;
            // Read what the proxy answers until it is quiet: no new byte while the runtime's
            // I/O driver is polled `QUIET_POLLS` times in a row (each `yield_now` is one poll).
            // Closing the write side at once would not do: hyper drops a connection whose
            // client half-closes mid-request, before the request is routed.
            let mut answer = Vec::new();
            let mut buf = vec![0u8; 16 * 1024];
            let mut idle = 0;
            let mut closed = false;
            while idle < QUIET_POLLS {
                tokio::select! {
                    biased;
                    r = rx.read(&mut buf) => match r {
                        Ok(0) | Err(_) => {
                            closed = true;
                            break;
                        }
                        Ok(n) => {
                            answer.extend_from_slice(&buf[..n]);
                            idle = 0;
                        }
                    },
                    _ = tokio::task::yield_now() => idle += 1,
                }
            }
            let _ = tx.shutdown().await;
            if !closed {
                let _ = rx.read_to_end(&mut answer).await;
            }
            answer
        };
        let all = async { tokio::join!(serve, talk) };
        if tokio::time::timeout(HANG, all).await.is_err() {
            panic!("the connection did not end {HANG:?} after the client closed it");
        }
    });
});
