//! A finding: one vulnerability in one package of one image, as the matcher produces
//! it. The same value is stored for a scan, counted in its six counters, listed by the
//! API (REST and gRPC), and rendered by every report (table, JSON, SARIF, CycloneDX),
//! so that every surface answers from one type.
//!
//! The Container Registry API shows a finding as a `PackageVulnerability`
//! (`yandex/cloud/containerregistry/v1/scanner.proto`; contract §3.4). Its string
//! fields are derived here, once, by [`Finding::api_fields`]:
//! - `name`: the CVE id when there is one, else the advisory id;
//! - `link`: the advisory's own page when the feed names one, else the CVE record;
//! - `package`: the package the flaw is in; for OS packages the *source* package;
//! - `source`: the package manager (`dpkg`, `apk`, `rpm`, `pip`, `npm`, `cargo`, …);
//! - `version` / `fixedBy`: the version compared and the lowest fixed version above it
//!   (empty when no fix is known);
//! - `origin`: `os` or `lang`;
//! - `type`: the OS name (`debian`, `alpine`) for `os`, the kind of file the package
//!   was found in (`python-pkg`, `gobinary`, `jar`, …) for `lang`.

use serde::{Deserialize, Serialize};

use crate::{Digest, PackageType, Severity};

/// The CVSS version of a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CvssVersion {
    #[serde(rename = "2.0")]
    V2,
    #[serde(rename = "3.0")]
    V3_0,
    #[serde(rename = "3.1")]
    V3_1,
    #[serde(rename = "4.0")]
    V4,
}

impl CvssVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CvssVersion::V2 => "2.0",
            CvssVersion::V3_0 => "3.0",
            CvssVersion::V3_1 => "3.1",
            CvssVersion::V4 => "4.0",
        }
    }
}

/// A CVSS vector and the base score computed from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvssScore {
    pub version: CvssVersion,
    pub vector: String,
    pub score: f64,
}

/// Where a finding's severity came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeveritySource {
    /// The distribution's own rating (Debian urgency, Ubuntu priority, the Red Hat
    /// scale of AlmaLinux and Rocky Linux errata), from the finding's own records or
    /// from the distribution's tracker entry for the same CVE.
    Distribution {
        distribution: String,
        rating: String,
    },
    /// The base score computed from a CVSS vector (the vector is in
    /// [`Finding::cvss`]).
    Cvss { version: CvssVersion, score: f64 },
    /// The advisory's own label (GHSA `database_specific.severity`).
    AdvisoryLabel { advisory: String, label: String },
    /// The base score NVD's CVSS vector for the same CVE gives (the vector is in
    /// [`Finding::cvss`]), used when the finding's own records rate nothing.
    Nvd { version: CvssVersion, score: f64 },
    /// Nothing said how severe the flaw is.
    None,
}

/// What the distribution or advisory says about fixing a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// A fixed version exists (`fixed_by`).
    Fixed,
    /// Affected, and no fix is published yet.
    NotFixedYet,
    /// Affected, and the distribution will not fix it or ignores it.
    WillNotFix,
    /// The distribution states this package is not affected (reported only when the
    /// matcher is asked to).
    NotAffected,
}

impl FindingStatus {
    /// Words for a table.
    pub fn label(self) -> &'static str {
        match self {
            FindingStatus::Fixed => "fixed",
            FindingStatus::NotFixedYet => "no fix yet",
            FindingStatus::WillNotFix => "will not fix",
            FindingStatus::NotAffected => "not affected",
        }
    }
}

/// One vulnerability in one package (for OS packages: one source package).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The CVE id when there is one, else the advisory id.
    pub id: String,
    /// Other ids of the same flaw (GHSA, PYSEC, GO, RUSTSEC, and other CVE names).
    pub aliases: Vec<String>,
    /// Ids of the records that matched (including bundles such as DSA-5380-1).
    pub advisories: Vec<String>,
    /// Reference URLs.
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub severity: Severity,
    pub severity_source: SeveritySource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<CvssScore>,
    /// The package name matched: the source package for OS packages.
    pub package_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_package: Option<String>,
    /// The version compared (the source version for dpkg when recorded).
    pub installed_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_by: Option<String>,
    pub status: FindingStatus,
    pub package_type: PackageType,
    /// Ecosystem key the match was made in (`Debian:10`, `PyPI`).
    pub ecosystem: String,
    pub purl: String,
    /// Binary packages of the source package (OS packages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary_packages: Vec<String>,
    /// The layer that installed the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<Digest>,
    /// Files the package was found in.
    pub locations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory_link: Option<String>,
}

/// The string fields of the API's `PackageVulnerability` for one finding (see the
/// module documentation for what each holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFields<'a> {
    pub name: &'a str,
    pub link: String,
    pub package: &'a str,
    pub source: &'static str,
    pub version: &'a str,
    pub fixed_by: &'a str,
    pub origin: &'static str,
    pub kind: String,
}

