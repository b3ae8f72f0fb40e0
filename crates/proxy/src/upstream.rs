//! Keep-alive HTTP/1.1 connections to the replicas, and the response body that streams from them.
//!
//! Each replica has its own small pool of idle connections. A request takes one out (or connects),
//! and the task serving the client drives that connection itself, while sending the request and
//! while the response body streams to the client; when the body has ended, the connection goes
//! back to the pool. So a proxied request stays in one task: there is no connection task to hand
//! it to and no second wake-up per request, and no lock is held except to push or pop the pool.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::claims::InUse;

/// What goes upstream: nothing (a request that can be sent again), or the client's body as it
/// arrives.
pub(crate) type RequestBody = Either<Empty<Bytes>, Incoming>;

/// Boxed once per connection, so that taking it from the pool and putting it back moves a pointer.
type Conn = Box<Connection<TokioIo<TcpStream>, RequestBody>>;

/// Idle connections kept per replica, at most.
const MAX_IDLE: usize = 256;
/// An idle connection unused for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to a replica may take.
/// How long what the proxy sends a replica may go unacknowledged before the connection counts as
/// dead (`TCP_USER_TIMEOUT`). A replica's kernel acknowledges at once, busy or not; silence means
/// its address stopped answering (the container left the network, was killed in a way that sent
/// no reset, its host went away). Without it, a request written on a kept-alive connection to such
/// a replica waited for its answer until the upstream timeout (60 s); now it fails within this
/// and a request without a body goes to another replica.
pub(crate) const UNACKED_TIMEOUT: Duration = Duration::from_millis(750);

/// Sets [`UNACKED_TIMEOUT`] on a connection to a replica (best effort: not every platform has it).
fn unanswered_is_dead(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(UNACKED_TIMEOUT));
}

/// How long a connect to a replica may take. A replica answers a SYN in microseconds (the kernel
/// does, even on a machine whose cores are saturated); one that has not in half a second is gone
/// (its address no longer answers: the kernel is still asking the bridge for a MAC that left, and
/// gives up only after ~3 s) or dropped the SYN (its accept queue overflowed; the kernel would
/// retry after 1 s). Either way another replica answers sooner. It was 2 s: every request sent to
/// a replica in that state waited 2 s before its retry (issue 19's stalls past 2 s).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a request could not be sent to a replica or its response headers not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// Connecting to the replica failed.
    #[error("connect to the replica")]
    Connect(#[source] std::io::Error),
    /// Connecting to the replica took longer than [`CONNECT_TIMEOUT`].
    #[error("connect to the replica: timed out")]
    ConnectTimeout,
    /// The HTTP/1.1 handshake, the request or the response headers failed.
    #[error("exchange with the replica")]
    Http(#[source] hyper::Error),
}

impl UpstreamError {
    /// Whether the replica could not be connected to at all (refused, unreachable, timed out):
    /// it takes no new connections, so the proxy stops sending it requests at once.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect(_) | UpstreamError::ConnectTimeout
        )
    }
}

/// Pool shards, at most: proxy threads beyond this many share shards (correct, but a shared
/// connection may wake another thread's event loop).
pub(crate) const SHARDS: usize = 16;

thread_local! {
    /// This proxy thread's shard in every pool (0 outside the proxy's own threads).
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread use shard `index` (modulo [`SHARDS`]) of every pool: called once by
/// each proxy thread, before it serves.
pub(crate) fn use_shard(index: usize) {
    SHARD.with(|s| s.set(index % SHARDS));
}

/// Idle keep-alive connections to one replica, one shard per proxy thread, most recently used
/// last. A connection is registered with the event loop of the thread that opened it, so it is
/// only ever reused on that thread: a connection shared between threads would deliver its
/// readiness to one thread's loop and wake the other's for every response (measured: an extra
/// eventfd write and wake-up for ~40 % of requests with two threads).
#[derive(Default)]
pub(crate) struct Pool {
    shards: [Mutex<VecDeque<Idle>>; SHARDS],
    /// Per shard, the requests this thread may have in flight to the replica at once (its share
    /// of the replica's concurrency limit): made on first use, when the limit is known.
    admits: [OnceLock<Arc<Semaphore>>; SHARDS],
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: usize = self
            .shards
            .iter()
            .map(|q| q.lock().map(|q| q.len()).unwrap_or(0))
            .sum();
        f.debug_struct("Pool").field("idle", &n).finish()
    }
}

struct Idle {
    sender: SendRequest<RequestBody>,
    conn: Conn,
    since: Instant,
}

