//! Finding and reading the ignore files of `crscan scan`: the files given with
//! `--ignore-file`, or else the usual ones of Trivy and Grype in the working directory,
//! so that a repository set up for those tools keeps its accepted findings.
//!
//! This module only reads files and prints what the user should know (which implicit
//! files were read, rules that can never apply, entries that expired); recognising the
//! formats and applying the rules is `crscan_report::scan::policy`'s.

use std::path::{Path, PathBuf};

use anyhow::Context;
use crscan_report::sbom::format_unix_seconds;
use crscan_report::scan::{DEFAULT_IGNORE_FILES, IgnoreList};

use super::image_input;

/// The rules of the `given` files, or of the default files present in the working
/// directory when none is given.
pub fn load(given: &[PathBuf]) -> anyhow::Result<IgnoreList> {
    let mut list = IgnoreList::default();
    let implicit: Vec<PathBuf> = DEFAULT_IGNORE_FILES
        .iter()
        .map(PathBuf::from)
        .filter(|path| path.is_file())
        .collect();
    let files = if given.is_empty() {
        for path in &implicit {
            eprintln!(
                "reading ignore rules from {} in the working directory",
                path.display()
            );
        }
        &implicit[..]
    } else {
        given
    };
    for path in files {
        list.extend(read(path)?);
    }
    let today: String = format_unix_seconds(image_input::now_unix_seconds())
        .chars()
        .take(10)
        .collect();
    for (entry, why) in list.unusable() {
        eprintln!(
            "warning: ignore rule {} ({}) never applies: {why}",
            entry.line,
            entry.describe()
        );
    }
    for entry in list.expired(&today) {
        eprintln!(
            "warning: ignore entry {} (line {}) expired on {}; it no longer hides findings",
            entry.describe(),
            entry.line,
            entry.expires.as_deref().unwrap_or("")
        );
    }
    Ok(list)
}

fn read(path: &Path) -> anyhow::Result<IgnoreList> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read ignore file {}", path.display()))?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    IgnoreList::parse_file(&name, &text)
        .with_context(|| format!("cannot use ignore file {}", path.display()))
}
