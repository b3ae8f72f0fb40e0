//! Issue 4: deploys against the real Docker engine, through the real binaries.

use std::path::Path;
use std::process::Command;

use racer_core::api::{App, AppStatus, ContainerInfo, Page, Release, RunEvent, ValidateReport};

use crate::util::{copy_tree, docker, eventually, get_ok, git, hello_app, kill9, Env};

/// The path-routed proxy URL `racer run` printed (`http://127.0.0.1:PORT/apps/<app>/`).
fn urls(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("http://") && w.contains("/apps/"))
        .map(str::to_owned)
        .collect()
}

fn status(env: &Env, app: &str) -> AppStatus {
    env.racer(&["status", "--project-name", app, "--json"])
        .json()
}

#[test]
fn f4_path_deploy_status_logs_rerun_and_delete() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "web");
    let dir_s = dir.to_str().unwrap();

    let run = env.racer(&[
        "run",
        "--project-name",
        "web",
        "--path",
        dir_s,
        "--env",
        "GREETING=hi",
    ]);
    let out = run.ok();
    assert!(
        run.stderr().contains("Step 1/"),
        "build steps are streamed: {}",
        run.stderr()
    );
    let u = urls(&out);
    assert_eq!(u.len(), 1, "{out}");
    assert!(u[0].starts_with("http://127.0.0.1:"), "{out}");
    let body = get_ok(&u[0]);
    assert!(body.contains("\"message\":\"hi from"), "{body}");
    assert!(body.contains("\"release\":\"1\""), "{body}");

    // Status by name, by UUID and by container id.
    let s = status(&env, "web");
    assert_eq!(s.containers.len(), 1);
    let c = &s.containers[0];
    assert_eq!(c.name, "web-1-0");
    assert_eq!(c.state, "running");
    assert_eq!(c.health, "healthy");
    assert_eq!(c.release, Some(1));
    assert_eq!(s.release.as_ref().unwrap().image, "racer/web:1");
    let by_id: AppStatus = env
        .racer(&["status", "--project-id", &s.app.id.to_string(), "--json"])
        .json();
    assert_eq!(by_id.app, s.app);
    let by_container: ContainerInfo = env
        .racer(&["status", "--container-id", &c.id[..12], "--json"])
        .json();
    assert_eq!(by_container.app_name.as_deref(), Some("web"));
    let table = env.racer(&["status", "--project-name", "web"]).ok();
    assert!(
        table.contains("web-1-0") && table.contains("healthy"),
        "{table}"
    );

    // Docker's view matches the contract: labels, loopback-only port, limits, no-new-privileges.
    let inspect = docker(&["inspect", &c.id]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let v = &v[0];
    assert_eq!(v["Config"]["Labels"]["racer.managed"], "true");
    assert_eq!(v["Config"]["Labels"]["racer.app"], s.app.id.to_string());
    assert_eq!(v["Config"]["Labels"]["racer.release"], "1");
    assert_eq!(v["Config"]["Labels"]["racer.replica"], "0");
    let binding = &v["HostConfig"]["PortBindings"]["8000/tcp"][0];
    assert_eq!(binding["HostIp"], "127.0.0.1");
    assert_eq!(v["HostConfig"]["Memory"], 512 * 1024 * 1024);
    assert_eq!(v["HostConfig"]["NanoCpus"], 1_000_000_000i64);
    assert!(inspect.contains("no-new-privileges"));

    // Logs.
    let logs = env.racer(&["logs", "--project-name", "web"]).ok();
    assert!(logs.contains("hello: listening on :8000"), "{logs}");

    // Rerun with rebuild picks up a code change; the old container goes.
    std::fs::write(
        dir.join("Dockerfile"),
        std::fs::read_to_string(dir.join("Dockerfile")).unwrap() + "LABEL change=1\n",
    )
    .unwrap();
    let out = env.racer(&["rerun", "--project-name", "web"]).ok();
    let u2 = urls(&out);
    assert!(get_ok(&u2[0]).contains("\"release\":\"2\""));
    let releases: Vec<Release> = env
        .racer(&["releases", "--project-name", "web", "--json"])
        .json();
    assert_eq!(releases.len(), 2);
    assert_ne!(
        releases[0].image_id, releases[1].image_id,
        "the change was built"
    );
    eventually(30, "old container gone", || {
        env.containers() == vec!["web-2-0".to_owned()]
    });

    // Rerun without rebuild: same image, new environment, new release.
    let out = env
        .racer(&[
            "rerun",
            "--project-name",
            "web",
            "--no-rebuild",
            "--env",
            "GREETING=again",
        ])
        .ok();
    let body = get_ok(&urls(&out)[0]);
    assert!(
        body.contains("again from") && body.contains("\"release\":\"3\""),
        "{body}"
    );
    let releases: Vec<Release> = env
        .racer(&["releases", "--project-name", "web", "--json"])
        .json();
    assert_eq!(releases[0].image_id, releases[1].image_id, "no rebuild");
    eventually(30, "only release 3 runs", || {
        env.containers() == vec!["web-3-0".to_owned()]
    });
    assert!(!env.images().is_empty());

    // Delete leaves no container and no image tag behind.
    env.racer(&["delete", "--project-name", "web"]).ok();
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    eventually(30, "images removed", || env.images().is_empty());
    env.racer(&["status", "--project-name", "web"]).code(1);
}

