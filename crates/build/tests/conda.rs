//! The conda-project fixture corpus: every case through `conda::load`, compared with its
//! `expected.json`.

use std::collections::BTreeMap;
use std::fs;

use racer_build::{conda, Error, Problem};
use serde::{Deserialize, Serialize};

use crate::util::{conda_corpus, tests_dir, updating};

/// What a case is expected to load to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Expected {
    valid: bool,
    problems: Vec<Problem>,
    /// What racer tells the user about a valid project (ignored fields, an empty name replaced,
    /// skipped `.env` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Problem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    project: Option<Summary>,
    /// Why racer's verdict differs from the reference's on purpose (`reference.rs` checks that
    /// it does differ); kept when the file is rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    differs: Option<String>,
}

/// The parts of a valid project a case pins down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    name: String,
    environments: Vec<(String, Vec<String>)>,
    commands: Vec<(String, conda::Command)>,
    variables: BTreeMap<String, Option<String>>,
    lock_files: BTreeMap<String, String>,
    #[serde(default)]
    pip_requirements: BTreeMap<String, Vec<String>>,
    /// The `.env` file's values, when there is one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    dotenv: BTreeMap<String, Option<String>>,
}

fn summarize(p: &conda::Project) -> Summary {
    Summary {
        name: p.name.clone(),
        environments: p
            .environment_order
            .iter()
            .map(|e| (e.clone(), p.environments[e].clone()))
            .collect(),
        commands: p
            .command_order
            .iter()
            .map(|c| (c.clone(), p.commands[c].clone()))
            .collect(),
        variables: p.variables.clone(),
        lock_files: p
            .lock_files
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned()))
            .collect(),
        pip_requirements: p.pip_requirements.clone(),
        dotenv: p.dotenv.clone(),
    }
}

#[test]
fn fixture_corpus_matches_expected() {
    let (_tmp, cases) = conda_corpus();
    assert!(
        cases.len() >= 15,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for (name, dir) in &cases {
        let expected_path = tests_dir()
            .join("fixtures/conda")
            .join(name)
            .join("expected.json");
        let differs = fs::read_to_string(&expected_path)
            .ok()
            .and_then(|t| serde_json::from_str::<Expected>(&t).ok())
            .and_then(|e| e.differs);
        let mut actual = match conda::load(dir) {
            Ok(p) => Expected {
                valid: true,
                problems: vec![],
                warnings: p.warnings.clone(),
                project: Some(summarize(&p)),
                differs: None,
            },
            Err(Error::InvalidProject(problems)) => Expected {
                valid: false,
                problems,
                warnings: vec![],
                project: None,
                differs: None,
            },
            Err(e) => panic!("{name}: unexpected error: {e}"),
        };
        actual.differs = differs;
        if updating() {
            let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            fs::write(&expected_path, text).unwrap();
            continue;
        }
        let expected: Expected = match fs::read_to_string(&expected_path) {
            Ok(text) => serde_json::from_str(&text).unwrap(),
            Err(e) => {
                failures.push(format!("{name}: no expected.json ({e})"));
                continue;
            }
        };
        if expected != actual {
            failures.push(format!(
                "{name}:\n  expected: {}\n  actual:   {}",
                serde_json::to_string(&expected).unwrap(),
                serde_json::to_string(&actual).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_case_names_its_fields() {
    let (_tmp, cases) = conda_corpus();
    for (name, dir) in &cases {
        if let Err(e) = conda::load(dir) {
            for p in e.problems() {
                assert!(!p.field.is_empty(), "{name}: {p}");
                assert!(!p.message.is_empty(), "{name}: {p}");
                assert_eq!(p.to_string(), format!("{}: {}", p.field, p.message));
            }
            assert_eq!(e.kind(), racer_core::ErrorKind::Invalid);
        }
    }
}

#[test]
fn null_variables_must_be_supplied() {
    let (_tmp, cases) = conda_corpus();
    let dir = &cases.iter().find(|(n, _)| n == "null-variable").unwrap().1;
    let project = conda::load(dir).unwrap();
    let missing = project.missing_variables(None, &BTreeMap::new());
    let fields: Vec<&str> = missing.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["variables.API_KEY", "commands.serve.variables.DB_URL"]
    );
    let supplied: BTreeMap<String, String> = [("API_KEY", "k"), ("DB_URL", "postgres://")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(project
        .missing_variables(Some("serve"), &supplied)
        .is_empty());
}

#[test]
fn a_huge_environment_file_is_refused_before_parsing() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("conda-project.yml"),
        "name: x\nenvironments:\n  default: [environment.yml]\n",
    )
    .unwrap();
    let big = "dependencies:\n".to_string() + &"  - python\n".repeat(200_000);
    fs::write(tmp.path().join("environment.yml"), big).unwrap();
    let err = conda::load(tmp.path()).unwrap_err();
    assert_eq!(
        err.problems()[0].field,
        "environments.default[0](environment.yml)"
    );
    assert!(err.problems()[0].message.contains("larger than the limit"));
}

#[test]
fn a_deploy_needs_only_what_the_project_env_file_and_commands_leave_unset() {
    let (_tmp, cases) = conda_corpus();
    let dir = |name: &str| cases.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let fields = |ps: Vec<Problem>| ps.into_iter().map(|p| p.field).collect::<Vec<_>>();
    let none = BTreeMap::new();

    // .env gives API_KEY and replaces PORT (it comes after the project's variables).
    let p = conda::load(&dir("dotenv-basic")).unwrap();
    assert_eq!(
        fields(p.missing_variables(None, &none)),
        ["variables.UNRESOLVED"]
    );
    let vars = p.run_variables(None);
    assert_eq!(vars["API_KEY"].as_deref(), Some("secret"));
    assert_eq!(vars["PORT"].as_deref(), Some("9000"));
    assert_eq!(vars["EXTRA"].as_deref(), Some("only-in-dotenv"));
    let mut supplied = BTreeMap::new();
    supplied.insert("UNRESOLVED".to_string(), "x".to_string());
    assert!(p.missing_variables(None, &supplied).is_empty());

    // A command's own value resolves a project null; a command's null hides a project value.
    let p = conda::load(&dir("null-variable-resolved-by-command")).unwrap();
    assert_eq!(
        fields(p.missing_variables(Some("serve"), &none)),
        ["variables.TOKEN"]
    );
    assert_eq!(
        fields(p.missing_variables(Some("quiet"), &none)),
        [
            "variables.DB_URL",
            "commands.quiet.variables.LOG_LEVEL",
            "variables.TOKEN"
        ]
    );
}
