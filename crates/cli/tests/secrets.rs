//! Issue 19 (secrets): set from arguments and stdin, encrypted at rest, given to replicas as
//! environment (the app rolls), listed as names and digests only, never in the log, the
//! database file, events or any `--json`; unset rolls them away.

use racer_core::api::{AppStatus, DeploymentStatus, SecretInfo};

use crate::util::{docker_lines, eventually, hello_app, Env};

const VALUE: &str = "s3cr3t-VALUE-7781";
const STDIN_VALUE: &str = "from-stdin-9931";

fn running_release(env: &Env) -> Option<i64> {
    let s: AppStatus = env
        .racer(&["status", "--project-name", "web", "--json"])
        .json();
    let d = s.deployment?;
    (d.status == DeploymentStatus::Running).then_some(s.app.release?)
}

/// The environment of the app's running replicas (there is one).
fn replica_env(env: &Env) -> String {
    let install = env.install.borrow().clone().unwrap();
    let ids = docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=racer.install={install}"),
        "--filter",
        "label=racer.app.name=web",
    ]);
    // A replica being retired may go between the list and the inspect: skip it.
    ids.iter()
        .filter_map(|id| {
            let out = std::process::Command::new("docker")
                .args([
                    "inspect",
                    "-f",
                    "{{range .Config.Env}}{{println .}}{{end}}",
                    id,
                ])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .collect()
}

#[test]
fn f19_secrets_reach_replicas_and_nothing_else() {
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
    eventually(60, "release 1 running", || running_release(&env) == Some(1));

    let err = env
        .racer(&["secrets", "set", "--project-name", "web", "1BAD=x"])
        .code(1);
    assert!(err.contains("secrets"), "{err}");
    let out = env
        .racer(&[
            "secrets",
            "set",
            "--project-name",
            "web",
            &format!("API_TOKEN={VALUE}"),
        ])
        .ok();
    assert!(out.contains("rolls"), "{out}");
    let piped = env.program_as(
        "racer",
        "admin",
        &[],
        Some(STDIN_VALUE),
        &["secrets", "set", "--project-name", "web", "DB_PASS"],
    );
    assert!(piped.out.status.success(), "{}", piped.stderr());
    let list: Vec<SecretInfo> = env
        .racer(&["secrets", "list", "--project-name", "web", "--json"])
        .json();
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["API_TOKEN", "DB_PASS"]);
    assert!(list.iter().all(|s| s.digest.len() == 16));

    // The app rolled: its replica has both in its environment.
    eventually(90, "a release with both secrets running", || {
        running_release(&env).is_some_and(|r| r >= 3) && {
            let e = replica_env(&env);
            e.contains(&format!("API_TOKEN={VALUE}"))
                && e.contains(&format!("DB_PASS={STDIN_VALUE}"))
        }
    });

    // Nowhere else in clear: the log, the database files, events, status, releases, the list.
    let mut seen = Vec::new();
    let log = std::fs::read_to_string(env.data_dir.join("server.log")).unwrap_or_default();
    seen.push(("server.log", log));
    for f in ["racer.db", "racer.db-wal"] {
        let bytes = std::fs::read(env.data_dir.join(f)).unwrap_or_default();
        seen.push((f, String::from_utf8_lossy(&bytes).into_owned()));
    }
    for args in [
        vec!["events", "--json"],
        vec!["status", "--project-name", "web", "--json"],
        vec!["releases", "--project-name", "web", "--json"],
        vec!["secrets", "list", "--project-name", "web", "--json"],
        vec!["deployments", "list", "--json"],
    ] {
        seen.push(("racer --json", env.racer(&args).ok()));
    }
    for (what, text) in &seen {
        assert!(
            !text.contains(VALUE) && !text.contains(STDIN_VALUE),
            "a secret in clear in {what}"
        );
    }
    assert!(seen[1].1.len() > 1000, "the database file was read");

    // Unset: the app rolls again, without it.
    let before = running_release(&env).unwrap();
    env.racer(&["secrets", "unset", "--project-name", "web", "API_TOKEN"])
        .ok();
    eventually(90, "a release without API_TOKEN", || {
        running_release(&env).is_some_and(|r| r > before) && {
            let e = replica_env(&env);
            !e.contains("API_TOKEN=") && e.contains(&format!("DB_PASS={STDIN_VALUE}"))
        }
    });
    let err = env
        .racer(&["secrets", "unset", "--project-name", "web", "API_TOKEN"])
        .code(1);
    assert!(err.contains("no secret"), "{err}");
    env.racer(&["delete", "--project-name", "web"]).ok();
}
