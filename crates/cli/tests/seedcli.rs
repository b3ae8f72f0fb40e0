//! Issue 18, the CLI half of "speak each seed's language": `racer scale` with a source,
//! `scale-up`/`scale-down` that refuse the other way, `rerun --list`, `status` and `rerun`
//! without a project, `--environment`, `--verbose`, `logs --json`, and the help texts.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use racer_cli::commands::logs::LogLine;
use racer_core::api::{App, AppStatus};

use crate::util::{bin, docker, eventually, get_ok, hello_app, Env};

fn status(env: &Env, app: &str) -> AppStatus {
    env.racer(&["status", "--project-name", app, "--json"])
        .json()
}

/// The running containers of `app`'s current release.
fn running(env: &Env, app: &str) -> usize {
    let s = status(env, app);
    s.containers
        .iter()
        .filter(|c| c.release == s.app.release && c.state == "running")
        .count()
}

/// The lines of `--help` from the one naming the options under `heading` to the next heading.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != format!("{heading}:"))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

#[test]
fn f18_help_texts_have_their_own_first_line_and_global_options_apart() {
    let env = Env::new();
    let racer = env.racer(&["--help"]).ok();
    let racerctl = env.racerctl(&["--help"]).ok();
    let first = |s: &str| s.lines().next().unwrap_or_default().to_owned();
    assert_ne!(first(&racer), first(&racerctl), "{racer}\n---\n{racerctl}");
    assert!(first(&racer).starts_with("racer: "), "{racer}");
    assert!(first(&racerctl).starts_with("racerctl: "), "{racerctl}");

    let create = env.racer(&["tokens", "create", "--help"]).ok();
    assert!(
        first(&create).contains("API token"),
        "tokens create says what it does: {create}"
    );

    // The command's own options, then the global ones under their heading.
    let run = env.racer(&["run", "--help"]).ok();
    let own = section(&run, "Options");
    let global = section(&run, "Global options");
    for flag in ["--url", "--token", "--data-dir", "--json", "--verbose"] {
        assert!(
            global.iter().any(|l| l.contains(flag)),
            "{flag} under Global options: {run}"
        );
        assert!(
            !own.iter().any(|l| l.trim_start().starts_with(flag)),
            "{flag} not among run's own options: {run}"
        );
    }
    assert!(own.iter().any(|l| l.contains("--project-name")), "{run}");
    assert!(
        own.iter()
            .any(|l| l.contains("--env") && l.contains("--environment")),
        "--environment is shown as --env's alias: {run}"
    );
    for top in [&racer, &racerctl] {
        assert!(
            section(top, "Global options")
                .iter()
                .any(|l| l.contains("--verbose")),
            "{top}"
        );
    }
}

#[test]
fn f18_verbose_prints_every_request_and_its_answer_but_never_the_token() {
    let env = Env::new();
    let server = env.start(&[]);
    let token = env.token();
    let url = server.api_url.trim_end_matches('/');

    let run = env.racer(&["--verbose", "--json", "list-projects"]);
    let apps: Vec<App> = run.json();
    assert!(apps.is_empty());
    let err = run.stderr();
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("> GET {url}/api/v1/apps"))),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("< 200 OK in ") && l.ends_with(" ms")),
        "{err}"
    );

    // An error answer is shown as it came; the message still follows.
    let err = env
        .racer(&["--verbose", "status", "--project-name", "nope"])
        .code(1);
    assert!(err.contains("< 404 Not Found in "), "{err}");
    assert!(err.contains("racer: "), "{err}");

    // racerctl too, the health probe included.
    let ctl = env.racerctl(&["--verbose", "health"]);
    ctl.ok();
    let ctl_err = ctl.stderr();
    assert!(
        ctl_err.contains(&format!("> GET {url}/health")),
        "{ctl_err}"
    );
    let info = env.racerctl(&["--verbose", "info"]);
    info.ok();
    let info_err = info.stderr();
    assert!(
        info_err.contains(&format!("> GET {url}/api/v1/info")) && info_err.contains("< 200 OK"),
        "{info_err}"
    );

    for text in [err, ctl_err, info_err] {
        assert!(!text.contains(&token), "the token leaked: {text}");
        assert!(
            !text.to_ascii_lowercase().contains("authorization"),
            "{text}"
        );
    }

    // Without --verbose, nothing of the kind.
    let quiet = env.racer(&["list-projects"]);
    quiet.ok();
    assert!(!quiet.stderr().contains("> GET"), "{}", quiet.stderr());
}