impl Finding {
    /// Whether `id` names this finding: its id, an alias or a matched record.
    pub fn is_named(&self, id: &str) -> bool {
        self.id == id
            || self.aliases.iter().any(|alias| alias == id)
            || self.advisories.iter().any(|advisory| advisory == id)
    }

    /// A link to read about the flaw: the advisory's own page, else the first
    /// reference.
    pub fn help_link(&self) -> Option<&str> {
        self.advisory_link
            .as_deref()
            .or_else(|| self.references.first().map(String::as_str))
    }

    /// The order the API lists findings in by default: severity (CRITICAL first),
    /// then name, then package, then version.
    pub fn api_order(&self, other: &Finding) -> std::cmp::Ordering {
        (
            self.severity,
            &self.id,
            &self.package_name,
            &self.installed_version,
        )
            .cmp(&(
                other.severity,
                &other.id,
                &other.package_name,
                &other.installed_version,
            ))
    }

    /// The finding as the API's `PackageVulnerability` shows it.
    pub fn api_fields(&self) -> ApiFields<'_> {
        let is_os = self.package_type.is_os();
        let kind = if is_os {
            self.ecosystem
                .split(':')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        } else {
            language_type(self.package_type, &self.locations).to_owned()
        };
        ApiFields {
            name: &self.id,
            link: self.api_link(),
            package: &self.package_name,
            source: package_manager(self.package_type, &self.locations),
            version: &self.installed_version,
            fixed_by: self.fixed_by.as_deref().unwrap_or_default(),
            origin: if is_os { "os" } else { "lang" },
            kind,
        }
    }

    fn api_link(&self) -> String {
        if let Some(link) = &self.advisory_link {
            return link.clone();
        }
        if self.id.starts_with("CVE-") {
            return format!("https://www.cve.org/CVERecord?id={}", self.id);
        }
        if let Some(reference) = self.references.first() {
            return reference.clone();
        }
        format!("https://osv.dev/vulnerability/{}", self.id)
    }
}

fn located_in(locations: &[String], suffixes: &[&str]) -> bool {
    locations
        .iter()
        .any(|location| suffixes.iter().any(|suffix| location.ends_with(suffix)))
}

/// The package manager that installed or declared the package.
fn package_manager(package_type: PackageType, locations: &[String]) -> &'static str {
    match package_type {
        PackageType::Deb => "dpkg",
        PackageType::Apk => "apk",
        PackageType::Rpm => "rpm",
        PackageType::Pypi => {
            if located_in(locations, &["Pipfile.lock"]) {
                "pipenv"
            } else if located_in(locations, &["poetry.lock"]) {
                "poetry"
            } else {
                "pip"
            }
        }
        PackageType::Npm => {
            if located_in(locations, &["yarn.lock"]) {
                "yarn"
            } else if located_in(locations, &["pnpm-lock.yaml"]) {
                "pnpm"
            } else {
                "npm"
            }
        }
        PackageType::Cargo => "cargo",
        PackageType::Golang => "go",
        PackageType::Maven => "maven",
        PackageType::Gem => "gem",
        PackageType::Composer => "composer",
        PackageType::Nuget => "nuget",
    }
}

/// The kind of file a language package was found in, named as Trivy names its
/// language analyzers (the hosted scanner's `type` values look like Trivy's).
fn language_type(package_type: PackageType, locations: &[String]) -> &'static str {
    match package_type {
        PackageType::Pypi => {
            if located_in(locations, &["requirements.txt"]) {
                "pip"
            } else if located_in(locations, &["Pipfile.lock"]) {
                "pipenv"
            } else if located_in(locations, &["poetry.lock"]) {
                "poetry"
            } else {
                "python-pkg"
            }
        }
        PackageType::Npm => {
            if located_in(locations, &["package-lock.json"]) {
                "npm"
            } else if located_in(locations, &["yarn.lock"]) {
                "yarn"
            } else if located_in(locations, &["pnpm-lock.yaml"]) {
                "pnpm"
            } else {
                "node-pkg"
            }
        }
        PackageType::Golang => {
            if located_in(locations, &["go.mod", "go.sum"]) {
                "gomod"
            } else {
                "gobinary"
            }
        }
        PackageType::Cargo => {
            if located_in(locations, &["Cargo.lock"]) {
                "cargo"
            } else {
                "rustbinary"
            }
        }
        PackageType::Maven => {
            if located_in(locations, &["pom.xml"]) {
                "pom"
            } else {
                "jar"
            }
        }
        PackageType::Gem => {
            if located_in(locations, &["Gemfile.lock"]) {
                "bundler"
            } else {
                "gemspec"
            }
        }
        PackageType::Composer => "composer",
        PackageType::Nuget => {
            if located_in(locations, &[".deps.json"]) {
                "dotnet-core"
            } else if located_in(locations, &["packages.config"]) {
                "packages-config"
            } else {
                "nuget"
            }
        }
        PackageType::Deb | PackageType::Apk | PackageType::Rpm => "os",
    }
}

