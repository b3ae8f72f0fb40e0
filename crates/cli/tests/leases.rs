//! Issue 14: several servers and workers on one store. The controller's lease makes exactly one
//! of them act on the engines; when its holder is killed (SIGKILL), another takes the loops over
//! within the lease's TTL, and no replica is doubled or orphaned. A worker killed mid-build has
//! its build finished by another worker.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use racer_core::api::{AppStatus, DeploymentStatus, ServerInfo};

use crate::util::{
    bin, docker, docker_lines, eventually, get_ok, hello_app, kill9, postgres_db, Env,
};

/// Seconds of the leases in these tests (the default is 15).
const TTL: u64 = 3;

fn info(env: &Env) -> ServerInfo {
    env.racerctl(&["info", "--json"]).json()
}

fn role(env: &Env) -> String {
    info(env).controller.map(|l| l.role).unwrap_or_default()
}

/// The ids of the install's replica containers of `app` (running or not).
fn replicas(env: &Env, app: &str) -> Vec<String> {
    let install = env.install.borrow().clone().unwrap();
    docker_lines(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=racer.install={install}"),
        "--filter",
        &format!("label=racer.app.name={app}"),
        "--format",
        "{{.ID}}",
    ])
}

#[test]
fn f14_two_servers_on_postgres_the_survivor_takes_the_loops_over_within_the_ttl() {
    let Some(url) = postgres_db() else { return };
    let (a, b) = (Env::new(), Env::new());
    let ttl = TTL.to_string();
    let args = ["--database-url", url.as_str(), "--lease-ttl", ttl.as_str()];
    let server_a = a.start(&args);
    eventually(10, "server a holding the controller's lease", || {
        role(&a) == "leader"
    });
    let b_file = b.start(&args);
    let a_id = info(&a).controller.unwrap().me;
    let seen_by_b = info(&b).controller.unwrap();
    assert_eq!(seen_by_b.role, "follower", "{seen_by_b:?}");
    assert_eq!(seen_by_b.holder.as_deref(), Some(a_id.as_str()));
    let text = b.racerctl(&["info"]).ok();
    assert!(text.contains("controller: follower (leader: "), "{text}");

    // Two replicas, placed by a; both servers' proxies answer (b routes to what a started).
    let path = hello_app(&a, "ha");
    a.racer(&[
        "run",
        "--project-name",
        "ha",
        "--path",
        path.to_str().unwrap(),
        "--instances",
        "2",
    ])
    .ok();
    assert_eq!(replicas(&a, "ha").len(), 2);
    let b_proxy = format!("{}/apps/ha/", b_file.proxy_url.clone().unwrap());
    eventually(20, "server b's proxy answering for ha", || {
        Command::new("curl")
            .args(["-fsS", "--max-time", "2", &b_proxy])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    // A follower never doubles what the leader runs.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(replicas(&a, "ha").len(), 2, "a follower started nothing");

    // a dies without giving its lease up; one replica dies with it, behind racer's back.
    kill9(server_a.pid);
    let killed = Instant::now();
    let victim = replicas(&a, "ha")[0].clone();
    docker(&["rm", "-f", &victim]);
    let mut most = 0;
    eventually(
        TTL * 4 + 10,
        "server b taking the lease and running two replicas again",
        || {
            let now = replicas(&b, "ha");
            most = most.max(now.len());
            role(&b) == "leader"
                && now.len() == 2
                && b.racer(&["status", "--project-name", "ha", "--json"])
                    .json::<AppStatus>()
                    .containers
                    .iter()
                    .filter(|c| c.health == "healthy")
                    .count()
                    == 2
        },
    );
    let took = killed.elapsed();
    eprintln!("takeover: b leads and runs 2 healthy replicas {took:?} after a was killed");
    assert!(most <= 2, "never more than two replicas: saw {most}");
    assert!(
        !replicas(&b, "ha").contains(&victim),
        "the removed replica was replaced by a new container"
    );
    let now = info(&b).controller.unwrap();
    assert!(now.epoch >= 2, "the lease changed hands: {now:?}");
    let events = b.racer(&["events", "--kind", "lease.taken"]).ok();
    assert!(events.contains(&now.me), "{events}");
    get_ok(&b_proxy);

    // b acts alone now: deleting the app leaves nothing behind.
    b.racer(&["delete", "--project-name", "ha"]).ok();
    eventually(30, "ha's containers removed", || {
        replicas(&b, "ha").is_empty()
    });
}

/// A worker process of `env`'s server, in the background: `racerctl worker`.
fn worker(env: &Env, log: &str) -> Child {
    let log = std::fs::File::create(env.dir.path().join(log)).unwrap();
    let mut c = Command::new(bin("racerctl"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RACER_") {
            c.env_remove(k);
        }
    }
    c.args(["worker", "--lease-ttl", &TTL.to_string()])
        .env("RACER_DATA_DIR", &env.data_dir)
        .env("RACER_SERVER_BIN", bin("racer-server"))
        .env_remove("DATABASE_URL")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[test]
fn f14_a_worker_killed_mid_build_its_build_completes_on_another_worker() {
    let image = {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/conda-standin-image.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let env = Env::new();
    let ttl = TTL.to_string();
    let server = env.start(&["--no-worker", "--lease-ttl", &ttl]);
    assert_eq!(role(&env), "off");
    let text = env.racerctl(&["info"]).ok();
    assert!(text.contains("controller: off (--no-worker"), "{text}");

    // Without a worker nothing builds: the deployment waits in the queue.
    let dir = env.dir.path().join("slow");
    std::fs::create_dir_all(dir.join("public")).unwrap();
    std::fs::write(dir.join("public/index.html"), "built by a worker\n").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {image}\nRUN sleep 5\nWORKDIR /home/mambauser\nCOPY public public\nEXPOSE 8000\nCMD [\"python\", \"-m\", \"http.server\", \"8000\", \"--directory\", \"public\"]\n"
        ),
    )
    .unwrap();
    let out = env
        .racer(&[
            "run",
            "--project-name",
            "slow",
            "--path",
            dir.to_str().unwrap(),
            "--no-wait",
            "--json",
        ])
        .ok();
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let id = first["deployment"]["id"].as_str().unwrap().to_owned();
    let status = || -> racer_core::api::Deployment {
        env.racer(&["status", "--project-name", "slow", "--json"])
            .json::<AppStatus>()
            .deployment
            .expect("a deployment")
    };
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        status().status,
        DeploymentStatus::Pending,
        "no worker, no build"
    );

    // A worker takes it (it shares the server's data directory and SQLite store) and is
    // killed in the middle of the build.
    let mut first_worker = worker(&env, "worker-1.log");
    eventually(30, "the worker building the deployment", || {
        status().status == DeploymentStatus::Building
    });
    kill9(first_worker.id());
    let _ = first_worker.wait();

    // Another worker finds the build's lease stale (three TTLs), builds it again and, holding
    // the controller's lease once the first one's lapses, runs it.
    let mut second = worker(&env, "worker-2.log");
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(
            120,
            "the build finished by the second worker and running",
            || {
                let d = status();
                assert_ne!(d.status, DeploymentStatus::Failed, "{d:?}");
                d.status == DeploymentStatus::Running
            },
        )
    }));
    let log2 = std::fs::read_to_string(env.dir.path().join("worker-2.log")).unwrap_or_default();
    let _ = second.kill();
    let _ = second.wait();
    if let Err(e) = done {
        panic!("{e:?}\n--- second worker's log\n{log2}");
    }
    assert_eq!(
        status().id.to_string(),
        id,
        "the same deployment, not a new one"
    );
    assert!(log2.contains("racer worker ready"), "{log2}");
    // The server (no worker, so it only routes) answers through its proxy.
    let body = get_ok(&format!("{}/apps/slow/", server.proxy_url.unwrap()));
    assert!(body.contains("built by a worker"), "{body}");
    let events = env
        .racer(&["events", "--kind", "deployment.resumed", "--json"])
        .ok();
    assert!(events.contains("stopped answering"), "{events}");
}
