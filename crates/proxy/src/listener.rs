//! Accepting connections: one accept loop ([`Proxy::serve`]) or one event loop per thread
//! ([`Proxy::serve_threads`]) with the hand-over of new connections to the least loaded thread.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::framing::{Follower, Framing, Sniffed};
use crate::headers::peer_ip_value;
use crate::proxy::{Client, Proxy};
use crate::upstream;

impl Proxy {
    /// Serves connections from `listener` until `shutdown`; connections are tracked.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let Some((stream, peer)) = accept(&listener, &shutdown).await else {
                return;
            };
            self.spawn_connection(stream, peer, &shutdown, &tracker, None, false);
        }
    }

    /// Serves one client connection in a task on the current runtime (over TLS when `secure`:
    /// the handshake is done in that task, within the header timeout); `load` (counted up by the
    /// caller when it chose this thread) is counted down when the connection ends.
    fn spawn_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
        load: Option<Arc<AtomicUsize>>,
        secure: bool,
    ) {
        let _ = stream.set_nodelay(true);
        // One client address holds at most so many connections: more are told so and closed.
        let Some(slot) = SourceSlot::take(self, peer.ip()) else {
            tracker.spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let _ = stream
                    .write_all(b"HTTP/1.1 429 Too Many Requests\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 39\r\n\r\ntoo many connections from your address\n")
                    .await;
                let _ = stream.shutdown().await;
            });
            if let Some(l) = load {
                l.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        };
        let me = self.clone();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
            if secure {
                let accepted = match me.routes.tls.acceptor() {
                    Some(acceptor) => {
                        tokio::time::timeout(me.config.header_timeout, acceptor.accept(stream))
                            .await
                    }
                    None => Ok(Err(std::io::Error::other("TLS is unavailable"))),
                };
                match accepted {
                    Ok(Ok(tls)) => me.serve_connection_as(tls, peer, true, stop).await,
                    // A failed or slow handshake (no certificate for that name, not TLS at all,
                    // a scanner): the connection is closed; nothing to answer in HTTP.
                    Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            } else {
                me.serve_connection_as(stream, peer, false, stop).await;
            }
            if let Some(l) = load {
                l.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }

    /// Serves one client connection over `io` until the client closes it or `shutdown` (then
    /// in-flight requests get up to 10 s): HTTP/1.1 with keep-alive and upgrades, under the
    /// header timeout and the request head limit of the proxy's [`Config`](crate::Config), as
    /// plain HTTP. `peer` is the client's address (`X-Forwarded-For`). The per-source connection
    /// limit is the caller's (the accept loops'); `io` may be any byte stream, which is how the
    /// fuzz target drives the proxy over an in-memory pipe.
    pub async fn serve_connection<I>(
        self: Arc<Self>,
        io: I,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_connection_as(io, peer, false, shutdown).await;
    }

    /// Serves HTTP/1.1 on one connection (plain or TLS) until it ends or `stop`, which drains it.
    async fn serve_connection_as<I>(
        self: Arc<Self>,
        io: I,
        peer: SocketAddr,
        secure: bool,
        stop: CancellationToken,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let header_timeout = self.config.header_timeout;
        let max_head = self.config.max_head_bytes.max(8192);
        let framing = Arc::new(Framing::default());
        let io = TokioIo::new(Sniffed::new(io, Follower::new(max_head, framing.clone())));
        // The client's address, formatted once per connection.
        let client = Arc::new(Client {
            ip: peer_ip_value(peer),
            secure,
            framing,
        });
        let me = self;
        let svc = service_fn(move |req| {
            let me = me.clone();
            let client = client.clone();
            async move { Ok::<_, Infallible>(me.route(req, &client).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(max_head)
            .max_header_size(max_head)
            // Over TLS, a response's head and body go out as one TLS record (one seal, one
            // write) rather than one record per piece: hyper flattens them into one buffer.
            .writev(!secure)
            .serve_connection(io, svc)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
            }
        }
    }

    /// Serves on `threads` threads, each with its own single-threaded runtime, as nginx's
    /// workers do: a connection lives on one thread with its upstream connections, so a
    /// request never hops between threads (a multi-threaded runtime moves wake-ups across its
    /// workers). Every thread accepts from the same listening socket; a thread that accepts a
    /// connection while another serves fewer hands it over (once, at accept), because a burst
    /// of new connections otherwise lands on whichever thread woke first. Each thread drains
    /// its connections on `shutdown`; `tracker` holds one task per thread, done when the
    /// thread is.
    pub fn serve_threads(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        threads: usize,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<()> {
        self.serve_threads_with_tls(listener, None, threads, shutdown, tracker)
    }

    /// As [`Proxy::serve_threads`], with a second listener that speaks TLS (certificates by SNI
    /// from [`Proxy::tls`]) when `tls` is given: every thread accepts from both, so a
    /// connection's thread, its upstream connections and its share of each replica's
    /// concurrency are the same whichever way it came.
    pub fn serve_threads_with_tls(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        tls: Option<std::net::TcpListener>,
        threads: usize,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        if let Some(l) = &tls {
            l.set_nonblocking(true)?;
        }
        let threads = threads.max(1);
        self.threads.store(threads, Ordering::Relaxed);
        let loads: Arc<Vec<Arc<AtomicUsize>>> =
            Arc::new((0..threads).map(|_| Arc::default()).collect());
        let mut inboxes = Vec::with_capacity(threads);
        let mut senders = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Handoff>();
            senders.push(tx);
            inboxes.push(rx);
        }
        let senders = Arc::new(senders);
        for (me_index, mut inbox) in inboxes.into_iter().enumerate() {
            let listener = listener.try_clone()?;
            let tls_listener = tls.as_ref().map(|l| l.try_clone()).transpose()?;
            let me = self.clone();
            let stop = shutdown.clone();
            let (loads, senders) = (loads.clone(), senders.clone());
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("racer-proxy-{me_index}"))
                .spawn(move || {
                    upstream::use_shard(me_index);
                    rt.block_on(async move {
                        let listeners = TcpListener::from_std(listener).and_then(|plain| {
                                Ok((plain, tls_listener.map(TcpListener::from_std).transpose()?))
                            });
                        let (listener, tls_listener) = match listeners {
                            Ok(l) => l,
                            Err(e) => {
                                tracing::error!(error = %e, "proxy thread cannot listen");
                                return;
                            }
                        };
                        let local = TaskTracker::new();
                        loop {
                            tokio::select! {
                                accepted = accept_either(&listener, tls_listener.as_ref(), &stop) => {
                                    let Some((stream, peer, secure)) = accepted else { break };
                                    // Counted at once, so that the next accept (on any thread)
                                    // sees it even before the chosen thread takes it.
                                    let target = least_loaded(&loads, me_index);
                                    loads[target].fetch_add(1, Ordering::Relaxed);
                                    if target != me_index {
                                        let sent = stream
                                            .into_std()
                                            .ok()
                                            .is_some_and(|std| senders[target].send((std, peer, secure)).is_ok());
                                        if !sent {
                                            // That thread is stopping: the connection closes.
                                            loads[target].fetch_sub(1, Ordering::Relaxed);
                                        }
                                        continue;
                                    }
                                    me.spawn_connection(stream, peer, &stop, &local, Some(loads[me_index].clone()), secure);
                                }
                                Some((std, peer, secure)) = inbox.recv() => {
                                    match TcpStream::from_std(std) {
                                        Ok(stream) => me.spawn_connection(stream, peer, &stop, &local, Some(loads[me_index].clone()), secure),
                                        Err(e) => {
                                            loads[me_index].fetch_sub(1, Ordering::Relaxed);
                                            tracing::warn!(error = %e, "proxy handoff failed");
                                        }
                                    }
                                }
                            }
                        }
                        local.close();
                        local.wait().await;
                    });
                    let _ = done_tx.send(());
                })?;
            tracker.spawn(async move {
                let _ = done_rx.await;
            });
        }
        Ok(())
    }
}

/// A connection accepted on one proxy thread and handed to another (and whether it is TLS's).
type Handoff = (std::net::TcpStream, SocketAddr, bool);

/// The next connection from the plain listener or the TLS one (`true`), or `None` on
/// `shutdown`.
async fn accept_either(
    plain: &TcpListener,
    tls: Option<&TcpListener>,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr, bool)> {
    let Some(tls) = tls else {
        return accept(plain, shutdown).await.map(|(s, p)| (s, p, false));
    };
    tokio::select! {
        a = accept(plain, shutdown) => a.map(|(s, p)| (s, p, false)),
        a = accept(tls, shutdown) => a.map(|(s, p)| (s, p, true)),
    }
}

/// The next connection, or `None` on `shutdown`. Accept errors (out of file descriptors) are
/// logged and retried after a pause.
async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = listener.accept() => match r {
                Ok(x) => return Some(x),
                Err(e) => {
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// The thread that should serve a new connection: `me` unless another serves fewer.
fn least_loaded(loads: &[Arc<AtomicUsize>], me: usize) -> usize {
    let mine = loads[me].load(Ordering::Relaxed);
    let (best, load) = loads
        .iter()
        .enumerate()
        .map(|(i, l)| (i, l.load(Ordering::Relaxed)))
        .min_by_key(|(_, l)| *l)
        .unwrap_or((me, mine));
    if load < mine {
        best
    } else {
        me
    }
}

/// A connection's place in its source address's count, given back when the connection ends.
struct SourceSlot {
    proxy: Arc<Proxy>,
    ip: std::net::IpAddr,
}

impl SourceSlot {
    fn take(proxy: &Arc<Proxy>, ip: std::net::IpAddr) -> Option<SourceSlot> {
        let limit = proxy.config.max_connections_per_source;
        let mut m = proxy.sources.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            proxy: proxy.clone(),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut m = self.proxy.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_goes_to_the_least_loaded_thread_else_stays() {
        let loads = |v: &[usize]| -> Vec<Arc<AtomicUsize>> {
            v.iter().map(|n| Arc::new(AtomicUsize::new(*n))).collect()
        };
        assert_eq!(least_loaded(&loads(&[0, 0]), 1), 1, "a tie stays");
        assert_eq!(least_loaded(&loads(&[3, 2]), 0), 1);
        assert_eq!(least_loaded(&loads(&[2, 3]), 0), 0);
        assert_eq!(least_loaded(&loads(&[5, 1, 0, 4]), 3), 2);
    }
}