impl Pool {
    fn shard(&self, index: usize) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free slot under the replica's concurrency limit: `per_thread` requests in
    /// flight from this proxy thread (0: no limit, `None` at once). Waiters are served in
    /// arrival order and counted in `queued` while they wait. The permit goes with the request's
    /// connection and is given back when its response has ended.
    pub(crate) async fn admit(
        &self,
        per_thread: usize,
        queued: &AtomicUsize,
    ) -> Option<OwnedSemaphorePermit> {
        if per_thread == 0 {
            return None;
        }
        let shard = SHARD.with(Cell::get);
        let sem = self.admits[shard].get_or_init(|| Arc::new(Semaphore::new(per_thread)));
        if let Ok(permit) = sem.clone().try_acquire_owned() {
            return Some(permit);
        }
        // Counted down even if the wait is cancelled (the queue timeout).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        queued.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(queued);
        // The semaphore is never closed: acquiring only fails if it were.
        sem.clone().acquire_owned().await.ok()
    }

    fn pop(&self, shard: usize) -> Option<Idle> {
        let mut q = self.shard(shard);
        let idle = q.pop_back()?;
        if idle.since.elapsed() > IDLE_TIMEOUT {
            // The newest is too old, so all are: close them (after the lock is released).
            let stale = std::mem::take(&mut *q);
            drop(q);
            drop(stale);
            return None;
        }
        Some(idle)
    }

    fn push(&self, shard: usize, sender: SendRequest<RequestBody>, conn: Conn) {
        let now = Instant::now();
        let mut q = self.shard(shard);
        let expired = match q.front() {
            Some(oldest)
                if now.duration_since(oldest.since) > IDLE_TIMEOUT || q.len() >= MAX_IDLE =>
            {
                q.pop_front()
            }
            _ => None,
        };
        q.push_back(Idle {
            sender,
            conn,
            since: now,
        });
        drop(q);
        drop(expired);
    }

    /// Sends `req` on an idle connection, or on a new one, and waits for the response headers.
    /// A request that an idle connection closed before sending (it is handed back unsent) goes
    /// out on another connection.
    pub(crate) async fn send(
        self: &Arc<Pool>,
        addr: SocketAddr,
        mut req: Request<RequestBody>,
        mut permit: Option<OwnedSemaphorePermit>,
    ) -> Result<(Response<Incoming>, Lease), UpstreamError> {
        let shard = SHARD.with(Cell::get);
        loop {
            let (mut lease, reused) = match self.pop(shard) {
                Some(idle) => {
                    let mut lease = Lease {
                        sender: idle.sender,
                        conn: Some(idle.conn),
                        pool: self.clone(),
                        shard,
                        permit: None,
                    };
                    if !lease.ready().await {
                        continue;
                    }
                    (lease, true)
                }
                None => (connect(addr, self.clone(), shard).await?, false),
            };
            lease.permit = permit.take();
            match lease.send(req).await {
                Ok(resp) => return Ok((resp, lease)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        req = unsent;
                        permit = lease.permit.take();
                    }
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }
}

async fn connect(addr: SocketAddr, pool: Arc<Pool>, shard: usize) -> Result<Lease, UpstreamError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout)?
        .map_err(UpstreamError::Connect)?;
    let _ = stream.set_nodelay(true);
    unanswered_is_dead(&stream);
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Http)?;
    Ok(Lease {
        sender,
        conn: Some(Box::new(conn)),
        pool,
        shard,
        permit: None,
    })
}

/// Sends an upgrade request (WebSocket) on a connection of its own, driven by a task in
/// `upgrades` until the upgrade is done or the connection closes; it is never pooled.
pub(crate) async fn send_upgrade(
    addr: SocketAddr,
    req: Request<RequestBody>,
    upgrades: &TaskTracker,
) -> Result<Response<Incoming>, UpstreamError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout)?
        .map_err(UpstreamError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Http)?;
    upgrades.spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream upgrade connection failed");
        }
    });
    sender.send_request(req).await.map_err(UpstreamError::Http)
}

/// A connection taken from a pool: driven by whoever holds it, returned when the response ends.
pub(crate) struct Lease {
    sender: SendRequest<RequestBody>,
    /// `None` once the connection has ended.
    conn: Option<Conn>,
    pool: Arc<Pool>,
    /// The pool shard of the thread that opened the connection: where it goes back.
    shard: usize,
    /// The request's slot under the replica's concurrency limit, if it has one.
    permit: Option<OwnedSemaphorePermit>,
}

impl Lease {
    /// Polls the connection once: true if it is open and ready for a request.
    async fn ready(&mut self) -> bool {
        poll_fn(|cx| {
            if !self.drive(cx) {
                return Poll::Ready(false);
            }
            Poll::Ready(matches!(self.sender.poll_ready(cx), Poll::Ready(Ok(()))))
        })
        .await
    }