/// The six counters of the API's `VulnerabilityStats`: findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub negligible: u64,
    pub undefined: u64,
}

impl SeverityCounts {
    /// Counts severities.
    pub fn of(severities: impl IntoIterator<Item = Severity>) -> SeverityCounts {
        let mut counts = SeverityCounts::default();
        for severity in severities {
            *counts.slot(severity) += 1;
        }
        counts
    }

    fn slot(&mut self, severity: Severity) -> &mut u64 {
        match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Negligible => &mut self.negligible,
            Severity::Undefined => &mut self.undefined,
        }
    }

    /// The counter for one severity.
    pub fn get(&self, severity: Severity) -> u64 {
        let mut copy = *self;
        *copy.slot(severity)
    }

    /// Sets the counter for one severity.
    pub fn set(&mut self, severity: Severity, count: u64) {
        *self.slot(severity) = count;
    }

    pub fn total(&self) -> u64 {
        Severity::ALL
            .iter()
            .map(|severity| self.get(*severity))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(package_type: PackageType, location: &str) -> Finding {
        Finding {
            id: "CVE-2020-8203".to_owned(),
            aliases: Vec::new(),
            advisories: Vec::new(),
            references: Vec::new(),
            summary: None,
            description: None,
            severity: Severity::High,
            severity_source: SeveritySource::None,
            cvss: None,
            package_name: "p".to_owned(),
            source_package: None,
            installed_version: "1".to_owned(),
            fixed_by: None,
            status: FindingStatus::NotFixedYet,
            package_type,
            ecosystem: "Debian:12".to_owned(),
            purl: String::new(),
            binary_packages: Vec::new(),
            layer_digest: None,
            locations: vec![location.to_owned()],
            advisory_link: None,
        }
    }

    #[test]
    fn api_types_follow_the_file_the_package_came_from() {
        let cases = [
            (PackageType::Pypi, "/app/requirements.txt", "pip", "pip"),
            (
                PackageType::Pypi,
                "/usr/lib/python3/x-1.dist-info/METADATA",
                "python-pkg",
                "pip",
            ),
            (PackageType::Npm, "/app/package-lock.json", "npm", "npm"),
            (PackageType::Npm, "/app/yarn.lock", "yarn", "yarn"),
            (
                PackageType::Npm,
                "/app/node_modules/x/package.json",
                "node-pkg",
                "npm",
            ),
            (PackageType::Golang, "/usr/bin/app", "gobinary", "go"),
            (PackageType::Cargo, "/src/Cargo.lock", "cargo", "cargo"),
            (PackageType::Maven, "/app/lib/x.jar", "jar", "maven"),
            (PackageType::Gem, "/app/Gemfile.lock", "bundler", "gem"),
            (
                PackageType::Nuget,
                "/app/app.deps.json",
                "dotnet-core",
                "nuget",
            ),
            (PackageType::Deb, "/var/lib/dpkg/status", "debian", "dpkg"),
        ];
        for (package_type, path, kind, source) in cases {
            let finding = finding(package_type, path);
            let fields = finding.api_fields();
            assert_eq!(fields.kind, kind, "{path}");
            assert_eq!(fields.source, source, "{path}");
            let origin = if package_type.is_os() { "os" } else { "lang" };
            assert_eq!(fields.origin, origin, "{path}");
        }
    }

    #[test]
    fn links_prefer_the_advisory_then_the_cve_record() {
        let mut finding = finding(PackageType::Deb, "/var/lib/dpkg/status");
        assert_eq!(
            finding.api_fields().link,
            "https://www.cve.org/CVERecord?id=CVE-2020-8203"
        );
        finding.advisory_link = Some("https://security-tracker.debian.org/x".to_owned());
        assert_eq!(
            finding.api_fields().link,
            "https://security-tracker.debian.org/x"
        );
        finding.advisory_link = None;
        finding.id = "GHSA-xxxx".to_owned();
        assert_eq!(
            finding.api_fields().link,
            "https://osv.dev/vulnerability/GHSA-xxxx"
        );
    }

    #[test]
    fn counters_count_each_severity() {
        let counts =
            SeverityCounts::of([Severity::Critical, Severity::Critical, Severity::Undefined]);
        assert_eq!(counts.critical, 2);
        assert_eq!(counts.undefined, 1);
        assert_eq!(counts.get(Severity::High), 0);
        assert_eq!(counts.total(), 3);
    }
}
