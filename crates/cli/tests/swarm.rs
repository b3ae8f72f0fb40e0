//! Issue 6: an app on a Swarm cluster, through the real binaries, on a real single-node swarm
//! that the test creates (only when the engine is in none) and removes again.

use std::process::Command;
use std::time::{Duration, Instant};

use racer_core::api::swarm::{SwarmNode, SwarmRemoved, SwarmStatus};
use racer_core::api::{App, ErrorBody};

use crate::util::{bin, docker_lines, eventually, get_ok, hello_app, Env};

/// Runs `racerctl swarm ...` (which runs `racer-server swarm ...`) and decodes its JSON.
fn racerctl_swarm(args: &[&str]) -> Result<SwarmNode, String> {
    let out = Command::new(bin("racerctl"))
        .arg("swarm")
        .args(args)
        .arg("--json")
        .env("RACER_SERVER_BIN", bin("racer-server"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// Makes the engine a swarm manager for the test, and on drop (also when the test fails)
/// removes this install's services and leaves the swarm again if it made it.
struct SwarmGuard {
    made_swarm: bool,
    install: Option<String>,
}

impl SwarmGuard {
    fn manager() -> SwarmGuard {
        let before = racerctl_swarm(&["status"]).expect("racerctl swarm status");
        match (before.state.as_str(), before.manager) {
            ("active", true) => SwarmGuard {
                made_swarm: false,
                install: None,
            },
            ("inactive", _) => match racerctl_swarm(&["init", "--advertise-addr", "127.0.0.1"]) {
                Ok(node) => {
                    assert!(node.manager, "swarm init made no manager: {node:?}");
                    SwarmGuard {
                        made_swarm: true,
                        install: None,
                    }
                }
                Err(e) => panic!("Swarm cannot run on this machine: `racerctl swarm init` failed: {e}"),
            },
            _ => panic!("the engine is in a swarm but not as a manager ({before:?}); this test needs a manager or no swarm"),
        }
    }

    fn services(&self) -> Vec<String> {
        let Some(id) = &self.install else {
            return Vec::new();
        };
        docker_lines(&[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("label=racer.install={id}"),
        ])
    }
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        for s in self.services() {
            let _ = Command::new("docker").args(["service", "rm", &s]).output();
        }
        if self.made_swarm {
            if let Err(e) = racerctl_swarm(&["leave", "--force"]) {
                eprintln!("could not leave the swarm the test made: {e}");
            }
        }
    }
}

fn swarm_status(env: &Env, app: &str) -> SwarmStatus {
    env.racer(&["swarm-status", "--project-name", app, "--json"])
        .json()
}

/// Waits until the service wants `n` replicas and runs exactly `n` healthy tasks of `release`.
fn wait_replicas(env: &Env, app: &str, n: u64, release: i64) -> SwarmStatus {
    let mut last = None;
    eventually(90, &format!("{n} healthy swarm task(s) of {app}"), || {
        let s = swarm_status(env, app);
        let ok = s.service.as_ref().is_some_and(|svc| {
            svc.replicas_desired == n && svc.replicas_running == n && svc.release == Some(release)
        }) && s
            .tasks
            .iter()
            .filter(|t| t.desired_state == "running" && t.state == "running")
            .filter(|t| t.health.as_deref() == Some("healthy") && t.release == Some(release))
            .count() as u64
            == n;
        last = Some(s);
        ok
    });
    last.unwrap()
}

/// The distinct hosts (task containers) that answer `url` within `tries` requests.
fn hosts(url: &str, tries: usize) -> std::collections::BTreeSet<String> {
    (0..tries)
        .map(|_| {
            let body = get_ok(url);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn f6_swarm_service_scales_1_3_1_with_status_logs_and_remove() {
    let t0 = Instant::now();
    let mut guard = SwarmGuard::manager();
    eprintln!(
        "swarm manager ready after {:?} (made by the test: {})",
        t0.elapsed(),
        guard.made_swarm
    );

    let env = Env::new();
    env.start(&["--cluster", "swarm"]);
    guard.install = env.install.borrow().clone();
    let dir = hello_app(&env, "sweb");

    let t = Instant::now();
    let out = env
        .racer(&[
            "run",
            "--project-name",
            "sweb",
            "--path",
            dir.to_str().unwrap(),
            "--health-path",
            "/health",
        ])
        .ok();
    let url = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|w| w.starts_with("http://127.0.0.1:") && w.contains("/apps/sweb/"))
        .unwrap_or_else(|| panic!("no proxy URL in: {out}"))
        .to_owned();
    let s = wait_replicas(&env, "sweb", 1, 1);
    eprintln!("deployed on swarm in {:?}", t.elapsed());
    let svc = s.service.clone().unwrap();
    assert_eq!(guard.services().len(), 1, "one service for the app");
    assert!(svc.image.starts_with("sha256:"), "{svc:?}");
    // The service carries racer's labels; its tasks are Swarm's, not the container reconciler's.
    let labels = crate::util::docker(&[
        "service",
        "inspect",
        &svc.id,
        "--format",
        "{{json .Spec.Labels}} {{json .Spec.UpdateConfig}}",
    ]);
    assert!(labels.contains("\"racer.app.name\":\"sweb\""), "{labels}");
    assert!(labels.contains("\"racer.managed\":\"true\""), "{labels}");
    assert!(labels.contains("start-first"), "{labels}");
    assert!(labels.contains("rollback"), "{labels}");
    assert!(get_ok(&url).contains("hello from"));

    // 1 -> 3: the replica count changes through a versioned service update; three tasks answer.
    let t = Instant::now();
    env.racer(&["scale", "--project-name", "sweb", "--instances", "3"])
        .ok();
    let s3 = wait_replicas(&env, "sweb", 3, 1);
    eprintln!("scaled 1 -> 3 in {:?}", t.elapsed());
    let svc3 = s3.service.clone().unwrap();
    assert_eq!(svc3.id, svc.id, "the same service is scaled");
    assert!(svc3.version > svc.version, "{svc3:?} after {svc:?}");
    let mut seen = std::collections::BTreeSet::new();
    eventually(30, "requests through the proxy reach all 3 tasks", || {
        seen.extend(hosts(&url, 6));
        seen.len() == 3
    });
    let table = env.racer(&["swarm-status", "--project-name", "sweb"]).ok();
    assert!(table.contains("3/3 running"), "{table}");

    // 3 -> 1.
    let t = Instant::now();
    env.racer(&["scale-down", "--project-name", "sweb", "--instances", "1"])
        .ok();
    let s1 = wait_replicas(&env, "sweb", 1, 1);
    eprintln!("scaled 3 -> 1 in {:?}", t.elapsed());
    assert!(s1.service.unwrap().version > svc3.version);
    for _ in 0..10 {
        assert!(get_ok(&url).contains("hello from"));
    }
    eventually(30, "the 2 retired task containers stop", || {
        docker_lines(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.id={}", svc.id),
        ])
        .len()
            == 1
    });
    eprintln!("3 -> 1 containers stopped after {:?}", t.elapsed());

    // A new release rolls through Swarm's update config (start-first) in the same service.
    let t = Instant::now();
    env.racer(&[
        "rerun",
        "--project-name",
        "sweb",
        "--no-rebuild",
        "--env",
        "GREETING=v2",
    ])
    .ok();
    let s2 = wait_replicas(&env, "sweb", 1, 2);
    eprintln!("rolled to release 2 in {:?}", t.elapsed());
    let svc2 = s2.service.unwrap();
    assert_eq!(svc2.id, svc.id);
    assert_eq!(svc2.update_state.as_deref(), Some("completed"), "{svc2:?}");
    assert!(
        s2.tasks
            .iter()
            .any(|t| t.release == Some(1) && t.desired_state == "shutdown"),
        "{:?}",
        s2.tasks
    );
    eventually(10, "the proxy routes to release 2 only", || {
        let body = get_ok(&url);
        body.contains("\"release\":\"2\"") && body.contains("v2 from")
    });

    let logs = env
        .racer(&["swarm-logs", "--project-name", "sweb", "--tail", "50"])
        .ok();
    assert!(logs.contains("listening on :8000"), "{logs}");

    // Remove: the service and its containers go; the app is down with its releases kept.
    let removed: SwarmRemoved = env
        .racer(&["swarm-remove", "--project-name", "sweb", "--json"])
        .json();
    assert_eq!(removed.services, vec![svc.id.clone()]);
    assert_eq!(removed.app.instances, 0);
    assert_eq!(removed.app.release, Some(2));
    assert!(guard.services().is_empty());
    eventually(30, "the service's containers are gone", || {
        docker_lines(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.swarm.service.id={}", svc.id),
        ])
        .is_empty()
    });
    // The reconciler does not bring it back while the app is down.
    std::thread::sleep(Duration::from_secs(2));
    assert!(guard.services().is_empty());
    let after = swarm_status(&env, "sweb");
    assert_eq!(after.service, None);
    assert_eq!(after.instances, 0);
    let err = env.racer(&["swarm-logs", "--project-name", "sweb"]).code(1);
    assert!(err.contains("has no swarm service"), "{err}");
    let app: App = env.racer(&["apps", "show", "sweb", "--json"]).json();
    assert_eq!(app.release, Some(2));
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    eprintln!("swarm test done in {:?}", t0.elapsed());
}

#[test]
fn f6_swarm_endpoints_say_what_to_do_on_a_local_cluster() {
    let env = Env::new();
    env.start(&[]);
    env.racer(&["apps", "create", "plain"]).ok();
    let err = env
        .racer(&["swarm-status", "--project-name", "plain"])
        .code(1);
    assert!(
        err.contains("runs on the local engine") && err.contains("--cluster swarm"),
        "{err}"
    );
    let token = env.token();
    let api = env.server_file().unwrap().api_url;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, body) = rt.block_on(async {
        let r = crate::util::http()
            .delete(format!("{api}/api/v1/apps/plain/swarm"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<ErrorBody>().await.unwrap())
    });
    assert_eq!(status, 409);
    assert_eq!(body.error.code, "conflict");
}
