//! The findings of a scan as CSV (RFC 4180): one row per finding, in the document's
//! order, under a header row, for spreadsheets and ticket imports.
//!
//! Columns: `severity, vulnerability, package, installed_version, fixed_version,
//! package_type, ecosystem, purl, layer_index, layer_digest, link, summary`. A field
//! holding a comma, a double quote or a line break is quoted, its quotes doubled;
//! a field that a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
//! `@`, a tab or a carriage return) is prefixed with `'` (OWASP "CSV injection").

use super::ScanDocument;

const HEADER: [&str; 12] = [
    "severity",
    "vulnerability",
    "package",
    "installed_version",
    "fixed_version",
    "package_type",
    "ecosystem",
    "purl",
    "layer_index",
    "layer_digest",
    "link",
    "summary",
];

/// Renders the document's findings (the shown ones; ignored findings are left out).
pub fn render(document: &ScanDocument) -> String {
    let mut out = String::new();
    push_row(&mut out, HEADER.iter().map(|name| (*name).to_owned()));
    for finding in &document.findings {
        let layer_index = document
            .layer_index(finding)
            .map(|index| index.to_string())
            .unwrap_or_default();
        push_row(
            &mut out,
            [
                finding.severity.as_str().to_owned(),
                finding.id.clone(),
                finding.package_name.clone(),
                finding.installed_version.clone(),
                finding.fixed_by.clone().unwrap_or_default(),
                finding.package_type.as_str().to_owned(),
                finding.ecosystem.clone(),
                finding.purl.clone(),
                layer_index,
                finding
                    .layer_digest
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                finding.help_link().unwrap_or_default().to_owned(),
                finding.summary.clone().unwrap_or_default(),
            ],
        );
    }
    out
}

fn push_row(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (index, field) in fields.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_field(out, &field);
    }
    out.push_str("\r\n");
}

fn push_field(out: &mut String, field: &str) {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || field.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for character in field.chars() {
        if character == '"' {
            out.push('"');
        }
        out.push(character);
    }
    if quote {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        push_row(
            &mut out,
            [
                "plain".to_owned(),
                "a,b".to_owned(),
                "say \"hi\"".to_owned(),
                "=HYPERLINK(1)".to_owned(),
                "two\nlines".to_owned(),
            ],
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"'=HYPERLINK(1)\",\"two\nlines\"\r\n"
        );
    }
}
