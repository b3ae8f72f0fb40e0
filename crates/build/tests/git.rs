//! `git::checkout` against a local repository made with `git init`.

use std::fs;
use std::path::Path;
use std::process::Command;

use racer_build::{git, Error};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=racer", "-c", "user.email=racer@localhost"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A repository with three commits: v1 (tagged `v1`), v2 on branch `feature`, v3 on `main`.
struct Repo {
    _tmp: tempfile::TempDir,
    url: String,
    first: String,
    feature: String,
    head: String,
}

fn repo() -> Repo {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "--quiet"]);
    fs::write(dir.join("app.txt"), "v1\n").unwrap();
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "--quiet", "-m", "v1"]);
    git(&dir, &["tag", "v1"]);
    let first = git(&dir, &["rev-parse", "HEAD"]);
    git(&dir, &["checkout", "--quiet", "-b", "feature"]);
    fs::write(dir.join("app.txt"), "v2\n").unwrap();
    git(&dir, &["commit", "--quiet", "-am", "v2"]);
    let feature = git(&dir, &["rev-parse", "HEAD"]);
    git(&dir, &["checkout", "--quiet", "main"]);
    fs::write(dir.join("app.txt"), "v3\n").unwrap();
    git(&dir, &["commit", "--quiet", "-am", "v3"]);
    let head = git(&dir, &["rev-parse", "HEAD"]);
    Repo {
        url: format!("file://{}", dir.display()),
        _tmp: tmp,
        first,
        feature,
        head,
    }
}

fn content(dest: &Path) -> String {
    fs::read_to_string(dest.join("app.txt")).unwrap()
}

#[test]
fn default_branch_branch_and_tag() {
    let r = repo();
    let out = tempfile::tempdir().unwrap();

    let dest = out.path().join("default");
    assert_eq!(git::checkout(&r.url, None, &dest).unwrap(), r.head);
    assert_eq!(content(&dest), "v3\n");

    let dest = out.path().join("branch");
    assert_eq!(
        git::checkout(&r.url, Some("feature"), &dest).unwrap(),
        r.feature
    );
    assert_eq!(content(&dest), "v2\n");

    let dest = out.path().join("tag");
    assert_eq!(git::checkout(&r.url, Some("v1"), &dest).unwrap(), r.first);
    assert_eq!(content(&dest), "v1\n");
}

#[test]
fn full_and_short_commit_ids() {
    let r = repo();
    let out = tempfile::tempdir().unwrap();

    let dest = out.path().join("sha");
    assert_eq!(
        git::checkout(&r.url, Some(&r.first), &dest).unwrap(),
        r.first
    );
    assert_eq!(content(&dest), "v1\n");

    let dest = out.path().join("short");
    assert_eq!(
        git::checkout(&r.url, Some(&r.feature[..10]), &dest).unwrap(),
        r.feature
    );
    assert_eq!(content(&dest), "v2\n");
}

#[test]
fn url_fragment_selects_the_reference() {
    let r = repo();
    let spec = format!("{}#feature", r.url);
    let (url, reference) = git::split_ref(&spec);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("frag");
    assert_eq!(git::checkout(url, reference, &dest).unwrap(), r.feature);
}

#[test]
fn failures_carry_git_stderr() {
    let r = repo();
    let out = tempfile::tempdir().unwrap();
    let err = git::checkout(&r.url, Some("no-such-branch"), &out.path().join("x")).unwrap_err();
    match &err {
        Error::Git { step, stderr } => {
            assert_eq!(step, "clone");
            assert!(stderr.contains("no-such-branch"), "{stderr}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(err.kind(), racer_core::ErrorKind::Invalid);
    let missing = format!("file://{}/missing", out.path().display());
    let err = git::checkout(&missing, None, &out.path().join("y")).unwrap_err();
    assert!(matches!(err, Error::Git { .. }), "{err}");
    // A full sha that does not exist fails after both attempts.
    let err = git::checkout(
        &r.url,
        Some("0123456789012345678901234567890123456789"),
        &out.path().join("z"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Git { .. }), "{err}");
}
