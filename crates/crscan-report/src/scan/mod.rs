//! Vulnerability reports: the findings of one scan, rendered as a table, as crscan's
//! own JSON, as SARIF 2.1.0 or as CycloneDX 1.6 with `vulnerabilities`.
//!
//! Reports render the matcher's [`Finding`]s (`crscan-model`), the same values the
//! server stores and the API lists. [`policy`] decides what is shown and what counts towards
//! `--fail-on`; [`sbom_input`] reads back a CycloneDX document crscan wrote, so that
//! a stored inventory can be matched again.

use std::fmt;
use std::str::FromStr;

use crscan_model::{Finding, SeverityCounts};
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
    use super::*;

    #[test]
    fn parses_formats() {
        for format in ScanFormat::ALL {
            assert_eq!(format.as_str().parse::<ScanFormat>().ok(), Some(format));
        }
        assert!("xml".parse::<ScanFormat>().is_err());
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(format_age(30), "30s");
        assert_eq!(format_age(600), "10m");
        assert_eq!(format_age(3 * 3600 + 60), "3h 1m");
        assert_eq!(format_age(3 * 86_400 + 7200), "3d 2h");
    }
}
