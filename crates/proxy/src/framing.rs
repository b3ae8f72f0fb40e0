//! Ambiguous request framing, seen on the bytes before hyper parses them. A request with both
//! `Content-Length` and `Transfer-Encoding` is how requests are smuggled past a proxy that frames
//! it one way to a server that frames it the other. hyper drops the length, reads the body as
//! chunked and closes the connection afterwards (RFC 9112 §6.3 allows that), but the length is
//! gone from the head it hands over, so the proxy could not say so. racer refuses such a request
//! with a 400 instead ([`Framing::ambiguous`]): [`Sniffed`] wraps a client connection's read side,
//! follows the framing of every request on it (head, then body by length or by chunks), and
//! records, per request head in order, whether it was ambiguous.
//!
//! It only reads along: the bytes hyper sees are untouched. Anything it cannot follow (a head
//! over the size limit, a malformed chunk, an upgrade) stops it, as hyper then rejects the
//! request or the connection stops being HTTP.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the reader learnt of each request head on one connection, in order.
#[derive(Debug, Default)]
pub(crate) struct Framing {
    verdicts: Mutex<VecDeque<bool>>,
}

impl Framing {
    /// Whether the next request (the one hyper hands over now) came with both `Content-Length`
    /// and `Transfer-Encoding`.
    pub(crate) fn ambiguous(&self) -> bool {
        self.lock().pop_front().unwrap_or(false)
    }