#[test]
fn f4_git_deploy_by_branch_and_sha() {
    let env = Env::new();
    env.start(&[]);
    let repo = hello_app(&env, "repo");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "first"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(
        repo.join("Dockerfile"),
        std::fs::read_to_string(repo.join("Dockerfile")).unwrap() + "ENV GREETING=feature\n",
    )
    .unwrap();
    git(&repo, &["commit", "-qam", "feature"]);
    let url = format!("file://{}", repo.display());

    let out = env
        .racer(&[
            "run",
            "--project-name",
            "gitapp",
            "--git",
            &format!("{url}#feature"),
        ])
        .ok();
    assert!(get_ok(&urls(&out)[0]).contains("feature from"));
    let out = env
        .racer(&[
            "run",
            "--project-name",
            "gitapp",
            "--git",
            &format!("{url}#{first}"),
        ])
        .ok();
    assert!(get_ok(&urls(&out)[0]).contains("\"message\":\"hello from"));
    let releases: Vec<Release> = env
        .racer(&["releases", "--project-name", "gitapp", "--json"])
        .json();
    assert_eq!(releases[0].commit.as_deref(), Some(first.as_str()));
    assert_ne!(releases[1].commit.as_deref(), Some(first.as_str()));
    // rerun fetches the recorded ref again
    env.racer(&["rerun", "--project-name", "gitapp"]).ok();
    let releases: Vec<Release> = env
        .racer(&["releases", "--project-name", "gitapp", "--json"])
        .json();
    assert_eq!(releases.len(), 3);
    assert_eq!(releases[0].commit.as_deref(), Some(first.as_str()));
}

#[test]
fn f4_image_deploy_with_instances_and_json_events() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "img");
    let tag = format!("racer-test-hello:{}", uuid::Uuid::new_v4().simple());
    docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
    let run = env.racer(&[
        "run",
        "--project-name",
        "img",
        "--image",
        &tag,
        "--instances",
        "2",
        "--json",
    ]);
    let lines: Vec<RunEvent> = run
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(matches!(lines.first(), Some(RunEvent::Deployment { .. })));
    let Some(RunEvent::Done { deployment, status }) = lines.last() else {
        panic!("no done event: {lines:?}");
    };
    assert_eq!(
        deployment.status,
        racer_core::api::DeploymentStatus::Running
    );
    let status = status.as_ref().unwrap();
    assert_eq!(status.containers.len(), 2);
    for c in &status.containers {
        get_ok(c.url.as_ref().unwrap());
    }
    drop(env);
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}

#[test]
fn f4_bad_inputs_get_clear_errors_and_leave_nothing() {
    let env = Env::new();
    env.start(&[]);
    let nothing = |env: &Env| {
        let apps: Page<App> = env.racer(&["apps", "list", "--json"]).json();
        assert!(apps.items.is_empty(), "{:?}", apps.items);
        assert!(env.containers().is_empty());
    };

    let err = env
        .racer(&["run", "--project-name", "x", "--path", "/does/not/exist"])
        .code(1);
    assert!(
        err.contains("/does/not/exist") && err.contains("does not exist"),
        "{err}"
    );
    nothing(&env);

    let err = env
        .racer(&[
            "run",
            "--project-name",
            "x",
            "--git",
            "file:///no/such/repo.git",
        ])
        .code(1);
    assert!(err.contains("git"), "{err}");
    nothing(&env);

    let empty = env.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("README.md"), "nothing to build").unwrap();
    let err = env
        .racer(&[
            "run",
            "--project-name",
            "x",
            "--path",
            empty.to_str().unwrap(),
        ])
        .code(1);
    assert!(
        err.contains("Dockerfile") && err.contains("conda-project.yml"),
        "lists what it looked for: {err}"
    );
    nothing(&env);

    let conda = env.dir.path().join("conda");
    std::fs::create_dir_all(&conda).unwrap();
    std::fs::write(conda.join("conda-project.yml"), "name: c\nenvironments:\n  default: [environment.yml]\ncommands:\n  serve:\n    cmd: python -m http.server\n    environment: gpu\n").unwrap();
    std::fs::write(
        conda.join("environment.yml"),
        "dependencies: [python=3.11]\n",
    )
    .unwrap();
    let err = env
        .racer(&[
            "run",
            "--project-name",
            "x",
            "--path",
            conda.to_str().unwrap(),
        ])
        .code(1);
    assert!(err.contains("commands.serve.environment"), "{err}");
    nothing(&env);

    let err = env
        .racer(&[
            "run",
            "--project-name",
            "x",
            "--image",
            "racer-no-such-image:1",
        ])
        .code(1);
    assert!(
        err.contains("not present locally and cannot be pulled"),
        "{err}"
    );
    nothing(&env);

    let err = env
        .racer(&["run", "--project-name", "Bad_Name", "--image", "x"])
        .code(1);
    assert!(err.contains("field: app"), "{err}");
    let err = env
        .racer(&[
            "run",
            "--project-name",
            "x",
            "--image",
            "x",
            "--env",
            "NOEQUALS",
        ])
        .code(1);
    assert!(err.contains("KEY=VALUE"), "{err}");
    nothing(&env);
}

