//! A budgeted YAML reader producing an untyped tree, so validation can report every problem with
//! its field path instead of stopping at the first type error.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{Budget, Options, RenderOptions, SnippetMode};

/// Largest YAML file racer reads, checked before parsing.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// An untyped YAML node. Mappings keep their document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, kept as the text Python's `str()` would give it.
    Number(String),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping, in document order.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The name of this node's type, for messages (`a list`, `a mapping`, ...).
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value as a string the way pydantic (v1)'s `str` coerces it: strings as they are,
    /// numbers as their text, booleans as Python prints them (`True`, `False`: a bool is an
    /// int there); anything else is `None`.
    pub(crate) fn as_str_coerced(&self) -> Option<String> {
        match self {
            Value::Str(s) | Value::Number(s) => Some(s.clone()),
            Value::Bool(true) => Some("True".to_string()),
            Value::Bool(false) => Some("False".to_string()),
            _ => None,
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Number(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Number(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(python_float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Value, Value>()? {
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Formats a float like Python's `str(float)` does for ordinary values.
fn python_float(v: f64) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The parser limits: generous for real project files, far below what a YAML bomb needs.
pub(crate) fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_reader_input_bytes = Some(MAX_FILE_BYTES as usize);
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 4 * 1024 * 1024;
    budget.max_depth = 64;
    budget.max_documents = 1;
    budget.max_nodes = 100_000;
    budget.max_total_scalar_bytes = 4 * 1024 * 1024;
    budget.max_merge_keys = 1_000;
    let mut opts = Options::default();
    opts.budget = Some(budget);
    // YAML 1.2, as the reference's ruamel.yaml reads project files: `yes`, `no`, `on` and `off`
    // are strings, only true/false are booleans.
    opts.strict_booleans = true;
    opts.alias_limits.max_total_replayed_events = 100_000;
    opts.alias_limits.max_replay_stack_depth = 32;
    opts.alias_limits.max_alias_expansions_per_anchor = 1_000;
    opts
}

/// Parses one YAML document under the budget. An empty document is [`Value::Null`]. The error is
/// a one-line message (with line and column when known).
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    match serde_saphyr::from_str_with_options::<Option<Value>>(text, options()) {
        Ok(v) => Ok(v.unwrap_or(Value::Null)),
        Err(e) => {
            let mut render = RenderOptions::default();
            render.snippets = SnippetMode::Off;
            let msg = e.render_with_options(render);
            let msg = msg
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
            if msg.contains("budget breached") {
                Err(format!(
                    "invalid YAML: the document is too big or expands too many aliases (a YAML \
                     bomb?): {msg}"
                ))
            } else {
                Err(format!("invalid YAML: {msg}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mapping_in_order() {
        let v = parse("b: 1\na: [x, 2.5, null, true]\n").unwrap();
        let Value::Map(entries) = v else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0, Value::Str("b".into()));
        assert_eq!(entries[0].1, Value::Number("1".into()));
        assert_eq!(
            entries[1].1,
            Value::Seq(vec![
                Value::Str("x".into()),
                Value::Number("2.5".into()),
                Value::Null,
                Value::Bool(true)
            ])
        );
    }

    #[test]
    fn refuses_a_billion_laughs() {
        let mut doc = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            doc.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                std::iter::repeat_n(prev.as_str(), 9)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let err = parse(&doc).unwrap_err();
        assert!(err.starts_with("invalid YAML"), "{err}");
    }

    #[test]
    fn empty_is_null() {
        assert_eq!(parse("  \n# only a comment\n").unwrap(), Value::Null);
    }

    #[test]
    fn floats_print_like_python() {
        assert_eq!(python_float(3.10), "3.1");
        assert_eq!(python_float(3.0), "3.0");
    }
}
