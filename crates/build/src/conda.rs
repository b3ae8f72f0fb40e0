//! conda-project: loading and validating `conda-project.yml` and its environment files.
//!
//! The schema follows the reference implementation (the `conda-project` package,
//! `project_file.py`): `CondaProjectYaml { name, environments, variables, commands }`,
//! `Command { cmd, environment, variables }` (extra fields forbidden) and
//! `EnvironmentYaml { name, channels, dependencies, variables, prefix, platforms }` with only a
//! `pip:` map allowed among the dependencies. racer is stricter where the reference would fail
//! later (at install or run time) or silently do something surprising; `tests/README.md` lists
//! each difference. [`load`] reports every problem it finds, each with its field path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use rattler_conda_types::{MatchSpec, ParseStrictness};
use serde::{Deserialize, Serialize};

use crate::yaml::{self, Value};
use crate::{exists, Error, Problem};

/// The names a project file may have, in the order the reference looks for them.
pub const PROJECT_FILES: [&str; 2] = ["conda-project.yml", "conda-project.yaml"];
/// The names of an environment file that makes a folder a project on its own.
pub const ENVIRONMENT_FILES: [&str; 2] = ["environment.yml", "environment.yaml"];
/// Largest project or environment file racer reads, in bytes; checked before parsing.
pub const MAX_FILE_BYTES: u64 = yaml::MAX_FILE_BYTES;

/// The fields a project file may have.
const PROJECT_FIELDS: &str = "name, environments, variables, commands";
/// The fields a command mapping may have.
const COMMAND_FIELDS: &str = "cmd, environment, variables";

/// A validated conda project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// The project's name (for an `environment.yml`-only project, the folder's name).
    pub name: String,
    /// Environment name → its environment files, relative to [`Project::dir`].
    pub environments: BTreeMap<String, Vec<String>>,
    /// Environment names in the order the project file declares them; the first is the default.
    pub environment_order: Vec<String>,
    /// Command name → command.
    pub commands: BTreeMap<String, Command>,
    /// Command names in the order the project file declares them; the first is the default.
    pub command_order: Vec<String>,
    /// Project-wide variables; `None` means "no default: must be supplied at run time".
    pub variables: BTreeMap<String, Option<String>>,
    /// Environment name → its `conda-lock.<env>.yml`, relative to [`Project::dir`], when present.
    pub lock_files: BTreeMap<String, PathBuf>,
    /// Environment file (as listed in [`Project::environments`]) → the entries of its `pip:`
    /// list, when it has one. They are pip arguments, not MatchSpecs (`-e .`, `-r req.txt`, ...).
    pub pip_requirements: BTreeMap<String, Vec<String>>,
    /// The project file relative to [`Project::dir`], or `None` when an environment file alone
    /// makes the project.
    pub project_file: Option<PathBuf>,
    /// The project folder, canonicalized.
    pub dir: PathBuf,
    /// What a user should know about an accepted project: fields the reference ignores (and so
    /// does racer), an empty name racer replaced, `.env` lines python-dotenv would skip.
    #[serde(default)]
    pub warnings: Vec<Problem>,
    /// The project's `.env` file (python-dotenv's rules), when it has one: key → value, `None`
    /// for a key without `=`.
    #[serde(default)]
    pub dotenv: BTreeMap<String, Option<String>>,
}

/// One command of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The command line; split like a POSIX shell would (Python's `shlex.split`), not run by one.
    pub cmd: String,
    /// The environment it runs in; `None` means the project's default (first) environment.
    pub environment: Option<String>,
    /// Variables for this command, overriding the project's; `None` values must be supplied.
    pub variables: BTreeMap<String, Option<String>>,
}

