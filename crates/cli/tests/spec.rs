//! Issue 6: declarative specs (`racer apply`), up/down and manual scaling under load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use racer_core::api::{AppStatus, ApplyResult, Release};

use crate::util::{docker, eventually, hello_app, Env};

fn spec(image: &str, greeting: &str, min: u32) -> String {
    format!(
        "apiVersion: racer/v1\nkind: App\nmetadata:\n  name: decl\nspec:\n  image: {image}\n  ports:\n    - containerPort: 8000\n  env:\n    - name: GREETING\n      value: {greeting}\n  health:\n    httpGet:\n      path: /health\n  resources:\n    cpu: 0.5\n    memory: 128Mi\n  scaling:\n    minReplicas: {min}\n    maxReplicas: 3\n  termination:\n    drainSeconds: 1\n"
    )
}

/// `GET /metrics` with the admin token, from a test that is not async.
fn metrics_text(env: &Env) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(crate::util::metrics_text(env))
}

fn status(env: &Env) -> AppStatus {
    env.racer(&["status", "--project-name", "decl", "--json"])
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_apply_is_idempotent_prints_a_diff_and_scales_without_dropping_requests() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "img");
    let tag = format!("racer-test-decl:{}", uuid::Uuid::new_v4().simple());
    docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
    let file = env.dir.path().join("app.yaml");
    let apply = |env: &Env| -> ApplyResult {
        // --json prints the ApplyResult first, then the deployment's events (if any).
        let out = env
            .racer(&["apply", "-f", file.to_str().unwrap(), "--json"])
            .ok();
        let first = serde_json::Deserializer::from_str(&out)
            .into_iter::<serde_json::Value>()
            .next()
            .unwrap()
            .unwrap();
        serde_json::from_value(first).unwrap()
    };

    std::fs::write(&file, spec(&tag, "one", 1)).unwrap();
    let first = apply(&env);
    assert!(first.changed && first.deployment.is_some());
    // The same spec again: nothing changes, no release.
    let again = apply(&env);
    assert!(!again.changed && again.diff.is_empty() && again.deployment.is_none());
    let human = env.racer(&["apply", "-f", file.to_str().unwrap()]).ok();
    assert!(human.contains("no change"), "{human}");

    // One field changes: one new release, and the diff names it.
    std::fs::write(&file, spec(&tag, "two", 1)).unwrap();
    let changed = apply(&env);
    assert_eq!(changed.diff, ["~ spec.env[0].value: \"one\" -> \"two\""]);
    let releases: Vec<Release> = env
        .racer(&["releases", "--project-name", "decl", "--json"])
        .json();
    assert_eq!(releases.len(), 2);
    let s = status(&env);
    assert_eq!(releases[0].config.memory_mb, Some(128));
    assert_eq!(
        releases[0].config.health.as_ref().unwrap().path.as_deref(),
        Some("/health")
    );
    let url = s.urls[1].clone();
    assert!(reqwest::get(&url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("two from"));

    // Scale 1 → 3 → 1 through the spec and `racer scale` while requests flow: none fails.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (url, stop, ok, failed) = (url.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match c.get(&url).send().await {
                    Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        }));
    }
    std::fs::write(&file, spec(&tag, "two", 3)).unwrap();
    let scaled = apply(&env);
    assert_eq!(scaled.diff, ["~ spec.scaling.minReplicas: 1 -> 3"]);
    assert!(scaled.deployment.is_none(), "scaling makes no release");
    eventually(60, "3 healthy replicas", || {
        status(&env)
            .containers
            .iter()
            .filter(|c| c.health == "healthy")
            .count()
            == 3
    });
    env.racer(&["scale", "--project-name", "decl", "--instances", "1"])
        .ok();
    eventually(60, "back to 1 replica", || {
        status(&env).containers.len() == 1
    });
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "ok: {}",
        ok.load(Ordering::SeqCst)
    );
    assert!(ok.load(Ordering::SeqCst) > 100);
    let releases: Vec<Release> = env
        .racer(&["releases", "--project-name", "decl", "--json"])
        .json();
    assert_eq!(releases.len(), 2, "scaling made no release");

    // down / up keep the spec and releases.
    env.racer(&["down", "--project-name", "decl"]).ok();
    eventually(30, "no replica", || status(&env).containers.is_empty());
    env.racer(&["up", "--project-name", "decl"]).ok();
    eventually(30, "running again", || {
        status(&env)
            .containers
            .iter()
            .any(|c| c.health == "healthy")
    });

    // Unknown fields are errors that name their path; nothing changes.
    std::fs::write(
        &file,
        spec(&tag, "two", 1).replace("  termination:", "  terminaton:"),
    )
    .unwrap();
    let err = env.racer(&["apply", "-f", file.to_str().unwrap()]).code(1);
    assert!(err.contains("spec.terminaton"), "{err}");
    drop(env);
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &tag])
        .output();
}

