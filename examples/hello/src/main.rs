//! racer's bundled example: a tiny HTTP/1.1 server with keep-alive and a WebSocket echo
//! endpoint, std only (plus signals).
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8000);
    // PID 1 in a container ignores SIGTERM unless it handles it: exit promptly on stop.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .expect("signals");
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            eprintln!("hello: signal {sig}, exiting");
            std::process::exit(0);
        }
    });
    let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
    eprintln!("hello: listening on :{port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = serve(stream);
        });
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(75)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("/").to_owned();
        let version = parts.next().unwrap_or("HTTP/1.0").to_owned();
        let mut content_length = 0usize;
        let mut close = version == "HTTP/1.0";
        let mut upgrade_ws = false;
        let mut ws_key = None;
        let mut seen_headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                seen_headers.push((k.clone(), v.to_owned()));
                if k == "content-length" {
                    content_length = v.parse().unwrap_or(0);
                } else if k == "connection" {
                    close = v.eq_ignore_ascii_case("close");
                } else if k == "upgrade" {
                    upgrade_ws = v.eq_ignore_ascii_case("websocket");
                } else if k == "sec-websocket-key" {
                    ws_key = Some(v.to_owned());
                }
            }
        }
        let mut body = vec![0u8; content_length];
        reader.read_exact(&mut body)?;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path == "/ws" && method == "GET" && upgrade_ws {
            if let Some(key) = ws_key {
                let head = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    ws_accept(&key)
                );
                out.write_all(head.as_bytes())?;
                out.flush()?;
                // An idle WebSocket may stay open longer than an idle keep-alive connection.
                out.set_read_timeout(Some(Duration::from_secs(300)))?;
                return ws_echo(&mut reader, &mut out);
            }
        }
        let (status, payload) = if path == "/headers" {
            // The request's headers as a JSON object (proxy tests read X-Forwarded-*).
            let fields: Vec<String> = seen_headers
                .iter()
                .map(|(k, v)| format!("\"{}\":\"{}\"", json_escape(k), json_escape(v)))
                .collect();
            ("200 OK", format!("{{{}}}\n", fields.join(",")))
        } else {
            route(&method, path, query, &body)
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            payload.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        out.write_all(head.as_bytes())?;
        out.write_all(payload.as_bytes())?;
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// Largest frame payload the echo endpoint accepts (a larger one closes with 1009).
const WS_MAX_PAYLOAD: u64 = 16 << 20;

/// Echoes every text/binary (and continuation) frame back unmasked, answers ping with pong and
/// close with close. Returns when the peer closes or the connection fails.
fn ws_echo(reader: &mut impl Read, out: &mut impl Write) -> std::io::Result<()> {
    loop {
        let mut h = [0u8; 2];
        if let Err(e) = reader.read_exact(&mut h) {
            return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ok(())
            } else {
                Err(e)
            };
        }
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0f;
        let masked = h[1] & 0x80 != 0;
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                reader.read_exact(&mut b)?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                reader.read_exact(&mut b)?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        if len > WS_MAX_PAYLOAD {
            ws_write(out, true, 0x8, &1009u16.to_be_bytes())?;
            return Ok(());
        }
        let mut mask = [0u8; 4];
        if masked {
            reader.read_exact(&mut mask)?;
        }
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload)?;
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        match opcode {
            // Continuation, text, binary: echo as received (fragmentation preserved).
            0x0..=0x2 => ws_write(out, fin, opcode, &payload)?,
            // Close: answer with the same status code, then hang up.
            0x8 => {
                let code = payload.get(..2).unwrap_or(&[]);
                let _ = ws_write(out, true, 0x8, code);
                return Ok(());
            }
            0x9 => ws_write(out, true, 0xA, &payload)?,
            // Pong: nothing to do.
            0xA => {}
            // Unknown opcode: protocol error.
            _ => {
                ws_write(out, true, 0x8, &1002u16.to_be_bytes())?;
                return Ok(());
            }
        }
    }
}

/// Writes one unmasked server frame.
fn ws_write(out: &mut impl Write, fin: bool, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= 0xffff => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    out.write_all(&frame)?;
    out.flush()
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
fn ws_accept(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1(&input))
}

