//! Reading an app spec document (YAML or JSON, which is YAML) under the same budgets as every
//! untrusted YAML racer reads, with errors that name the field.

use racer_core::spec::AppDocument;

use crate::{Error, Problem};

/// The largest spec document accepted.
pub const MAX_SPEC_BYTES: usize = 256 * 1024;

/// Parses and validates a spec document. Every problem carries its field path
/// (`spec.scaling.policy.cooldownSeconds`); an unknown field is a problem at its path.
pub fn parse(text: &str) -> Result<AppDocument, Error> {
    let invalid =
        |field: &str, message: String| Error::InvalidSpec(vec![Problem::new(field, message)]);
    if text.len() > MAX_SPEC_BYTES {
        return Err(invalid(
            "",
            format!("the spec is larger than {MAX_SPEC_BYTES} bytes"),
        ));
    }
    let value: serde_json::Value =
        serde_saphyr::from_str_with_options(text, crate::yaml::options())
            .map_err(|e| invalid("", format!("invalid YAML: {}", one_line(&e.to_string()))))?;
    // Every problem at once: the fields racer does not know, then what validation finds.
    let (doc, mut problems) = strict::<AppDocument>(value).map_err(Error::InvalidSpec)?;
    problems.extend(
        doc.validate()
            .into_iter()
            .map(|p| Problem::new(p.field, p.message)),
    );
    if problems.is_empty() {
        Ok(doc)
    } else {
        Err(Error::InvalidSpec(problems))
    }
}

/// A policy file for `racer policy -f`: the `spec.scaling.policy` fields, plus optional
/// `minReplicas`/`maxReplicas`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyFile {
    /// New `scaling.minReplicas`.
    pub min_replicas: Option<u32>,
    /// New `scaling.maxReplicas`.
    pub max_replicas: Option<u32>,
    /// The policy.
    pub policy: racer_core::spec::ScalingPolicy,
}

/// Parses a policy file (YAML or JSON).
pub fn parse_policy(text: &str) -> Result<PolicyFile, Error> {
    let invalid =
        |field: &str, message: String| Error::InvalidSpec(vec![Problem::new(field, message)]);
    if text.len() > MAX_SPEC_BYTES {
        return Err(invalid(
            "",
            format!("the policy is larger than {MAX_SPEC_BYTES} bytes"),
        ));
    }
    let mut value: serde_json::Value =
        serde_saphyr::from_str_with_options(text, crate::yaml::options())
            .map_err(|e| invalid("", format!("invalid YAML: {}", one_line(&e.to_string()))))?;
    let Some(map) = value.as_object_mut() else {
        return Err(invalid("", "a policy is a mapping of fields".into()));
    };
    let mut bound = |key: &str| -> Result<Option<u32>, Error> {
        match map.remove(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| invalid(key, "must be a whole number".into())),
        }
    };
    let min_replicas = bound("minReplicas")?;
    let max_replicas = bound("maxReplicas")?;
    // What is left is `spec.scaling.policy`, unknown fields refused.
    let (policy, unknown) = strict(value).map_err(Error::InvalidSpec)?;
    if !unknown.is_empty() {
        return Err(Error::InvalidSpec(unknown));
    }
    Ok(PolicyFile {
        min_replicas,
        max_replicas,
        policy,
    })
}

/// Decodes `value`, collecting every field `T` does not know as a problem at its path instead of
/// stopping at the first. A value of the wrong type still ends decoding (with the unknown fields
/// found before it).
fn strict<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<(T, Vec<Problem>), Vec<Problem>> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| {
        let field = field_path(&path);
        let key = match &path {
            serde_ignored::Path::Map { key, .. } => key.to_string(),
            _ => field.clone(),
        };
        unknown.push(Problem::new(
            field,
            format!("unknown field `{key}`: racer's spec format has no such field"),
        ))
    };
    let decoded =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut note));
    match decoded {
        Ok(v) => Ok((v, unknown)),
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            unknown.push(Problem::new(field, one_line(&e.inner().to_string())));
            Err(unknown)
        }
    }
}

/// `spec.env[0].valueFrom`, as validation names fields.
fn field_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let head = field_path(parent);
            if head.is_empty() {
                key.to_string()
            } else {
                format!("{head}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: racer/v1\nkind: App\nmetadata:\n  name: web\nspec:\n  image: web:1\n  ports:\n    - containerPort: 8000\n  scaling:\n    minReplicas: 1\n    maxReplicas: 3\n";

    #[test]
    fn parses_yaml_and_json() {
        let d = parse(GOOD).unwrap();
        assert_eq!(d.metadata.name, "web");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(parse(&json).unwrap(), d);
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let bad = GOOD.replace(
            "    maxReplicas: 3\n",
            "    maxReplicas: 3\n    maxReplica: 4\n",
        );
        let e = parse(&bad).unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(p.field, "spec.scaling.maxReplica");
        assert!(p.message.contains("maxReplica"), "{p:?}");
        let bad = GOOD.replace(
            "  image: web:1\n",
            "  image: web:1\n  imagePullPolicy: Always\n",
        );
        assert!(parse(&bad).unwrap_err().problems()[0]
            .message
            .contains("imagePullPolicy"));
        let bad = GOOD.replace("containerPort: 8000", "containerPort: eighty");
        assert_eq!(
            parse(&bad).unwrap_err().problems()[0].field,
            "spec.ports[0].containerPort"
        );
    }

    #[test]
    fn policy_files_refuse_unknown_fields() {
        let ok =
            parse_policy("mode: auto\nminReplicas: 2\nhttp:\n  targetRPSPerReplica: 50\n").unwrap();
        assert_eq!(ok.min_replicas, Some(2));
        assert_eq!(ok.policy.mode, "auto");
        assert!(parse_policy("mode: auto\ncooldown: 3\n").is_err());
    }

    #[test]
    fn yaml_bombs_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            bomb.push_str(&format!(
                "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                p = if i == 0 {
                    "a".to_string()
                } else {
                    format!("b{}", i - 1)
                }
            ));
        }
        assert!(parse(&bomb).is_err());
    }

    #[test]
    fn every_problem_of_a_spec_is_reported_at_once() {
        let bad = "apiVersion: v1\nkind: App\nmetadata:\n  name: web\nspec:\n  image: web:1\n  imagePullPolicy: Always\n  env:\n    - name: A\n      value: b\n      secret: true\n  resources:\n    memory: lots\n  priority: 9\n";
        let e = parse(bad).unwrap_err();
        let mut fields: Vec<&str> = e.problems().iter().map(|p| p.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "spec.env[0].secret",
                "spec.imagePullPolicy",
                "spec.priority",
                "spec.resources.memory",
            ],
            "{e}"
        );
        assert!(e.to_string().starts_with("invalid app spec"), "{e}");
    }
}
