//! Issue 19 (TLS at the edge): the proxy serves HTTPS with the operator's certificate files and
//! reloads them on change without dropping open connections; plain HTTP is redirected; HSTS;
//! and certificates by ACME from a real ACME server (Pebble, Debian's `pebble`), issued for an
//! app's host, served, and renewed when their short lifetime runs out.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::util::{eventually, hello_app, Env};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian openssl; scripts/ensure-tools.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.crt`, `ca.key`) in `dir`.
fn make_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=racer test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
}

/// `<name>.crt` and `<name>.key` signed by `dir`'s CA, for the DNS names and IPs given.
fn make_leaf(dir: &Path, name: &str, sans: &str) -> (PathBuf, PathBuf) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName={sans}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

fn roots(pem: &[u8]) -> Arc<rustls::RootCertStore> {
    let mut store = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem) {
        store.add(c.unwrap()).unwrap();
    }
    Arc::new(store)
}

/// A TLS connection to `addr` for `host` (SNI), trusting `roots` only.
struct Tls {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl Tls {
    #[allow(deprecated)] // ring's provider: the one the proxy serves with
    fn connect(addr: &str, host: &str, roots: Arc<rustls::RootCertStore>) -> Result<Tls, String> {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::try_from(host.to_string()).unwrap();
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(Tls { stream })
    }

    /// The server's certificate (DER).
    fn peer_cert(&self) -> Vec<u8> {
        self.stream.conn.peer_certificates().unwrap()[0].to_vec()
    }

