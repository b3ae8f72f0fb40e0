//! Issue 5: traffic through the built-in proxy, against the real engine and the real binaries.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use racer_core::api::{AppStatus, DeploymentStatus};

use crate::util::{docker, hello_app, metrics_text, Env};

fn status(env: &Env, app: &str) -> AppStatus {
    env.racer(&["status", "--project-name", app, "--json"])
        .json()
}

fn proxy(env: &Env) -> String {
    env.server_file().unwrap().proxy_url.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_host_and_path_routing_404_and_503() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "web");
    env.racer(&[
        "run",
        "--project-name",
        "web",
        "--path",
        dir.to_str().unwrap(),
        "--instances",
        "2",
    ])
    .ok();
    let p = proxy(&env);
    let port = p.rsplit(':').next().unwrap().to_owned();
    let c = reqwest::Client::new();

    // Path routing strips the prefix.
    let body = c
        .get(format!("{p}/apps/web/some/path?q=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\"path\":\"/some/path\""), "{body}");
    // Host routing; both replicas take turns.
    let mut hosts = HashSet::new();
    for _ in 0..10 {
        let r = c
            .get(format!("http://127.0.0.1:{port}/"))
            .header("host", format!("web.localhost:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-request-id"));
        let b = r.text().await.unwrap();
        hosts.insert(
            b.split(" from ")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(hosts.len(), 2, "round robin over both replicas: {hosts:?}");
    let s = status(&env, "web");
    assert_eq!(s.urls[0], format!("http://web.localhost:{port}/"));

    // Unknown app: 404. No replica: 503 with Retry-After.
    let r = c.get(format!("{p}/apps/nope/")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    env.racer(&["scale", "--project-name", "web", "--instances", "0"])
        .ok();
    let mut last = 0;
    for _ in 0..100 {
        let r = c.get(format!("{p}/apps/web/")).send().await.unwrap();
        last = r.status().as_u16();
        if last == 503 {
            assert_eq!(r.headers()["retry-after"], "5");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, 503);
    env.racer(&["scale", "--project-name", "web", "--instances", "1"])
        .ok();
}

/// Requests flow from `workers` loops until `stop`; returns (ok, failed, first failure).
pub(crate) fn load(
    url: String,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64, Option<String>)> {
    let timed = load_timed(url, workers, stop);
    tokio::spawn(async move {
        let (ok, failed, first, _) = timed.await.unwrap();
        (ok, failed, first)
    })
}

/// As [`load`], also returning the slowest request's time.
pub(crate) fn load_timed(
    url: String,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64, Option<String>, Duration)> {
    tokio::spawn(async move {
        let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let first = Arc::new(std::sync::Mutex::new(None));
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (url, stop, ok, failed, first, slowest) = (
                url.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
                first.clone(),
                slowest.clone(),
            );
            handles.push(tokio::spawn(async move {
                let c = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let sent = Instant::now();
                    let answer = c.get(&url).send().await;
                    let answer = match answer {
                        Ok(r) if r.status().is_success() => match r.bytes().await {
                            Ok(_) => Ok(()),
                            Err(e) => Err(Err(e)),
                        },
                        Ok(r) => Err(Ok(r)),
                        Err(e) => Err(Err(e)),
                    };
                    let took = sent.elapsed();
                    {
                        let mut s = slowest.lock().unwrap();
                        if took > *s {
                            *s = took;
                        }
                    }
                    match answer {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(other) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            let what = match other {
                                Ok(r) => format!("status {}", r.status()),
                                Err(e) => format!("error {e}"),
                            };
                            first.lock().unwrap().get_or_insert(what);
                        }
                    }
                }
            }));
        }
        for h in handles {
            let _ = h.await;
        }
        let f = first.lock().unwrap().clone();
        let slowest = *slowest.lock().unwrap();
        (
            ok.load(Ordering::SeqCst),
            failed.load(Ordering::SeqCst),
            f,
            slowest,
        )
    })
}