#[test]
fn f18_scale_with_a_source_deploys_and_scales_and_the_steps_only_go_their_way() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "web");

    // The old README's form: deploy and scale in one step, --environment for --env.
    let out = env
        .racer(&[
            "scale",
            "--project-name",
            "web",
            "--path",
            dir.to_str().unwrap(),
            "--environment",
            "GREETING=yo",
            "--instances",
            "2",
        ])
        .ok();
    assert!(out.contains("web is running (release 1)"), "{out}");
    let s = status(&env, "web");
    assert_eq!(s.app.instances, 2);
    assert_eq!(running(&env, "web"), 2, "{s:?}");
    for c in &s.containers {
        let body = get_ok(c.url.as_ref().unwrap());
        assert!(body.contains("\"message\":\"yo from"), "{body}");
    }

    // Deploy-only options need a source.
    env.racer(&[
        "scale",
        "--project-name",
        "web",
        "--instances",
        "2",
        "--env",
        "A=1",
    ])
    .code(2);

    // logs --json: one object a line, each naming its container.
    let lines: Vec<LogLine> = env
        .racer(&["logs", "--project-name", "web", "--json"])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // A container name carries the install id when another install on the engine holds the
    // plain one (tests run side by side): web-1-0 or web-1-0-<install>.
    for name in ["web-1-0", "web-1-1"] {
        let is = |c: &str| c == name || c.starts_with(&format!("{name}-"));
        assert!(
            lines.iter().any(|l| l.app == "web"
                && l.container.as_deref().is_some_and(is)
                && l.line == "hello: listening on :8000"),
            "{name}: {lines:?}"
        );
    }

    // scale-up refuses to go down, scale-down to go up; equal is nothing to do.
    let err = env
        .racer(&["scale-up", "--project-name", "web", "--instances", "1"])
        .code(1);
    assert!(
        err.contains("web runs 2 instance(s)") && err.contains("racer scale-down"),
        "{err}"
    );
    let err = env
        .racer(&["scale-down", "--project-name", "web", "--instances", "3"])
        .code(1);
    assert!(
        err.contains("web runs 2 instance(s)") && err.contains("racer scale-up"),
        "{err}"
    );
    let same = env
        .racer(&["scale-up", "--project-name", "web", "--instances", "2"])
        .ok();
    assert!(same.contains("nothing to do"), "{same}");
    assert_eq!(status(&env, "web").app.instances, 2, "nothing changed");
    let app: App = env
        .racer(&[
            "scale-down",
            "--project-name",
            "web",
            "--instances",
            "1",
            "--json",
        ])
        .json();
    assert_eq!(app.instances, 1);
    eventually(60, "one replica left", || {
        status(&env, "web").containers.len() == 1
    });

    // Without a source, scale scales what runs, as before.
    let out = env
        .racer(&["scale", "--project-name", "web", "--instances", "1"])
        .ok();
    assert!(out.contains("web scaled to 1 instance(s)"), "{out}");

    // logs -f --json: the lines as they come, then new ones.
    let mut child = Command::new(bin("racer"))
        .args(["logs", "--project-name", "web", "-f", "--json"])
        .env("RACER_DATA_DIR", &env.data_dir)
        .env_remove("RACER_URL")
        .env_remove("RACER_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("logs -f --json printed nothing");
    let _ = child.kill();
    let _ = child.wait();
    let first: LogLine = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(first.app, "web");
    assert!(
        first
            .container
            .as_deref()
            .is_some_and(|c| c.starts_with("web-1-")),
        "{first:?}"
    );
    assert_eq!(first.line, "hello: listening on :8000");
}

#[test]
fn f18_status_and_rerun_without_a_project_act_on_the_only_one() {
    let env = Env::new();
    env.start(&[]);

    // None yet: say so, and how to deploy one.
    for cmd in ["status", "rerun"] {
        let err = env.racer(&[cmd]).code(1);
        assert!(
            err.contains("no projects yet") && err.contains("racer run --project-name"),
            "{cmd}: {err}"
        );
    }
    let none = env.racer(&["rerun", "--list"]).ok();
    assert!(none.contains("no project can be rerun yet"), "{none}");

    // One app, never deployed: status shows it; rerun has nothing to rebuild.
    env.racer(&["apps", "create", "empty"]).ok();
    let s: AppStatus = env.racer(&["status", "--json"]).json();
    assert_eq!(s.app.name, "empty");
    let err = env.racer(&["rerun"]).code(1);
    assert!(err.contains("no project can be rerun yet"), "{err}");

    // A deployed one beside it.
    let dir = hello_app(&env, "img");
    let tag = format!("racer-test-hello:{}", uuid::Uuid::new_v4().simple());
    docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
    env.racer(&["run", "--project-name", "web", "--image", &tag])
        .ok();

    // Two projects: status lists them and asks for one (a usage error).
    let pick = env.racer(&["status"]);
    let err = pick.code(2);
    assert!(
        err.contains("empty") && err.contains("web"),
        "the choices are listed: {err}"
    );
    assert!(
        err.contains("pick one with `racer status --project-name NAME`"),
        "{err}"
    );
    assert!(pick.stdout().is_empty(), "{}", pick.stdout());

    // rerun --list: only the one with a source, as list-projects shows it.
    let listed: Vec<App> = env.racer(&["rerun", "--list", "--json"]).json();
    assert_eq!(
        listed.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["web"]
    );
    let table = env.racer(&["rerun", "--list"]).ok();
    assert!(
        table.contains("NAME") && table.contains("RELEASE") && table.contains("SOURCE"),
        "{table}"
    );
    assert!(
        table.contains("web") && table.contains(&format!("image {tag}")),
        "{table}"
    );
    assert!(!table.contains("empty"), "{table}");

    // rerun picks the only project it can rerun; --environment sets the new release's env.
    let out = env
        .racer(&["rerun", "--no-rebuild", "--environment", "GREETING=again"])
        .ok();
    assert!(out.contains("web is running (release 2)"), "{out}");
    let s = status(&env, "web");
    let url = s
        .containers
        .iter()
        .find(|c| c.release == Some(2))
        .and_then(|c| c.url.clone())
        .expect("a release-2 replica");
    assert!(get_ok(&url).contains("\"message\":\"again from"));

    // Two that can be rerun: list them and ask for one.
    env.racer(&["run", "--project-name", "api", "--image", &tag])
        .ok();
    let err = env.racer(&["rerun", "--no-rebuild"]).code(2);
    assert!(err.contains("api") && err.contains("web"), "{err}");
    assert!(!err.contains("empty"), "{err}");
    assert!(
        err.contains("pick one with `racer rerun --project-name NAME`"),
        "{err}"
    );

    drop(env);
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}