impl Project {
    /// The name to show: the project's, or its folder's when the project file's is empty.
    pub fn display_name(&self) -> String {
        if self.name.trim().is_empty() {
            self.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "project".to_string())
        } else {
            self.name.clone()
        }
    }

    /// The default environment: the first one declared.
    pub fn default_environment(&self) -> Option<&str> {
        self.environment_order.first().map(String::as_str)
    }

    /// The default command: the first one declared, if any.
    pub fn default_command(&self) -> Option<&str> {
        self.command_order.first().map(String::as_str)
    }

    /// The environment `command` runs in (its own, else the default environment).
    pub fn command_environment(&self, command: &str) -> Option<&str> {
        let cmd = self.commands.get(command)?;
        cmd.environment
            .as_deref()
            .or_else(|| self.default_environment())
    }

    /// The variables in force for `command` (the project's, overridden by the command's), with
    /// `None` for those that have no value. With `command` `None`, the project's only.
    pub fn effective_variables(&self, command: Option<&str>) -> BTreeMap<String, Option<String>> {
        let mut vars = self.variables.clone();
        if let Some(cmd) = command.and_then(|c| self.commands.get(c)) {
            for (k, v) in &cmd.variables {
                vars.insert(k.clone(), v.clone());
            }
        }
        vars
    }

    /// The variables `conda project run` would set for `command` (the default command when
    /// `None`), as the reference's `prepare_variables` merges them without the caller's
    /// environment: the project's, then the command's, then the `.env` file's, each layer
    /// replacing the one before, a `None` (no value) included.
    pub fn run_variables(&self, command: Option<&str>) -> BTreeMap<String, Option<String>> {
        let name = command.or_else(|| self.default_command());
        let mut vars = self.effective_variables(name);
        for (k, v) in &self.dotenv {
            vars.insert(k.clone(), v.clone());
        }
        vars
    }

    /// The variables that have no value (declared `null`, or a `.env` key without `=`) in
    /// [`Project::run_variables`] and are not in `supplied_env` (`--env`, which comes last, as
    /// the caller's environment does for the reference): each needs a value at deploy.
    /// `command` defaults to the default command; an unknown command is itself reported as a
    /// problem on the field `command`.
    pub fn missing_variables(
        &self,
        command: Option<&str>,
        supplied_env: &BTreeMap<String, String>,
    ) -> Vec<Problem> {
        let name = command.or_else(|| self.default_command());
        let cmd = match name {
            Some(n) => match self.commands.get(n) {
                Some(c) => Some((n, c)),
                None => return vec![Problem::new("command", format!("no command named {n:?}"))],
            },
            None => None,
        };
        let mut problems = Vec::new();
        for (key, value) in self.run_variables(name) {
            if value.is_some() || supplied_env.contains_key(&key) {
                continue;
            }
            let field = match cmd {
                _ if self.dotenv.contains_key(&key) => format!(".env.{key}"),
                Some((n, c)) if c.variables.contains_key(&key) => {
                    format!("commands.{n}.variables.{key}")
                }
                _ => format!("variables.{key}"),
            };
            problems.push(Problem::new(
                field,
                format!(
                    "needs a value at deploy: it has none; give it with --env {key}=VALUE, a \
                     command's variables or the project's .env file"
                ),
            ));
        }
        problems
    }
}

