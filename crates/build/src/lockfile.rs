//! `conda-lock.<env>.yml`: checked against conda-lock's own file model (conda-lock's
//! `lockfile/v1/models.py` and `v2prelim/models.py`: `version`, `metadata` with `content_hash`,
//! `channels`, `platforms`, `sources`, and `package` entries with `name`, `version`,
//! `manager`, `platform`, `dependencies`, `url`, `hash`, and `category`/`optional` (v1) or
//! `categories` (v2)), so that a broken lock file is refused at validate, with its field path,
//! and not when micromamba meets it in the middle of a build.
//!
//! The file is read with racer's budgeted YAML reader (a lock file is untrusted input like any
//! other); the crates that read these files (rattler_lock) parse with an unbudgeted YAML parser.

use crate::yaml::Value;
use crate::Problem;

/// Looks up `key` in a mapping's entries.
fn get<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_str_coerced().as_deref() == Some(key))
        .map(|(_, v)| v)
}

struct Check<'a> {
    problems: &'a mut Vec<Problem>,
}

impl Check<'_> {
    fn bad(&mut self, field: String, message: impl Into<String>) {
        self.problems.push(Problem::new(field, message));
    }

    /// A required field of `entries`: reported missing when absent.
    fn required<'v>(
        &mut self,
        entries: &'v [(Value, Value)],
        parent: &str,
        key: &str,
    ) -> Option<&'v Value> {
        let v = get(entries, key);
        if v.is_none() {
            self.bad(format!("{parent}.{key}"), "required field is missing");
        }
        v
    }

    fn string(&mut self, field: String, v: &Value) {
        if v.as_str_coerced().is_none() {
            self.bad(field, format!("expected a string, found {}", v.describe()));
        }
    }

    fn map<'v>(&mut self, field: &str, v: &'v Value) -> Option<&'v [(Value, Value)]> {
        match v {
            Value::Map(e) => Some(e),
            other => {
                self.bad(
                    field.to_string(),
                    format!("expected a mapping, found {}", other.describe()),
                );
                None
            }
        }
    }

    fn list<'v>(&mut self, field: &str, v: &'v Value) -> Option<&'v [Value]> {
        match v {
            Value::Seq(items) => Some(items),
            other => {
                self.bad(
                    field.to_string(),
                    format!("expected a list, found {}", other.describe()),
                );
                None
            }
        }
    }

    fn string_map(&mut self, field: &str, v: &Value) {
        if let Some(entries) = self.map(field, v) {
            for (k, v) in entries {
                let k = k.as_str_coerced().unwrap_or_default();
                self.string(format!("{field}.{k}"), v);
            }
        }
    }

    fn string_list(&mut self, field: &str, v: &Value) {
        if let Some(items) = self.list(field, v) {
            for (i, item) in items.iter().enumerate() {
                self.string(format!("{field}[{i}]"), item);
            }
        }
    }

    fn metadata(&mut self, field: &str, v: &Value) {
        let Some(m) = self.map(field, v) else { return };
        if let Some(h) = self.required(m, field, "content_hash") {
            self.string_map(&format!("{field}.content_hash"), h);
        }
        if let Some(c) = self.required(m, field, "channels") {
            let cf = format!("{field}.channels");
            if let Some(items) = self.list(&cf, c) {
                for (i, ch) in items.iter().enumerate() {
                    let f = format!("{cf}[{i}]");
                    if let Some(e) = self.map(&f, ch) {
                        if let Some(url) = self.required(e, &f, "url") {
                            self.string(format!("{f}.url"), url);
                        }
                    }
                }
            }
        }
        for key in ["platforms", "sources"] {
            if let Some(l) = self.required(m, field, key) {
                self.string_list(&format!("{field}.{key}"), l);
            }
        }
    }

    fn package(&mut self, field: &str, v: &Value, version: u64) {
        let Some(p) = self.map(field, v) else { return };
        for key in ["name", "version", "platform", "url"] {
            if let Some(v) = self.required(p, field, key) {
                self.string(format!("{field}.{key}"), v);
            }
        }
        if let Some(m) = self.required(p, field, "manager") {
            let f = format!("{field}.manager");
            match m.as_str_coerced().as_deref() {
                Some("conda") | Some("pip") => {}
                _ => self.bad(f, "expected conda or pip"),
            }
        }
        if let Some(h) = self.required(p, field, "hash") {
            let f = format!("{field}.hash");
            if let Some(entries) = self.map(&f, h) {
                let known = ["md5", "sha256"];
                if !known.iter().any(|k| get(entries, k).is_some()) {
                    self.bad(f.clone(), "expected md5 or sha256");
                }
                for k in known {
                    if let Some(v) = get(entries, k) {
                        self.string(format!("{f}.{k}"), v);
                    }
                }
            }
        }
        if let Some(d) = get(p, "dependencies") {
            self.string_map(&format!("{field}.dependencies"), d);
        }
        if version == 1 {
            if let Some(c) = get(p, "category") {
                self.string(format!("{field}.category"), c);
            }
            if let Some(o) = get(p, "optional") {
                if !matches!(o, Value::Bool(_)) {
                    self.bad(
                        format!("{field}.optional"),
                        format!("expected true or false, found {}", o.describe()),
                    );
                }
            }
        } else if let Some(c) = get(p, "categories") {
            self.string_list(&format!("{field}.categories"), c);
        }
    }
}

