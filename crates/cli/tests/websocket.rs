//! Issue 5: a WebSocket (HTTP/1.1 Upgrade) tunnelled through the built-in proxy to the bundled
//! example's `/ws` echo endpoint, over a raw TCP connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{hello_app, Env};

/// Every read and write on the socket gives up after this long.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One WebSocket frame as read from the server.
struct Frame {
    fin: bool,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

/// Writes one client frame: FIN set, masked with `mask` (clients must mask, RFC 6455 §5.3).
fn write_frame(s: &mut impl Write, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&f).unwrap();
    s.flush().unwrap();
}

fn read_frame(r: &mut impl Read) -> Frame {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).expect("frame header");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let masked = h[1] & 0x80 != 0;
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).unwrap();
    }
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    r.read_exact(&mut payload).expect("frame payload");
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Frame {
        fin: h[0] & 0x80 != 0,
        opcode: h[0] & 0x0f,
        masked,
        payload,
    }
}

/// Opens a WebSocket through the proxy; returns the buffered reader (it may already hold bytes
/// after the handshake), the writer, the status line and the response headers (lower-cased names).
fn handshake(
    addr: &str,
    path: &str,
    key: &str,
) -> (
    BufReader<TcpStream>,
    TcpStream,
    String,
    Vec<(String, String)>,
) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut w = s.try_clone().unwrap();
    write!(
        w,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    w.flush().unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).expect("status line");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "EOF in headers");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (r, w, status.trim_end().to_owned(), headers)
}

#[test]
fn f5_websocket_echo_through_the_proxy() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "ws");
    env.racer(&[
        "run",
        "--project-name",
        "ws",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    let proxy = env.server_file().unwrap().proxy_url.unwrap();
    let addr = proxy.trim_start_matches("http://").trim_end_matches('/');

    // The sample nonce of RFC 6455 §1.3 and its accept value.
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    // The route may take a moment to carry traffic after `run` returns: retry the handshake
    // (bounded) until the proxy answers 101.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut r, mut w, headers) = loop {
        let (r, w, status, headers) = handshake(addr, "/apps/ws/ws", key);
        if status.split_whitespace().nth(1) == Some("101") {
            break (r, w, headers);
        }
        assert!(
            Instant::now() < deadline,
            "no 101 from the proxy: last `{status}` {headers:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("sec-websocket-accept"), Some(accept), "{headers:?}");
    assert!(
        header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{headers:?}"
    );
    assert!(
        header("connection").is_some_and(|v| v
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))),
        "{headers:?}"
    );

    // A small text frame.
    write_frame(&mut w, 0x1, b"hello racer", [0x12, 0x34, 0x56, 0x78]);
    let f = read_frame(&mut r);
    assert!(f.fin && !f.masked, "server frames are final and unmasked");
    assert_eq!(f.opcode, 0x1);
    assert_eq!(f.payload, b"hello racer");

    // A binary frame over 64 KiB: the 64-bit length form, both ways.
    let big: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write_frame(&mut w, 0x2, &big, [0xa1, 0xb2, 0xc3, 0xd4]);
    let f = read_frame(&mut r);
    assert!(f.fin && !f.masked);
    assert_eq!(f.opcode, 0x2);
    assert_eq!(f.payload.len(), big.len());
    assert!(f.payload == big, "the 70 000-byte echo differs");

    // Ping gets a pong with the same payload.
    write_frame(&mut w, 0x9, b"are you there", [1, 2, 3, 4]);
    let f = read_frame(&mut r);
    assert_eq!(f.opcode, 0xA);
    assert_eq!(f.payload, b"are you there");

    // Close (1000) gets a close back, then the connection ends.
    write_frame(&mut w, 0x8, &1000u16.to_be_bytes(), [9, 8, 7, 6]);
    let f = read_frame(&mut r);
    assert_eq!(f.opcode, 0x8);
    assert_eq!(f.payload, 1000u16.to_be_bytes());
    let mut rest = Vec::new();
    let n = r.read_to_end(&mut rest).expect("EOF after close");
    assert_eq!(n, 0, "nothing after the close frame: {rest:?}");

    // Plain HTTP on the same app still works beside the tunnel.
    let body = crate::util::get_ok(&format!("{proxy}/apps/ws/health"));
    assert!(body.contains("\"healthy\":true"), "{body}");
}
