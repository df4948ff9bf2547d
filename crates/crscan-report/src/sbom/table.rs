//! The default `crscan sbom` output: an aligned plain-text table for people.
//!
//! The first lines name the image and its operating system; then one row per package
//! with the columns NAME, VERSION, TYPE, SOURCE and LAYER. SOURCE is the source
//! package of an OS package (with its version when that differs from the binary
//! package's); LAYER is the 0-based index of the layer that installed the package and
//! the start of that layer's digest.

use crscan_model::{Digest, Package};

use super::{SbomDocument, Subject, short_digest};

const HEADERS: [&str; 5] = ["NAME", "VERSION", "TYPE", "SOURCE", "LAYER"];

/// Renders the table.
pub fn render(document: &SbomDocument) -> String {
    let mut out = String::new();
    out.push_str(&format!("Image: {}\n", document.subject.name));
    if let Some(digest) = &document.subject.manifest_digest {
        out.push_str(&format!("Digest: {digest}\n"));
    }
    match &document.inventory.os {
        Some(os) => {
            let pretty = os
                .pretty_name
                .clone()
                .unwrap_or_else(|| format!("{} {}", os.id, os.version_id));
            let inferred = if os.inferred { " (inferred)" } else { "" };
            out.push_str(&format!("OS: {pretty}{inferred}\n"));
        }
        None => out.push_str("OS: none detected\n"),
    }
    out.push_str(&format!(
        "Packages: {}\n\n",
        document.inventory.packages.len()
    ));

    let rows: Vec<[String; 5]> = document
        .inventory
        .packages
        .iter()
        .map(|package| row(document, package))
        .collect();
    push_table(&mut out, &HEADERS, &rows);
    out
}

fn row(document: &SbomDocument, package: &Package) -> [String; 5] {
    let source = match (&package.source_name, &package.source_version) {
        (Some(name), Some(version)) if version != &package.version => {
            format!("{name} {version}")
        }
        (Some(name), _) => name.clone(),
        (None, _) => String::new(),
    };
    let layer = layer_cell(&document.subject, package.layer_digest.as_ref());
    [
        package.name.clone(),
        package.version.clone(),
        package.package_type.as_str().to_owned(),
        source,
        layer,
    ]
}

/// The LAYER cell shared by both tables: the 0-based index of the layer in the image
/// and the start of its digest, or only the digest when the layer is not the image's.
pub(crate) fn layer_cell(subject: &Subject, digest: Option<&Digest>) -> String {
    match digest {
        Some(digest) => match subject.layer_index(digest) {
            Some(index) => format!("{index} {}", short_digest(digest)),
            None => short_digest(digest),
        },
        None => String::new(),
    }
}

/// Appends `headers` and `rows` as left-aligned columns two spaces apart, each as
/// wide as its widest cell, with no trailing spaces.
pub(crate) fn push_table<const N: usize>(
    out: &mut String,
    headers: &[&str; N],
    rows: &[[String; N]],
) {
    let mut widths = headers.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    push_row(out, &headers.map(str::to_owned), &widths);
    for row in rows {
        push_row(out, row, &widths);
    }
}

fn push_row<const N: usize>(out: &mut String, cells: &[String; N], widths: &[usize; N]) {
    let mut line = String::new();
    for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if index > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        if index + 1 < cells.len() {
            let padding = width.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', padding));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}
