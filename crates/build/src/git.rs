//! Checking out git sources with the `git` program.
//!
//! Git never prompts (`GIT_TERMINAL_PROMPT=0`, ssh in batch mode, no standard input), the `ext::`
//! transport is refused, and URLs or references that git could mistake for options are refused
//! before git runs. A branch or tag is cloned shallowly; a commit id is fetched by id (shallow)
//! when the server allows it, else the repository is cloned in full and the commit checked out.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

/// How many lines of git's standard error an error keeps.
const STDERR_LINES: usize = 15;

/// Splits `url#ref` into the URL and the reference (branch, tag or commit id); a missing or empty
/// reference is `None`.
pub fn split_ref(s: &str) -> (&str, Option<&str>) {
    match s.rsplit_once('#') {
        Some((url, reference)) if !reference.is_empty() => (url, Some(reference)),
        Some((url, _)) => (url, None),
        None => (s, None),
    }
}

/// Clones `url` into `dest` (which must not exist or be empty) at `reference` (a branch, a tag
/// or a commit id; `None` is the remote's default branch) and returns the commit id checked out.
pub fn checkout(url: &str, reference: Option<&str>, dest: &Path) -> Result<String, Error> {
    check_url(url)?;
    if let Some(r) = reference {
        check_reference(r)?;
    }
    let dest_str = dest.to_string_lossy().into_owned();
    match reference {
        None => {
            run(
                "clone",
                None,
                &["clone", "--depth", "1", "--no-tags", "--", url, &dest_str],
            )?;
        }
        Some(r) if is_full_sha(r) => {
            if fetch_by_sha(url, r, dest).is_err() {
                clear_dir(dest)?;
                full_clone_and_checkout(url, r, dest)?;
            }
        }
        Some(r) => {
            let branch = run(
                "clone",
                None,
                &["clone", "--depth", "1", "--branch", r, "--", url, &dest_str],
            );
            if let Err(err) = branch {
                // Not a branch or tag; maybe an abbreviated commit id.
                if !is_hex(r) {
                    return Err(err);
                }
                clear_dir(dest)?;
                full_clone_and_checkout(url, r, dest)?;
            }
        }
    }
    let head = run("rev-parse", Some(dest), &["rev-parse", "HEAD"])?;
    Ok(head.trim().to_string())
}

/// `git init` + `git fetch --depth 1 origin <sha>` + checkout: cheap when the server allows
/// fetching a commit by id.
fn fetch_by_sha(url: &str, sha: &str, dest: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dest).map_err(|source| Error::GitSpawn {
        step: format!("init (create {})", dest.display()),
        source,
    })?;
    run("init", Some(dest), &["init", "--quiet"])?;
    run(
        "remote add",
        Some(dest),
        &["remote", "add", "origin", "--", url],
    )?;
    run(
        "fetch",
        Some(dest),
        &["fetch", "--depth", "1", "--no-tags", "origin", sha],
    )?;
    run(
        "checkout",
        Some(dest),
        &["checkout", "--quiet", "--detach", "FETCH_HEAD"],
    )?;
    Ok(())
}

/// A full clone, then `git checkout --detach <reference>`.
fn full_clone_and_checkout(url: &str, reference: &str, dest: &Path) -> Result<(), Error> {
    let dest_str = dest.to_string_lossy().into_owned();
    run(
        "clone",
        None,
        &["clone", "--no-checkout", "--", url, &dest_str],
    )?;
    let commit = format!("{reference}^{{commit}}");
    run(
        "checkout",
        Some(dest),
        &["checkout", "--quiet", "--detach", &commit],
    )?;
    Ok(())
}

/// Empties `dest` after a failed attempt so the next one starts clean.
fn clear_dir(dest: &Path) -> Result<(), Error> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|source| Error::GitSpawn {
            step: format!("clean up {}", dest.display()),
            source,
        })?;
    }
    Ok(())
}

/// Runs one git command without prompts; returns its standard output.
fn run(step: &str, cwd: Option<&Path>, args: &[&str]) -> Result<String, Error> {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "protocol.ext.allow=never",
        "-c",
        "core.askPass=",
        "-c",
        "credential.interactive=false",
        "-c",
        "advice.detachedHead=false",
    ])
    .args(args)
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GCM_INTERACTIVE", "never")
    .env_remove("GIT_ASKPASS")
    .env_remove("SSH_ASKPASS")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let output = cmd.output().map_err(|source| Error::GitSpawn {
        step: step.to_string(),
        source,
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join(" | ");
        return Err(Error::Git {
            step: step.to_string(),
            stderr: if tail.is_empty() {
                format!("exit status {}", output.status)
            } else {
                tail
            },
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn check_url(url: &str) -> Result<(), Error> {
    let refuse = |reason: &str| Error::UnsafeGitInput {
        what: "url",
        value: url.to_string(),
        reason: reason.to_string(),
    };
    if url.is_empty() {
        return Err(refuse("it is empty"));
    }
    if url.starts_with('-') {
        return Err(refuse("it starts with `-` and would be read as an option"));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("ext::") {
        return Err(refuse("the ext:: transport runs arbitrary commands"));
    }
    if lower.starts_with("fd::") {
        return Err(refuse("the fd:: transport is not supported"));
    }
    if url.chars().any(char::is_control) {
        return Err(refuse("it contains control characters"));
    }
    Ok(())
}

fn check_reference(r: &str) -> Result<(), Error> {
    let refuse = |reason: &str| Error::UnsafeGitInput {
        what: "reference",
        value: r.to_string(),
        reason: reason.to_string(),
    };
    if r.starts_with('-') {
        return Err(refuse("it starts with `-` and would be read as an option"));
    }
    if r.chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
        || r.contains("..")
        || r.contains("@{")
    {
        return Err(refuse("it is not a valid branch, tag or commit id"));
    }
    Ok(())
}

fn is_hex(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && is_hex(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_ref_parses_fragment() {
        assert_eq!(
            split_ref("https://example.com/a.git#main"),
            ("https://example.com/a.git", Some("main"))
        );
        assert_eq!(split_ref("file:///r#"), ("file:///r", None));
        assert_eq!(split_ref("file:///r"), ("file:///r", None));
        assert_eq!(split_ref("a#b#v1.0"), ("a#b", Some("v1.0")));
    }

    #[test]
    fn refuses_option_like_and_ext_urls() {
        let dest = Path::new("/nonexistent/never-created");
        for url in [
            "-uhack",
            "--upload-pack=touch /tmp/x",
            "ext::sh -c evil",
            "EXT::x",
        ] {
            assert!(
                matches!(
                    checkout(url, None, dest),
                    Err(Error::UnsafeGitInput { what: "url", .. })
                ),
                "{url}"
            );
        }
        assert!(matches!(
            checkout("file:///x", Some("--orphan"), dest),
            Err(Error::UnsafeGitInput {
                what: "reference",
                ..
            })
        ));
    }
}
