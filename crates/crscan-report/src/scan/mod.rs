//! Vulnerability reports: the findings of one scan, rendered as a table, as crscan's
//! own JSON, as SARIF 2.1.0 or as CycloneDX 1.6 with `vulnerabilities`.
//!
//! Reports render the matcher's [`Finding`]s (`crscan-model`), the same values the
//! server stores and the API lists. [`policy`] decides what is shown and what counts towards
//! `--fail-on`; [`sbom_input`] reads back a CycloneDX document crscan wrote, so that
//! a stored inventory can be matched again.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crscan_model::{Finding, PackageType, SeverityCounts};
use serde::Serialize;

use crate::ReportError;
use crate::sbom::SbomDocument;

pub mod csv;
pub mod cyclonedx;
pub mod json;
pub mod policy;
pub mod sarif;
pub mod sbom_input;
pub mod table;

pub use policy::{
    DEFAULT_IGNORE_FILES, ExitRule, IgnoreCause, IgnoreEntry, IgnoreFileError, IgnoreFileKind,
    IgnoreList, IgnoredFinding, Outcome, PackageCriteria, Policy,
};
pub use sbom_input::{SbomInputError, read_cyclonedx};

/// The output formats of `crscan scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanFormat {
    /// A readable table for a terminal, grouped by severity.
    Table,
    /// crscan's own JSON document (see [`json`]).
    Json,
    /// SARIF 2.1.0 (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>).
    Sarif,
    /// CycloneDX 1.6 JSON with `vulnerabilities` (<https://cyclonedx.org/docs/1.6/json/>).
    CycloneDx,
    /// One CSV row per finding (see [`csv`]).
    Csv,
}

impl ScanFormat {
    pub const ALL: [ScanFormat; 5] = [
        ScanFormat::Table,
        ScanFormat::Json,
        ScanFormat::Sarif,
        ScanFormat::CycloneDx,
        ScanFormat::Csv,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanFormat::Table => "table",
            ScanFormat::Json => "json",
            ScanFormat::Sarif => "sarif",
            ScanFormat::CycloneDx => "cyclonedx",
            ScanFormat::Csv => "csv",
        }
    }
}

impl fmt::Display for ScanFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScanFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<ScanFormat, String> {
        ScanFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown scan format {text:?} (expected table, json, sarif, cyclonedx or csv)"
                )
            })
    }
}

/// The vulnerability database a scan used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseSummary {
    /// The content digest of the database (`sha256:…`).
    pub digest: String,
    /// When it was built, seconds since the Unix epoch.
    pub built_at: i64,
}

/// A scan ready to render: the image and its inventory, the database, the findings
/// shown and those hidden by the ignore rules.
#[derive(Debug, Clone)]
pub struct ScanDocument {
    /// The image, its sorted inventory and the generator (tool and time).
    pub sbom: SbomDocument,
    pub database: DatabaseSummary,
    /// The findings to show, most severe first.
    pub findings: Vec<Finding>,
    /// Findings hidden by `--ignore-file` or `--ignore-unfixed`.
    pub ignored: Vec<IgnoredFinding>,
}

impl ScanDocument {
    /// Renders the document in `format`.
    pub fn render(&self, format: ScanFormat) -> Result<String, ReportError> {
        match format {
            ScanFormat::Table => Ok(table::render(self)),
            ScanFormat::Json => json::render(self),
            ScanFormat::Sarif => sarif::render(self),
            ScanFormat::CycloneDx => cyclonedx::render(self),
            ScanFormat::Csv => Ok(csv::render(self)),
        }
    }

    /// The number of findings shown at each of the six levels.
    pub fn summary(&self) -> SeverityCounts {
        SeverityCounts::of(self.findings.iter().map(|finding| finding.severity))
    }

    /// Seconds between the database build and the document's creation, never
    /// negative.
    pub fn database_age_seconds(&self) -> i64 {
        (self.sbom.generator.created_unix_seconds - self.database.built_at).max(0)
    }

    /// The position of the layer that installed a finding's package.
    pub fn layer_index(&self, finding: &Finding) -> Option<usize> {
        finding
            .layer_digest
            .as_ref()
            .and_then(|digest| self.sbom.subject.layer_index(digest))
    }
}

/// Merges findings that differ only in where the package was found: the same flaw
/// in the same package (type, name, installed version and purl) found both installed
/// and in a lockfile is one finding with both locations. Order is kept (first
/// occurrence), and so is the first finding's layer.
pub fn merge_locations(findings: Vec<Finding>) -> Vec<Finding> {
    let mut merged: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut index: BTreeMap<(String, PackageType, String, String, String), usize> = BTreeMap::new();
    for finding in findings {
        let key = (
            finding.id.clone(),
            finding.package_type,
            finding.package_name.clone(),
            finding.installed_version.clone(),
            finding.purl.clone(),
        );
        match index.get(&key) {
            Some(position) => {
                let kept = &mut merged[*position];
                for location in finding.locations {
                    if !kept.locations.contains(&location) {
                        kept.locations.push(location);
                    }
                }
            }
            None => {
                index.insert(key, merged.len());
                merged.push(finding);
            }
        }
    }
    merged
}

/// A duration in seconds, as people say it (`45s`, `12m`, `5h 3m`, `2d 4h`).
pub fn format_age(seconds: i64) -> String {
    if seconds < 120 {
        format!("{seconds}s")
    } else if seconds < 7200 {
        format!("{}m", seconds / 60)
    } else if seconds < 172_800 {
        format!("{}h {}m", seconds / 3600, (seconds % 3600) / 60)
    } else {
        format!("{}d {}h", seconds / 86_400, (seconds % 86_400) / 3600)
    }
}

#[cfg(test)]
mod tests {
    use crscan_model::{FindingStatus, Severity, SeveritySource};

    use super::*;

    #[test]
    fn parses_formats() {
        for format in ScanFormat::ALL {
            assert_eq!(format.as_str().parse::<ScanFormat>().ok(), Some(format));
        }
        assert!("xml".parse::<ScanFormat>().is_err());
    }

    #[test]
    fn the_same_package_in_two_places_is_one_finding() {
        let finding = |location: &str| Finding {
            id: "CVE-2020-8203".to_owned(),
            aliases: Vec::new(),
            advisories: Vec::new(),
            references: Vec::new(),
            summary: None,
            description: None,
            severity: Severity::High,
            severity_source: SeveritySource::None,
            cvss: None,
            package_name: "lodash".to_owned(),
            source_package: None,
            installed_version: "4.17.15".to_owned(),
            fixed_by: Some("4.17.20".to_owned()),
            status: FindingStatus::Fixed,
            package_type: PackageType::Npm,
            ecosystem: "npm".to_owned(),
            purl: "pkg:npm/lodash@4.17.15".to_owned(),
            binary_packages: Vec::new(),
            layer_digest: None,
            locations: vec![location.to_owned()],
            advisory_link: None,
        };
        let mut other = finding("/b/package-lock.json");
        other.id = "CVE-2021-23337".to_owned();
        let merged = merge_locations(vec![
            finding("/a/node_modules/lodash/package.json"),
            other,
            finding("/a/package-lock.json"),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0].locations,
            [
                "/a/node_modules/lodash/package.json",
                "/a/package-lock.json"
            ]
        );
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(format_age(30), "30s");
        assert_eq!(format_age(600), "10m");
        assert_eq!(format_age(3 * 3600 + 60), "3h 1m");
        assert_eq!(format_age(3 * 86_400 + 7200), "3d 2h");
    }
}