/// Loads and validates the conda project in `dir`.
///
/// The project file is `conda-project.yml` or `conda-project.yaml` (both is an error); without
/// one, an `environment.yml` or `environment.yaml` alone makes a project named after the folder
/// with one environment, `default`. Every problem found is returned in
/// [`Error::InvalidProject`], each with its field path.
pub fn load(dir: &Path) -> Result<Project, Error> {
    let root = fs::canonicalize(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut v = Validator {
        root,
        problems: Vec::new(),
        warnings: Vec::new(),
        pip: BTreeMap::new(),
        env_files: BTreeMap::new(),
        env_file_paths: BTreeMap::new(),
    };
    let project_files: Vec<&str> = PROJECT_FILES
        .into_iter()
        .filter(|f| exists(&v.root.join(f)))
        .collect();
    let project = match project_files.as_slice() {
        [] => {
            let env_files: Vec<&str> = ENVIRONMENT_FILES
                .into_iter()
                .filter(|f| exists(&v.root.join(f)))
                .collect();
            match env_files.as_slice() {
                [] => {
                    return Err(Error::NothingToBuild {
                        dir: dir.to_path_buf(),
                        looked_for: "conda-project.yml, conda-project.yaml, environment.yml or \
                                     environment.yaml"
                            .to_string(),
                    })
                }
                [file] => v.implied_project(file),
                _ => {
                    return Err(Error::InvalidProject(vec![Problem::new(
                        ENVIRONMENT_FILES[0],
                        "both environment.yml and environment.yaml exist; keep only one",
                    )]))
                }
            }
        }
        [file] => v.project_file(file),
        _ => {
            return Err(Error::InvalidProject(vec![Problem::new(
                PROJECT_FILES[0],
                "both conda-project.yml and conda-project.yaml exist; keep only one",
            )]))
        }
    };
    let dotenv = v.dotenv();
    match project {
        Some(mut p) if v.problems.is_empty() => {
            p.dotenv = dotenv;
            p.warnings = v.warnings;
            Ok(p)
        }
        _ => Err(Error::InvalidProject(v.problems)),
    }
}

/// The file python-dotenv reads for `conda project run`: `.env` in the project folder.
pub const DOTENV_FILE: &str = ".env";

/// Collects problems while walking a project.
struct Validator {
    root: PathBuf,
    problems: Vec<Problem>,
    /// Things the user should know that do not make the project invalid.
    warnings: Vec<Problem>,
    /// Environment file → its pip entries, collected while validating.
    pip: BTreeMap<String, Vec<String>>,
    /// Environment file names already checked: `Err` holds why the name does not resolve.
    env_files: BTreeMap<String, Result<(), String>>,
    /// The files those names resolved to, each with the first name it was read under.
    env_file_paths: BTreeMap<PathBuf, String>,
}

impl Validator {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(field, message));
    }

    fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(field, message));
    }

    /// The project's `.env`, if it has one: inside the project, a regular file under the size
    /// cap (python-dotenv reads any file; a `.env` racer cannot read safely is a problem).
    fn dotenv(&mut self) -> BTreeMap<String, Option<String>> {
        let full = self.root.join(DOTENV_FILE);
        if fs::symlink_metadata(&full).is_err() {
            return BTreeMap::new();
        }
        let text = match self.resolve(DOTENV_FILE).and_then(|p| read_capped(&p)) {
            Ok(t) => t,
            Err(msg) => {
                self.problem(DOTENV_FILE, msg);
                return BTreeMap::new();
            }
        };
        let env = crate::dotenv::parse(&text);
        for line in &env.skipped_lines {
            self.warn(
                format!("{DOTENV_FILE}:{line}"),
                "cannot be parsed as KEY=value; skipped, as python-dotenv skips it",
            );
        }
        for key in &env.oversized {
            self.problem(
                format!("{DOTENV_FILE}.{key}"),
                format!(
                    "the value expands to more than {} bytes (with the values before it): \
                     racer refuses the file",
                    crate::dotenv::MAX_EXPANDED_BYTES
                ),
            );
        }
        for name in &env.unresolved {
            self.warn(
                DOTENV_FILE,
                format!(
                    "${{{name}}} is not defined above it in the file: racer expands it to its \
                     default or nothing (conda project run would also look in your shell's \
                     environment)"
                ),
            );
        }
        env.values.into_iter().collect()
    }

    /// The project folder's name: the name of a project that gives none.
    fn folder_name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".to_string())
    }

    /// A project made of one environment file, as the reference does it.
    fn implied_project(&mut self, env_file: &str) -> Option<Project> {
        let name = self.folder_name();
        self.check_environment_file("environments.default[0]", env_file);
        let mut environments = BTreeMap::new();
        environments.insert("default".to_string(), vec![env_file.to_string()]);
        let environment_order = vec!["default".to_string()];
        let lock_files = self.lock_files(&environment_order);
        Some(Project {
            name,
            environments,
            environment_order,
            commands: BTreeMap::new(),
            command_order: Vec::new(),
            variables: BTreeMap::new(),
            lock_files,
            pip_requirements: std::mem::take(&mut self.pip),
            project_file: None,
            dir: self.root.clone(),
            warnings: Vec::new(),
            dotenv: BTreeMap::new(),
        })
    }

    /// Parses and checks `conda-project.yml` (or `.yaml`).
    fn project_file(&mut self, file: &str) -> Option<Project> {
        let doc = self.read_yaml(file, file)?;
        let entries = match doc {
            Value::Map(entries) => entries,
            Value::Null => {
                self.problem(file, "file is empty");
                return None;
            }
            other => {
                self.problem(
                    file,
                    format!(
                        "expected a mapping of project fields, found {}",
                        other.describe()
                    ),
                );
                return None;
            }
        };
        let mut name = None;
        let mut envs: Option<Vec<(String, Vec<String>)>> = None;
        let mut variables = BTreeMap::new();
        let mut commands: Vec<(String, Command, String)> = Vec::new();
        for (key, value) in entries {
            let Some(key) = self.key(file, &key) else {
                continue;
            };
            match key.as_str() {
                "name" => match value.as_str_coerced() {
                    Some(s) if s.trim().is_empty() => {
                        let folder = self.folder_name();
                        self.warn(
                            "name",
                            format!(
                                "is empty (conda-project accepts that): racer shows the project \
                                 by its folder's name, {folder:?}; the app's name is the one \
                                 you deploy it as"
                            ),
                        );
                        name = Some(s);
                    }
                    Some(s) => name = Some(s),
                    None => self.problem(
                        "name",
                        format!("expected a string, found {}", value.describe()),
                    ),
                },
                "environments" => envs = Some(self.environments(value)),
                "variables" => {
                    if let Some(vars) = self.variables("variables", value, false) {
                        variables = vars;
                    }
                }
                "commands" => commands = self.commands(value),
                _ => self.warn(
                    key,
                    format!(
                        "unknown field, ignored (as conda-project ignores it); racer reads \
                         {PROJECT_FIELDS}"
                    ),
                ),
            }
        }
        if name.is_none() && !self.problems.iter().any(|p| p.field == "name") {
            self.problem("name", "required field is missing");
        }
        if envs.is_none() {
            self.problem("environments", "required field is missing");
        }
        let envs_read = envs.is_some() && !self.problems.iter().any(|p| p.field == "environments");
        let envs = envs.unwrap_or_default();
        let env_names: BTreeSet<&str> = envs.iter().map(|(n, _)| n.as_str()).collect();
        if envs_read {
            for (_, cmd, field) in &commands {
                if let Some(env) = &cmd.environment {
                    if !env_names.contains(env.as_str()) {
                        self.problems.push(Problem::new(
                            format!("{field}.environment"),
                            format!("no environment named {env:?}"),
                        ));
                    }
                }
            }
        }
        if envs_read && envs.is_empty() {
            let fallback = ENVIRONMENT_FILES
                .into_iter()
                .find(|f| exists(&self.root.join(f)));
            self.warn(
                "environments",
                match fallback {
                    Some(f) => format!(
                        "declares no environment: racer builds the image from {f}, as for a \
                         project without conda-project.yml"
                    ),
                    None => "declares no environment: racer cannot build an image until one is \
                             declared (e.g. default: [environment.yml])"
                        .to_string(),
                },
            );
        }
        let environment_order: Vec<String> = envs.iter().map(|(n, _)| n.clone()).collect();
        let lock_files = self.lock_files(&environment_order);
        Some(Project {
            name: name?,
            environments: envs.into_iter().collect(),
            environment_order,
            command_order: commands.iter().map(|(n, _, _)| n.clone()).collect(),
            commands: commands.into_iter().map(|(n, c, _)| (n, c)).collect(),
            variables,
            lock_files,
            pip_requirements: std::mem::take(&mut self.pip),
            project_file: Some(PathBuf::from(file)),
            dir: self.root.clone(),
            warnings: Vec::new(),
            dotenv: BTreeMap::new(),
        })
    }

    /// A mapping key as a string (pydantic coerces numbers); anything else is a problem.
    fn key(&mut self, parent: &str, key: &Value) -> Option<String> {
        match key.as_str_coerced() {
            Some(k) => Some(k),
            None => {
                self.problem(
                    parent,
                    format!("keys must be strings, found {}", key.describe()),
                );
                None
            }
        }
    }

    /// `environments:`: name → list of environment files, each checked and validated.
    fn environments(&mut self, value: Value) -> Vec<(String, Vec<String>)> {
        let entries = match value {
            Value::Map(entries) => entries,
            other => {
                self.problem(
                    "environments",
                    format!(
                        "expected a mapping of environment names to lists of files, found {}",
                        other.describe()
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (key, files) in entries {
            let Some(env) = self.key("environments", &key) else {
                continue;
            };
            let field = format!("environments.{env}");
            if let Err(msg) = check_environment_name(&env) {
                self.problem(field, msg);
                continue;
            }
            let items = match files {
                Value::Seq(items) => items,
                other => {
                    self.problem(
                        field,
                        format!(
                            "expected a list of environment files, found {}",
                            other.describe()
                        ),
                    );
                    out.push((env, Vec::new()));
                    continue;
                }
            };
            if items.is_empty() {
                self.problem(field.clone(), "at least one environment file is required");
            }
            let mut paths = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let item_field = format!("{field}[{i}]");
                match item {
                    Value::Str(path) => {
                        self.check_environment_file(&item_field, &path);
                        paths.push(path);
                    }
                    other => self.problem(
                        item_field,
                        format!("expected a file path, found {}", other.describe()),
                    ),
                }
            }
            out.push((env, paths));
        }
        out
    }

    /// A `variables:` mapping (project-wide or a command's). Values are strings (numbers are
    /// coerced, as pydantic does) or null; `nullable_map` allows the whole mapping to be null.
    fn variables(
        &mut self,
        field: &str,
        value: Value,
        nullable_map: bool,
    ) -> Option<BTreeMap<String, Option<String>>> {
        let entries = match value {
            Value::Map(entries) => entries,
            Value::Null if nullable_map => return Some(BTreeMap::new()),
            other => {
                self.problem(
                    field,
                    format!(
                        "expected a mapping of variable names to values, found {}",
                        other.describe()
                    ),
                );
                return None;
            }
        };
        let mut vars = BTreeMap::new();
        for (key, value) in entries {
            let Some(key) = self.key(field, &key) else {
                continue;
            };
            let var_field = format!("{field}.{key}");
            if !is_variable_name(&key) {
                self.problem(
                    var_field.clone(),
                    "not a valid environment variable name (letters, digits and _, not starting \
                     with a digit)",
                );
            }
            match value {
                Value::Null => {
                    vars.insert(key, None);
                }
                Value::Str(_) | Value::Number(_) | Value::Bool(_) => {
                    // pydantic's `str` takes numbers and booleans as Python prints them.
                    vars.insert(key, value.as_str_coerced());
                }
                other => self.problem(
                    var_field,
                    format!("expected a string or null, found {}", other.describe()),
                ),
            }
        }
        Some(vars)
    }

    /// `commands:`: name → a command string or `{cmd, environment, variables}`. Returns each
    /// command with the field path it was read from.
    fn commands(&mut self, value: Value) -> Vec<(String, Command, String)> {
        let entries = match value {
            Value::Map(entries) => entries,
            other => {
                self.problem(
                    "commands",
                    format!(
                        "expected a mapping of command names to commands, found {}",
                        other.describe()
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (key, value) in entries {
            let Some(name) = self.key("commands", &key) else {
                continue;
            };
            let field = format!("commands.{name}");
            match value {
                Value::Str(_) | Value::Number(_) | Value::Bool(_) => {
                    let cmd = value.as_str_coerced().unwrap_or_default();
                    self.check_command_line(&field, &cmd);
                    out.push((
                        name,
                        Command {
                            cmd,
                            environment: None,
                            variables: BTreeMap::new(),
                        },
                        field,
                    ));
                }
                Value::Map(fields) => {
                    if let Some(cmd) = self.command_mapping(&field, fields) {
                        out.push((name, cmd, field));
                    }
                }
                other => self.problem(
                    field,
                    format!(
                        "expected a command string or a mapping with {COMMAND_FIELDS}, found {}",
                        other.describe()
                    ),
                ),
            }
        }
        out
    }

    /// A command written as a mapping: `cmd` (required), `environment`, `variables`; nothing else.
    fn command_mapping(&mut self, field: &str, fields: Vec<(Value, Value)>) -> Option<Command> {
        let mut cmd = None;
        let mut environment = None;
        let mut variables = BTreeMap::new();
        let mut ok = true;
        for (key, value) in fields {
            let Some(key) = self.key(field, &key) else {
                ok = false;
                continue;
            };
            let sub = format!("{field}.{key}");
            match key.as_str() {
                "cmd" => match value.as_str_coerced() {
                    Some(c) => {
                        self.check_command_line(&sub, &c);
                        cmd = Some(c);
                    }
                    None => {
                        ok = false;
                        self.problem(
                            sub,
                            format!("expected a string, found {}", value.describe()),
                        )
                    }
                },
                "environment" => match value {
                    Value::Null => {}
                    Value::Str(_) | Value::Number(_) | Value::Bool(_) => {
                        environment = value.as_str_coerced()
                    }
                    other => {
                        ok = false;
                        self.problem(
                            sub,
                            format!("expected an environment name, found {}", other.describe()),
                        )
                    }
                },
                "variables" => match self.variables(&sub, value, true) {
                    Some(v) => variables = v,
                    None => ok = false,
                },
                _ => {
                    ok = false;
                    self.problem(sub, format!("unknown field; allowed: {COMMAND_FIELDS}"))
                }
            }
        }
        if cmd.is_none()
            && !self
                .problems
                .iter()
                .any(|p| p.field == format!("{field}.cmd"))
        {
            ok = false;
            self.problem(format!("{field}.cmd"), "required field is missing");
        }
        Some(Command {
            cmd: cmd?,
            environment,
            variables,
        })
        .filter(|_| ok)
    }

    /// A command line must split into at least one word.
    fn check_command_line(&mut self, field: &str, cmd: &str) {
        match split_command(cmd) {
            Ok(words) if words.is_empty() => self.problem(field, "command is empty"),
            Ok(_) => {}
            Err(e) => self.problem(field, format!("cannot split the command line: {e}")),
        }
    }

    /// Checks that environment file `rel` is inside the project, then validates its content.
    ///
    /// Each file is read and validated once, however often (and however spelled) environments
    /// name it: YAML aliases let a small project file name one file a hundred thousand times,
    /// and reading it each time would cost minutes. A path that does not resolve is reported at
    /// every field that names it; a file's content problems once, at the first.
    fn check_environment_file(&mut self, field: &str, rel: &str) {
        if let Some(seen) = self.env_files.get(rel) {
            if let Err(msg) = seen {
                let msg = msg.clone();
                self.problem(field, msg);
            }
            return;
        }
        let path = match self.resolve(rel) {
            Ok(p) => p,
            Err(msg) => {
                self.env_files.insert(rel.to_string(), Err(msg.clone()));
                self.problem(field, msg);
                return;
            }
        };
        self.env_files.insert(rel.to_string(), Ok(()));
        if let Some(first) = self.env_file_paths.get(&path) {
            // The same file under another spelling: its pip entries under this name too.
            if let Some(pip) = self.pip.get(first).cloned() {
                self.pip.insert(rel.to_string(), pip);
            }
            return;
        }
        self.env_file_paths.insert(path, rel.to_string());
        let content_field = format!("{field}({rel})");
        if let Some(doc) = self.read_yaml(field, rel) {
            self.environment_file(&content_field, rel, doc);
        }
    }

    /// The lock files `conda-lock.<env>.yml` that exist, checked to be inside the project.
    fn lock_files(&mut self, envs: &[String]) -> BTreeMap<String, PathBuf> {
        let mut out = BTreeMap::new();
        for env in envs {
            let name = format!("conda-lock.{env}.yml");
            if !exists(&self.root.join(&name)) {
                continue;
            }
            match self.resolve(&name) {
                Ok(path) => {
                    match read_capped(&path).and_then(|t| yaml::parse(&t)) {
                        Ok(doc) => crate::lockfile::check(&name, &doc, &mut self.problems),
                        Err(msg) => self.problem(name.clone(), msg),
                    }
                    out.insert(env.clone(), PathBuf::from(name));
                }
                Err(msg) => self.problem(name, msg),
            }
        }
        out
    }

    /// Resolves a project-relative path to a regular file inside the project.
    fn resolve(&self, rel: &str) -> Result<PathBuf, String> {
        if rel.is_empty() {
            return Err("path is empty".to_string());
        }
        if rel.chars().any(char::is_control) {
            return Err(format!("path {rel:?} contains control characters"));
        }
        let path = Path::new(rel);
        if path.is_absolute() || rel.starts_with('/') || rel.starts_with('\\') {
            return Err(format!(
                "absolute path {rel:?} is not allowed; paths are relative to the project folder"
            ));
        }
        let mut depth: i64 = 0;
        for c in path.components() {
            match c {
                Component::ParentDir => depth -= 1,
                Component::Normal(_) => depth += 1,
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!("absolute path {rel:?} is not allowed"))
                }
            }
            if depth < 0 {
                return Err(format!("path {rel:?} leaves the project folder"));
            }
        }
        let full = self.root.join(path);
        let canon = match fs::canonicalize(&full) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if fs::symlink_metadata(&full).is_ok() {
                    format!("{rel:?} is a symlink to a file that does not exist")
                } else {
                    format!("file {rel:?} does not exist")
                })
            }
            Err(e) => return Err(format!("cannot read {rel:?}: {e}")),
        };
        if !canon.starts_with(&self.root) {
            return Err(format!(
                "path {rel:?} resolves outside the project folder (through a symlink)"
            ));
        }
        if !canon.is_file() {
            return Err(format!("path {rel:?} is not a regular file"));
        }
        Ok(canon)
    }

    /// Reads a project-relative YAML file with the size cap, then parses it under the YAML
    /// budget. Path problems are reported on `field`; content problems on `field(rel)` for
    /// environment files, or the file name for the project file.
    fn read_yaml(&mut self, field: &str, rel: &str) -> Option<Value> {
        let path = match self.resolve(rel) {
            Ok(p) => p,
            Err(msg) => {
                self.problem(field, msg);
                return None;
            }
        };
        let content_field = if field == rel {
            rel.to_string()
        } else {
            format!("{field}({rel})")
        };
        match read_capped(&path) {
            Ok(text) => match yaml::parse(&text) {
                Ok(v) => Some(v),
                Err(msg) => {
                    self.problem(content_field, msg);
                    None
                }
            },
            Err(msg) => {
                self.problem(content_field, msg);
                None
            }
        }
    }

    /// Validates an environment file against the reference's `EnvironmentYaml` model. Unknown
    /// keys are ignored there and here, as conda itself ignores them.
    fn environment_file(&mut self, field: &str, rel: &str, doc: Value) {
        let entries = match doc {
            Value::Map(entries) => entries,
            Value::Null => return self.problem(field, "file is empty"),
            other => {
                return self.problem(
                    field,
                    format!(
                        "expected a mapping (name, channels, dependencies, ...), found {}",
                        other.describe()
                    ),
                )
            }
        };
        if !entries
            .iter()
            .any(|(k, _)| k.as_str_coerced().as_deref() == Some("dependencies"))
        {
            self.problem(
                format!("{field}.dependencies"),
                "required field is missing: conda creates an environment from its dependencies \
                 (write dependencies: [] for an empty one)",
            );
        }
        for (key, value) in entries {
            let Some(key) = self.key(field, &key) else {
                continue;
            };
            let sub = format!("{field}.{key}");
            match key.as_str() {
                "name" | "prefix"
                    if !matches!(value, Value::Null | Value::Str(_) | Value::Number(_)) =>
                {
                    self.problem(
                        sub,
                        format!("expected a string, found {}", value.describe()),
                    );
                }
                "channels" | "platforms" => self.string_list(&sub, value, true),
                "dependencies" => {
                    let pip = self.dependencies(&sub, value);
                    if !pip.is_empty() {
                        self.pip.insert(rel.to_string(), pip);
                    }
                }
                "variables" => match value {
                    Value::Null => {}
                    Value::Map(vars) => {
                        for (k, v) in vars {
                            let Some(k) = self.key(&sub, &k) else {
                                continue;
                            };
                            if v.as_str_coerced().is_none() {
                                self.problem(
                                    format!("{sub}.{k}"),
                                    format!("expected a string, found {}", v.describe()),
                                );
                            }
                        }
                    }
                    other => self.problem(
                        sub,
                        format!("expected a mapping, found {}", other.describe()),
                    ),
                },
                _ => {}
            }
        }
    }

    /// A list of strings (numbers coerced), optionally allowed to be null.
    fn string_list(&mut self, field: &str, value: Value, nullable: bool) {
        match value {
            Value::Null if nullable => {}
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if item.as_str_coerced().is_none() {
                        self.problem(
                            format!("{field}[{i}]"),
                            format!("expected a string, found {}", item.describe()),
                        );
                    }
                }
            }
            other => self.problem(
                field,
                format!("expected a list of strings, found {}", other.describe()),
            ),
        }
    }

    /// `dependencies:`: conda MatchSpecs, and at most one `pip:` list of pip requirements,
    /// whose entries are returned.
    fn dependencies(&mut self, field: &str, value: Value) -> Vec<String> {
        let mut pip = Vec::new();
        let items = match value {
            Value::Seq(items) => items,
            other => {
                self.problem(
                    field,
                    format!(
                        "expected a list of dependencies, found {}",
                        other.describe()
                    ),
                );
                return pip;
            }
        };
        let mut pip_seen = false;
        for (i, item) in items.into_iter().enumerate() {
            let item_field = format!("{field}[{i}]");
            match item {
                Value::Str(spec) | Value::Number(spec) => {
                    if let Err(msg) = check_matchspec(&spec) {
                        self.problem(item_field, msg);
                    }
                }
                Value::Map(entries) => {
                    let keys: Vec<String> = entries
                        .iter()
                        .map(|(k, _)| k.as_str_coerced().unwrap_or_else(|| k.describe().into()))
                        .collect();
                    if keys != ["pip"] {
                        self.problem(
                            item_field,
                            format!(
                                "only a \"pip:\" mapping is allowed among dependencies, found \
                                 keys {keys:?}"
                            ),
                        );
                        continue;
                    }
                    if pip_seen {
                        self.problem(
                            item_field.clone(),
                            "a second pip: list; an environment file may have only one",
                        );
                    }
                    pip_seen = true;
                    for (_, value) in entries {
                        if let Value::Seq(reqs) = &value {
                            for (j, req) in reqs.iter().enumerate() {
                                let Some(req) = req.as_str_coerced() else {
                                    continue;
                                };
                                if let Err(msg) = check_pip_entry(&req) {
                                    self.problem(format!("{item_field}.pip[{j}]"), msg);
                                }
                                pip.push(req);
                            }
                        }
                        self.string_list(&format!("{item_field}.pip"), value, false);
                    }
                }
                other => self.problem(
                    item_field,
                    format!(
                        "expected a MatchSpec string or a pip: list, found {}",
                        other.describe()
                    ),
                ),
            }
        }
        pip
    }
}

