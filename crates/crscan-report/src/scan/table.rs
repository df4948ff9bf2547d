//! The default `crscan scan` output: an aligned plain-text report for people.
//!
//! The header names the image, its operating system and the database (digest and
//! age); then the six-level summary of the findings shown; then one section per
//! severity, most severe first, with the columns ID, PACKAGE, INSTALLED, FIXED BY,
//! STATUS, LAYER and TITLE. Sections without findings are left out.

use crscan_model::Severity;

use super::{Finding, ScanDocument, format_age};
use crate::sbom::format_unix_seconds;
use crate::sbom::table::{layer_cell, push_table};

const HEADERS: [&str; 7] = [
    "ID",
    "PACKAGE",
    "INSTALLED",
    "FIXED BY",
    "STATUS",
    "LAYER",
    "TITLE",
];

/// Titles longer than this are cut, so that rows fit a wide terminal.
const TITLE_CHARS: usize = 60;

/// Renders the report.
pub fn render(document: &ScanDocument) -> String {
    let subject = &document.sbom.subject;
    let mut out = String::new();
    out.push_str(&format!("Image:    {}\n", subject.name));
    if let Some(digest) = &subject.manifest_digest {
        out.push_str(&format!("Digest:   {digest}\n"));
    }
    match &document.sbom.inventory.os {
        Some(os) => {
            let pretty = os
                .pretty_name
                .clone()
                .unwrap_or_else(|| format!("{} {}", os.id, os.version_id));
            out.push_str(&format!("OS:       {pretty}\n"));
        }
        None => out.push_str("OS:       none detected\n"),
    }
    out.push_str(&format!(
        "Packages: {}\n",
        document.sbom.inventory.packages.len()
    ));
    out.push_str(&format!(
        "Database: {} built {} ({} old)\n\n",
        document.database.digest,
        format_unix_seconds(document.database.built_at),
        format_age(document.database_age_seconds())
    ));

    let summary = document.summary();
    let levels: Vec<String> = Severity::ALL
        .into_iter()
        .map(|severity| format!("{severity}: {}", summary.get(severity)))
        .collect();
    out.push_str(&format!(
        "Total: {} ({})\n",
        document.findings.len(),
        levels.join(", ")
    ));
    if !document.ignored.is_empty() {
        out.push_str(&format!(
            "Ignored: {} (ignore file or --ignore-unfixed)\n",
            document.ignored.len()
        ));
    }

    for severity in Severity::ALL {
        let rows: Vec<[String; 7]> = document
            .findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .map(|finding| row(document, finding))
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{severity} ({})\n", rows.len()));
        push_table(&mut out, &HEADERS, &rows);
    }
    out
}

fn row(document: &ScanDocument, finding: &Finding) -> [String; 7] {
    let package = if finding.binary_packages.is_empty()
        || finding.binary_packages == [finding.package_name.clone()]
    {
        finding.package_name.clone()
    } else {
        format!(
            "{} ({})",
            finding.package_name,
            finding.binary_packages.join(", ")
        )
    };
    let layer = layer_cell(&document.sbom.subject, finding.layer_digest.as_ref());
    let title = finding
        .summary
        .as_deref()
        .or(finding.description.as_deref())
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("");
    let title = if title.chars().count() > TITLE_CHARS {
        let cut: String = title.chars().take(TITLE_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        title.to_owned()
    };
    [
        finding.id.clone(),
        package,
        finding.installed_version.clone(),
        finding.fixed_by.clone().unwrap_or_default(),
        finding.status.label().to_owned(),
        layer,
        title,
    ]
}
