//! Software bills of materials: the package inventory of one image, rendered as a
//! table, as crscan's own JSON, as CycloneDX 1.6 JSON or as SPDX 2.3 JSON.
//!
//! Every renderer reads one [`SbomDocument`], whose packages are sorted when it is
//! built, so that all formats list packages in the same stable order.

use std::fmt;
use std::str::FromStr;

use crscan_model::{Digest, Inventory, Package};
use sha2::{Digest as _, Sha256};

use crate::ReportError;

pub mod cyclonedx;
pub mod json;
pub mod spdx;
pub mod table;

/// The output formats of `crscan sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    /// A readable table for a terminal.
    Table,
    /// crscan's own JSON document (see [`json`]).
    Json,
    /// CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>).
    CycloneDx,
    /// SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>).
    Spdx,
}

impl SbomFormat {
    pub const ALL: [SbomFormat; 4] = [
        SbomFormat::Table,
        SbomFormat::Json,
        SbomFormat::CycloneDx,
        SbomFormat::Spdx,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SbomFormat::Table => "table",
            SbomFormat::Json => "json",
            SbomFormat::CycloneDx => "cyclonedx",
            SbomFormat::Spdx => "spdx",
        }
    }
}

impl fmt::Display for SbomFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SbomFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<SbomFormat, String> {
        SbomFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == text)
            .ok_or_else(|| {
                format!("unknown SBOM format {text:?} (expected table, json, cyclonedx or spdx)")
            })
    }
}

/// One layer of the image, as the SBOM describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubjectLayer {
    /// Digest of the layer blob as stored (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed layer (`rootfs.diff_ids` in the image config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// Size of the blob in bytes.
    pub size: u64,
    pub media_type: String,
}

/// The image an SBOM describes. It mirrors what the image reader learnt from the
/// manifest and config, without depending on the reader.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Subject {
    /// The image as the user named it (`oci:/path:tag`, `docker-archive:file.tar`).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<Digest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repo_tags: Vec<String>,
    /// The platform's operating system from the config (`linux`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The config's `created` timestamp, as written there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub layers: Vec<SubjectLayer>,
}

impl Subject {
    /// The position (0-based) of the layer whose blob digest or diff id is `digest`.
    pub fn layer_index(&self, digest: &Digest) -> Option<usize> {
        self.layers
            .iter()
            .position(|layer| &layer.digest == digest || layer.diff_id.as_ref() == Some(digest))
    }

    /// A short human name: the first repo tag, else the name the user gave.
    pub fn display_name(&self) -> &str {
        self.repo_tags
            .first()
            .map_or(self.name.as_str(), String::as_str)
    }
}

/// Who made the document, and when. The caller reads the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    pub tool_name: String,
    pub tool_version: String,
    /// Creation time, seconds since the Unix epoch (UTC).
    pub created_unix_seconds: i64,
}

/// An image's inventory ready to render: packages sorted, diagnostics kept.
#[derive(Debug, Clone)]
pub struct SbomDocument {
    pub subject: Subject,
    pub inventory: Inventory,
    pub generator: Generator,
}

impl SbomDocument {
    /// Builds a document, sorting packages (by type, name, version, purl, then
    /// locations) and diagnostics so that output is stable.
    pub fn new(subject: Subject, mut inventory: Inventory, generator: Generator) -> SbomDocument {
        inventory.packages.sort_by(compare_packages);
        inventory.diagnostics.sort_by(|a, b| {
            (&a.path, &a.detector, &a.message).cmp(&(&b.path, &b.detector, &b.message))
        });
        SbomDocument {
            subject,
            inventory,
            generator,
        }
    }

    /// Renders the document in `format`.
    pub fn render(&self, format: SbomFormat) -> Result<String, ReportError> {
        match format {
            SbomFormat::Table => Ok(table::render(self)),
            SbomFormat::Json => json::render(self),
            SbomFormat::CycloneDx => cyclonedx::render(self),
            SbomFormat::Spdx => spdx::render(self),
        }
    }

    /// A stable identity for the document: the manifest digest, else the config
    /// digest, else a SHA-256 over the image name and the package URLs. Used for the
    /// CycloneDX serial number and the SPDX document namespace.
    pub fn identity_hex(&self) -> String {
        if let Some(digest) = self
            .subject
            .manifest_digest
            .as_ref()
            .or(self.subject.config_digest.as_ref())
        {
            return digest.hex().to_owned();
        }
        let mut hasher = Sha256::new();
        hasher.update(self.subject.name.as_bytes());
        for package in &self.inventory.packages {
            hasher.update([0]);
            hasher.update(package.purl.as_bytes());
        }
        Digest::from_bytes(crscan_model::DigestAlgorithm::Sha256, &hasher.finalize())
            .hex()
            .to_owned()
    }

    /// The creation time as `YYYY-MM-DDThh:mm:ssZ`.
    pub fn created_rfc3339(&self) -> String {
        format_unix_seconds(self.generator.created_unix_seconds)
    }
}

/// The order every format lists packages in.
fn compare_packages(a: &Package, b: &Package) -> std::cmp::Ordering {
    (a.package_type, &a.name, &a.version, &a.purl, &a.locations).cmp(&(
        b.package_type,
        &b.name,
        &b.version,
        &b.purl,
        &b.locations,
    ))
}

/// Formats seconds since the epoch as an RFC 3339 UTC timestamp with a `Z` suffix,
/// using the proleptic Gregorian calendar (days-from-civil inverse).
pub fn format_unix_seconds(seconds: i64) -> String {
    crscan_model::time::rfc3339_seconds(seconds)
}

/// A short form of a digest for tables: the first 12 hex digits.
pub fn short_digest(digest: &Digest) -> String {
    digest.hex().chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(format_unix_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix_seconds(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_unix_seconds(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_formats() {
        for format in SbomFormat::ALL {
            assert_eq!(format.as_str().parse::<SbomFormat>().unwrap(), format);
        }
        assert!("xml".parse::<SbomFormat>().is_err());
    }
}