/// Reads a file as UTF-8, refusing anything over [`MAX_FILE_BYTES`] before reading it whole.
fn read_capped(path: &Path) -> Result<String, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read the file: {e}"))?
        .len();
    let too_big =
        |n: u64| format!("file is {n} bytes, larger than the limit of {MAX_FILE_BYTES} bytes");
    if len > MAX_FILE_BYTES {
        return Err(too_big(len));
    }
    let mut buf = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(buf.len() as u64));
    }
    String::from_utf8(buf).map_err(|_| "file is not UTF-8 text".to_string())
}

/// An environment name becomes a file name (`conda-lock.<name>.yml`) and a directory
/// (`envs/<name>`): it must be one safe path segment, whatever the reference allows.
fn check_environment_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        return Err(format!(
            "environment name {name:?} is not allowed: it names a file (conda-lock.<name>.yml) \
             and a directory, so it must be one path segment, without / or \\, and not . or .."
        ));
    }
    Ok(())
}

/// A conda dependency, parsed as conda parses it: rattler's lenient parser (conda's own
/// leniency: `numpy=1.26.*`, `pkg=1.0=*cuda*`), and a build string without `=`, which conda's
/// `name=version=build` grammar cannot hold (`numpy=1.2=py3=x` has one `=` too many).
fn check_matchspec(spec: &str) -> Result<(), String> {
    let m = MatchSpec::from_str(spec, ParseStrictness::Lenient)
        .map_err(|e| format!("invalid conda MatchSpec {spec:?}: {e}"))?;
    if let Some(build) = m.build.as_ref().map(|b| b.to_string()) {
        if build.contains('=') {
            return Err(format!(
                "invalid conda MatchSpec {spec:?}: too many '=': conda reads name=version=build, \
                 and the build string {build:?} cannot contain '='"
            ));
        }
    }
    Ok(())
}

