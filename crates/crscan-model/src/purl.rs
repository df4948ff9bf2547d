//! Package URLs, as specified at <https://github.com/package-url/purl-spec>
//! (`pkg:type/namespace/name@version?qualifiers#subpath`).

use std::collections::BTreeMap;
use std::fmt;

use crate::PackageType;

/// A Package URL under construction. Build it, then format it with `to_string()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    package_type: PackageType,
    namespace: Option<String>,
    name: String,
    version: Option<String>,
    qualifiers: BTreeMap<String, String>,
}

impl Purl {
    pub fn new(package_type: PackageType, name: impl Into<String>) -> Purl {
        Purl {
            package_type,
            namespace: None,
            name: name.into(),
            version: None,
            qualifiers: BTreeMap::new(),
        }
    }

    /// Sets the namespace (`debian`, a Maven groupId, an npm scope with its `@`, the
    /// leading path of a Go module). Empty strings are ignored.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Purl {
        let namespace = namespace.into();
        if !namespace.is_empty() {
            self.namespace = Some(namespace);
        }
        self
    }

    pub fn version(mut self, version: impl Into<String>) -> Purl {
        let version = version.into();
        if !version.is_empty() {
            self.version = Some(version);
        }
        self
    }

    /// Adds a qualifier (`arch`, `distro`, `epoch`, `upstream`); empty values are
    /// dropped as the spec requires.
    pub fn qualifier(mut self, key: &str, value: impl Into<String>) -> Purl {
        let value = value.into();
        if !value.is_empty() {
            self.qualifiers.insert(key.to_ascii_lowercase(), value);
        }
        self
    }
}

/// Percent-encodes everything outside the purl-safe set; `keep_slash` leaves `/`
/// alone (namespaces are `/`-separated segments).
fn encode(text: &str, keep_slash: bool, out: &mut String) {
    for byte in text.bytes() {
        let safe = byte.is_ascii_alphanumeric()
            || matches!(byte, b'.' | b'-' | b'_' | b'~')
            || (keep_slash && byte == b'/');
        if safe {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("pkg:");
        out.push_str(self.package_type.as_str());
        out.push('/');
        if let Some(namespace) = &self.namespace {
            for (index, segment) in namespace.split('/').filter(|s| !s.is_empty()).enumerate() {
                if index > 0 {
                    out.push('/');
                }
                encode(segment, false, &mut out);
            }
            out.push('/');
        }
        encode(&self.name, false, &mut out);
        if let Some(version) = &self.version {
            out.push('@');
            encode(version, false, &mut out);
        }
        for (index, (key, value)) in self.qualifiers.iter().enumerate() {
            out.push(if index == 0 { '?' } else { '&' });
            out.push_str(key);
            out.push('=');
            encode(value, true, &mut out);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_spec_examples() {
        let deb = Purl::new(PackageType::Deb, "curl")
            .namespace("debian")
            .version("7.50.3-1")
            .qualifier("arch", "i386")
            .qualifier("distro", "jessie");
        assert_eq!(
            deb.to_string(),
            "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"
        );
        let npm = Purl::new(PackageType::Npm, "core")
            .namespace("@angular")
            .version("16.0.0");
        assert_eq!(npm.to_string(), "pkg:npm/%40angular/core@16.0.0");
        let golang = Purl::new(PackageType::Golang, "text")
            .namespace("golang.org/x")
            .version("v0.3.8");
        assert_eq!(golang.to_string(), "pkg:golang/golang.org/x/text@v0.3.8");
        let epoch = Purl::new(PackageType::Rpm, "bash")
            .version("1:5.1-2")
            .qualifier("epoch", "");
        assert_eq!(epoch.to_string(), "pkg:rpm/bash@1%3A5.1-2");
    }
}
