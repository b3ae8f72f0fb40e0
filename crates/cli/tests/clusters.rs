//! Issue 14, clusters: `racerctl clusters add|list|show|drain|undrain|remove` against a second
//! Docker engine the test starts itself (its own socket, data root, exec root, pid file and
//! bridge), next to the suite's engine as `local`; and one such engine reached over TCP with
//! mutual TLS (certificates made here with the `openssl` CLI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use racer_core::api::ClusterInfo;

use crate::util::Env;

/// The certificates of an engine reached over mutual TLS, made with the `openssl` CLI: a CA,
/// the engine's certificate for IP 127.0.0.1 (serverAuth) and racer's client certificate
/// (clientAuth), all signed by the CA; P-256 keys (quick to make).
pub(crate) struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Makes them in `dir`, or says why it cannot.
    pub(crate) fn make(dir: &Path) -> Result<Pki, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let files = [
            (
                "ca.cnf",
                "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = racer-test-ca\n\
                 [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n",
            ),
            (
                "server.cnf",
                "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n\
                 keyUsage = critical,digitalSignature\n",
            ),
            (
                "client.cnf",
                "extendedKeyUsage = clientAuth\nkeyUsage = critical,digitalSignature\n",
            ),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
        }
        let key = |out: &str| {
            vec![
                "genpkey".to_owned(),
                "-algorithm".into(),
                "EC".into(),
                "-pkeyopt".into(),
                "ec_paramgen_curve:P-256".into(),
                "-out".into(),
                out.into(),
            ]
        };
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let steps = [
            key("ca-key.pem"),
            words("req -x509 -new -key ca-key.pem -days 2 -config ca.cnf -extensions v3_ca -out ca.pem"),
            key("other-ca-key.pem"),
            words("req -x509 -new -key other-ca-key.pem -days 2 -config ca.cnf -extensions v3_ca -subj /CN=racer-other-ca -out other-ca.pem"),
            key("server-key.pem"),
            words("req -new -key server-key.pem -subj /CN=127.0.0.1 -out server.csr"),
            words("x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.cnf -out server-cert.pem"),
            key("key.pem"),
            words("req -new -key key.pem -subj /CN=racer -out client.csr"),
            words("x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.cnf -out cert.pem"),
        ];
        for args in steps {
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(dir)
                .output()
                .map_err(|e| {
                    format!("cannot run openssl ({e}); scripts/ensure-tools.sh installs it")
                })?;
            if !out.status.success() {
                return Err(format!(
                    "openssl {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(Pki {
            dir: dir.to_owned(),
        })
    }

    /// One of its files: `ca.pem`, `cert.pem`, `key.pem` (the client's), `server-cert.pem`,
    /// `server-key.pem`, `other-ca.pem` (a CA that signed nothing here).
    pub(crate) fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `docker` CLI arguments reaching `host` with the client certificate.
    pub(crate) fn docker_args(&self, host: &str) -> Vec<String> {
        vec![
            "-H".into(),
            host.into(),
            "--tlsverify".into(),
            "--tlscacert".into(),
            self.file("ca.pem"),
            "--tlscert".into(),
            self.file("cert.pem"),
            "--tlskey".into(),
            self.file("key.pem"),
        ]
    }
}

/// A port nobody listens on now.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A second `dockerd` with a bridge of its own, stopped (and its bridge and directories
/// removed) on drop.
///
/// It must not run with `--bridge none`: a dockerd started that way deletes the host's
/// `docker0`, the bridge of the suite's own engine.
pub(crate) struct SecondEngine {
    dir: tempfile::TempDir,
    child: Child,
    bridge: String,
    /// `tcp://127.0.0.1:PORT` and the certificates, when it listens there over mutual TLS.
    tls: Option<(String, Vec<String>)>,
}

impl SecondEngine {
    pub(crate) fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// `tcp://127.0.0.1:PORT`, where it takes only clients with a certificate of the CA.
    pub(crate) fn tcp_host(&self) -> Option<String> {
        self.tls.as_ref().map(|(h, _)| h.clone())
    }

    /// `docker` CLI arguments that reach it: over TLS with the client certificate when it has
    /// TLS, else through its socket.
    fn docker_args(&self) -> Vec<String> {
        match &self.tls {
            Some((_, args)) => args.clone(),
            None => vec!["-H".into(), self.host()],
        }
    }