/// A `pip:` entry: a pip option (`-e .`, `-r requirements.txt`, `--index-url …`), a path or URL
/// pip installs from, or else a PEP 508 requirement (checked with `pep508_rs`).
fn check_pip_entry(entry: &str) -> Result<(), String> {
    let e = entry.trim();
    if e.is_empty() {
        return Err("empty pip requirement".to_string());
    }
    let path_or_url = e.starts_with(['.', '/', '~'])
        || e.contains("://")
        || e.starts_with("file:")
        || e.starts_with("git+");
    if e.starts_with('-') || path_or_url {
        return Ok(());
    }
    if let Some(msg) = name_ends_badly(e) {
        return Err(format!("not a valid PEP 508 requirement: {msg}"));
    }
    // And whatever else the parser panics on is a refused entry, not a crashed build.
    let parsed = std::panic::catch_unwind(|| e.parse::<pep508_rs::Requirement>());
    match parsed {
        Ok(Ok(_)) => Ok(()),
        // The first line says what is wrong; the next ones point at it with carets.
        Ok(Err(err)) => Err(format!(
            "not a valid PEP 508 requirement: {}",
            err.to_string().lines().next().unwrap_or_default().trim()
        )),
        Err(_) => Err("not a valid PEP 508 requirement: the parser cannot read it".to_string()),
    }
}