/// Checks the parsed lock file `name`; problems are pushed with paths under `name`.
pub(crate) fn check(name: &str, doc: &Value, problems: &mut Vec<Problem>) {
    let mut c = Check { problems };
    let Value::Map(top) = doc else {
        c.bad(
            name.to_string(),
            format!(
                "not a conda-lock file: expected a mapping with version, metadata and package, \
                 found {}",
                doc.describe()
            ),
        );
        return;
    };
    let version = match c.required(top, name, "version") {
        Some(Value::Number(n)) if n == "1" => 1,
        Some(Value::Number(n)) if n == "2" => 2,
        Some(other) => {
            c.bad(
                format!("{name}.version"),
                format!(
                    "unsupported conda-lock file version {}: racer reads versions 1 and 2",
                    other
                        .as_str_coerced()
                        .unwrap_or_else(|| other.describe().into())
                ),
            );
            return;
        }
        None => return,
    };
    if let Some(m) = c.required(top, name, "metadata") {
        c.metadata(&format!("{name}.metadata"), m);
    }
    if let Some(p) = c.required(top, name, "package") {
        let pf = format!("{name}.package");
        if let Some(items) = c.list(&pf, p) {
            for (i, item) in items.iter().enumerate() {
                c.package(&format!("{pf}[{i}]"), item, version);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let doc = crate::yaml::parse(text).unwrap();
        let mut out = Vec::new();
        check("conda-lock.default.yml", &doc, &mut out);
        out.into_iter().map(|p| p.to_string()).collect()
    }

    const VALID: &str = "version: 1\nmetadata:\n  content_hash: {linux-64: abc}\n  channels: [{url: conda-forge, used_env_vars: []}]\n  platforms: [linux-64]\n  sources: [environment.yml]\npackage:\n- name: python\n  version: 3.11.0\n  manager: conda\n  platform: linux-64\n  dependencies: {libgcc: '>=12'}\n  url: https://conda.anaconda.org/conda-forge/linux-64/python-3.11.0.conda\n  hash: {md5: d41d8cd98f00b204e9800998ecf8427e, sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855}\n  category: main\n  optional: false\n";

    #[test]
    fn a_valid_file_has_no_problems() {
        assert_eq!(problems(VALID), Vec::<String>::new());
    }

    #[test]
    fn every_problem_has_its_path() {
        assert_eq!(
            problems("version: 1\nmetadata: {platforms: linux-64}\npackage: 3\n"),
            vec![
                "conda-lock.default.yml.metadata.content_hash: required field is missing",
                "conda-lock.default.yml.metadata.channels: required field is missing",
                "conda-lock.default.yml.metadata.platforms: expected a list, found a string",
                "conda-lock.default.yml.metadata.sources: required field is missing",
                "conda-lock.default.yml.package: expected a list, found a number",
            ]
        );
        assert_eq!(
            problems("version: 7\n"),
            vec!["conda-lock.default.yml.version: unsupported conda-lock file version 7: racer reads versions 1 and 2"]
        );
        let broken = VALID
            .replace("manager: conda", "manager: apt")
            .replace("  optional: false\n", "  optional: maybe\n");
        assert_eq!(
            problems(&broken),
            vec![
                "conda-lock.default.yml.package[0].manager: expected conda or pip",
                "conda-lock.default.yml.package[0].optional: expected true or false, found a string",
            ]
        );
    }
}