    fn push(&self, ambiguous: bool) {
        let mut v = self.lock();
        // A client that pipelines without reading answers does not grow this without bound:
        // hyper reads no further than its buffer, so this stays a few entries long.
        if v.len() < 1024 {
            v.push_back(ambiguous);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<bool>> {
        self.verdicts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where the reader is in the byte stream.
#[derive(Debug)]
enum State {
    /// In a request head (the bytes so far).
    Head(Vec<u8>),
    /// In a body of known length: bytes left.
    Body(u64),
    /// In a chunked body: a chunk-size line (the bytes so far).
    ChunkSize(Vec<u8>),
    /// In a chunk's data: bytes left, then its CRLF.
    ChunkData(u64),
    /// The CRLF after a chunk's data: bytes left of it.
    ChunkEnd(u8),
    /// The trailer section after the last chunk (the current line so far).
    Trailers(Vec<u8>),
    /// No longer followed (upgrade, or something hyper refuses).
    Opaque,
}

/// The framing follower: fed every byte the client sends, in order.
#[derive(Debug)]
pub(crate) struct Follower {
    state: State,
    max_head: usize,
    framing: Arc<Framing>,
}

impl Follower {
    pub(crate) fn new(max_head: usize, framing: Arc<Framing>) -> Follower {
        Follower {
            state: State::Head(Vec::new()),
            max_head,
            framing,
        }
    }

    /// Follows `bytes`, the next ones the client sent.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            bytes = match &mut self.state {
                State::Opaque => return,
                State::Head(buf) => {
                    if buf.is_empty() {
                        // Empty lines before a request line are allowed (RFC 9112 §2.2).
                        let skip = bytes.iter().take_while(|b| **b == b'\r' || **b == b'\n');
                        bytes = &bytes[skip.count()..];
                        if bytes.is_empty() {
                            return;
                        }
                    }
                    let before = buf.len();
                    buf.extend_from_slice(bytes);
                    // The head's end may straddle the previous read: look from 3 bytes back.
                    let from = before.saturating_sub(3);
                    match find(&buf[from..], b"\r\n\r\n").map(|i| from + i + 4) {
                        Some(end) => {
                            let used = end - before;
                            let head = std::mem::take(buf);
                            self.state = self.after_head(&head[..end]);
                            &bytes[used..]
                        }
                        None => {
                            if buf.len() > self.max_head {
                                self.state = State::Opaque;
                            }
                            return;
                        }
                    }
                }
                State::Body(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::Head(Vec::new());
                    }
                    &bytes[n..]
                }
                State::ChunkSize(line) => match bytes.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        line.extend_from_slice(&bytes[..i]);
                        self.state = match chunk_size(line) {
                            Some(0) => State::Trailers(Vec::new()),
                            Some(n) => State::ChunkData(n),
                            None => State::Opaque,
                        };
                        &bytes[i + 1..]
                    }
                    None => {
                        line.extend_from_slice(bytes);
                        if line.len() > 1024 {
                            self.state = State::Opaque;
                        }
                        return;
                    }
                },
                State::ChunkData(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::ChunkEnd(2);
                    }
                    &bytes[n..]
                }
                State::ChunkEnd(left) => {
                    let expect: &[u8] = if *left == 2 { b"\r\n" } else { b"\n" };
                    let n = usize::from(*left).min(bytes.len());
                    if bytes[..n] != expect[..n] {
                        self.state = State::Opaque;
                        return;
                    }
                    *left -= n as u8;
                    if *left == 0 {
                        self.state = State::ChunkSize(Vec::new());
                    }
                    &bytes[n..]
                }
                State::Trailers(line) => match bytes.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        line.extend_from_slice(&bytes[..i]);
                        let empty = line.iter().all(|b| *b == b'\r');
                        line.clear();
                        if empty {
                            self.state = State::Head(Vec::new());
                        } else if line.capacity() > self.max_head {
                            self.state = State::Opaque;
                        }
                        &bytes[i + 1..]
                    }
                    None => {
                        line.extend_from_slice(bytes);
                        if line.len() > self.max_head {
                            self.state = State::Opaque;
                        }
                        return;
                    }
                },
            };
        }
    }

    /// Records the verdict on one complete head and says how its body is framed.
    fn after_head(&self, head: &[u8]) -> State {
        let mut length: Option<Option<u64>> = None;
        let mut chunked = None;
        let mut upgrade = false;
        let mut lines = head.split(|b| *b == b'\n');
        let request_line = lines.next().unwrap_or_default();
        let connect = request_line.starts_with(b"CONNECT ");
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"content-length") {
                length = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok()),
                );
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = value.rsplit(|b| *b == b',').next().map(trim);
                chunked = Some(last.is_some_and(|l| l.eq_ignore_ascii_case(b"chunked")));
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                upgrade = true;
            }
        }
        let ambiguous = length.is_some() && chunked.is_some();
        self.framing.push(ambiguous);
        match (chunked, length) {
            // hyper closes the connection after an ambiguous request, and after an upgrade the
            // bytes are not HTTP: nothing more to follow.
            _ if ambiguous || upgrade || connect => State::Opaque,
            (Some(true), _) => State::ChunkSize(Vec::new()),
            (Some(false), _) => State::Opaque,
            (None, Some(Some(0))) | (None, None) => State::Head(Vec::new()),
            (None, Some(Some(n))) => State::Body(n),
            (None, Some(None)) => State::Opaque,
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A chunk-size line's size (hex, extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let hex = trim(line.split(|b| *b == b';').next().unwrap_or_default());
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// A client connection whose incoming bytes a [`Follower`] reads along.
pub(crate) struct Sniffed<I> {
    inner: I,
    follower: Follower,
}

impl<I> Sniffed<I> {
    pub(crate) fn new(inner: I, follower: Follower) -> Sniffed<I> {
        Sniffed { inner, follower }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Sniffed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            me.follower.feed(&buf.filled()[before..]);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Sniffed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdicts for `stream` fed in pieces of `step` bytes.
    fn verdicts(stream: &[u8], step: usize) -> Vec<bool> {
        let framing = Arc::new(Framing::default());
        let mut f = Follower::new(64 * 1024, framing.clone());
        for piece in stream.chunks(step) {
            f.feed(piece);
        }
        let v = framing.lock().iter().copied().collect();
        v
    }

    #[test]
    fn follows_lengths_chunks_and_pipelines_at_any_split() {
        let stream = b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n\
GET /z HTTP/1.1\r\nHost: a\r\n\r\n";
        for step in [1, 2, 3, 7, 64, stream.len()] {
            assert_eq!(verdicts(stream, step), [false; 4], "step {step}");
        }
    }

    #[test]
    fn a_length_with_chunked_is_ambiguous_in_either_order() {
        let a = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
        let b =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n";
        for step in [1, 5, 1000] {
            // After an ambiguous request nothing is followed: hyper closes the connection.
            assert_eq!(verdicts(a, step), [true], "step {step}");
            assert_eq!(verdicts(b, step), [true], "step {step}");
        }
        // A body that merely mentions the headers is a body.
        let c = b"POST / HTTP/1.1\r\nContent-Length: 34\r\n\r\nTransfer-Encoding: chunked\r\n\r\n1234GET / HTTP/1.1\r\n\r\n";
        assert_eq!(verdicts(c, 3), [false, false]);
    }

    #[test]
    fn stops_following_what_hyper_refuses_or_upgrades() {
        let upgrade = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(verdicts(upgrade, 4), [false]);
        let bad_chunk =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(verdicts(bad_chunk, 4), [false]);
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 70_000]].concat();
        assert_eq!(verdicts(&huge, 4096), Vec::<bool>::new());
    }

    #[test]
    fn the_verdict_queue_answers_in_order_and_false_when_empty() {
        let framing = Framing::default();
        framing.push(true);
        framing.push(false);
        assert!(framing.ambiguous());
        assert!(!framing.ambiguous());
        assert!(!framing.ambiguous());
    }
}
