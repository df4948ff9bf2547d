//! Names of images and registries in skopeo's spelling:
//! `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` for one image and
//! `docker://HOST[:PORT][/PREFIX]` for a registry, or the repositories under a prefix.
//!
//! The repository grammar is the distribution spec's
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests>):
//! lower-case path components of `[a-z0-9]+([._-][a-z0-9]+)*` joined by `/`.

use std::fmt;

use crscan_model::Digest;

use crate::Error;

/// What a name starts with.
pub const SCHEME: &str = "docker://";

/// A registry host with its port, as written (`cr.yandex`, `127.0.0.1:5000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Host(String);

impl Host {
    pub fn parse(text: &str) -> Result<Host, Error> {
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !valid {
            return Err(Error::Reference {
                text: text.to_owned(),
                reason: "the registry host is empty or has characters a host cannot have".into(),
            });
        }
        Ok(Host(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Tag(String),
    Digest(Digest),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Tag(tag) => f.write_str(tag),
            Version::Digest(digest) => write!(f, "{digest}"),
        }
    }
}

/// One image: `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`; the tag is `latest` when
/// neither is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub host: Host,
    pub repository: String,
    pub version: Version,
}

impl ImageReference {
    /// Whether `text` is meant as a remote image (it starts with `docker://`).
    pub fn is_remote(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    pub fn parse(text: &str) -> Result<ImageReference, Error> {
        let bad = |reason: &str| Error::Reference {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("a remote image starts with docker://"))?;
        let (host, path) = rest.split_once('/').ok_or_else(|| {
            bad("a remote image is docker://HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]")
        })?;
        let host = Host::parse(host)?;
        let (name, version) = match path.split_once('@') {
            Some((name, digest)) => {
                let digest: Digest = digest
                    .parse()
                    .map_err(|error| bad(&format!("the digest is not valid: {error}")))?;
                (name, Version::Digest(digest))
            }
            None => match path.rsplit_once(':') {
                // A colon after the last slash starts a tag.
                Some((name, tag)) if !tag.contains('/') => {
                    check_tag(tag).map_err(|reason| bad(&reason))?;
                    (name, Version::Tag(tag.to_owned()))
                }
                _ => (path, Version::Tag("latest".to_owned())),
            },
        };
        check_repository(name).map_err(|reason| bad(&reason))?;
        Ok(ImageReference {
            host,
            repository: name.to_owned(),
            version,
        })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Version::Tag(tag) => write!(f, "{SCHEME}{}/{}:{tag}", self.host, self.repository),
            Version::Digest(digest) => {
                write!(f, "{SCHEME}{}/{}@{digest}", self.host, self.repository)
            }
        }
    }
}

/// A registry, or the repositories under a prefix in it: `docker://HOST[:PORT][/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPrefix {
    pub host: Host,
    /// Without leading or trailing `/`; empty for the whole registry.
    pub prefix: String,
}

impl RegistryPrefix {
    pub fn parse(text: &str) -> Result<RegistryPrefix, Error> {
        let bad = |reason: &str| Error::Reference {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("a registry is docker://HOST[:PORT][/PREFIX]"))?;
        let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let host = Host::parse(host)?;
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            check_repository(prefix).map_err(|reason| bad(&reason))?;
        }
        Ok(RegistryPrefix {
            host,
            prefix: prefix.to_owned(),
        })
    }

    /// The part of `repository` below this prefix, or `None` when it is not under it.
    pub fn relative<'a>(&self, repository: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            return Some(repository);
        }
        repository
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|rest| !rest.is_empty())
    }

    /// `relative` placed under this prefix.
    pub fn join(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }
}

impl fmt::Display for RegistryPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "{SCHEME}{}", self.host)
        } else {
            write!(f, "{SCHEME}{}/{}", self.host, self.prefix)
        }
    }
}

/// Checks a repository name against the distribution spec's grammar.
pub fn check_repository(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the repository name is empty".to_owned());
    }
    for component in name.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let valid = bytes.first().is_some_and(alnum)
            && bytes.last().is_some_and(alnum)
            && bytes
                .iter()
                .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(format!(
                "repository component {component:?} is not lower-case letters and digits \
                 separated by '.', '_' or '-'"
            ));
        }
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!("tag {tag:?} is not a valid tag"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn image_references() {
        let reference = ImageReference::parse("docker://127.0.0.1:5000/team/app:1.2").unwrap();
        assert_eq!(reference.host.as_str(), "127.0.0.1:5000");
        assert_eq!(reference.repository, "team/app");
        assert_eq!(reference.version, Version::Tag("1.2".into()));
        let latest = ImageReference::parse("docker://cr.yandex/crp123/app").unwrap();
        assert_eq!(latest.version, Version::Tag("latest".into()));
        assert_eq!(latest.to_string(), "docker://cr.yandex/crp123/app:latest");
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = ImageReference::parse(&format!("docker://h:1/a/b@{digest}")).unwrap();
        assert_eq!(pinned.version, Version::Digest(digest.parse().unwrap()));
        for bad in [
            "cr.yandex/app",
            "docker://cr.yandex",
            "docker://h/App",
            "docker://h/a:b:c",
            "docker://h/a@sha256:zz",
            "docker:///a",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_prefixes() {
        let whole = RegistryPrefix::parse("docker://localhost:5000").unwrap();
        assert_eq!(whole.relative("a/b"), Some("a/b"));
        assert_eq!(whole.join("a/b"), "a/b");
        let under = RegistryPrefix::parse("docker://cr.yandex/crp123/").unwrap();
        assert_eq!(under.prefix, "crp123");
        assert_eq!(under.relative("crp123/team/app"), Some("team/app"));
        assert_eq!(under.relative("crp1234/app"), None);
        assert_eq!(under.relative("crp123"), None);
        assert_eq!(under.join("team/app"), "crp123/team/app");
        assert!(RegistryPrefix::parse("cr.yandex").is_err());
    }
}
