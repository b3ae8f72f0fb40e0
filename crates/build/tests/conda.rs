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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    project: Option<Summary>,
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
        let actual = match conda::load(dir) {
            Ok(p) => Expected {
                valid: true,
                problems: vec![],
                project: Some(summarize(&p)),
            },
            Err(Error::InvalidProject(problems)) => Expected {
                valid: false,
                problems,
                project: None,
            },
            Err(e) => panic!("{name}: unexpected error: {e}"),
        };
        let expected_path = tests_dir()
            .join("fixtures/conda")
            .join(name)
            .join("expected.json");
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