#[test]
fn f4_port_range_exhausted_fails_the_deploy_and_leaves_no_container() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let env = Env::new();
    env.start(&["--host-ports", &port]);
    let dir = hello_app(&env, "full");
    let run = env.racer(&[
        "run",
        "--project-name",
        "full",
        "--path",
        dir.to_str().unwrap(),
        "--timeout",
        "60",
    ]);
    let err = run.code(1);
    assert!(err.contains("no free host port"), "{err}");
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[test]
fn f4_restart_adopts_containers_and_replaces_killed_ones() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "keep");
    env.racer(&[
        "run",
        "--project-name",
        "keep",
        "--path",
        dir.to_str().unwrap(),
        "--instances",
        "2",
    ])
    .ok();
    let before = status(&env, "keep");
    let ids: Vec<String> = before.containers.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), 2);

    // kill -9 the server, kill a container behind its back, start again.
    kill9(env.server_file().unwrap().pid);
    docker(&["kill", &ids[0]]);
    env.start(&[]);
    eventually(30, "both replicas running again", || {
        let s = status(&env, "keep");
        s.containers.len() == 2 && s.containers.iter().all(|c| c.health == "healthy")
    });
    let after = status(&env, "keep");
    let mut names: Vec<_> = after.containers.iter().map(|c| c.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["keep-1-0", "keep-1-1"], "adopted, no duplicates");
    assert!(
        after.containers.iter().any(|c| c.id == ids[1]),
        "the live one was adopted, not replaced"
    );

    // A container killed while the server runs comes back too.
    docker(&["kill", &after.containers[1].id]);
    eventually(30, "replica back", || {
        status(&env, "keep")
            .containers
            .iter()
            .filter(|c| c.health == "healthy")
            .count()
            == 2
    });
    assert_eq!(env.containers().len(), 2);
}

#[test]
fn f4_kill_server_mid_deploy_converges_without_orphans() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "mid");
    let out = env
        .racer(&[
            "run",
            "--project-name",
            "mid",
            "--path",
            dir.to_str().unwrap(),
            "--no-wait",
        ])
        .ok();
    assert!(out.contains("accepted"), "{out}");
    kill9(env.server_file().unwrap().pid);
    env.start(&[]);
    eventually(60, "deployment converged", || {
        let s = status(&env, "mid");
        s.deployment.as_ref().map(|d| d.status) == Some(racer_core::api::DeploymentStatus::Running)
            && s.containers.len() == 1
    });
    assert_eq!(env.containers(), vec!["mid-1-0".to_owned()]);
}