pub(crate) async fn racer(env: &Env, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let cmd = crate::util::bin("racer");
    let data = env.data_dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cmd)
            .args(&args)
            .env("RACER_DATA_DIR", data)
            .env_remove("RACER_URL")
            .env_remove("RACER_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "racer failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_zero_failed_requests_through_two_redeploys_and_a_rollback() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "live");
    env.racer(&[
        "run",
        "--project-name",
        "live",
        "--path",
        dir.to_str().unwrap(),
        "--instances",
        "2",
        "--env",
        "GREETING=one",
    ])
    .ok();
    let url = format!("{}/apps/live/", proxy(&env));
    let stop = Arc::new(AtomicBool::new(false));
    let running = load_timed(url.clone(), 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Redeploy with a rebuild, redeploy without, roll back: requests keep flowing.
    let df = dir.join("Dockerfile");
    std::fs::write(
        &df,
        std::fs::read_to_string(&df).unwrap() + "LABEL redeploy=1\n",
    )
    .unwrap();
    racer(&env, &["rerun", "--project-name", "live"]).await;
    racer(
        &env,
        &[
            "rerun",
            "--project-name",
            "live",
            "--no-rebuild",
            "--env",
            "GREETING=two",
        ],
    )
    .await;
    assert!(reqwest::get(&url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("two from"));
    racer(&env, &["rollback", "--project-name", "live"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed, first, slowest) = running.await.unwrap();
    assert_eq!(
        failed, 0,
        "failed requests: {failed} (first: {first:?}); ok: {ok}"
    );
    assert!(ok > 100, "too little traffic to prove anything: {ok}");
    // Issue 19: no request stalls through the rollouts, even on a machine as busy as a test
    // suite makes it (this suite runs tests side by side, builds included).
    assert!(
        slowest < Duration::from_secs(2),
        "the slowest request took {slowest:?} (server log: {})",
        env.log()
            .lines()
            .filter(|l| l.contains("slow upstream try"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The rollback restored release 2's image and config (GREETING=one after the rebuild).
    let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(
        body.contains("one from") && body.contains("\"release\":\"4\""),
        "{body}"
    );
    assert_eq!(status(&env, "live").app.release, Some(4));
    crate::util::eventually(60, "old releases drained and retired", || {
        let s = status(&env, "live");
        s.containers.len() == 2 && s.containers.iter().all(|c| c.release == Some(4))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_a_release_that_never_answers_rolls_back_with_zero_failed_requests() {
    // A FROM scratch busybox image whose command never listens.
    let bb = std::path::Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "busybox-static is missing: scripts/ensure-tools.sh installs it"
    );
    let env = Env::new();
    let ctxdir = env.dir.path().join("bb");
    std::fs::create_dir_all(&ctxdir).unwrap();
    std::fs::copy(bb, ctxdir.join("busybox")).unwrap();
    std::fs::write(ctxdir.join("Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"sleep\", \"3600\"]\n").unwrap();
    let tag = format!("racer-test-silent:{}", uuid::Uuid::new_v4().simple());
    docker(&["build", "-q", "-t", &tag, ctxdir.to_str().unwrap()]);

    env.start(&["--rollout-deadline", "5"]);
    let dir = hello_app(&env, "safe");
    env.racer(&[
        "run",
        "--project-name",
        "safe",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    let url = format!("{}/apps/safe/", proxy(&env));
    let stop = Arc::new(AtomicBool::new(false));
    let running = load(url.clone(), 4, stop.clone());

    let run = env.racer(&[
        "run",
        "--project-name",
        "safe",
        "--image",
        &tag,
        "--app-port",
        "8000",
        "--timeout",
        "60",
    ]);
    let err = run.code(1);
    assert!(err.contains("rolled back to release 1"), "{err}");
    stop.store(true, Ordering::SeqCst);
    let (ok, failed, first) = running.await.unwrap();
    assert_eq!(failed, 0, "failed: {failed} (first: {first:?}), ok: {ok}");
    assert!(ok > 50);
    let s = status(&env, "safe");
    assert_eq!(s.app.release, Some(1));
    assert_eq!(s.deployment.unwrap().status, DeploymentStatus::RolledBack);
    crate::util::eventually(30, "the silent replica removed", || {
        env.containers() == vec!["safe-1-0".to_owned()]
    });
    drop(env);
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &tag])
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_a_replica_failing_its_check_leaves_rotation_and_returns() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "hc");
    env.racer(&[
        "run",
        "--project-name",
        "hc",
        "--path",
        dir.to_str().unwrap(),
        "--instances",
        "2",
        "--health-path",
        "/health",
        "--health-failures",
        "2",
    ])
    .ok();
    let url = format!("{}/apps/hc/", proxy(&env));
    let c = reqwest::Client::new();
    let hosts = |n: usize| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let mut seen = HashSet::new();
            for _ in 0..n {
                let b = c.get(&url).send().await.unwrap().text().await.unwrap();
                seen.insert(
                    b.split(" from ")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap()
                        .to_owned(),
                );
            }
            seen
        }
    };
    assert_eq!(hosts(10).await.len(), 2);

    let s = status(&env, "hc");
    let sick = &s.containers[0];
    let direct = format!("http://127.0.0.1:{}", sick.host_port.unwrap());
    c.post(format!("{direct}/health/fail"))
        .send()
        .await
        .unwrap();
    let sick_host = sick.id[..12].to_owned();
    let mut left = false;
    for _ in 0..100 {
        let seen = hosts(10).await;
        if seen.len() == 1 && !seen.contains(&sick_host) {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left, "the failing replica never left the rotation");
    let s = status(&env, "hc");
    let shown = s.containers.iter().find(|x| x.id == sick.id).unwrap();
    assert_eq!(shown.health, "unhealthy");
    assert_eq!(
        shown.state, "running",
        "racer does not kill it; it only stops routing to it"
    );

    c.post(format!("{direct}/health/pass"))
        .send()
        .await
        .unwrap();
    let mut back = false;
    for _ in 0..100 {
        if hosts(10).await.len() == 2 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the replica never returned to the rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_forwarded_headers_request_id_and_metrics() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "hdr");
    env.racer(&[
        "run",
        "--project-name",
        "hdr",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    let p = proxy(&env);
    let c = reqwest::Client::new();
    let r = c
        .get(format!("{p}/apps/hdr/headers"))
        .header("x-request-id", "abc123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc123", "kept end to end");
    let h: serde_json::Value = r.json().await.unwrap();
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-prefix"], "/apps/hdr");
    assert_eq!(h["x-request-id"], "abc123");
    assert_eq!(
        h["x-forwarded-host"].as_str().unwrap(),
        p.trim_start_matches("http://")
    );
    // A fresh id when the client sends none.
    let h: serde_json::Value = c
        .get(format!("{p}/apps/hdr/headers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["x-request-id"].as_str().unwrap().len(), 32);
    // POST bodies stream through.
    let body = c
        .post(format!("{p}/apps/hdr/echo"))
        .body(vec![b'x'; 300_000])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\"body_bytes\":300000"), "{body}");

    for _ in 0..20 {
        c.get(format!("{p}/apps/hdr/")).send().await.unwrap();
    }
    let text = metrics_text(&env).await;
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("prometheus text format");
    let ok: f64 = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "racer_proxy_requests_total"
                && s.labels.get("app") == Some("hdr")
                && s.labels.get("class") == Some("2xx")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(ok >= 23.0, "2xx counted: {ok}\n{text}");
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "racer_proxy_request_duration_seconds"
                || s.metric.starts_with("racer_proxy_request_duration_seconds")),
        "{text}"
    );
    let desired = scrape
        .samples
        .iter()
        .find(|s| s.metric == "racer_app_replicas_desired")
        .unwrap();
    assert_eq!(desired.labels.get("app"), Some("hdr"));

    // Issue 6: replicas ready, deployment outcomes, build and reconcile durations, scaling.
    let value = |metric: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .and_then(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => Some(v),
                prometheus_parse::Value::Histogram(ref b) => b
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map(|b| b.count),
                _ => None,
            })
    };
    assert_eq!(
        value("racer_app_replicas_ready", &[("app", "hdr")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            "racer_deployments_total",
            &[("app", "hdr"), ("outcome", "running")]
        ),
        Some(1.0),
        "one deployment, and it runs\n{text}"
    );
    let app_build = [("app", "hdr"), ("result", "succeeded")];
    let builds = value("racer_build_duration_seconds", &app_build).unwrap_or(0.0);
    assert_eq!(
        Some(builds),
        value("racer_build_duration_seconds_count", &app_build),
        "+Inf bucket = count\n{text}"
    );
    assert!(builds >= 1.0, "{text}");
    let build_secs = value("racer_build_duration_seconds_sum", &app_build).unwrap_or(0.0);
    assert!(build_secs > 0.0 && build_secs < 600.0, "{text}");
    let passes = value("racer_reconcile_pass_duration_seconds_count", &[]).unwrap_or(0.0);
    assert!(passes > 0.0, "{text}");
    let pass_secs = value("racer_reconcile_pass_duration_seconds_sum", &[]).unwrap_or(-1.0);
    assert!(
        pass_secs >= 0.0 && pass_secs / passes < 5.0,
        "mean pass {pass_secs}/{passes}\n{text}"
    );
    assert_eq!(value("racer_reconcile_apps", &[]), Some(1.0), "{text}");
    assert_eq!(
        value("racer_reconcile_errors_total", &[]),
        Some(0.0),
        "{text}"
    );
    assert!(
        scrape.docs.contains_key("racer_autoscaler_decisions_total"),
        "the family is declared even before any decision\n{text}"
    );
    assert_eq!(
        value("racer_autoscaler_decisions_total", &[("app", "hdr")]),
        None,
        "a manual app has no autoscaler decisions\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_a_replica_dying_under_load_costs_no_request() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "die");
    env.racer(&[
        "run",
        "--project-name",
        "die",
        "--path",
        dir.to_str().unwrap(),
        "--instances",
        "2",
    ])
    .ok();
    let url = format!("{}/apps/die/", proxy(&env));
    let stop = Arc::new(AtomicBool::new(false));
    let running = load_timed(url, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let victim = status(&env, "die").containers[0].id.clone();
    docker(&["kill", &victim]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed, first, slowest) = running.await.unwrap();
    assert_eq!(failed, 0, "failed: {failed} (first: {first:?}), ok: {ok}");
    assert!(ok > 50);
    // Issue 19: the requests sent to the dead replica before its health check noticed are
    // not held up by it: its address no longer answers at all (its network is gone), and the
    // proxy moves on to the other replica without waiting out a long connect.
    assert!(
        slowest < Duration::from_secs(1),
        "the slowest request took {slowest:?} (server log: {})",
        env.log()
            .lines()
            .filter(|l| l.contains("slow upstream try"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Six 500 ms requests to `app` through the proxy at once, each on its own connection, while
/// `/metrics` is read: how long they all took, and the most requests seen queued in the proxy.
async fn six_slow_requests(env: &Env, app: &str) -> (Duration, u64) {
    let p = proxy(env);
    let c = reqwest::Client::new();
    let started = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..6 {
        let c = c.clone();
        let url = format!("{p}/apps/{app}/slow?ms=500");
        calls.push(tokio::spawn(async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    let gauge = format!("racer_proxy_queued_requests{{app=\"{app}\"}}");
    let mut most_queued = 0;
    while started.elapsed() < Duration::from_millis(400) {
        let queued = metrics_text(env)
            .await
            .lines()
            .find(|l| l.starts_with(&gauge))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        most_queued = most_queued.max(queued);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for call in calls {
        let (code, body) = call.await.unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("\"slept_ms\":500"), "{body}");
    }
    (started.elapsed(), most_queued)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_a_replica_gets_at_most_its_concurrency_limit_and_the_rest_wait_their_turn() {
    let env = Env::new();
    // One proxy thread: the whole limit of 2 is that thread's.
    env.start_with_env(
        &[],
        &[
            ("RACER_REPLICA_CONCURRENCY", "2"),
            ("RACER_PROXY_THREADS", "1"),
        ],
    );
    let dir = hello_app(&env, "busy");
    env.racer(&[
        "run",
        "--project-name",
        "busy",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    // With a limit of 2 the six run in three waves (≥ 1.5 s); without one, together (~0.5 s).
    let (took, most_queued) = six_slow_requests(&env, "busy").await;
    assert!(
        took >= Duration::from_millis(1500),
        "six 500 ms requests under a limit of 2 took {took:?}: the limit did not hold"
    );
    assert_eq!(most_queued, 4, "four requests waited in the proxy");

    // The app's own limit wins over the server's: 3 at once, two waves, three queued.
    env.racer(&[
        "run",
        "--project-name",
        "busy",
        "--path",
        dir.to_str().unwrap(),
        "--concurrency",
        "3",
    ])
    .ok();
    let (took, most_queued) = six_slow_requests(&env, "busy").await;
    assert!(
        took >= Duration::from_millis(1000),
        "six 500 ms requests under a limit of 3 took {took:?}: the limit did not hold"
    );
    assert_eq!(
        most_queued, 3,
        "three requests waited in the proxy: the app's --concurrency 3, not the server's 2"
    );
    // An impossible limit is refused, naming the field, and changes nothing.
    let releases_before = env
        .racer(&["releases", "--project-name", "busy", "--json"])
        .ok();
    let err = env
        .racer(&[
            "run",
            "--project-name",
            "busy",
            "--path",
            dir.to_str().unwrap(),
            "--concurrency",
            "100001",
        ])
        .code(1);
    assert!(err.contains("config.concurrency"), "{err}");
    assert!(err.contains("0-100000"), "{err}");
    let releases_after = env
        .racer(&["releases", "--project-name", "busy", "--json"])
        .ok();
    assert_eq!(releases_before, releases_after, "no release recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f19_a_replica_whose_address_stops_answering_holds_no_request_up() {
    // The way a request used to stall past 2 s: its replica is still in the routes, but its
    // address no longer answers a SYN (the container left the network; the kernel keeps asking
    // for its MAC for ~3 s before it gives up). Every request sent there waited out the proxy's
    // whole connect timeout before trying the other replica.
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "gone");
    env.racer(&[
        "run",
        "--project-name",
        "gone",
        "--path",
        dir.to_str().unwrap(),
        "--instances",
        "2",
    ])
    .ok();
    let url = format!("{}/apps/gone/", proxy(&env));
    let stop = Arc::new(AtomicBool::new(false));
    let running = load_timed(url, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let victim = status(&env, "gone").containers[0].id.clone();
    let network = docker(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
        &victim,
    ]);
    docker(&["network", "disconnect", "-f", network.trim(), &victim]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed, first, slowest) = running.await.unwrap();
    assert_eq!(failed, 0, "failed: {failed} (first: {first:?}), ok: {ok}");
    assert!(ok > 50);
    assert!(
        slowest < Duration::from_millis(1500),
        "the slowest request took {slowest:?} (server log: {})",
        env.log()
            .lines()
            .filter(|l| l.contains("slow upstream try"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
