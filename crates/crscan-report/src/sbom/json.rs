//! crscan's own SBOM document (`--format json`): the image, its OS, every package with
//! all the fields the catalog found, and the diagnostics for skipped records.
//!
//! The shape, versioned by `schema`:
//! `{"schema": "crscan.sbom/v1", "tool": {"name", "version"}, "created", "image": {…},
//! "os": {…}|absent, "packages": [Package…], "diagnostics": [Diagnostic…]}` where
//! `Package`, `OsRelease` and `Diagnostic` serialize as in `crscan-model`.

use crscan_model::{Diagnostic, OsRelease, Package};
use serde::Serialize;

use super::{SbomDocument, Subject};
use crate::ReportError;

/// The value of the `schema` field.
pub const SCHEMA: &str = "crscan.sbom/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    tool: Tool<'a>,
    created: String,
    image: &'a Subject,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<&'a OsRelease>,
    packages: &'a [Package],
    diagnostics: &'a [Diagnostic],
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    version: &'a str,
}

/// Renders the document, pretty-printed, with a final newline.
pub fn render(document: &SbomDocument) -> Result<String, ReportError> {
    let wire = Document {
        schema: SCHEMA,
        tool: Tool {
            name: &document.generator.tool_name,
            version: &document.generator.tool_version,
        },
        created: document.created_rfc3339(),
        image: &document.subject,
        os: document.inventory.os.as_ref(),
        packages: &document.inventory.packages,
        diagnostics: &document.inventory.diagnostics,
    };
    let mut text =
        serde_json::to_string_pretty(&wire).map_err(|source| ReportError::Serialize {
            format: "json",
            source,
        })?;
    text.push('\n');
    Ok(text)
}
