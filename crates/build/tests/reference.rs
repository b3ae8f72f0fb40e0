//! The conda fixture corpus against the reference implementation, the PyPI package
//! `conda-project` 0.5.4: `conda_reference.py --json` says what it makes of every case, and each
//! must agree with `conda::load` (verdict; for cases both accept: name, environment and command
//! order, and per command its line, environment and run-time variables), unless the case's
//! `expected.json` has a `"differs"` reason, and then they must differ (a stale reason fails).
//!
//! Needs `RACER_CONDA_REFERENCE_PYTHON`, a python with the package (`scripts/conda-reference.sh`
//! makes one and prints it; `scripts/test` sets it). Without it the test is skipped, unless
//! `RACER_REQUIRE_CONDA_REFERENCE=1`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use racer_build::conda;
use serde::Deserialize;

use crate::util::{conda_corpus, tests_dir};

/// The reference's version this corpus is checked against.
const REFERENCE_VERSION: &str = "0.5.4";

/// `conda_reference.py --json`.
#[derive(Debug, Deserialize)]
struct Reference {
    version: String,
    #[serde(default)]
    packages: BTreeMap<String, String>,
    cases: BTreeMap<String, ReferenceCase>,
}

/// What the reference makes of one case.
#[derive(Debug, Deserialize)]
struct ReferenceCase {
    accepts: bool,
    error: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    environments: Vec<String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    run: BTreeMap<String, ReferenceRun>,
}

/// How the reference would run one command.
#[derive(Debug, Deserialize)]
struct ReferenceRun {
    cmd: String,
    /// The environment it runs in; `None` only when the project has none.
    environment: Option<String>,
    /// Project < command < `.env`, without the caller's environment; `None`: no value.
    variables: BTreeMap<String, Option<String>>,
}

