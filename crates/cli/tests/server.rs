//! Issue 3: the server's lifecycle through `racerctl`, and apps through `racer`.

use racer_core::api::{App, Event, Health, Page, Probe, ServerInfo};

use crate::util::{kill9, pid_alive, postgres_db, wait_dead, Env};

#[test]
fn f3_server_lifecycle_and_apps_survive_restart_and_kill() {
    let env = Env::new();
    let first = env.start(&[]);
    assert!(pid_alive(first.pid));
    assert_eq!(first.store, "sqlite");
    // Detached as a daemon is: a session (and so a process group) of its own, not the caller's.
    let session_of = |pid: u32| -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // pid (comm) state ppid pgrp session ...
        let after_comm = stat.rsplit_once(')').unwrap().1;
        after_comm.split_whitespace().nth(3).unwrap().to_owned()
    };
    assert_eq!(
        session_of(first.pid),
        first.pid.to_string(),
        "the server leads its own session"
    );
    assert_ne!(session_of(first.pid), session_of(std::process::id()));

    let status = env.racerctl(&["server", "status"]).ok();
    assert!(status.contains(&first.api_url), "{status}");
    assert!(
        status.contains(&format!("pid:       {}", first.pid)),
        "{status}"
    );
    let info: ServerInfo = env.racerctl(&["server", "status", "--json"]).json();
    assert_eq!(info.pid, first.pid);
    assert_eq!(info.store, "sqlite");

    // A second start while one runs is refused.
    let err = env.racerctl(&["server", "start", "--port", "0"]).code(1);
    assert!(err.contains("already running"), "{err}");

    // Apps by name and by UUID.
    let web: App = env.racer(&["apps", "create", "web", "--json"]).json();
    let api: App = env.racer(&["apps", "create", "api", "--json"]).json();
    let list: Page<App> = env.racer(&["apps", "list", "--json"]).json();
    let names: Vec<_> = list.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["api", "web"]);
    let by_id: App = env
        .racer(&["apps", "show", &web.id.to_string(), "--json"])
        .json();
    assert_eq!(by_id, web);
    let by_name: App = env.racer(&["apps", "show", "web", "--json"]).json();
    assert_eq!(by_name, web);
    let table = env.racer(&["apps", "list"]).ok();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains(&api.id.to_string()), "{table}");
    let deleted: App = env
        .racer(&["apps", "delete", &api.id.to_string(), "--json"])
        .json();
    assert_eq!(deleted.id, api.id);
    let err = env.racer(&["apps", "show", "api"]).code(1);
    assert!(err.contains("not found"), "{err}");
    env.racer(&["apps", "create", "db"]).ok();
    env.racer(&["apps", "delete", "db"]).ok();

    // Graceful restart: same data.
    env.racerctl(&["server", "restart"]).ok();
    let second = env.server_file().unwrap();
    assert_ne!(second.pid, first.pid);
    assert!(!pid_alive(first.pid));
    let after: App = env.racer(&["apps", "show", "web", "--json"]).json();
    assert_eq!(after, web);

    // kill -9, then start again: nothing lost, the stale server file is not a running server.
    kill9(second.pid);
    env.racerctl(&["server", "status"]).code(1);
    let third = env.start(&[]);
    assert_ne!(third.pid, second.pid);
    let after: App = env
        .racer(&["apps", "show", &web.id.to_string(), "--json"])
        .json();
    assert_eq!(after, web);
    let events: Page<Event> = env.racer(&["events", "--json"]).json();
    let kinds: Vec<_> = events.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "app.created",
            "app.created",
            "app.deleted",
            "app.created",
            "app.deleted"
        ]
    );
    assert!(events.items.iter().all(|e| e.actor == "admin"));

    env.racerctl(&["server", "stop"]).ok();
    wait_dead(third.pid);
    assert!(
        env.server_file().is_none(),
        "server.json removed on a clean stop"
    );
    env.racerctl(&["server", "status"]).code(1);
    // Stopping a stopped server is not an error.
    env.racerctl(&["server", "stop"]).ok();
}

#[test]
fn f3_probes_and_info() {
    let env = Env::new();
    env.start(&[]);
    let h: Health = env.racerctl(&["health", "--json"]).json();
    assert_eq!(h.components[0].name, "store");
    assert!(h.components[0].healthy);
    let docker = &h.components[1];
    assert_eq!(docker.name, "docker");
    assert!(
        docker.healthy,
        "docker engine must be reachable: {}",
        docker.detail
    );
    assert!(docker.detail.starts_with("engine "), "{}", docker.detail);
    let p: Probe = env.racerctl(&["liveness", "--json"]).json();
    assert_eq!(p.status, "ok");
    let p: Probe = env.racerctl(&["readiness", "--json"]).json();
    assert_eq!(p.status, "ok");
    let info: ServerInfo = env.racerctl(&["info", "--json"]).json();
    assert!(info.docker_version.is_some());
    assert_eq!(info.data_dir, env.data_dir.display().to_string());
}

