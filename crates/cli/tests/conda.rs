//! Issue 17 end to end: the bundled conda example (`examples/conda-hello`), deployed with
//! `racer run --path`, runs the command `conda project run` would run, in the project folder,
//! with the variables it would set (the project's < the command's < `.env` < `--env`).
//!
//! The base image is `scripts/conda-standin-image.sh`'s: the real micromamba image cannot be
//! pulled and no conda channel is reachable here, so micromamba itself is stood in for (it
//! installs nothing); the Dockerfile racer generates, the build on the real engine, the
//! container, its environment and the proxy in front of it are real.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use racer_core::api::AppStatus;

use crate::util::{copy_tree, docker, get_ok, Env};

/// The stand-in base image's tag (built once per machine by the script).
fn standin_image() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/conda-standin-image.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `app`'s status, its running replica (the first) and the page it serves through the proxy.
fn running(env: &Env, app: &str) -> (String, String) {
    let status: AppStatus = env
        .racer(&["status", "--project-name", app, "--json"])
        .json();
    let container = status
        .containers
        .iter()
        .find(|c| c.state == "running")
        .unwrap_or_else(|| panic!("a running replica of {app}: {status:?}"))
        .id
        .clone();
    (container, get_ok(&status.urls[1]))
}

/// The environment of a container's first process (what the app sees).
fn environ(container: &str) -> BTreeMap<String, String> {
    proc1(container, "environ")
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// `/proc/1/<what>` of a container, NUL-separated entries.
fn proc1(container: &str, what: &str) -> Vec<String> {
    docker(&["exec", container, "cat", &format!("/proc/1/{what}")])
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn f17_the_conda_example_runs_the_reference_command_with_the_reference_variables() {
    let image = standin_image();
    let env = Env::new();
    env.start(&["--base-image", &image]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-hello");
    let dir = env.dir.path().join("conda-hello");
    copy_tree(&example, &dir);
    // The project's .env replaces the project's GREETING; --env replaces the .env's FROM_DOTENV.
    std::fs::write(
        dir.join(".env"),
        "# read as python-dotenv reads it\nexport GREETING=\"hello from .env\"\nFROM_DOTENV=dotenv # inline comment\n",
    )
    .unwrap();

    let out = env
        .racer(&[
            "run",
            "--project-name",
            "conda-hello",
            "--path",
            dir.to_str().unwrap(),
            "--env",
            "FROM_DOTENV=from --env",
        ])
        .ok();
    assert!(out.contains("conda-hello is running"), "{out}");
    let (container, page) = running(&env, "conda-hello");
    assert!(
        page.contains("Hello from a conda project deployed by racer."),
        "the command serves public/: {page}"
    );
    // The command is the project's first, split as shlex does, run through the environment.
    assert_eq!(
        proc1(&container, "cmdline"),
        [
            "python",
            "-m",
            "http.server",
            "8000",
            "--directory",
            "public"
        ]
    );
    let cwd = docker(&["exec", &container, "readlink", "/proc/1/cwd"]);
    assert_eq!(cwd.trim(), "/app", "run in the project folder");
    let vars = environ(&container);
    assert_eq!(vars["GREETING"], "hello from .env", "{vars:?}");
    assert_eq!(vars["FROM_DOTENV"], "from --env", "{vars:?}");
    assert_eq!(vars["PORT"], "8000", "{vars:?}");
    assert_eq!(
        vars["CONDA_DEFAULT_ENV"], "app",
        "run in the environment: {vars:?}"
    );

    // The Dockerfile racer built from: the environment file staged, the command as CMD.
    let dockerfile = env
        .racer(&["dockerfile", "--path", dir.to_str().unwrap()])
        .ok();
    assert!(
        dockerfile.contains(&format!("FROM {image}")),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("ENV GREETING=\"hello from .env\""),
        "{dockerfile}"
    );

    // --command NAME: that command, with its own variables over the project's.
    let yml = std::fs::read_to_string(dir.join("conda-project.yml")).unwrap();
    let yml = yml.replace(
        "variables:\n",
        "variables:\n  MODE: project\n",
    ) + "  listen:\n    cmd: python -m http.server 8000 --bind 0.0.0.0 --directory public\n    variables:\n      MODE: command\n";
    std::fs::write(dir.join("conda-project.yml"), yml).unwrap();
    env.racer(&[
        "run",
        "--project-name",
        "conda-listen",
        "--path",
        dir.to_str().unwrap(),
        "--command",
        "listen",
    ])
    .ok();
    let (container, page) = running(&env, "conda-listen");
    assert!(page.contains("Hello from a conda project"), "{page}");
    assert_eq!(
        proc1(&container, "cmdline"),
        [
            "python",
            "-m",
            "http.server",
            "8000",
            "--bind",
            "0.0.0.0",
            "--directory",
            "public"
        ]
    );
    let vars = environ(&container);
    assert_eq!(vars["MODE"], "command", "{vars:?}");
    assert_eq!(vars["GREETING"], "hello from .env", "{vars:?}");

    // A variable left without a value stops the deploy, naming it, until something gives it.
    std::fs::write(dir.join(".env"), "TOKEN\n").unwrap();
    let err = env
        .racer(&[
            "run",
            "--project-name",
            "conda-hello",
            "--path",
            dir.to_str().unwrap(),
        ])
        .code(1);
    assert!(
        err.contains(".env.TOKEN") && err.contains("needs a value at deploy"),
        "{err}"
    );
}
