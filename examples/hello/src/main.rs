//! racer's bundled example: a tiny HTTP/1.1 server with keep-alive, std only (plus signals).
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
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
                if k == "content-length" {
                    content_length = v.parse().unwrap_or(0);
                } else if k == "connection" {
                    close = v.eq_ignore_ascii_case("close");
                }
            }
        }
        let mut body = vec![0u8; content_length];
        reader.read_exact(&mut body)?;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (status, payload) = route(&method, path, query, &body);
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

fn route(method: &str, path: &str, query: &str, body: &[u8]) -> (&'static str, String) {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    match path {
        "/health" | "/healthz" => {
            let failing = std::env::var("FAIL_HEALTH").as_deref() == Ok("1")
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
