//! Repository paths and tags as the distribution spec constrains them
//! (<https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests>).
//! A crscan path is `<registry>/<name>`, where `<registry>` is a registry's ID or name.

use std::fmt;

use crate::RegistryError;

/// A validated repository path `<registry>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryPath {
    registry: String,
    name: String,
}

impl RepositoryPath {
    /// Parses and validates a path: at least two components, each matching
    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, 255 characters at most.
    pub fn parse(text: &str) -> Result<RepositoryPath, RegistryError> {
        let invalid = || RegistryError::NameInvalid(text.to_owned());
        if text.len() > 255 {
            return Err(invalid());
        }
        let (registry, name) = text.split_once('/').ok_or_else(invalid)?;
        if !text.split('/').all(valid_component) {
            return Err(invalid());
        }
        Ok(RepositoryPath {
            registry: registry.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The registry's ID or name.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The name within the registry.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepositoryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut index = 0;
    loop {
        let start = index;
        while index < bytes.len() && alnum(bytes[index]) {
            index += 1;
        }
        if index == start {
            return false;
        }
        if index == bytes.len() {
            return true;
        }
        let separator_start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[separator_start..index];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
}

/// Checks a tag against `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), RegistryError> {
    let bytes = tag.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    let rest_ok = bytes
        .iter()
        .skip(1)
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if first_ok && rest_ok && bytes.len() <= 128 {
        Ok(())
    } else {
        Err(RegistryError::TagInvalid(tag.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for good in [
            "default/app",
            "default/a/b",
            "crp0/x.y_z__w--v",
            "default/0",
        ] {
            assert!(RepositoryPath::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "app",
            "default/App",
            "default/-a",
            "default/a-",
            "default//a",
            "default/a..b",
            "default/a___b",
            "",
        ] {
            assert!(RepositoryPath::parse(bad).is_err(), "{bad}");
        }
        let path = RepositoryPath::parse("default/team/app").unwrap();
        assert_eq!(path.registry(), "default");
        assert_eq!(path.name(), "team/app");
    }

    #[test]
    fn tags() {
        assert!(validate_tag("v1.0_rc-2").is_ok());
        assert!(validate_tag("_x").is_ok());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
    }
}