    /// GET `path` on this connection (kept alive): status, headers (lower-case names), body.
    fn get(&mut self, host: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
        write!(
            self.stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: racer-test\r\n\r\n"
        )
        .unwrap();
        self.stream.flush().unwrap();
        let mut r = BufReader::new(&mut self.stream);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap();
            }
            headers.push((k, v));
        }
        let mut body = vec![0u8; length];
        r.read_exact(&mut body).unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn der_of(pem_file: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(pem_file)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Plain HTTP to the proxy at `addr` with `host`: the status and the `Location`.
fn plain(addr: &str, host: &str, path: &str) -> (u16, Option<String>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = String::new();
    let _ = s.read_to_string(&mut all);
    let status = all
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let location = all
        .lines()
        .find_map(|l| l.strip_prefix("location: ").map(str::to_string));
    let body = all.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, location, body)
}

#[test]
fn f19_tls_from_files_reloaded_without_dropping_connections_redirect_and_hsts() {
    let env = Env::new();
    let certs = env.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_ca(&certs);
    let (a_crt, a_key) = make_leaf(&certs, "a", "DNS:*.racer.test,DNS:racer.test");
    let (crt, key) = (certs.join("served.crt"), certs.join("served.key"));
    std::fs::copy(&a_crt, &crt).unwrap();
    std::fs::copy(&a_key, &key).unwrap();

    // A key that is not the certificate's is refused at start, saying so.
    let (_, other_key) = make_leaf(&certs, "other", "DNS:other.test");
    let bad = env.racerctl(&[
        "server",
        "start",
        "--port",
        "0",
        "--proxy-port",
        "0",
        "--tls-port",
        "0",
        "--tls-cert",
        crt.to_str().unwrap(),
        "--tls-key",
        other_key.to_str().unwrap(),
    ]);
    assert!(!bad.out.status.success(), "a mismatched key must not start");
    let said = format!("{}{}", bad.stdout(), bad.stderr()) + &env.log();
    assert!(
        said.contains("does not belong to the certificate"),
        "the error names the mismatch: {said}"
    );

    let file = env.start(&[
        "--domain",
        "racer.test",
        "--tls-port",
        "0",
        "--tls-cert",
        crt.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--hsts-max-age",
        "600",
    ]);
    let tls_url = file
        .tls_url
        .clone()
        .expect("server.json names the HTTPS URL");
    let tls_addr = tls_url.trim_start_matches("https://").to_string();
    let proxy_addr = file
        .proxy_url
        .clone()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let dir = hello_app(&env, "web");
    env.racer(&[
        "run",
        "--project-name",
        "web",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    let ca = roots(&std::fs::read(certs.join("ca.crt")).unwrap());

    // Plain HTTP is redirected to the same host and path on the HTTPS port.
    let tls_port = tls_addr.rsplit(':').next().unwrap().to_string();
    // So the app is reported, and told (RACER_APP_URL), at its https:// URL only.
    let status: racer_core::api::AppStatus = env
        .racer(&["status", "--project-name", "web", "--json"])
        .json();
    assert_eq!(status.urls, [format!("https://web.racer.test:{tls_port}/")]);
    let (code, location, _) = plain(&proxy_addr, "web.racer.test", "/hello?x=1");
    assert_eq!(code, 308);
    assert_eq!(
        location.as_deref(),
        Some(&*format!("https://web.racer.test:{tls_port}/hello?x=1"))
    );
    // A Host that is no host name is not redirected anywhere.
    assert_eq!(plain(&proxy_addr, "a b", "/").0, 400);

    // HTTPS: the files' certificate, the app's answer, X-Forwarded-Proto https, HSTS.
    let mut conn = None;
    eventually(60, "web answers over HTTPS", || {
        let Ok(mut c) = Tls::connect(&tls_addr, "web.racer.test", ca.clone()) else {
            return false;
        };
        let (status, _, _) = c.get("web.racer.test", "/");
        if status == 200 {
            conn = Some(c);
            true
        } else {
            false
        }
    });
    let mut conn = conn.unwrap();
    assert_eq!(conn.peer_cert(), der_of(&a_crt));
    let (status, headers, body) = conn.get("web.racer.test", "/headers");
    assert_eq!(status, 200);
    assert!(
        body.contains(r#""x-forwarded-proto":"https""#),
        "the app is told the request came over HTTPS: {body}"
    );
    assert_eq!(
        header(&headers, "strict-transport-security"),
        Some("max-age=600")
    );

    // New files: the next handshake gets the new certificate; the open connection goes on.
    let (b_crt, b_key) = make_leaf(&certs, "b", "DNS:*.racer.test");
    std::fs::copy(&b_key, &key).unwrap();
    std::fs::copy(&b_crt, &crt).unwrap();
    let b_der = der_of(&b_crt);
    eventually(20, "the new certificate is served", || {
        Tls::connect(&tls_addr, "web.racer.test", ca.clone()).is_ok_and(|c| c.peer_cert() == b_der)
    });
    let (status, _, _) = conn.get("web.racer.test", "/");
    assert_eq!(
        status, 200,
        "the connection opened before the reload still serves"
    );
    assert_eq!(
        conn.peer_cert(),
        der_of(&a_crt),
        "with the certificate it began with"
    );

    // A broken file is not served: the last good certificate stays.
    std::fs::write(&crt, "not a certificate").unwrap();
    eventually(20, "the broken file is noticed", || {
        env.log().contains("do not load")
    });
    let c = Tls::connect(&tls_addr, "web.racer.test", ca.clone()).unwrap();
    assert_eq!(c.peer_cert(), b_der);
    // Not TLS at all on the HTTPS port: closed, and the proxy still serves.
    let mut s = TcpStream::connect(&tls_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: web.racer.test\r\n\r\n");
    let mut junk = Vec::new();
    let _ = s.read_to_end(&mut junk);
    assert!(!String::from_utf8_lossy(&junk).contains("200 OK"));
    let mut c = Tls::connect(&tls_addr, "web.racer.test", ca).unwrap();
    assert_eq!(c.get("web.racer.test", "/").0, 200);
}

/// A free loopback port (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Pebble and its DNS (pebble-challtestsrv: every name is 127.0.0.1), killed on drop.
struct Pebble {
    children: Vec<Child>,
    directory: String,
    management: String,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_pebble(dir: &Path, http_port: u16, lifetime_secs: u64) -> Pebble {
    let dns = free_udp_port();
    let (listen, management) = (free_port(), free_port());
    let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    let challtest = Command::new("pebble-challtestsrv")
        .args([
            "-dns01",
            &format!("127.0.0.1:{dns}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            &format!("127.0.0.1:{}", free_port()),
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
        ])
        .stdout(Stdio::from(log("challtestsrv.log")))
        .stderr(Stdio::from(log("challtestsrv.err")))
        .spawn()
        .expect("pebble-challtestsrv (Debian pebble; scripts/ensure-tools.sh installs it)");
    let (crt, key) = make_leaf(dir, "localhost", "DNS:localhost,IP:127.0.0.1");
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": crt,
        "privateKey": key,
        "httpPort": http_port,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": lifetime_secs,
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let pebble = Command::new("pebble")
        .args([
            "-config",
            dir.join("pebble.json").to_str().unwrap(),
            "-dnsserver",
            &format!("127.0.0.1:{dns}"),
        ])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(Stdio::from(log("pebble.log")))
        .stderr(Stdio::from(log("pebble.err")))
        .spawn()
        .expect("pebble (Debian pebble; scripts/ensure-tools.sh installs it)");
    let p = Pebble {
        children: vec![challtest, pebble],
        directory: format!("https://localhost:{listen}/dir"),
        management: format!("https://localhost:{management}"),
    };
    eventually(20, "pebble listens", || {
        TcpStream::connect(("127.0.0.1", listen)).is_ok()
    });
    p
}

/// Pebble's root (regenerated at each start), from its management interface.
fn pebble_root(p: &Pebble, ca: &Path) -> Vec<u8> {
    let out = Command::new("curl")
        .args([
            "-fsS",
            "--cacert",
            ca.to_str().unwrap(),
            &format!("{}/roots/0", p.management),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn f19_acme_certificates_from_pebble_issued_served_and_renewed() {
    let env = Env::new();
    let certs = env.dir.path().join("pebble");
    std::fs::create_dir_all(&certs).unwrap();
    make_ca(&certs);
    // Pebble validates http-01 on the proxy's plain port: it must be known before racer starts.
    let proxy_port = free_port();
    let pebble = start_pebble(&certs, proxy_port, 30);
    let proxy_port = proxy_port.to_string();
    env.racerctl(&[
        "server",
        "start",
        "--port",
        "0",
        "--proxy-port",
        &proxy_port,
        "--domain",
        "racer.test",
        "--tls-port",
        "0",
        "--acme-directory",
        &pebble.directory,
        "--acme-ca-root",
        certs.join("ca.crt").to_str().unwrap(),
        "--acme-email",
        "ops@racer.test",
    ])
    .ok();
    let file = env.server_file().unwrap();
    let info: racer_core::api::ServerInfo = env.racerctl(&["info", "--json"]).json();
    *env.install.borrow_mut() = info.install_id;
    let tls_addr = file
        .tls_url
        .clone()
        .unwrap()
        .trim_start_matches("https://")
        .to_string();
    let dir = hello_app(&env, "web");
    env.racer(&[
        "run",
        "--project-name",
        "web",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    let root = roots(&pebble_root(&pebble, &certs.join("ca.crt")));

    // Issued by Pebble (verified against its root) for web.racer.test, and served.
    let mut first = Vec::new();
    eventually(
        90,
        "a certificate from Pebble is served for web.racer.test",
        || match Tls::connect(&tls_addr, "web.racer.test", root.clone()) {
            Ok(mut c) => {
                first = c.peer_cert();
                c.get("web.racer.test", "/").0 == 200
            }
            Err(_) => false,
        },
    );
    let (crt, key) = (
        env.data_dir.join("tls/acme/web.racer.test.crt"),
        env.data_dir.join("tls/acme/web.racer.test.key"),
    );
    use std::os::unix::fs::PermissionsExt;
    for f in [&crt, &key, &env.data_dir.join("tls/acme/account.json")] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is private", f.display());
    }
    let events = env.racer(&["events", "--json"]).ok();
    assert!(events.contains("tls.issued"), "{events}");

    // 30 s certificates are renewed after 20 s: a new one is served, no request fails.
    let mut served = first.clone();
    eventually(60, "the certificate is renewed", || {
        if let Ok(mut c) = Tls::connect(&tls_addr, "web.racer.test", root.clone()) {
            assert_eq!(c.get("web.racer.test", "/").0, 200);
            served = c.peer_cert();
        }
        served != first
    });
    let events = env.racer(&["events", "--json"]).ok();
    assert!(
        events.contains("renewed certificate for web.racer.test"),
        "{events}"
    );
    // The challenge answers are gone once validated; plain HTTP redirects.
    let (code, location, _) = plain(
        &format!("127.0.0.1:{proxy_port}"),
        "web.racer.test",
        "/.well-known/acme-challenge/unknown",
    );
    assert_eq!(code, 308, "an unknown token is not answered: {location:?}");
}
