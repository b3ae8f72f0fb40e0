//! Format detection.

use std::fs;

use racer_build::{detect, Detected, Error};

use crate::util::conda_corpus;

#[test]
fn dockerfile_wins_over_conda() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(
        tmp.path().join("environment.yml"),
        "dependencies: [python]\n",
    )
    .unwrap();
    assert_eq!(detect(tmp.path()).unwrap(), Detected::Dockerfile);
}

#[test]
fn conda_projects_are_detected_and_validated() {
    let (_tmp, cases) = conda_corpus();
    let dir = |n: &str| cases.iter().find(|(c, _)| c == n).unwrap().1.clone();
    match detect(&dir("environment-only")).unwrap() {
        Detected::CondaProject(p) => {
            assert_eq!(p.name, "environment-only");
            assert_eq!(p.environment_order, ["default"]);
            assert_eq!(p.environments["default"], ["environment.yml"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        detect(&dir("valid-basic")).unwrap(),
        Detected::CondaProject(_)
    ));
    assert!(matches!(
        detect(&dir("unknown-field")),
        Err(Error::InvalidProject(_))
    ));
}

#[test]
fn nothing_to_build_says_what_was_looked_for() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("main.py"), "print(1)\n").unwrap();
    let err = detect(tmp.path()).unwrap_err();
    assert!(matches!(err, Error::NothingToBuild { .. }));
    let msg = err.to_string();
    for name in [
        "Dockerfile",
        "conda-project.yml",
        "conda-project.yaml",
        "environment.yml",
        "environment.yaml",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
    assert_eq!(err.kind(), racer_core::ErrorKind::Invalid);
    let missing = detect(&tmp.path().join("nope")).unwrap_err();
    assert_eq!(missing.kind(), racer_core::ErrorKind::NotFound);
}