#[test]
fn f6_autoscaler_scales_out_under_load_and_back_in_after() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "auto");
    let file = env.dir.path().join("auto.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: racer/v1\nkind: App\nmetadata:\n  name: auto\nspec:\n  build:\n    path: {}\n  scaling:\n    minReplicas: 1\n    maxReplicas: 3\n    policy:\n      mode: auto\n      cooldownSeconds: 2\n      windowSeconds: 3\n      scaleOutThresholdPct: 100\n      scaleInThresholdPct: 50\n      http:\n        targetRPSPerReplica: 20\n",
            dir.display()
        ),
    )
    .unwrap();
    env.racer(&["apply", "-f", file.to_str().unwrap()]).ok();
    let s: AppStatus = env
        .racer(&["status", "--project-name", "auto", "--json"])
        .json();
    let url = s.urls[1].clone();
    assert_eq!(s.app.instances, 1);

    // A bounded load: wrk for 12 s on loopback.
    let started = std::time::Instant::now();
    let wrk = std::process::Command::new("wrk")
        .args(["-t1", "-c4", "-d12s", &url])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("wrk (Debian package) is needed: scripts/ensure-tools.sh installs it");
    let instances = |env: &Env| -> u32 {
        let s: AppStatus = env
            .racer(&["status", "--project-name", "auto", "--json"])
            .json();
        s.app.instances
    };
    eventually(15, "scaled out under load", || instances(&env) >= 2);
    let reaction = started.elapsed();
    // window 3 s + one 1 s interval + sampling slack: well under 10 s.
    assert!(
        reaction < Duration::from_secs(10),
        "scale-out took {reaction:?}"
    );
    let mut wrk = wrk;
    let _ = wrk.wait();
    eventually(60, "back to 1 after the load", || instances(&env) == 1);

    let events: racer_core::api::Page<racer_core::api::Event> = env
        .racer(&[
            "events",
            "--project-name",
            "auto",
            "--kind",
            "app.autoscaled.",
            "--json",
        ])
        .json();
    let kinds: Vec<&str> = events.items.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"app.autoscaled.out"), "{kinds:?}");
    assert!(kinds.contains(&"app.autoscaled.in"), "{kinds:?}");
    let out = events
        .items
        .iter()
        .find(|e| e.kind == "app.autoscaled.out")
        .unwrap();
    assert!(
        out.message.contains("rps") && out.message.contains("target 20.0"),
        "{}",
        out.message
    );
    assert!(events.items.iter().all(|e| e.actor == "autoscaler"));
    // `/metrics` counts the same decisions.
    let text = metrics_text(&env);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("prometheus text format");
    let decisions = |direction: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| {
                s.metric == "racer_autoscaler_decisions_total"
                    && s.labels.get("app") == Some("auto")
                    && s.labels.get("direction") == Some(direction)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let count = |kind: &str| events.items.iter().filter(|e| e.kind == kind).count() as f64;
    assert_eq!(decisions("out"), count("app.autoscaled.out"), "{text}");
    assert_eq!(decisions("in"), count("app.autoscaled.in"), "{text}");

    // The same history, with the traffic that caused it, from `racer metrics`.
    let m: racer_core::api::AppMetrics = env
        .racer(&["metrics", "--project-name", "auto", "--json"])
        .json();
    assert!(m.requests.get("2xx").copied().unwrap_or(0) > 100, "{m:?}");
    assert!(m
        .scaling_history
        .iter()
        .any(|e| e.kind == "app.autoscaled.out"));
    assert_eq!(m.replicas_desired, 1);

    // `racer policy -f` switches to manual with two replicas: applied like a spec change.
    let policy = env.dir.path().join("policy.yaml");
    std::fs::write(&policy, "mode: manual\nminReplicas: 2\nmaxReplicas: 2\n").unwrap();
    let out = env
        .racer(&[
            "policy",
            "--project-name",
            "auto",
            "-f",
            policy.to_str().unwrap(),
        ])
        .ok();
    assert!(
        out.contains("spec.scaling.policy.mode") && out.contains("spec.scaling.minReplicas"),
        "{out}"
    );
    assert_eq!(instances(&env), 2);
    std::fs::write(&policy, "mode: auto\ncooldown: 3\n").unwrap();
    let err = env
        .racer(&[
            "policy",
            "--project-name",
            "auto",
            "-f",
            policy.to_str().unwrap(),
        ])
        .code(1);
    assert!(err.contains("cooldown"), "{err}");
}