    /// Starts one, or says why it cannot.
    pub(crate) fn start() -> Result<SecondEngine, String> {
        SecondEngine::start_with(None)
    }

    /// Starts one that also listens on `tcp://127.0.0.1:<free port>` with `--tlsverify` and
    /// `pki`'s CA and server certificate (with `Some`), or says why it cannot. It is ready once
    /// `docker info` answers over TLS with the client certificate.
    pub(crate) fn start_with(pki: Option<&Pki>) -> Result<SecondEngine, String> {
        let dir = tempfile::Builder::new()
            .prefix("racer-d2-")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        let p = |n: &str| dir.path().join(n).display().to_string();
        let log =
            std::fs::File::create(dir.path().join("dockerd.log")).map_err(|e| e.to_string())?;
        // Two engines of one test process (`cargo test` runs tests as threads) get two bridges.
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() + 67 * STARTED.fetch_add(1, Ordering::SeqCst)) % 200 + 20;
        let bridge = format!("racerbr{n}");
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("cannot run ip: {e}"))
                .and_then(|o| {
                    if o.status.success() {
                        Ok(())
                    } else {
                        Err(format!(
                            "ip {}: {}",
                            args.join(" "),
                            String::from_utf8_lossy(&o.stderr).trim()
                        ))
                    }
                })
        };
        let _ = ip(&["link", "del", &bridge]);
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("10.213.{n}.1/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        let mut tls_args = Vec::new();
        let mut tls = None;
        if let Some(pki) = pki {
            let tcp = format!("tcp://127.0.0.1:{}", free_port()?);
            tls_args = vec![
                "--host".to_owned(),
                tcp.clone(),
                "--tlsverify".into(),
                "--tlscacert".into(),
                pki.file("ca.pem"),
                "--tlscert".into(),
                pki.file("server-cert.pem"),
                "--tlskey".into(),
                pki.file("server-key.pem"),
            ];
            tls = Some((tcp.clone(), pki.docker_args(&tcp)));
        }
        let child = Command::new("dockerd")
            .args([
                "--config-file",
                &p("daemon.json"),
                "--host",
                &format!("unix://{}", p("docker.sock")),
                "--data-root",
                &p("data"),
                "--exec-root",
                &p("exec"),
                "--pidfile",
                &p("docker.pid"),
                "--bridge",
                &bridge,
                "--iptables=false",
                "--ip-masq=false",
            ])
            .args(&tls_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                let _ = ip(&["link", "del", &bridge]);
                format!("cannot run dockerd: {e}")
            })?;
        let mut engine = SecondEngine {
            dir,
            child,
            bridge,
            tls,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = engine.child.try_wait() {
                last = format!("dockerd exited ({status})");
                break;
            }
            match Command::new("docker")
                .args(engine.docker_args())
                .args(["info", "--format", "{{.NCPU}}"])
                .output()
            {
                Ok(o) if o.status.success() => return Ok(engine),
                Ok(o) => last = String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                Err(e) => last = format!("cannot run docker: {e}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log =
            std::fs::read_to_string(engine.dir.path().join("dockerd.log")).unwrap_or_default();
        Err(format!(
            "the second dockerd did not answer{} within 30 s (docker said: {last}); its log ends: {}",
            if engine.tls.is_some() { " over TLS" } else { "" },
            log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ))
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// The other engine the test adds as clusters.
pub(crate) enum Other {
    /// A second dockerd.
    Engine(SecondEngine),
    /// The suite's engine behind another socket path.
    Link(PathBuf),
}

impl Other {
    pub(crate) fn host(&self) -> String {
        match self {
            Other::Engine(e) => e.host(),
            Other::Link(p) => format!("unix://{}", p.display()),
        }
    }

    /// A second dockerd; where none can start, the suite's own engine through a second
    /// socket path (two clusters on one engine), saying why.
    pub(crate) fn start(env: &Env) -> Other {
        match SecondEngine::start() {
            Ok(e) => Other::Engine(e),
            Err(why) => {
                eprintln!("no second dockerd ({why}); using the suite's engine through a symlink");
                let link = env.dir.path().join("b.sock");
                let target = std::env::var("DOCKER_HOST")
                    .ok()
                    .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
                    .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
                std::os::unix::fs::symlink(target, &link).unwrap();
                Other::Link(link)
            }
        }
    }

    /// Makes it go away.
    fn stop(&mut self) {
        match self {
            Other::Engine(e) => e.stop(),
            Other::Link(p) => {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn list(env: &Env) -> Vec<ClusterInfo> {
    env.racerctl(&["clusters", "list", "--json"]).json()
}

#[test]
fn f14_clusters_are_added_read_from_their_engine_drained_and_removed() {
    let env = Env::new();
    // A second engine; where none can start, the suite's own engine through a second socket
    // path (two clusters on one engine), and the test says why.
    let mut second = Other::start(&env);
    env.start(&[]);

    // local exists by default, its capacity read from the engine.
    let clusters = list(&env);
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    let local = &clusters[0];
    assert_eq!(
        (local.name.as_str(), local.state.as_str()),
        ("local", "ready")
    );
    let ncpu: u64 = crate::util::docker(&["info", "--format", "{{.NCPU}}"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(local.capacity.unwrap().cpu_milli, ncpu * 1000);
    assert_eq!(local.capacity_source["cpu"], "engine");

    // The second engine, read from itself; a third entry with its capacity declared.
    let host = second.host();
    let b: ClusterInfo = env
        .racerctl(&[
            "clusters",
            "add",
            "b",
            "--docker-host",
            &host,
            "--label",
            "zone=eu",
            "--json",
        ])
        .json();
    assert_eq!(b.state, "ready", "{b:?}");
    assert!(b.capacity.unwrap().memory_mb > 0);
    assert_eq!(b.labels["zone"], "eu");
    let gpu: ClusterInfo = env
        .racerctl(&[
            "clusters",
            "add",
            "gpu-a",
            "--docker-host",
            &host,
            "--cpu",
            "32",
            "--memory",
            "128Gi",
            "--gpu",
            "4",
            "--json",
        ])
        .json();
    let cap = gpu.capacity.unwrap();
    assert_eq!(
        (cap.cpu_milli, cap.memory_mb, cap.gpu),
        (32_000, 131_072, 4)
    );
    assert_eq!(gpu.capacity_source["memory"], "declared");

    // Bad input: a clear error naming the field, nothing recorded.
    let err = env
        .racerctl(&[
            "clusters",
            "add",
            "c",
            "--docker-host",
            "unix:///nonexistent/docker.sock",
        ])
        .code(1);
    assert!(
        err.contains("docker_host") && err.contains("cannot reach"),
        "{err}"
    );
    let err = env
        .racerctl(&["clusters", "add", "c", "--docker-host", "http://x"])
        .code(1);
    assert!(
        err.contains("docker_host") && err.contains("unix://"),
        "{err}"
    );
    let err = env
        .racerctl(&["clusters", "add", "b", "--docker-host", &host])
        .code(1);
    assert!(err.contains("already exists"), "{err}");
    let err = env
        .racerctl(&[
            "clusters",
            "add",
            "d",
            "--docker-host",
            &host,
            "--memory",
            "lots",
        ])
        .code(1);
    assert!(err.contains("memory"), "{err}");
    assert_eq!(list(&env).len(), 3);

    // Drain and undrain.
    let drained: ClusterInfo = env.racerctl(&["clusters", "drain", "b", "--json"]).json();
    assert_eq!((drained.state.as_str(), drained.drained), ("drained", true));
    let back: ClusterInfo = env.racerctl(&["clusters", "undrain", "b", "--json"]).json();
    assert_eq!(back.state, "ready");

    // local cannot be removed; an unknown cluster is a 404.
    let err = env.racerctl(&["clusters", "remove", "local"]).code(1);
    assert!(err.contains("cannot be removed"), "{err}");
    let err = env.racerctl(&["clusters", "show", "nope"]).code(1);
    assert!(err.contains("not found"), "{err}");

    // The engine goes away: unreachable, with its error; declared capacity still shown.
    second.stop();
    let now = list(&env);
    let b = now.iter().find(|c| c.name == "b").unwrap();
    assert_eq!(b.state, "unreachable", "{b:?}");
    assert!(b.error.as_deref().is_some_and(|e| !e.is_empty()), "{b:?}");
    let gpu = now.iter().find(|c| c.name == "gpu-a").unwrap();
    assert_eq!(gpu.capacity.unwrap().gpu, 4);
    let text = env.racerctl(&["clusters", "list"]).ok();
    assert!(text.contains("unreachable"), "{text}");

    // Unreachable: what runs there is unknown, so it must be drained before it is removed.
    let err = env.racerctl(&["clusters", "remove", "b"]).code(1);
    assert!(
        err.contains("does not answer") && err.contains("drain"),
        "{err}"
    );
    env.racerctl(&["clusters", "drain", "b"]).ok();
    let out = env.racerctl(&["clusters", "remove", "b"]).ok();
    assert!(out.contains("cluster b removed"), "{out}");
    env.racerctl(&["clusters", "drain", "gpu-a"]).ok();
    env.racerctl(&["clusters", "remove", "gpu-a"]).ok();
    let names: Vec<String> = list(&env).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["local"]);
    let events = env.racer(&["events", "--kind", "cluster.", "--json"]).ok();
    for kind in [
        "cluster.added",
        "cluster.drained",
        "cluster.undrained",
        "cluster.removed",
    ] {
        assert!(events.contains(kind), "{kind}: {events}");
    }
}

/// `POST /api/v1/clusters` with `body`, as the admin: (status, body).
fn post_cluster(env: &Env, body: &serde_json::Value) -> (u16, String) {
    let url = format!("{}/api/v1/clusters", env.server_file().unwrap().api_url);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
        ])
        .args(["-H", "content-type: application/json"])
        .args(["-H", &format!("authorization: Bearer {}", env.token())])
        .args(["-d", &body.to_string(), &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or_default();
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[test]
fn f14_a_cluster_over_tcp_with_mutual_tls_is_added_with_its_certificates_and_runs_an_app() {
    let started = Instant::now();
    let env = Env::new();
    let pki = Pki::make(&env.dir.path().join("pki")).unwrap_or_else(|why| {
        panic!("cannot make the test's certificates with the openssl CLI: {why}")
    });
    // No fallback here: without an engine that demands TLS nothing of this can be shown.
    let engine = SecondEngine::start_with(Some(&pki)).unwrap_or_else(|why| {
        panic!("dockerd cannot listen on TCP with --tlsverify on this machine, so TLS clusters cannot be tested: {why}")
    });
    let host = engine.tcp_host().unwrap();
    let tls_docker = pki.docker_args(&host);
    let docker_tls = |args: &[&str]| {
        let mut all: Vec<&str> = tls_docker.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        crate::util::docker_lines(&all)
    };
    env.start(&[]);
    let (ca, cert, key) = (
        pki.file("ca.pem"),
        pki.file("cert.pem"),
        pki.file("key.pem"),
    );

    // Without the TLS files: refused, saying the engine may want them; nothing recorded.
    let err = env
        .racerctl(&["clusters", "add", "secure", "--docker-host", &host])
        .code(1);
    assert!(
        err.contains("docker_host") && err.contains("cannot reach") && err.contains("--tls-ca"),
        "{err}"
    );
    // Only --tls-ca: a 4xx naming the first missing field, from the API itself.
    let err = env
        .racerctl(&[
            "clusters",
            "add",
            "secure",
            "--docker-host",
            &host,
            "--tls-ca",
            &ca,
        ])
        .code(1);
    assert!(
        err.contains("tls_cert") && err.contains("--tls-key"),
        "{err}"
    );
    let (code, body) = post_cluster(
        &env,
        &serde_json::json!({"name": "secure", "docker_host": host, "tls_ca": ca, "tls_cert": cert}),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("tls_key"), "{body}");
    // A file that does not exist: a 4xx naming its field and path.
    let missing = env.dir.path().join("nope.pem").display().to_string();
    let (code, body) = post_cluster(
        &env,
        &serde_json::json!({"name": "secure", "docker_host": host, "tls_ca": ca, "tls_cert": cert, "tls_key": missing}),
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("tls_key") && body.contains("nope.pem") && body.contains("no such file"),
        "{body}"
    );
    // The engine's own certificate as the client's: the engine refuses it (it is no client
    // certificate), so racer really presents what it is given.
    let err = env
        .racerctl(&[
            "clusters",
            "add",
            "secure",
            "--docker-host",
            &host,
            "--tls-ca",
            &ca,
            "--tls-cert",
            &pki.file("server-cert.pem"),
            "--tls-key",
            &pki.file("server-key.pem"),
        ])
        .code(1);
    assert!(
        err.contains("cannot reach") && err.contains("over TLS"),
        "{err}"
    );
    // A CA that did not sign the engine's certificate: racer refuses the engine.
    let err = env
        .racerctl(&[
            "clusters",
            "add",
            "secure",
            "--docker-host",
            &host,
            "--tls-ca",
            &pki.file("other-ca.pem"),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ])
        .code(1);
    assert!(
        err.contains("cannot reach") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert_eq!(list(&env).len(), 1, "nothing was recorded");

    // With the client certificate: ready, its capacity read from the engine over TLS.
    let ncpu: u64 = docker_tls(&["info", "--format", "{{.NCPU}}"])[0]
        .parse()
        .unwrap();
    let added: ClusterInfo = env
        .racerctl(&[
            "clusters",
            "add",
            "secure",
            "--docker-host",
            &host,
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--json",
        ])
        .json();
    assert_eq!(added.state, "ready", "{added:?}");
    let tls = added.tls.clone().expect("the TLS files");
    assert_eq!(
        (tls.ca, tls.cert, tls.key),
        (ca.clone(), cert.clone(), key.clone())
    );
    let listed = list(&env);
    let secure = listed.iter().find(|c| c.name == "secure").unwrap();
    assert_eq!(secure.state, "ready", "{secure:?}");
    assert_eq!(secure.capacity.unwrap().cpu_milli, ncpu * 1000);
    assert!(secure.capacity.unwrap().memory_mb > 0);
    let shown = env.racerctl(&["clusters", "show", "secure"]).ok();
    assert!(
        shown.contains(&format!("tls:      yes (ca {ca}")) && shown.contains("state:    ready"),
        "{shown}"
    );
    let table = env.racerctl(&["clusters", "list"]).ok();
    assert!(table.contains("(tls)"), "{table}");
    // The key's path is kept and shown; its contents never reach the log.
    let key_text = std::fs::read_to_string(&key).unwrap();
    let secret = key_text.lines().nth(1).unwrap();
    let log = env.log();
    assert!(
        !log.is_empty() && !log.contains(secret),
        "the server logged the key"
    );

    // An app pinned to it runs on the TLS engine (image copied there, container started,
    // traffic served).
    let dir = crate::util::hello_app(&env, "tlsapp");
    env.racer(&[
        "run",
        "--project-name",
        "tlsapp",
        "--path",
        dir.to_str().unwrap(),
        "--cluster",
        "secure",
    ])
    .ok();
    let status: racer_core::api::AppStatus = env
        .racer(&["status", "--project-name", "tlsapp", "--json"])
        .json();
    assert!(
        !status.containers.is_empty()
            && status
                .containers
                .iter()
                .all(|r| r.cluster == "secure" && r.state == "running"),
        "{status:?}"
    );
    let install = env.install.borrow().clone().unwrap();
    let on_tls = docker_tls(&[
        "ps",
        "--filter",
        &format!("label=racer.install={install}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(
        !on_tls.is_empty() && on_tls.iter().all(|n| n.starts_with("tlsapp-")),
        "docker ps over TLS: {on_tls:?}"
    );
    assert!(env.containers().is_empty(), "nothing on the suite's engine");
    let proxy = env.server_file().unwrap().proxy_url.unwrap();
    crate::util::get_ok(&format!("{proxy}/apps/tlsapp/"));

    env.racer(&["delete", "--project-name", "tlsapp"]).ok();
    crate::util::eventually(30, "the TLS engine is empty", || {
        docker_tls(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=racer.install={install}"),
        ])
        .is_empty()
    });
    eprintln!("TLS cluster test took {:?}", started.elapsed());
    drop(engine);
}

#[test]
fn f14_a_request_no_cluster_could_ever_hold_is_refused_at_once_naming_its_field() {
    let env = Env::new();
    env.start(&[]);
    let dir = crate::util::hello_app(&env, "huge");
    let path = dir.to_str().unwrap();
    let local: Vec<ClusterInfo> = env.racerctl(&["clusters", "list", "--json"]).json();
    let cores = local[0].capacity.unwrap().cpu_milli / 1000;
    let too_many = (cores * 4).to_string();
    for (flag, value, field, says) in [
        (
            "--cpus",
            too_many.as_str(),
            "config.cpus",
            "millicores asked",
        ),
        ("--memory-mb", "100000000", "config.memory_mb", "MiB asked"),
        ("--gpu", "1", "config.gpu", "GPUs asked"),
    ] {
        let err = env
            .racer(&["run", "--project-name", "huge", "--path", path, flag, value])
            .code(1);
        assert!(
            err.contains(field) && err.contains(says) && err.contains("racerctl clusters add"),
            "{flag}: {err}"
        );
    }
    // Nothing was recorded, nothing runs.
    let apps = env.racer(&["list-projects", "--json"]).ok();
    assert!(!apps.contains("huge"), "{apps}");
    assert!(env.containers().is_empty());
    let err = env
        .racer(&[
            "run",
            "--project-name",
            "huge",
            "--path",
            path,
            "--priority",
            "7",
        ])
        .code(1);
    assert!(
        err.contains("config.priority") && err.contains("1 (lowest) to 5"),
        "{err}"
    );
    // What fits deploys as before, its priority recorded with the release.
    env.racer(&[
        "run",
        "--project-name",
        "huge",
        "--path",
        path,
        "--cpus",
        "0.5",
        "--priority",
        "4",
    ])
    .ok();
    let releases: Vec<racer_core::api::Release> = env
        .racer(&["releases", "--project-name", "huge", "--json"])
        .json();
    assert_eq!(releases[0].config.priority, Some(4));
    assert_eq!(releases[0].config.cpus, Some(0.5));
}

#[test]
fn f14_queue_status_counts_builds_waiting_running_and_failed() {
    let env = Env::new();
    env.start(&[]);
    let kinds: Vec<racer_core::api::QueueKind> =
        env.racerctl(&["queue", "status", "--json"]).json();
    let build = kinds
        .iter()
        .find(|k| k.kind == "build")
        .expect("the build queue");
    assert_eq!((build.pending, build.running, build.failed), (0, 0, 0));
    // A build that fails is counted as failed; one that succeeds leaves nothing queued.
    let dir = env.dir.path().join("broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY missing-file /x\n",
    )
    .unwrap();
    env.racer(&[
        "run",
        "--project-name",
        "broken",
        "--path",
        dir.to_str().unwrap(),
    ])
    .code(1);
    let ok = crate::util::hello_app(&env, "fine");
    env.racer(&[
        "run",
        "--project-name",
        "fine",
        "--path",
        ok.to_str().unwrap(),
    ])
    .ok();
    let kinds: Vec<racer_core::api::QueueKind> =
        env.racerctl(&["queue", "status", "--json"]).json();
    let build = kinds.iter().find(|k| k.kind == "build").unwrap();
    assert_eq!((build.pending, build.running, build.failed), (0, 0, 1));
    let text = env.racerctl(&["queue", "status"]).ok();
    assert!(text.contains("KIND") && text.contains("build"), "{text}");

    // racer deployments list: across apps, filtered by state, with why.
    let failed: Vec<racer_core::api::Deployment> = env
        .racer(&["deployments", "list", "--state", "failed", "--json"])
        .json();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].app_name, "broken");
    let all = env.racer(&["deployments", "list"]).ok();
    assert!(
        all.contains("broken") && all.contains("fine") && all.contains("WHY"),
        "{all}"
    );
    let one: Vec<racer_core::api::Deployment> = env
        .racer(&["deployments", "list", "--project-name", "fine", "--json"])
        .json();
    assert!(one.iter().all(|d| d.app_name == "fine") && !one.is_empty());
    let err = env
        .racer(&["deployments", "list", "--state", "sleeping"])
        .code(1);
    assert!(err.contains("--state") && err.contains("queued"), "{err}");
    let none = env
        .racer(&["deployments", "list", "--state", "queued"])
        .ok();
    assert!(none.contains("no deployments in that state"), "{none}");
}