    /// Polls the connection (it reads and writes only when polled); false once it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        match Pin::new(&mut **conn).poll(cx) {
            Poll::Pending => true,
            Poll::Ready(r) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upstream connection failed");
                }
                // Dropping the connection fails whatever is still waiting on it.
                self.conn = None;
                false
            }
        }
    }

    /// Sends `req` and waits for the response headers, driving the connection meanwhile.
    async fn send(
        &mut self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<RequestBody>>> {
        let mut response = pin!(self.sender.try_send_request(req));
        poll_fn(|cx| {
            // The connection first: it writes the request and reads the response.
            self.drive(cx);
            response.as_mut().poll(cx)
        })
        .await
    }

    /// Back to the pool if the connection is still open.
    fn release(self) {
        if let Some(conn) = self.conn {
            if !self.sender.is_closed() {
                self.pool.push(self.shard, self.sender, conn);
            }
        }
    }
}

/// A response body: a replica's (streamed; its connection is driven while it streams and goes back
/// to its pool at the end) or one of the proxy's own short pages.
pub struct ProxyBody {
    kind: Kind,
    /// A claim's request in progress, until the body is done with.
    _in_use: Option<InUse>,
}

enum Kind {
    Upstream {
        body: Incoming,
        lease: Option<Lease>,
        /// The body's first frame, read before the head went to the client ([`ProxyBody::prefetch`]).
        first: Option<Frame<Bytes>>,
        done: bool,
    },
    Full(Option<Bytes>),
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Upstream { done, .. } => f
                .debug_struct("ProxyBody::Upstream")
                .field("done", done)
                .finish(),
            Kind::Full(b) => f.debug_tuple("ProxyBody::Full").field(b).finish(),
        }
    }
}

impl ProxyBody {
    /// A body streamed from a replica; `lease` is the pooled connection it comes on, if any.
    pub(crate) fn upstream(body: Incoming, lease: Option<Lease>) -> ProxyBody {
        ProxyBody {
            kind: Kind::Upstream {
                body,
                lease,
                first: None,
                done: false,
            },
            _in_use: None,
        }
    }

    /// The body, holding `in_use` until it is dropped.
    pub(crate) fn hold(mut self, in_use: Option<InUse>) -> ProxyBody {
        self._in_use = in_use;
        self
    }

    /// Reads the first frame of a replica's body of known length before the response's head goes
    /// to the client, so that the head and (for most responses, all of) the body leave in one
    /// write: one segment and one wake-up for the client instead of two when the app writes its
    /// head and its body separately. nginx holds a short head back the same way
    /// (`postpone_output`). A body of unknown length (chunked: server-sent events, long polls)
    /// is not waited on, and neither is an empty one: their head goes out at once.
    pub(crate) async fn prefetch(&mut self) -> Result<(), hyper::Error> {
        let Kind::Upstream {
            body,
            lease,
            first,
            done,
        } = &mut self.kind
        else {
            return Ok(());
        };
        if first.is_some() || *done || body.is_end_stream() || body.size_hint().exact().is_none() {
            return Ok(());
        }
        let frame = poll_fn(|cx| {
            if let Some(lease) = lease.as_mut() {
                lease.drive(cx);
            }
            Pin::new(&mut *body).poll_frame(cx)
        })
        .await;
        match frame {
            None => *done = true,
            Some(Ok(f)) => *first = Some(f),
            Some(Err(e)) => return Err(e),
        }
        Ok(())
    }

    /// A body of the proxy's own.
    pub(crate) fn full(bytes: Bytes) -> ProxyBody {
        ProxyBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
            _in_use: None,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Upstream {
                body,
                lease,
                first,
                done,
            } => {
                if let Some(f) = first.take() {
                    return Poll::Ready(Some(Ok(f)));
                }
                if let Some(lease) = lease.as_mut() {
                    lease.drive(cx);
                }
                let frame = Pin::new(body).poll_frame(cx);
                if let Poll::Ready(None) = frame {
                    *done = true;
                }
                frame
            }
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream {
                body, first, done, ..
            } => first.is_none() && (*done || body.is_end_stream()),
            Kind::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream { body, first, .. } => {
                let held = first
                    .as_ref()
                    .and_then(Frame::data_ref)
                    .map_or(0, |d| d.len() as u64);
                let rest = body.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + held);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + held);
                }
                hint
            }
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if let Kind::Upstream {
            body, lease, done, ..
        } = &mut self.kind
        {
            // A connection whose response was not read to the end is closed, not reused.
            if *done || body.is_end_stream() {
                if let Some(lease) = lease.take() {
                    lease.release();
                }
            }
        }
    }
}
