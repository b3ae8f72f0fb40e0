//! Source to build context.
//!
//! This crate turns what a user hands racer (a folder, a git repository) into what the Docker
//! engine builds: it checks sources out ([`git`]), detects what the folder is ([`detect`]),
//! validates conda projects ([`conda`]), generates a Dockerfile for them ([`dockerfile`]) and packs
//! or safely unpacks build-context tarballs honouring `.dockerignore` ([`context`],
//! [`dockerignore`]). It does no network I/O of its own (only `git` does) and never talks to
//! Docker.

use std::fmt;
use std::path::{Path, PathBuf};

use racer_core::ErrorKind;
use serde::{Deserialize, Serialize};

pub mod conda;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod dotenv;
pub mod git;
mod lockfile;
pub mod spec;
mod yaml;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The folder has nothing racer knows how to build.
    #[error(
        "detect build format: nothing to build in {}: found no {looked_for} at its root",
        dir.display()
    )]
    NothingToBuild {
        /// The folder that was inspected.
        dir: PathBuf,
        /// The file names that were looked for, as a sentence fragment.
        looked_for: String,
    },
    /// A conda project failed validation; every problem found is listed, with its field path.
    #[error("validate conda project: {}", Problems(.0))]
    InvalidProject(Vec<Problem>),
    /// An app spec or policy document failed validation; every problem found is listed, with
    /// its field path.
    #[error("invalid app spec: {}", Problems(.0))]
    InvalidSpec(Vec<Problem>),
    /// A folder or file of the source could not be read.
    #[error("read {}", path.display())]
    Read {
        /// The path that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A Dockerfile was requested for an environment the project does not declare.
    #[error("generate dockerfile: no environment named {0:?}")]
    UnknownEnvironment(String),
    /// A Dockerfile was requested for a command the project does not declare.
    #[error("generate dockerfile: no command named {0:?}")]
    UnknownCommand(String),
    /// A Dockerfile was requested for a project that declares no command to run.
    #[error(
        "generate dockerfile: the conda project declares no command; add one under `commands:`"
    )]
    NoCommand,
    /// A value cannot be written into a Dockerfile safely (e.g. it contains a newline).
    #[error("generate dockerfile: {what} cannot be written into a Dockerfile: {reason}")]
    Unrepresentable {
        /// What was being written (e.g. `variable FOO`).
        what: String,
        /// Why it cannot be written.
        reason: String,
    },
    /// A `.dockerignore` line is not a valid pattern.
    #[error("read .dockerignore: line {line}: invalid pattern {pattern:?}: {reason}")]
    Dockerignore {
        /// The 1-based line number in `.dockerignore`.
        line: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the context tarball failed.
    #[error("pack build context: write {}", path.display())]
    Pack {
        /// The context-relative path being written when it failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the context tarball or writing its files failed.
    #[error("unpack build context: {step}")]
    Unpack {
        /// The step that failed, naming the entry or path involved.
        step: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The context tarball holds an entry that would be unsafe to unpack.
    #[error("unpack build context: refuse entry {path:?}: {reason}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// The context tarball is larger than allowed.
    #[error("unpack build context: the context is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The context tarball holds more entries than allowed.
    #[error("unpack build context: the context has more than the limit of {limit} entries")]
    TooManyEntries {
        /// The limit on the number of entries.
        limit: u64,
    },
    /// A git URL or reference was refused before running git.
    #[error("check out git source: refuse {what} {value:?}: {reason}")]
    UnsafeGitInput {
        /// What was refused (`url` or `reference`).
        what: &'static str,
        /// The refused value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The `git` program could not be started.
    #[error("check out git source: run git {step}")]
    GitSpawn {
        /// The git step that was being run.
        step: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A git command failed; `stderr` holds the last lines it printed.
    #[error("check out git source: git {step} failed: {stderr}")]
    Git {
        /// The git step that failed (e.g. `clone`).
        step: String,
        /// The last lines git printed on its standard error.
        stderr: String,
    },
}

impl Error {
    /// What kind of failure this is, for the server's HTTP mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NothingToBuild { .. }
            | Error::InvalidProject(_)
            | Error::InvalidSpec(_)
            | Error::UnknownEnvironment(_)
            | Error::UnknownCommand(_)
            | Error::NoCommand
            | Error::Unrepresentable { .. }
            | Error::Dockerignore { .. }
            | Error::UnsafeEntry { .. }
            | Error::TooLarge { .. }
            | Error::TooManyEntries { .. }
            | Error::UnsafeGitInput { .. }
            | Error::Git { .. } => ErrorKind::Invalid,
            Error::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Unpack { source, .. } if is_bad_archive(source) => ErrorKind::Invalid,
            Error::Read { .. } | Error::Pack { .. } | Error::Unpack { .. } => ErrorKind::Internal,
            Error::GitSpawn { .. } => ErrorKind::Unavailable,
        }
    }

    /// The problems of an [`Error::InvalidProject`], or an empty slice for any other error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::InvalidProject(problems) | Error::InvalidSpec(problems) => problems,
            _ => &[],
        }
    }
}