#[test]
fn f4_racerctl_containers() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "ops");
    env.racer(&[
        "run",
        "--project-name",
        "ops",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
    let list: Page<ContainerInfo> = env.racerctl(&["containers", "list", "--json"]).json();
    assert_eq!(list.items.len(), 1);
    let id = list.items[0].id.clone();
    let one: ContainerInfo = env
        .racerctl(&["containers", "status", &id[..12], "--json"])
        .json();
    assert_eq!(one.id, id);
    let logs = env.racerctl(&["containers", "logs", &id[..12]]).ok();
    assert!(logs.contains("listening"), "{logs}");
    env.racerctl(&["containers", "stop", &id[..12]]).ok();
    // The app still wants it: the reconciler starts it again. (It keeps its port label, so on
    // an engine racer has to itself it is the same container; here other tests' installs may
    // take the freed port, and then racer replaces it.)
    let running = || -> Vec<ContainerInfo> {
        let l: Page<ContainerInfo> = env.racerctl(&["containers", "list", "--json"]).json();
        l.items
            .into_iter()
            .filter(|c| c.state == "running")
            .collect()
    };
    eventually(30, "running again", || running().len() == 1);
    let id = running()[0].id.clone();
    env.racerctl(&["containers", "remove", &id[..12]]).ok();
    eventually(30, "replaced", || {
        let l: Page<ContainerInfo> = env.racerctl(&["containers", "list", "--json"]).json();
        l.items.len() == 1 && l.items[0].id != id && l.items[0].state == "running"
    });
    let err = env
        .racerctl(&["containers", "status", "nosuchcontainer"])
        .code(1);
    assert!(err.contains("no racer container"), "{err}");
    env.racerctl(&["containers", "cleanup"]).ok();
}

#[test]
fn f4_conda_corpus_through_racer_validate() {
    let env = Env::new();
    env.start(&[]);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/tests/fixtures/conda");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let case = entry.unwrap().path();
        if case.join("setup.json").exists() {
            continue; // needs symlinks or a huge file made at test time: covered in racer-build
        }
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
                .unwrap();
        let project = case.join("project");
        let dir = if project.is_dir() {
            project
        } else {
            case.clone()
        };
        // Variables declared null need a value at deploy: valid, with a note naming each.
        let nulls = case.ends_with("null-variable");
        if nulls {
            let without: ValidateReport = serde_json::from_str(
                &env.racer(&["validate", "--path", dir.to_str().unwrap(), "--json"])
                    .stdout(),
            )
            .unwrap();
            assert!(without.valid, "{without:?}");
            for field in ["variables.API_KEY", "commands.serve.variables.DB_URL"] {
                assert!(
                    without
                        .notes
                        .iter()
                        .any(|n| n.field == field && n.message.contains("needs a value at deploy")),
                    "{field}: {without:?}"
                );
            }
        }
        let mut args = vec!["validate", "--path", dir.to_str().unwrap(), "--json"];
        if nulls {
            args.extend(["--env", "API_KEY=x", "--env", "DB_URL=y"]);
        }
        let run = env.racer(&args);
        let report: ValidateReport = serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
            panic!("{}: {e}: {} {}", case.display(), run.stdout(), run.stderr())
        });
        if nulls {
            assert!(report.notes.is_empty(), "supplied: {report:?}");
        }
        // The same checks in the CLI, with no server: the same report and the same text.
        let mut local = args.clone();
        local.push("--local");
        let here: ValidateReport = serde_json::from_str(&env.racer(&local).stdout()).unwrap();
        assert_eq!(
            here,
            report,
            "{}: --local and the server agree",
            case.display()
        );
        let text = |extra: &[&str]| {
            let mut a: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
            a.extend_from_slice(extra);
            env.racer(&a).stdout()
        };
        assert_eq!(text(&["--local"]), text(&[]), "{}", case.display());
        let valid = expected["valid"].as_bool().unwrap();
        assert_eq!(report.valid, valid, "{}: {report:?}", case.display());
        if let Some(problems) = expected["problems"].as_array() {
            for p in problems {
                let field = p["field"].as_str().unwrap();
                assert!(
                    report.problems.iter().any(|r| r.field == field),
                    "{}: expected a problem at {field}: {report:?}",
                    case.display()
                );
            }
        }
        // `racer validate` exits 1 for an invalid project.
        assert_eq!(
            run.out.status.code(),
            Some(if valid { 0 } else { 1 }),
            "{}",
            case.display()
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} corpus cases ran");
}

#[test]
fn f4_dockerfile_for_the_conda_example_matches_the_snapshot() {
    let env = Env::new();
    env.start(&[]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = env
        .racer(&[
            "dockerfile",
            "--path",
            root.join("examples/conda-hello").to_str().unwrap(),
        ])
        .ok();
    let snapshot =
        std::fs::read_to_string(root.join("crates/build/tests/snapshots/conda-hello.Dockerfile"))
            .unwrap();
    assert_eq!(out, snapshot);
    let v: ValidateReport = env
        .racer(&[
            "validate",
            "--path",
            root.join("examples/conda-hello").to_str().unwrap(),
            "--json",
        ])
        .json();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.kind.as_deref(), Some("conda-project"));
}