/// One clear line, non-zero exit, no panic or backtrace.
fn one_clear_line(err: &str, expect: &str) {
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line please: {err}");
}

#[test]
fn f3_start_errors_are_one_clear_line() {
    // Port in use.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let env = Env::new();
    let err = env.racerctl(&["server", "start", "--port", &port]).code(1);
    one_clear_line(&err, "cannot listen on 127.0.0.1:");
    assert!(env.server_file().is_none());

    // Unwritable data directory (a path below a regular file).
    let file = env.dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("data");
    let err = env
        .racerctl(&[
            "--data-dir",
            bad.to_str().unwrap(),
            "server",
            "start",
            "--port",
            "0",
        ])
        .code(1);
    one_clear_line(&err, "cannot create data directory");

    // Unreachable database.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://racer:secret-pw@127.0.0.1:{dead_port}/racer");
    let err = env
        .racerctl(&["server", "start", "--port", "0", "--database-url", &url])
        .code(1);
    one_clear_line(&err, "cannot connect to the database");
    assert!(!err.contains("secret-pw"), "the password leaked: {err}");
    assert!(
        !env.log().contains("secret-pw"),
        "the password leaked into the log"
    );

    // Unsupported database URL.
    let err = env
        .racerctl(&[
            "server",
            "start",
            "--port",
            "0",
            "--database-url",
            "mysql://x/y",
        ])
        .code(1);
    one_clear_line(&err, "unsupported database url");
}

#[test]
fn f3_postgres_store_survives_restart_and_kill() {
    let Some(url) = postgres_db() else { return };
    let env = Env::new();
    let f = env.start(&["--database-url", &url]);
    assert_eq!(f.store, "postgres");
    let web: App = env.racer(&["apps", "create", "web", "--json"]).json();
    env.racerctl(&["server", "restart"]).ok();
    assert_eq!(
        env.server_file().unwrap().store,
        "postgres",
        "restart keeps the settings"
    );
    let again: App = env.racer(&["apps", "show", "web", "--json"]).json();
    assert_eq!(again, web);
    kill9(env.server_file().unwrap().pid);
    env.start(&["--database-url", &url]);
    let again: App = env
        .racer(&["apps", "show", &web.id.to_string(), "--json"])
        .json();
    assert_eq!(again, web);
    let err = env.racer(&["apps", "create", "web"]).code(1);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn f3_cli_errors_without_a_server() {
    let mut env = Env::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    env.extra_env.push(("RACER_URL".into(), url));
    let err = env.racer(&["apps", "list"]).code(1);
    assert!(err.contains("cannot reach the racer server"), "{err}");
    assert!(err.contains("racerctl server start"), "{err}");
    // Usage errors are exit code 2 (clap).
    env.racer(&["apps", "frobnicate"]).code(2);
    env.racerctl(&["server", "start", "--port", "notaport"])
        .code(2);
}

#[test]
fn f6_event_stream_delivers_every_change_in_order() {
    use std::io::BufRead;
    let env = Env::new();
    env.start(&[]);
    env.racer(&["apps", "create", "before"]).ok(); // not streamed: -f starts at "now"
    let mut child = std::process::Command::new(crate::util::bin("racer"))
        .args(["events", "-f", "--json"])
        .env("RACER_DATA_DIR", &env.data_dir)
        .env_remove("RACER_URL")
        .env_remove("RACER_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    for n in ["a", "b", "c"] {
        env.racer(&["apps", "create", n]).ok();
    }
    env.racer(&["apps", "delete", "b"]).ok();
    let mut got: Vec<Event> = Vec::new();
    while got.len() < 4 {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the stream delivered too few events");
        got.push(serde_json::from_str(&line).unwrap());
    }
    let _ = child.kill();
    let _ = child.wait();
    let seen: Vec<(String, Option<String>)> = got
        .iter()
        .map(|e| (e.kind.clone(), e.app_name.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("app.created".to_owned(), Some("a".to_owned())),
            ("app.created".to_owned(), Some("b".to_owned())),
            ("app.created".to_owned(), Some("c".to_owned())),
            ("app.deleted".to_owned(), Some("b".to_owned())),
        ]
    );
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
}
