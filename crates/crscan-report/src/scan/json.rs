//! crscan's own scan document (`crscan scan --format json`).
//!
//! The shape, versioned by `schema`:
//! `{"schema": "crscan.scan/v1", "tool": {"name", "version"}, "created",
//! "image": {…}, "os": {…}|absent, "database": {"digest", "built_at", "age_seconds"},
//! "packages": N, "summary": {"critical", "high", "medium", "low", "negligible",
//! "undefined"}, "findings": [Finding…], "ignored": [Ignored…]}`.
//! The summary counts the findings listed, under the lower-case names of the
//! Container Registry API's `VulnerabilityStats`. Each finding carries its
//! provenance: `severity_source` (the distribution's rating, the CVSS vector and
//! computed score, the advisory's label, or NVD's CVSS for the same CVE), the
//! `advisories` that matched, and the `layer` (digest and 0-based index) that
//! installed the package.

use crscan_model::{Digest, OsRelease, SeverityCounts};
use serde::Serialize;

use super::{IgnoredFinding, ScanDocument};
use crate::ReportError;
use crate::sbom::{Subject, format_unix_seconds};

/// The value of the `schema` field.
pub const SCHEMA: &str = "crscan.scan/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    tool: Tool<'a>,
    created: String,
    image: &'a Subject,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<&'a OsRelease>,
    database: Database<'a>,
    packages: usize,
    summary: SeverityCounts,
    findings: Vec<FindingWire<'a>>,
    ignored: &'a [IgnoredFinding],
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct Database<'a> {
    digest: &'a str,
    built_at: String,
    age_seconds: i64,
}

#[derive(Serialize)]
struct FindingWire<'a> {
    #[serde(flatten)]
    finding: &'a crscan_model::Finding,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<Layer<'a>>,
}

#[derive(Serialize)]
struct Layer<'a> {
    digest: &'a Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

/// Renders the document, pretty-printed, with a final newline.
pub fn render(document: &ScanDocument) -> Result<String, ReportError> {
    let generator = &document.sbom.generator;
    let wire = Document {
        schema: SCHEMA,
        tool: Tool {
            name: &generator.tool_name,
            version: &generator.tool_version,
        },
        created: document.sbom.created_rfc3339(),
        image: &document.sbom.subject,
        os: document.sbom.inventory.os.as_ref(),
        database: Database {
            digest: &document.database.digest,
            built_at: format_unix_seconds(document.database.built_at),
            age_seconds: document.database_age_seconds(),
        },
        packages: document.sbom.inventory.packages.len(),
        summary: document.summary(),
        findings: document
            .findings
            .iter()
            .map(|finding| FindingWire {
                finding,
                layer: finding.layer_digest.as_ref().map(|digest| Layer {
                    digest,
                    index: document.layer_index(finding),
                }),
            })
            .collect(),
        ignored: &document.ignored,
    };
    let mut text =
        serde_json::to_string_pretty(&wire).map_err(|source| ReportError::Serialize {
            format: "json",
            source,
        })?;
    text.push('\n');
    Ok(text)
}