#[test]
fn f4_failed_build_is_reported_and_the_old_release_keeps_running() {
    let env = Env::new();
    env.start(&[]);
    let dir = hello_app(&env, "stay");
    let out = env
        .racer(&[
            "run",
            "--project-name",
            "stay",
            "--path",
            dir.to_str().unwrap(),
        ])
        .ok();
    let url = urls(&out)[0].clone();

    let dockerfile = dir.join("Dockerfile");
    let broken = std::fs::read_to_string(&dockerfile).unwrap() + "COPY no-such-file /nowhere\n";
    std::fs::write(&dockerfile, broken).unwrap();
    let err = env.racer(&["rerun", "--project-name", "stay"]).code(1);
    assert!(err.contains("failed"), "{err}");
    assert!(
        err.contains("COPY no-such-file"),
        "names the failing step: {err}"
    );
    assert!(err.contains("previous release keeps running"), "{err}");

    let s = status(&env, "stay");
    assert_eq!(s.app.release, Some(1));
    assert_eq!(
        s.deployment.as_ref().unwrap().status,
        racer_core::api::DeploymentStatus::Failed
    );
    assert_eq!(s.containers.len(), 1);
    assert_eq!(s.containers[0].health, "healthy");
    assert!(get_ok(&url).contains("\"release\":\"1\""));
}

#[test]
fn f17_validate_needs_no_server_and_says_so() {
    let env = Env::new(); // no server started
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/tests/fixtures/conda");
    let run = env.racer(&[
        "validate",
        "--path",
        corpus.join("dotenv-basic").to_str().unwrap(),
    ]);
    let out = run.ok();
    assert!(out.starts_with("valid conda-project"), "{out}");
    assert!(
        run.stderr().contains("no server answers") && run.stderr().contains("on this machine"),
        "{}",
        run.stderr()
    );
    // Invalid: exit 1, every problem with its field path, the same as a server would say.
    let bad = env.racer(&[
        "validate",
        "--path",
        corpus.join("env-name-slash").to_str().unwrap(),
    ]);
    bad.code(1);
    assert!(
        bad.stdout().contains("environments.a/b:"),
        "{}",
        bad.stdout()
    );
    // --local never tries the server.
    let local = env.racer(&[
        "validate",
        "--local",
        "--path",
        corpus.join("null-variable").to_str().unwrap(),
    ]);
    let text = local.ok();
    assert!(!local.stderr().contains("no server"), "{}", local.stderr());
    assert!(
        text.contains("note: variables.API_KEY: needs a value at deploy"),
        "{text}"
    );
    // --local --git clones on this machine, as the server would, and names the commit.
    let repo = env.dir.path().join("repo");
    copy_tree(&corpus.join("valid-basic"), &repo);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "c"]);
    let report: ValidateReport = env
        .racer(&[
            "validate",
            "--local",
            "--git",
            &format!("file://{}", repo.display()),
            "--json",
        ])
        .json();
    assert!(report.valid, "{report:?}");
    assert_eq!(
        report.commit.as_deref().map(str::len),
        Some(40),
        "{report:?}"
    );
}

/// The value of a counter in `/metrics`.
fn counter(env: &Env, name: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = rt.block_on(crate::util::metrics_text(env));
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// An image the engine refuses to run (it has no command): the deploy fails saying why, and
/// while the app still wants its replica the reconciler tries again after a back-off (250 ms,
/// doubling to 8 s), not at once: a schemathesis run saw 130 refused creates a second.
#[test]
fn r19_a_replica_the_engine_refuses_is_retried_after_a_back_off() {
    let env = Env::new();
    env.start_with_env(&[], &[("RACER_ROLLOUT_DEADLINE", "3")]);
    let dir = hello_app(&env, "nocmd");
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY hello /hello\n").unwrap();
    let tag = format!("racer-test-nocmd:{}", uuid::Uuid::new_v4().simple());
    docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
    let err = env
        .racer(&["run", "--project-name", "nocmd", "--image", &tag])
        .code(1);
    assert!(err.to_lowercase().contains("command"), "{err}");
    // The app still wants its replica (the failed deploy is kept, to be fixed or deleted), so
    // the reconciler keeps trying: a few times in the deadline's 3 s.
    let status: AppStatus = env
        .racer(&["status", "--project-name", "nocmd", "--json"])
        .json();
    assert_eq!(status.app.instances, 1, "{status:?}");
    let before = counter(&env, "racer_replica_start_failures_total");
    assert!(before >= 2, "{before} refused starts counted");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let after = counter(&env, "racer_replica_start_failures_total");
    // At the back-off's cap one more try, two if a doubling step was still under way; at once
    // after each refusal it was hundreds.
    assert!(
        after - before <= 4,
        "{} refused starts in 4 s after the deploy failed ({before} before)",
        after - before
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    drop(env);
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}
