//! App names (DNS labels) and references to apps by name or UUID.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Why a string is not a valid app name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name must not be empty")]
    Empty,
    /// The name is longer than a DNS label may be.
    #[error("name is {0} characters long; at most 63 are allowed")]
    TooLong(usize),
    /// The name contains a character outside `a-z0-9-`.
    #[error("name contains {0:?}; only lowercase letters a-z, digits 0-9 and '-' are allowed")]
    BadChar(char),
    /// The name starts or ends with a hyphen.
    #[error("name must not start or end with '-'")]
    EdgeHyphen,
    /// The name parses as a UUID, which would make `name-or-uuid` lookups ambiguous.
    #[error("name must not have the form of a UUID")]
    LooksLikeUuid,
}

/// A valid app name: a DNS label of 1-63 characters from `a-z0-9-`, not starting or ending with
/// `-`. Apps answer at `<name>.localhost`, so the rule is the DNS one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct AppName(String);

impl AppName {
    /// Checks `s` against the naming rule.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        let n = s.chars().count();
        if n > 63 {
            return Err(NameError::TooLong(n));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(NameError::BadChar(c));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(NameError::EdgeHyphen);
        }
        if Uuid::parse_str(s).is_ok() {
            return Err(NameError::LooksLikeUuid);
        }
        Ok(AppName(s.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AppName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AppName::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for AppName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AppName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How a caller names an app: every command and endpoint takes either form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AppRef {
    /// By its UUID.
    Id(Uuid),
    /// By its human name. Not validated: an invalid name simply matches nothing.
    Name(String),
}

impl AppRef {
    /// A UUID-shaped string is an id, anything else a name.
    pub fn parse(s: &str) -> Self {
        match Uuid::parse_str(s) {
            Ok(id) => AppRef::Id(id),
            Err(_) => AppRef::Name(s.to_owned()),
        }
    }
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppRef::Id(id) => write!(f, "{id}"),
            AppRef::Name(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "web", "web-1", "0", "a-b-c", &"x".repeat(63)] {
            assert_eq!(
                AppName::parse(ok).map(|n| n.to_string()),
                Ok(ok.to_string())
            );
        }
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(AppName::parse(""), Err(NameError::Empty));
        assert_eq!(AppName::parse(&"x".repeat(64)), Err(NameError::TooLong(64)));
        assert_eq!(AppName::parse("Web"), Err(NameError::BadChar('W')));
        assert_eq!(AppName::parse("we_b"), Err(NameError::BadChar('_')));
        assert_eq!(AppName::parse("wé"), Err(NameError::BadChar('é')));
        assert_eq!(AppName::parse("-web"), Err(NameError::EdgeHyphen));
        assert_eq!(AppName::parse("web-"), Err(NameError::EdgeHyphen));
        assert_eq!(
            AppName::parse("6f1c1b9e-8a57-4c5e-9b1a-0d2b7c9a1e11"),
            Err(NameError::LooksLikeUuid)
        );
    }

    #[test]
    fn refs_split_on_uuid_shape() {
        let id = Uuid::new_v4();
        assert_eq!(AppRef::parse(&id.to_string()), AppRef::Id(id));
        assert_eq!(AppRef::parse("web"), AppRef::Name("web".into()));
    }

    #[test]
    fn deserialize_validates() {
        let ok: Result<AppName, _> = serde_json::from_str("\"web\"");
        assert!(ok.is_ok());
        let bad: Result<AppName, _> = serde_json::from_str("\"Bad Name\"");
        assert!(bad.is_err());
    }
}
