//! Output documents: tables, CycloneDX 1.6, SPDX 2.3, SARIF 2.1.0, crscan JSON.
//!
//! Architecture invariant: this crate turns already-computed results into text. It does
//! no I/O and never reads the clock: the caller passes the creation time, and every
//! renderer returns a `String` that the caller writes wherever it wants. Output is
//! deterministic (packages sorted, identifiers derived from digests) so that two runs
//! over the same image can be diffed.

pub mod sbom;
pub mod scan;

/// Why a document could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot serialize the {format} document: {source}")]
    Serialize {
        format: &'static str,
        #[source]
        source: serde_json::Error,
    },
}
