//! Issue 19 (hostile clients at the proxy): oversized heads, too many headers, ambiguous
//! framing (Content-Length with Transfer-Encoding, duplicate Content-Length), obs-fold, an overlong request line and too many connections from one address each
//! get their 4xx at once, and the proxy keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{get_ok, hello_app, Env};

/// Sends `raw` on a fresh connection; the status line's code (0 if none came).
fn status_of(addr: &str, raw: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(raw);
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn f19_hostile_requests_get_their_4xx_and_the_proxy_keeps_serving() {
    let env = Env::new();
    let file = env.start(&["--proxy-max-connections-per-source", "8"]);
    let dir = hello_app(&env, "web");
    env.racer(&[
        "run",
        "--project-name",
        "web",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    let proxy = file.proxy_url.clone().unwrap();
    let addr = proxy.trim_start_matches("http://").to_owned();
    let app = format!("{proxy}/apps/web/");
    get_ok(&app);

    let req = |extra: &str| {
        format!("GET /apps/web/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n").into_bytes()
    };
    let huge = format!("X-Big: {}\r\n", "a".repeat(100_000));
    assert_eq!(status_of(&addr, &req(&huge)), 431, "a 100 kB header");
    let many: String = (0..300).map(|i| format!("X-{i}: a\r\n")).collect();
    assert_eq!(status_of(&addr, &req(&many)), 431, "300 headers");
    // Content-Length with Transfer-Encoding, in either order, after a good request on the same
    // connection: a 400, then closed, so nothing can be smuggled behind it.
    for (cl, te) in [
        ("Content-Length: 40\r\n", "Transfer-Encoding: chunked\r\n"),
        ("Transfer-Encoding: chunked\r\n", "content-length: 40\r\n"),
    ] {
        let smuggle = format!("GET /apps/web/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nPOST /apps/web/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{cl}{te}\r\n0\r\n\r\nGET /apps/web/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(smuggle.as_bytes()).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        let codes: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        assert_eq!(
            codes,
            ["200", "400"],
            "the good one, the ambiguous one refused, closed: {text}"
        );
        assert!(text.contains("ambiguous"), "{text}");
        assert!(!text.contains("smuggled"), "{text}");
    }
    // Bodies on one kept-alive connection are not mistaken for heads (a body that spells out
    // both headers is a body; the framing follower's unit tests cover chunked bodies).
    let body = "Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n";
    let pipelined = format!("POST /apps/web/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}GET /apps/web/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", body.len());
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(pipelined.as_bytes()).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    let dup = b"POST /apps/web/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert_eq!(status_of(&addr, dup), 400, "two Content-Lengths");
    assert_eq!(
        status_of(&addr, &req("X-Fold: a\r\n b\r\n")),
        400,
        "obs-fold"
    );
    let long = format!(
        "GET /apps/web/{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(100_000)
    );
    let code = status_of(&addr, long.as_bytes());
    assert!(
        matches!(code, 414 | 431),
        "an overlong request line: {code}"
    );
    get_ok(&app);

    // Eight idle connections from this address are its share: a ninth is refused at once, and
    // once they close, requests are served again.
    let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(status_of(&addr, &req("")), 429, "a ninth connection");
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    get_ok(&app);
    env.racer(&["delete", "--project-name", "web"]).ok();
}