/// pep508_rs 0.9 panics on a package name or an extra that ends in `-`, `.` or `_` (`guni- x`,
/// `requests[security.]`: found by the environment_file fuzz target). PEP 508 names and extras
/// end in a letter or digit; this says so for the first one that does not.
fn name_ends_badly(e: &str) -> Option<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let run = |s: &str| s.find(|c: char| !is_name(c)).unwrap_or(s.len());
    let bad_end = |s: &str| s.ends_with(['.', '-', '_']);
    let name = &e[..run(e)];
    if bad_end(name) {
        return Some(format!(
            "package name {name:?} must end with a letter or digit"
        ));
    }
    let extras = e[name.len()..].trim_start().strip_prefix('[')?;
    let extras = extras.split(']').next().unwrap_or_default();
    for extra in extras.split(',') {
        let extra = extra.trim_start();
        let extra = &extra[..run(extra)];
        if extra.starts_with(|c: char| c.is_ascii_alphanumeric()) && bad_end(extra) {
            return Some(format!("extra {extra:?} must end with a letter or digit"));
        }
    }
    None
}

/// Whether `name` is a portable environment variable name.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

pub use racer_core::command::split_command;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_shlex() {
        assert_eq!(
            split_command(r#"python -m http.server "8000" 'a b' c\ d "e\"f" "g\$h""#).unwrap(),
            vec![
                "python",
                "-m",
                "http.server",
                "8000",
                "a b",
                "c d",
                "e\"f",
                "g\\$h"
            ]
        );
        assert_eq!(split_command("''").unwrap(), vec![""]);
        assert!(split_command("echo 'oops").is_err());
        assert!(split_command("echo \\").is_err());
        assert!(split_command("   ").unwrap().is_empty());
    }

    #[test]
    fn pip_names_end_in_a_letter_or_digit() {
        // pep508_rs panics on these; they are refused, saying why.
        for bad in [
            "guni- --index-url htt",
            "a. >=1",
            "b_ ; python_version < '3'",
            "c-[x]",
            "gunicorn-",
            "requests[security1.].>8=1",
            "requests[ok, bad- ]",
            "requests [fine,worse_]",
            "requests[end.",
        ] {
            let err = check_pip_entry(bad).unwrap_err();
            assert!(
                err.contains("must end with a letter or digit"),
                "{bad}: {err}"
            );
        }
        for ok in [
            "gunicorn==22",
            "a.b-c_d>=1",
            "x[y] ; python_version < '3'",
            "requests[security, socks]>=2",
            "requests [a.b-c]",
            "z",
        ] {
            assert_eq!(check_pip_entry(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn variable_names() {
        assert!(is_variable_name("PORT"));
        assert!(is_variable_name("_x1"));
        assert!(!is_variable_name("1X"));
        assert!(!is_variable_name("A-B"));
        assert!(!is_variable_name(""));
    }

    #[test]
    fn missing_variables_follow_command_overrides() {
        let mut cmd_vars = BTreeMap::new();
        cmd_vars.insert("TOKEN".to_string(), None);
        cmd_vars.insert("MODE".to_string(), Some("fast".to_string()));
        let mut commands = BTreeMap::new();
        commands.insert(
            "serve".to_string(),
            Command {
                cmd: "serve".into(),
                environment: None,
                variables: cmd_vars,
            },
        );
        let mut variables = BTreeMap::new();
        variables.insert("MODE".to_string(), None);
        variables.insert("KEY".to_string(), None);
        variables.insert("PORT".to_string(), Some("8000".to_string()));
        let p = Project {
            name: "p".into(),
            environments: BTreeMap::new(),
            environment_order: vec![],
            commands,
            command_order: vec!["serve".into()],
            variables,
            lock_files: BTreeMap::new(),
            pip_requirements: BTreeMap::new(),
            project_file: None,
            dir: PathBuf::from("/p"),
            warnings: Vec::new(),
            dotenv: BTreeMap::new(),
        };
        let fields = |ps: Vec<Problem>| ps.into_iter().map(|p| p.field).collect::<Vec<_>>();
        let none = BTreeMap::new();
        assert_eq!(
            fields(p.missing_variables(None, &none)),
            vec!["variables.KEY", "commands.serve.variables.TOKEN"]
        );
        let mut supplied = BTreeMap::new();
        supplied.insert("KEY".to_string(), "k".to_string());
        supplied.insert("TOKEN".to_string(), "t".to_string());
        assert!(p.missing_variables(Some("serve"), &supplied).is_empty());
        assert_eq!(
            fields(p.missing_variables(Some("nope"), &supplied)),
            vec!["command"]
        );
    }
}