/// One unlabelled sample of `/metrics` (a counter, or a histogram's `_count`).
fn sample(text: &str, name: &str) -> f64 {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("prometheus text format");
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.is_empty())
        .or_else(|| {
            let base = name.strip_suffix("_count")?;
            scrape.samples.iter().find(|s| s.metric == base)
        })
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
    match &found.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(h) => h.last().map_or(0.0, |b| b.count),
        other => panic!("{name}: unexpected {other:?}"),
    }
}

#[test]
fn f6_steady_passes_list_nothing_and_engine_events_catch_a_kill() {
    // Full lists only every 600 s: anything noticed in this test came from the event stream.
    let env = Env::new();
    env.start_with_env(&[], &[("RACER_OBSERVER_RESYNC", "600")]);
    let dir = hello_app(&env, "img");
    let tag = format!("racer-test-decl:{}", uuid::Uuid::new_v4().simple());
    docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
    let file = env.dir.path().join("app.yaml");
    std::fs::write(&file, spec(&tag, "one", 2)).unwrap();
    env.racer(&["apply", "-f", file.to_str().unwrap()]).ok();
    let healthy = |env: &Env| {
        status(env)
            .containers
            .iter()
            .filter(|c| c.health == "healthy")
            .count()
    };
    eventually(60, "two healthy replicas", || healthy(&env) == 2);

    // Steady state: passes keep coming and both replicas are checked every second, but no pass
    // lists the engine's containers.
    let before = metrics_text(&env);
    std::thread::sleep(Duration::from_secs(3));
    let after = metrics_text(&env);
    let grew = |name: &str| sample(&after, name) - sample(&before, name);
    assert!(
        grew("racer_reconcile_pass_duration_seconds_count") >= 2.0,
        "passes: {after}"
    );
    assert!(
        grew("racer_health_checks_total") >= 4.0,
        "2 replicas, 1 s interval, 3 s: {after}"
    );
    assert_eq!(grew("racer_observer_lists_total"), 0.0, "{after}");
    assert_eq!(grew("racer_health_check_failures_total"), 0.0, "{after}");

    // A replica killed behind racer's back: the engine's `die` event marks it, the next pass
    // starts it again (long before any full list), and it rejoins.
    let victim = status(&env).containers[0].id.clone();
    docker(&["kill", &victim]);
    eventually(15, "the killed replica started again and healthy", || {
        let s = status(&env);
        healthy(&env) == 2 && s.containers.iter().any(|c| c.id == victim)
    });
    let end = metrics_text(&env);
    assert!(
        sample(&end, "racer_observer_events_total") > sample(&after, "racer_observer_events_total"),
        "{end}"
    );
    assert_eq!(
        sample(&end, "racer_observer_lists_total"),
        sample(&before, "racer_observer_lists_total"),
        "no full list: the event did it"
    );
    assert_eq!(env.containers().len(), 2, "no duplicate replica");
}
