//! Issue 14, clusters: `racerctl clusters add|list|show|drain|undrain|remove` against a second
//! Docker engine the test starts itself (its own socket, data root, exec root, pid file and
//! bridge), next to the suite's engine as `local`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use racer_core::api::ClusterInfo;

use crate::util::Env;

/// A second `dockerd` with a bridge of its own, stopped (and its bridge and directories
/// removed) on drop.
///
/// It must not run with `--bridge none`: a dockerd started that way deletes the host's
/// `docker0`, the bridge of the suite's own engine.
pub(crate) struct SecondEngine {
    dir: tempfile::TempDir,
    child: Child,
    bridge: String,
}

impl SecondEngine {
    pub(crate) fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// Starts one, or says why it cannot.
    pub(crate) fn start() -> Result<SecondEngine, String> {
        let dir = tempfile::Builder::new()
            .prefix("racer-d2-")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        let p = |n: &str| dir.path().join(n).display().to_string();
        let log =
            std::fs::File::create(dir.path().join("dockerd.log")).map_err(|e| e.to_string())?;
        let n = std::process::id() % 200 + 20;
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
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                let _ = ip(&["link", "del", &bridge]);
                format!("cannot run dockerd: {e}")
            })?;
        let engine = SecondEngine { dir, child, bridge };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = Command::new("docker")
                .args(["-H", &engine.host(), "info", "--format", "{{.NCPU}}"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Ok(engine);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log =
            std::fs::read_to_string(engine.dir.path().join("dockerd.log")).unwrap_or_default();
        Err(format!(
            "the second dockerd did not answer within 30 s: {}",
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
