//! Installed packages, the operating system they belong to, and the diagnostics that
//! detectors report for records they had to skip.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Digest;

/// The kind of package, named as Package URL types name them
/// (<https://github.com/package-url/purl-spec/blob/master/PURL-TYPES.rst>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    Deb,
    Apk,
    Rpm,
    Pypi,
    Npm,
    Cargo,
    Golang,
    Maven,
    Gem,
    Composer,
    Nuget,
}

impl PackageType {
    pub const ALL: [PackageType; 11] = [
        PackageType::Deb,
        PackageType::Apk,
        PackageType::Rpm,
        PackageType::Pypi,
        PackageType::Npm,
        PackageType::Cargo,
        PackageType::Golang,
        PackageType::Maven,
        PackageType::Gem,
        PackageType::Composer,
        PackageType::Nuget,
    ];

    /// The purl type string.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Deb => "deb",
            PackageType::Apk => "apk",
            PackageType::Rpm => "rpm",
            PackageType::Pypi => "pypi",
            PackageType::Npm => "npm",
            PackageType::Cargo => "cargo",
            PackageType::Golang => "golang",
            PackageType::Maven => "maven",
            PackageType::Gem => "gem",
            PackageType::Composer => "composer",
            PackageType::Nuget => "nuget",
        }
    }

    /// Whether packages of this type come from the operating system's package manager.
    pub fn is_os(self) -> bool {
        matches!(self, PackageType::Deb | PackageType::Apk | PackageType::Rpm)
    }
}

impl fmt::Display for PackageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PackageType {
    type Err = String;

    fn from_str(text: &str) -> Result<PackageType, String> {
        PackageType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| format!("unknown package type {text:?}"))
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The name as its ecosystem spells it (PEP 503-normalised for PyPI,
    /// `groupId:artifactId` for Maven, the module path for Go).
    pub name: String,
    /// The installed version as the package database records it (for rpm:
    /// `VERSION-RELEASE`, with the epoch in `epoch`).
    pub version: String,
    #[serde(rename = "type")]
    pub package_type: PackageType,
    /// Package URL (<https://github.com/package-url/purl-spec>).
    pub purl: String,
    /// Source package name for OS packages (dpkg `Source:`, apk origin, rpm SRPM name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Source package version when it differs from `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// rpm epoch, when the database has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Licence as declared by the package, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The layer that last wrote (installed) the package; `None` for a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<Digest>,
    /// Files the package was found in (its database, lockfile or binary).
    #[serde(default)]
    pub locations: Vec<String>,
    /// True for a development-only dependency from a lockfile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dev: bool,
}

impl Package {
    /// The source package name, falling back to the package's own name.
    pub fn source_name_or_name(&self) -> &str {
        self.source_name.as_deref().unwrap_or(&self.name)
    }

    /// The source package version, falling back to the package's own version.
    pub fn source_version_or_version(&self) -> &str {
        self.source_version.as_deref().unwrap_or(&self.version)
    }
}

/// A Python project name normalised as
/// [PEP 503](https://peps.python.org/pep-0503/#normalized-names) says: lower case, and each
/// run of `-`, `_` and `.` becomes one `-` (`Zope.Interface__X` → `zope-interface-x`).
pub fn pep503_normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    out
}

/// The operating system an image is built on, from `os-release` or a fallback file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID` from os-release, lower case (`debian`, `ubuntu`, `alpine`, `rhel`, …).
    pub id: String,
    /// `VERSION_ID` (`12`, `22.04`, `3.19.1`), possibly empty.
    pub version_id: String,
    /// `VERSION_CODENAME` when present (`bookworm`, `jammy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// `PRETTY_NAME` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// `ID_LIKE` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// `PLATFORM_ID` when present (`platform:el9`): the Red Hat family's major release,
    /// also where `VERSION_ID` is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_id: Option<String>,
    /// True when the OS was inferred without an os-release file (distroless images
    /// with only dpkg `status.d/`, or a fallback release file).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
}

/// A record a detector could not use, and why. Never fatal to a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The detector that reports it (`dpkg`, `npm`, …).
    pub detector: String,
    /// The file concerned.
    pub path: String,
    /// What was wrong, naming the offending value.
    pub message: String,
}

/// The result of cataloguing an image: its OS (if any), its packages and the
/// diagnostics for everything skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
    #[serde(default)]
    pub diagnostics: Vec<Diagnostic>,
}