/// Whether an I/O error while reading an archive means the archive itself is malformed.
fn is_bad_archive(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::InvalidData
            | std::io::ErrorKind::InvalidInput
            | std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::Other
    )
}

/// One thing wrong with user input, with the path of the field it is about.
///
/// `field` is a dotted path such as `commands.serve.environment` or
/// `environments.default[0](environment.yml).dependencies[3]`; for problems with a whole file it
/// is the file's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Problem {
    /// Where the problem is: a field path, or a file name.
    pub field: String,
    /// What is wrong, as a sentence fragment without a trailing period.
    pub message: String,
}

impl Problem {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Displays a list of problems on one line, separated by `; `.
struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// What a source folder turned out to be.
// One value per build, moved once: boxing the project would only make callers' matches noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Detected {
    /// A `Dockerfile` at the root: build it as it is.
    Dockerfile,
    /// A valid conda project: generate a Dockerfile with [`dockerfile::generate`].
    CondaProject(conda::Project),
}

/// The file names [`detect`] looks for, in order.
pub const DETECTED_FILES: [&str; 5] = [
    "Dockerfile",
    conda::PROJECT_FILES[0],
    conda::PROJECT_FILES[1],
    conda::ENVIRONMENT_FILES[0],
    conda::ENVIRONMENT_FILES[1],
];

/// Works out how to build the folder `dir`.
///
/// A `Dockerfile` at the root wins. Otherwise a conda project (`conda-project.yml`/`.yaml`, or an
/// `environment.yml`/`.yaml` alone) is loaded and validated with [`conda::load`]. Otherwise the
/// folder has nothing to build and [`Error::NothingToBuild`] says what was looked for.
pub fn detect(dir: &Path) -> Result<Detected, Error> {
    let meta = std::fs::metadata(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(Error::Read {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let dockerfile = std::fs::symlink_metadata(dir.join("Dockerfile"));
    if dockerfile.is_ok_and(|m| !m.is_dir()) {
        return Ok(Detected::Dockerfile);
    }
    if DETECTED_FILES[1..].iter().any(|f| exists(&dir.join(f))) {
        return conda::load(dir).map(Detected::CondaProject);
    }
    Err(Error::NothingToBuild {
        dir: dir.to_path_buf(),
        looked_for: "Dockerfile, conda-project.yml, conda-project.yaml, environment.yml or \
                     environment.yaml"
            .to_string(),
    })
}

/// `racer validate`'s verdict on the folder `dir`, the same on the server and in the CLI (with
/// no server): what it is, every problem with its field path, and, for a valid conda project,
/// its environments, commands and notes: each variable that needs a value at deploy (given
/// neither by the project, its `.env`, nor `env`, the `--env` values) and every warning.
/// `command` is the command a deploy would run (the project's first when `None`). Only an
/// error that is not the project's fault (an unreadable folder) is an `Err`.
pub fn validate_report(
    dir: &Path,
    command: Option<&str>,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<racer_core::api::ValidateReport, Error> {
    use racer_core::api::{Problem as WireProblem, ValidateReport};
    let wire = |ps: &[Problem]| -> Vec<WireProblem> {
        ps.iter()
            .map(|p| WireProblem {
                field: p.field.clone(),
                message: p.message.clone(),
            })
            .collect()
    };
    let report = match detect(dir) {
        Ok(Detected::Dockerfile) => ValidateReport {
            kind: Some("dockerfile".into()),
            valid: true,
            problems: vec![],
            project_name: None,
            environments: vec![],
            commands: vec![],
            commit: None,
            notes: vec![],
        },
        Ok(Detected::CondaProject(p)) => {
            let missing = p.missing_variables(command, env);
            // An unknown command is a problem; variables without a value are for the deploy.
            let (problems, mut notes): (Vec<Problem>, Vec<Problem>) =
                missing.into_iter().partition(|m| m.field == "command");
            notes.extend(p.warnings.iter().cloned());
            ValidateReport {
                kind: Some("conda-project".into()),
                valid: problems.is_empty(),
                problems: wire(&problems),
                project_name: Some(p.display_name()),
                environments: p.environment_order.clone(),
                commands: p.command_order.clone(),
                commit: None,
                notes: wire(&notes),
            }
        }
        Err(e) if e.kind() == ErrorKind::Invalid || e.kind() == ErrorKind::NotFound => {
            let kind = matches!(e, Error::InvalidProject(_)).then(|| "conda-project".to_owned());
            let mut problems = wire(e.problems());
            if problems.is_empty() {
                problems.push(WireProblem {
                    field: "source".into(),
                    message: racer_core::error_chain(&e),
                });
            }
            ValidateReport {
                kind,
                valid: false,
                problems,
                project_name: None,
                environments: vec![],
                commands: vec![],
                commit: None,
                notes: vec![],
            }
        }
        Err(e) => return Err(e),
    };
    Ok(report)
}

/// Whether something (a file, a folder, even a dangling symlink) is at `path`.
pub(crate) fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