/// SHA-1 (FIPS 180-4), enough for the WebSocket handshake.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The container's hostname, read once: a file read per request would cost more than the
/// request (on a FUSE-backed root filesystem, a round trip through the FUSE daemon each time).
fn hostname() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim()
            .to_owned()
    })
}

/// Set by `POST /health/fail`, cleared by `POST /health/pass`.
static FAILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn route(method: &str, path: &str, query: &str, body: &[u8]) -> (&'static str, String) {
    let host = hostname();
    match path {
        "/health/fail" if method == "POST" => {
            FAILING.store(true, std::sync::atomic::Ordering::SeqCst);
            ("200 OK", "{\"failing\":true}\n".into())
        }
        "/health/pass" if method == "POST" => {
            FAILING.store(false, std::sync::atomic::Ordering::SeqCst);
            ("200 OK", "{\"failing\":false}\n".into())
        }
        "/health" | "/healthz" => {
            let failing = std::env::var("FAIL_HEALTH").as_deref() == Ok("1")
                || FAILING.load(std::sync::atomic::Ordering::SeqCst)
                || std::path::Path::new("/tmp/unhealthy").exists();
            if failing {
                ("503 Service Unavailable", "{\"healthy\":false}\n".into())
            } else {
                ("200 OK", "{\"healthy\":true}\n".into())
            }
        }
        "/slow" => {
            let ms: u64 = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            std::thread::sleep(Duration::from_millis(ms.min(60_000)));
            ("200 OK", format!("{{\"slept_ms\":{ms}}}\n"))
        }
        "/exit" => {
            eprintln!("hello: /exit requested");
            std::process::exit(3);
        }
        _ => {
            let greeting = std::env::var("GREETING").unwrap_or_else(|_| "hello".into());
            let release = std::env::var("RACER_RELEASE").unwrap_or_default();
            (
                "200 OK",
                format!(
                    "{{\"message\":\"{greeting} from {host}\",\"method\":\"{method}\",\"path\":\"{path}\",\"release\":\"{release}\",\"body_bytes\":{}}}\n",
                    body.len()
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        // RFC 6455 §1.3 (and §4.2.2): the sample nonce and its accept value.
        assert_eq!(
            ws_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn sha1_and_base64_known_answers() {
        assert_eq!(base64(&sha1(b"")), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(base64(&sha1(b"abc")), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        let long = vec![b'a'; 1000];
        assert_eq!(base64(&sha1(&long)), "KR6abGaZSUm1e6XmUDYemPw2sbo=");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn echoes_masked_frames_of_every_length_class() {
        let mut input = Vec::new();
        let sizes = [5usize, 300, 70_000];
        for (i, n) in sizes.iter().enumerate() {
            let payload: Vec<u8> = (0..*n).map(|j| (j % 251) as u8).collect();
            let mask = [1, 2, 3, 4 + i as u8];
            input.push(0x82);
            match *n {
                n if n < 126 => input.push(0x80 | n as u8),
                n if n <= 0xffff => {
                    input.push(0x80 | 126);
                    input.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    input.push(0x80 | 127);
                    input.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            input.extend_from_slice(&mask);
            input.extend(payload.iter().enumerate().map(|(j, b)| b ^ mask[j % 4]));
        }
        input.extend_from_slice(&[0x89, 0x82, 0, 0, 0, 0, b'h', b'i']); // ping "hi"
        input.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]); // close 1000
        let mut out = Vec::new();
        ws_echo(&mut &input[..], &mut out).unwrap();
        let mut expected = Vec::new();
        for n in sizes {
            let payload: Vec<u8> = (0..n).map(|j| (j % 251) as u8).collect();
            ws_write(&mut expected, true, 0x2, &payload).unwrap();
        }
        ws_write(&mut expected, true, 0xA, b"hi").unwrap();
        ws_write(&mut expected, true, 0x8, &1000u16.to_be_bytes()).unwrap();
        assert_eq!(out, expected);
        assert_eq!(&expected[..2], &[0x82, 5]);
    }
}
