//! What the conda targets share: writing a project folder and exercising everything racer does
//! with a project it accepted (the same calls `racer validate` and the builder make).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use racer_build::conda::Project;
use racer_build::dockerfile::{self, Options};
use racer_build::Detected;

/// A fresh, empty project folder (on tmpfs when there is one: the targets write files on every
/// run), removed when dropped.
pub fn project_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let base: PathBuf = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let parent = base.join("racer-fuzz-conda");
    let _ = std::fs::create_dir_all(&parent);
    tempfile::Builder::new()
        .prefix("p")
        .tempdir_in(&parent)
        .expect("create a project folder")
}

/// Writes `text` to `rel` (a fixed, safe name) inside `dir`.
pub fn write(dir: &Path, rel: &str, text: &[u8]) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create a folder");
    }
    std::fs::write(path, text).expect("write a project file");
}

/// Loads the project in `dir` as the builder does (`detect`, which runs `conda::load`; once:
/// a YAML bomb at the budget's edge costs seconds in this instrumented build), and for an
/// accepted one does what `racer validate` and the builder do next: generates every Dockerfile
/// it can (each command, each environment) and checks that nothing a user wrote became an
/// instruction of its own.
pub fn exercise(dir: &Path) {
    let Ok(Detected::CondaProject(project)) = racer_build::detect(dir) else {
        return;
    };
    accepted(&project);
}

fn accepted(p: &Project) {
    let _ = p.display_name();
    let _ = p.default_environment();
    let _ = p.default_command();
    // A build makes one Dockerfile; YAML aliases can give a small project thousands of
    // environments and commands, and every pair would be seconds per input here. The first
    // few of each and the last one cover every shape the generator has.
    let mut commands: Vec<Option<String>> = vec![None];
    commands.extend(some(&p.command_order).map(Some));
    let mut environments: Vec<Option<String>> = vec![None];
    environments.extend(some(&p.environment_order).map(Some));
    for command in &commands {
        if let Some(c) = command {
            let _ = p.command_environment(c);
        }
        let _ = p.effective_variables(command.as_deref());
        let _ = p.run_variables(command.as_deref());
        let _ = p.missing_variables(command.as_deref(), &BTreeMap::new());
        for environment in &environments {
            let opts = Options {
                command: command.clone(),
                environment: environment.clone(),
                ..Options::default()
            };
            if let Ok(text) = dockerfile::generate(p, &opts) {
                check_dockerfile(&text);
            }
        }
    }
}

/// The first eight names and the last.
fn some(names: &[String]) -> impl Iterator<Item = String> + '_ {
    let last = names.len().saturating_sub(1).max(8);
    names
        .iter()
        .enumerate()
        .filter(move |(i, _)| *i < 8 || *i == last)
        .map(|(_, n)| n.clone())
}

/// The instructions the generator writes. A line that starts with anything else (and does not
/// continue a `RUN`), or an instruction other than `RUN` that ends in a line continuation, is
/// user input that escaped its quoting.
const INSTRUCTIONS: &[&str] = &[
    "FROM ",
    "USER ",
    "WORKDIR ",
    "COPY ",
    "RUN ",
    "ENV ",
    "EXPOSE ",
    "ENTRYPOINT ",
    "CMD ",
];

fn check_dockerfile(text: &str) {
    let mut continued = false;
    for line in text.lines() {
        if continued {
            assert!(
                line.starts_with("    "),
                "a continuation line {line:?}\n{text}"
            );
        } else if !line.starts_with('#') {
            assert!(
                INSTRUCTIONS.iter().any(|i| line.starts_with(i)),
                "not an instruction racer writes: {line:?}\n{text}"
            );
        }
        let run = continued || line.starts_with("RUN ");
        continued = !line.starts_with('#') && line.ends_with('\\');
        assert!(
            !continued || run,
            "a line continuation outside RUN: {line:?}\n{text}"
        );
    }
    assert!(
        !continued,
        "the Dockerfile ends in a line continuation\n{text}"
    );
}
