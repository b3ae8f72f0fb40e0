//! Issue 19 (backups): back up a running install, wipe its store, restore onto the stopped
//! server: the app, its releases and its secrets are back, and its running container is adopted,
//! not restarted.

use racer_core::api::AppStatus;

use crate::util::{docker, eventually, hello_app, Env};

fn status(env: &Env) -> AppStatus {
    env.racer(&["status", "--project-name", "web", "--json"])
        .json()
}

#[test]
fn f19_backup_wipe_restore_adopts_the_running_containers() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "web");
    env.racer(&[
        "run",
        "--project-name",
        "web",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    env.racer(&[
        "secrets",
        "set",
        "--project-name",
        "web",
        "KEPT=across-restore",
    ])
    .ok();
    eventually(
        90,
        "release 2 (with the secret) running and healthy",
        || {
            let s = status(&env);
            s.app.release == Some(2)
                && s.containers.len() == 1
                && s.containers[0].release == Some(2)
                && s.containers[0].health == "healthy"
        },
    );
    let before = status(&env).containers[0].id.clone();
    let started = docker(&["inspect", "-f", "{{.State.StartedAt}}", &before]);

    // A backup while the server runs; a restore while it runs is refused.
    let file = env.dir.path().join("racer.backup");
    let out = env
        .racerctl(&["backup", "--output", file.to_str().unwrap()])
        .ok();
    assert!(out.contains("backed up the sqlite store"), "{out}");
    let again = env
        .racerctl(&["backup", "--output", file.to_str().unwrap()])
        .code(1);
    assert!(again.contains("exists"), "{again}");
    let busy = env.racerctl(&["restore", file.to_str().unwrap()]).code(1);
    assert!(busy.contains("already running"), "{busy}");

    // Stop, wipe the store, restore, start: everything is back.
    env.racerctl(&["server", "stop"]).ok();
    for f in ["racer.db", "racer.db-wal", "racer.db-shm"] {
        let _ = std::fs::remove_file(env.data_dir.join(f));
    }
    let bad = env.dir.path().join("not-a-backup");
    std::fs::write(&bad, "hello").unwrap();
    let err = env.racerctl(&["restore", bad.to_str().unwrap()]).code(1);
    assert!(err.contains("not a SQLite backup"), "{err}");
    let out = env.racerctl(&["restore", file.to_str().unwrap()]).ok();
    assert!(out.contains("restored"), "{out}");
    env.start(&[]);
    let last = std::cell::RefCell::new(String::new());
    let shown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(30, "the app back with its container adopted", || {
            let s = status(&env);
            *last.borrow_mut() = format!("{:?} {:?}", s.app.release, s.containers);
            s.app.release == Some(2)
                && s.containers.len() == 1
                && s.containers[0].id == before
                && s.containers[0].health == "healthy"
        })
    }));
    assert!(shown.is_ok(), "before {before}: {}", last.borrow());
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &before]),
        started,
        "adopted, not restarted"
    );
    let secrets = env
        .racer(&["secrets", "list", "--project-name", "web"])
        .ok();
    assert!(secrets.contains("KEPT"), "{secrets}");
    env.racer(&["delete", "--project-name", "web"]).ok();
}

#[test]
fn f19_backup_and_restore_on_postgresql() {
    let Some(url) = crate::util::postgres_db() else {
        return;
    };
    let mut env = Env::new();
    // Every command (server, backup, restore) uses the database; the URL travels in the
    // environment as the README advises, never on a command line.
    env.extra_env
        .push(("RACER_DATABASE_URL".to_string(), url.clone()));
    env.start(&[]);
    let dir = hello_app(&env, "web");
    env.racer(&[
        "run",
        "--project-name",
        "web",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    env.racer(&[
        "secrets",
        "set",
        "--project-name",
        "web",
        "KEPT=on-postgres",
    ])
    .ok();
    eventually(90, "release 2 running and healthy", || {
        let s = status(&env);
        s.app.release == Some(2)
            && s.containers.len() == 1
            && s.containers[0].release == Some(2)
            && s.containers[0].health == "healthy"
    });
    let before = status(&env).containers[0].id.clone();
    let file = env.dir.path().join("racer.sql");
    let out = env
        .racerctl(&["backup", "--output", file.to_str().unwrap()])
        .ok();
    assert!(out.contains("backed up the postgres store"), "{out}");
    let dump = std::fs::read_to_string(&file).unwrap();
    assert!(
        !dump.contains("on-postgres"),
        "the secret is sealed in the dump too"
    );

    // Stop, wipe every table, restore, start.
    env.racerctl(&["server", "stop"]).ok();
    let wipe = std::process::Command::new("psql")
        .args([
            url.as_str(),
            "-qc",
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public;",
        ])
        .output()
        .unwrap();
    assert!(
        wipe.status.success(),
        "{}",
        String::from_utf8_lossy(&wipe.stderr)
    );
    let out = env.racerctl(&["restore", file.to_str().unwrap()]).ok();
    assert!(out.contains("restored"), "{out}");
    env.start(&[]);
    eventually(30, "the app back with its container adopted", || {
        let s = status(&env);
        s.app.release == Some(2)
            && s.containers.len() == 1
            && s.containers[0].id == before
            && s.containers[0].health == "healthy"
    });
    let secrets = env
        .racer(&["secrets", "list", "--project-name", "web"])
        .ok();
    assert!(secrets.contains("KEPT"), "{secrets}");
    env.racer(&["delete", "--project-name", "web"]).ok();
}