fn run_reference(python: &std::ffi::OsStr) -> Reference {
    let script = tests_dir().join("conda_reference.py");
    let out = Command::new(python)
        .arg(&script)
        .arg("--json")
        .output()
        .unwrap_or_else(|e| panic!("run {python:?} {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} --json failed ({}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{} --json printed something else than its JSON ({e}):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The case's deliberate difference from the reference (`"differs"` in its `expected.json`).
fn deliberate_difference(case: &str) -> Option<String> {
    let path = tests_dir()
        .join("fixtures/conda")
        .join(case)
        .join("expected.json");
    let text = fs::read_to_string(path).ok()?;
    let expected: serde_json::Value = serde_json::from_str(&text).ok()?;
    expected.get("differs")?.as_str().map(str::to_string)
}

/// One line of a value, for messages.
fn oneline(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Every way racer's result for `dir` differs from the reference's; empty when they agree.
fn differences(dir: &Path, reference: &ReferenceCase) -> Vec<String> {
    let project = match (conda::load(dir), reference.accepts) {
        (Ok(project), true) => project,
        (Ok(_), false) => {
            let why = reference.error.as_deref().unwrap_or("(no message)");
            return vec![format!(
                "racer accepts, the reference refuses: {}",
                oneline(why)
            )];
        }
        (Err(e), true) => return vec![format!("racer refuses ({e}), the reference accepts")],
        (Err(_), false) => return vec![],
    };
    let mut diffs = Vec::new();
    let check = |diffs: &mut Vec<String>, what: String, racer: String, reference: String| {
        if racer != reference {
            diffs.push(format!("{what}: racer {racer}, reference {reference}"));
        }
    };
    check(
        &mut diffs,
        "name".into(),
        format!("{:?}", project.name),
        format!("{:?}", reference.name.as_deref().unwrap_or_default()),
    );
    check(
        &mut diffs,
        "environments".into(),
        format!("{:?}", project.environment_order),
        format!("{:?}", reference.environments),
    );
    check(
        &mut diffs,
        "commands".into(),
        format!("{:?}", project.command_order),
        format!("{:?}", reference.commands),
    );
    for name in &project.command_order {
        let (Some(command), Some(run)) = (project.commands.get(name), reference.run.get(name))
        else {
            continue; // the command lists differ, reported above
        };
        check(
            &mut diffs,
            format!("commands.{name}.cmd"),
            format!("{:?}", command.cmd),
            format!("{:?}", run.cmd),
        );
        // The reference's null is the default environment (there is none then).
        let reference_env = run
            .environment
            .as_deref()
            .or(reference.environments.first().map(String::as_str));
        check(
            &mut diffs,
            format!("commands.{name}.environment"),
            format!("{:?}", project.command_environment(name)),
            format!("{reference_env:?}"),
        );
        let racer_vars = project.run_variables(Some(name));
        if racer_vars != run.variables {
            let keys: std::collections::BTreeSet<&String> =
                racer_vars.keys().chain(run.variables.keys()).collect();
            for key in keys {
                let (r, p) = (racer_vars.get(key), run.variables.get(key));
                if r != p {
                    let show = |v: Option<&Option<String>>| match v {
                        None => "(absent)".to_string(),
                        Some(None) => "null".to_string(),
                        Some(Some(s)) => format!("{s:?}"),
                    };
                    diffs.push(format!(
                        "commands.{name} variable {key}: racer {}, reference {}",
                        show(r),
                        show(p)
                    ));
                }
            }
        }
    }
    diffs
}

#[test]
fn corpus_agrees_with_the_reference() {
    let python = match std::env::var_os("RACER_CONDA_REFERENCE_PYTHON") {
        Some(p) if !p.is_empty() => p,
        _ => {
            let required =
                std::env::var_os("RACER_REQUIRE_CONDA_REFERENCE").is_some_and(|v| v == "1");
            assert!(
                !required,
                "RACER_REQUIRE_CONDA_REFERENCE=1 but RACER_CONDA_REFERENCE_PYTHON is not set \
                 (export RACER_CONDA_REFERENCE_PYTHON=$(scripts/conda-reference.sh))"
            );
            eprintln!(
                "skipped: the conda-project reference cross-check needs \
                 RACER_CONDA_REFERENCE_PYTHON (export \
                 RACER_CONDA_REFERENCE_PYTHON=$(scripts/conda-reference.sh))"
            );
            return;
        }
    };
    let reference = run_reference(&python);
    assert_eq!(
        reference.version, REFERENCE_VERSION,
        "the corpus is checked against conda-project {REFERENCE_VERSION}, {python:?} has {}",
        reference.version
    );

    let (_tmp, cases) = conda_corpus();
    let mut failures = Vec::new();
    let (mut agree, mut deliberate) = (0, 0);
    for (name, dir) in &cases {
        let Some(theirs) = reference.cases.get(name) else {
            failures.push(format!("{name}: the reference did not report this case"));
            continue;
        };
        let diffs = differences(dir, theirs);
        match (diffs.is_empty(), deliberate_difference(name)) {
            (true, None) => agree += 1,
            (false, Some(_)) => deliberate += 1,
            (false, None) => failures.push(format!(
                "{name}: racer and the reference disagree (if that is deliberate, give its \
                 expected.json a \"differs\" reason):\n    {}",
                diffs.join("\n    ")
            )),
            (true, Some(why)) => failures.push(format!(
                "{name}: expected.json says racer differs ({why}), but racer agrees with the \
                 reference: remove \"differs\""
            )),
        }
    }
    for name in reference.cases.keys() {
        if !cases.iter().any(|(n, _)| n == name) {
            failures.push(format!(
                "{name}: reported by the reference, not in the corpus"
            ));
        }
    }
    let packages: Vec<String> = reference
        .packages
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "conda-project {} ({}): {agree} cases agree, {deliberate} deliberate differences, {} \
         failures",
        reference.version,
        packages.join(", "),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases do not match the reference:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
