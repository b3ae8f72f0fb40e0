//! Issue 14, the scheduler end to end: two clusters (the suite's engine as `local` and a second
//! dockerd the test starts itself), low-priority work filling both, a priority-5 deployment
//! preempting exactly the minimal victim set with zero failed requests on the victims' traffic,
//! the victims coming back when the preemptor is deleted, a pinned request naming an unknown
//! cluster refused at once, and a drained cluster emptying.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use racer_core::api::{AppStatus, ClusterInfo, Event, Page};

use crate::clusters::Other;
use crate::traffic::{load, racer};
use crate::util::{docker_lines, eventually, hello_app, Env};

fn status(env: &Env, app: &str) -> AppStatus {
    env.racer(&["status", "--project-name", app, "--json"])
        .json()
}

/// The app's running replicas per cluster: (on local, on b).
fn spread(env: &Env, app: &str) -> (usize, usize) {
    let s = status(env, app);
    let on = |c: &str| {
        s.containers
            .iter()
            .filter(|r| r.cluster == c && r.state == "running")
            .count()
    };
    (on("local"), on("b"))
}

/// Containers of this install that the second engine runs (by its own `docker ps`).
fn on_second(env: &Env, host: &str) -> Vec<String> {
    let install = env
        .racerctl(&["info", "--json"])
        .json::<racer_core::api::ServerInfo>()
        .install_id
        .unwrap_or_default();
    docker_lines(&[
        "-H",
        host,
        "ps",
        "--filter",
        &format!("label=racer.install={install}"),
        "--filter",
        "label=racer.cluster=b",
        "--format",
        "{{.Names}}",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f14_priority_5_preempts_the_minimal_victims_across_two_engines_and_they_come_back() {
    let env = Env::new();
    let second = Other::start(&env);
    env.start(&[]);
    let host = second.host();

    // Room for exactly two replicas of `half` on each cluster: local as its engine says, b
    // declared the same.
    let local: Vec<ClusterInfo> = env.racerctl(&["clusters", "list", "--json"]).json();
    let cap = local[0].capacity.expect("local's capacity").cpu_milli;
    let half = format!("{}", cap as f64 / 2000.0);
    let whole = format!("{}", cap as f64 / 1000.0);
    env.racerctl(&[
        "clusters",
        "add",
        "b",
        "--docker-host",
        &host,
        "--cpu",
        &whole,
        "--memory",
        "8Gi",
    ])
    .ok();

    // Low-priority work fills both clusters.
    let dir = hello_app(&env, "low");
    let path = dir.to_str().unwrap().to_owned();
    racer(
        &env,
        &[
            "run",
            "--project-name",
            "low",
            "--path",
            &path,
            "--instances",
            "4",
            "--cpus",
            &half,
            "--priority",
            "1",
        ],
    )
    .await;
    assert_eq!(spread(&env, "low"), (2, 2), "{:?}", status(&env, "low"));
    assert_eq!(on_second(&env, &host).len(), 2, "b's own engine runs two");

    // A pinned request naming no cluster is refused at once, naming the field.
    let err = env
        .racer(&[
            "run",
            "--project-name",
            "nowhere",
            "--path",
            &path,
            "--cluster",
            "nope",
        ])
        .code(1);
    assert!(err.contains("config.cluster"), "{err}");

    // Traffic on the victims' app while a priority-5 deployment takes a whole cluster.
    let url = format!(
        "{}/apps/low/",
        env.server_file().unwrap().proxy_url.unwrap()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let running = load(url.clone(), 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let high = hello_app(&env, "high");
    racer(
        &env,
        &[
            "run",
            "--project-name",
            "high",
            "--path",
            high.to_str().unwrap(),
            "--cpus",
            &whole,
            "--priority",
            "5",
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed, first) = running.await.unwrap();
    assert_eq!(
        failed, 0,
        "failed requests on the victims' app: {failed} (first: {first:?}); ok: {ok}"
    );
    assert!(ok > 50, "too little traffic to prove anything: {ok}");

    // Exactly the minimal victim set: the two replicas of one cluster, nothing more.
    let events = env
        .racer(&["events", "--kind", "replica.preempted", "--json"])
        .json::<Page<Event>>()
        .items;
    assert_eq!(
        events.len(),
        2,
        "{events:?}\n{}\nhigh: {:?}\nlow: {:?}",
        env.racer(&["events"]).ok(),
        status(&env, "high"),
        status(&env, "low")
    );
    assert!(
        events.iter().all(
            |e| e.message.contains("preempted by high") && e.app_name.as_deref() == Some("low")
        ),
        "{events:?}"
    );
    let (l, b) = spread(&env, "low");
    assert_eq!(l + b, 2, "two low replicas keep serving");
    assert!(l == 0 || b == 0, "the victims were on one cluster: {l} {b}");
    let s = status(&env, "low");
    let why = s.waiting.clone().unwrap_or_default();
    assert!(
        why.contains("preempted") || why.contains("no cluster can take it"),
        "low says why it waits: {why:?}"
    );
    let out = env.racer(&["status", "--project-name", "low"]).ok();
    assert!(out.contains("waiting"), "{out}");
    // The re-queue is a job in the durable queue.
    let queue = env.racerctl(&["queue", "status"]).ok();
    assert!(queue.contains("requeue"), "{queue}");

    // The preemptor goes: the victims come back.
    env.racer(&["delete", "--project-name", "high"]).ok();
    eventually(60, "low back to 4 replicas on both clusters", || {
        spread(&env, "low") == (2, 2)
    });
    assert!(status(&env, "low").waiting.is_none());

    // Draining b empties it: its replicas leave (local has no room for them: they wait).
    env.racerctl(&["clusters", "drain", "b"]).ok();
    eventually(60, "the drained cluster is empty", || {
        on_second(&env, &host).is_empty()
    });
    assert_eq!(spread(&env, "low"), (2, 0));
    let why = status(&env, "low").waiting.unwrap_or_default();
    assert!(why.contains("drained"), "{why}");
    // Undrained: they come back.
    env.racerctl(&["clusters", "undrain", "b"]).ok();
    eventually(60, "low back on b", || spread(&env, "low") == (2, 2));
    env.racer(&["delete", "--project-name", "low"]).ok();
    eventually(60, "b empty after the delete", || {
        on_second(&env, &host).is_empty()
    });
    drop(second);
}
