//! Feed formats, each turned into [`Advisory`] values by its own module, and the
//! loader that reads files, folders and zip exports, recognises each file's format,
//! and reports every record that could not be used.
//!
//! Architecture invariant: wire types stay private to their module; a bad record
//! becomes a [`Diagnostic`] and never stops a load. Only a path that cannot be read
//! at all is an error.

mod alpine;
mod debian_json;
mod debian_list;
mod nodejs;
mod osv;
mod uct;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crscan_model::Diagnostic;
use serde::Serialize;

use crate::advisory::{Advisory, FeedKind};

/// Largest single feed file read (the Debian tracker JSON export is about 70 MiB).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Why a record could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("missing required field {0}")]
    Missing(&'static str),
    #[error("{0}")]
    Invalid(String),
    /// The record loads, but parts of it were skipped.
    #[error("parts skipped: {reason}")]
    Partial {
        advisory: Box<Advisory>,
        reason: String,
    },
}

/// What a file-level parser returns: the advisories, and the records it skipped.
#[derive(Debug, Default)]
pub struct FeedOutput {
    pub advisories: Vec<Advisory>,
    /// (record, reason) for every skipped record or part of one.
    pub problems: Vec<(String, String)>,
}

impl FeedOutput {
    fn problem(&mut self, record: impl Into<String>, reason: impl Into<String>) {
        self.problems.push((record.into(), reason.into()));
    }
}

/// Counts for one feed format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedCounts {
    /// Advisories loaded (after merging records with the same id).
    pub loaded: usize,
    /// Records (or parts of records) reported invalid.
    pub invalid: usize,
}

/// One source given to a load (a file, folder or download) and what came out of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// A short name (`golang-vulndb`, `osv-PyPI`).
    pub name: String,
    /// Where it came from: a path or a URL.
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Advisories this source contributed.
    pub record_count: usize,
    /// Records of this source reported invalid.
    pub invalid_count: usize,
}

/// The result of loading sources: advisories, counts, and diagnostics.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Advisories by (feed, id), merged when a feed repeats an id.
    advisories: BTreeMap<(String, String), Advisory>,
    pub counts: BTreeMap<FeedKind, FeedCounts>,
    pub sources: Vec<SourceInfo>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files passed over because they are not feed records (README, LICENSE).
    pub skipped_files: usize,
}

impl LoadReport {
    pub fn new() -> LoadReport {
        LoadReport::default()
    }

    /// The loaded advisories, sorted by feed and id.
    pub fn advisories(&self) -> impl Iterator<Item = &Advisory> {
        self.advisories.values()
    }

    pub fn advisory_count(&self) -> usize {
        self.advisories.len()
    }

    /// Consumes the report, returning the advisories sorted by feed and id.
    pub fn into_advisories(self) -> Vec<Advisory> {
        self.advisories.into_values().collect()
    }

    /// Total diagnostics (invalid records and parts of records).
    pub fn invalid_count(&self) -> usize {
        self.diagnostics.len()
    }

    /// Why a database built from this report would not be usable, one sentence per
    /// reason: no advisories at all, or a source that gave none (a feed that failed
    /// to load, or a path that holds no feed). Empty when every source gave
    /// advisories. `crscan db build` refuses such a report unless told to accept a
    /// partial database.
    pub fn unusable_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.advisories.is_empty() {
            reasons.push(if self.sources.is_empty() {
                "no feed was loaded, so the database would hold no advisories".to_owned()
            } else {
                "no advisories were loaded, so every scan would find nothing".to_owned()
            });
        }
        for source in &self.sources {
            if source.record_count == 0 {
                reasons.push(format!(
                    "feed {} ({}) gave no advisories ({} invalid records)",
                    source.name, source.location, source.invalid_count
                ));
            }
        }
        reasons
    }

    /// Loads a file or a folder (recursively), naming the source after its last
    /// path component. Unreadable paths are an error; bad records are diagnostics.
    pub fn load_path(&mut self, path: &Path) -> std::io::Result<()> {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.load_path_as(path, &name, None, None)
    }

    /// Like [`LoadReport::load_path`] with an explicit source name and the HTTP
    /// validators of a download.
    pub fn load_path_as(
        &mut self,
        path: &Path,
        source_name: &str,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> std::io::Result<()> {
        let before_records = self.advisories.len();
        let before_invalid = self.diagnostics.len();
        let metadata = std::fs::metadata(path)?;
        if metadata.is_dir() {
            let mut files = Vec::new();
            collect_files(path, &mut files)?;
            files.sort();
            for file in files {
                self.load_file(&file, source_name)?;
            }
        } else {
            self.load_file(path, source_name)?;
        }
        self.sources.push(SourceInfo {
            name: source_name.to_owned(),
            location: path.display().to_string(),
            etag,
            last_modified,
            record_count: self.advisories.len() - before_records,
            invalid_count: self.diagnostics.len() - before_invalid,
        });
        Ok(())
    }

    fn load_file(&mut self, path: &Path, source: &str) -> std::io::Result<()> {
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_documentation(&file_name) {
            self.skipped_files += 1;
            return Ok(());
        }
        let length = std::fs::metadata(path)?.len();
        let display = path.display().to_string();
        if length > MAX_FILE_BYTES {
            self.diagnose(
                source,
                &display,
                format!("file of {length} bytes is over the limit of {MAX_FILE_BYTES}"),
            );
            return Ok(());
        }
        let bytes = std::fs::read(path)?;
        if file_name.ends_with(".zip") {
            self.load_zip(&bytes, &display, source);
            return Ok(());
        }
        self.load_bytes(&display, &bytes, source);
        Ok(())
    }

    /// Loads every record of a zip export (osv.dev's `all.zip`); a truncated or
    /// corrupt archive keeps the entries read before the damage and reports the rest.
    pub fn load_zip(&mut self, bytes: &[u8], display: &str, source: &str) {
        let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
            Ok(archive) => archive,
            Err(error) => {
                self.diagnose(source, display, format!("unreadable zip archive: {error}"));
                return;
            }
        };
        for index in 0..archive.len() {
            let mut entry = match archive.by_index(index) {
                Ok(entry) => entry,
                Err(error) => {
                    self.diagnose(source, display, format!("zip entry {index}: {error}"));
                    continue;
                }
            };
            if entry.is_dir() {
                continue;
            }
            let inner_name = entry
                .name()
                .map(|name| name.into_owned())
                .unwrap_or_else(|_| format!("entry {index}"));
            let entry_name = format!("{display}!{inner_name}");
            if entry.size() > MAX_FILE_BYTES {
                self.diagnose(
                    source,
                    &entry_name,
                    format!("entry of {} bytes is over the limit", entry.size()),
                );
                continue;
            }
            let mut contents = Vec::new();
            if let Err(error) = entry
                .by_ref()
                .take(MAX_FILE_BYTES)
                .read_to_end(&mut contents)
            {
                self.diagnose(
                    source,
                    &entry_name,
                    format!("cannot read zip entry: {error}"),
                );
                continue;
            }
            drop(entry);
            let base = entry_name
                .rsplit('/')
                .next()
                .unwrap_or(&entry_name)
                .to_owned();
            if is_documentation(&base) {
                self.skipped_files += 1;
                continue;
            }
            self.load_bytes(&entry_name, &contents, source);
        }
    }

    /// Recognises the format of one file's bytes by its name and content, and loads
    /// its records.
    pub fn load_bytes(&mut self, display: &str, bytes: &[u8], source: &str) {
        let base = display.rsplit(['/', '!']).next().unwrap_or(display);
        let lower = base.to_ascii_lowercase();
        let parent_is_list_dir = display.contains("DSA/list")
            || display.contains("DLA/list")
            || display.contains("DTSA/list");
        if base == "list" && parent_is_list_dir {
            let text = String::from_utf8_lossy(bytes);
            let output = debian_list::parse(&text);
            self.take_output(FeedKind::DebianList, display, source, output);
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            if looks_like_secdb(bytes) {
                self.take_file_result(FeedKind::AlpineSecdb, display, source, alpine::parse(bytes));
            } else {
                self.take_record(FeedKind::Osv, display, source, osv::parse_yaml(bytes));
            }
        } else if lower.ends_with(".json") {
            self.load_json(display, bytes, source);
        } else if base.starts_with("CVE-") && !base.contains('.') {
            let text = String::from_utf8_lossy(bytes);
            self.take_file_result(
                FeedKind::UbuntuCveTracker,
                display,
                source,
                uct::parse(&text),
            );
        } else if bytes.starts_with(b"PK\x03\x04") {
            self.load_zip(bytes, display, source);
        } else if bytes.trim_ascii_start().starts_with(b"{") {
            self.load_json(display, bytes, source);
        } else {
            self.skipped_files += 1;
        }
    }

    fn load_json(&mut self, display: &str, bytes: &[u8], source: &str) {
        let head = &bytes[..bytes.len().min(4096)];
        let head_text = String::from_utf8_lossy(head);
        if head_text.contains("\"$schema\"") {
            // A JSON Schema (such as OSV's own) is documentation, not a record.
            self.skipped_files += 1;
        } else if head_text.contains("\"module_name\"")
            || head_text.contains("\"vulnerable_versions\"")
        {
            self.take_record(
                FeedKind::NodeSecurityWg,
                display,
                source,
                nodejs::parse(bytes),
            );
        } else if looks_like_secdb(head) {
            self.take_file_result(FeedKind::AlpineSecdb, display, source, alpine::parse(bytes));
        } else if head_text.contains("\"releases\"") && !head_text.contains("\"affected\"") {
            self.take_file_result(
                FeedKind::DebianJson,
                display,
                source,
                debian_json::parse(bytes),
            );
        } else if head_text.contains("\"id\"")
            || head_text.contains("\"affected\"")
            || head_text.contains("\"schema_version\"")
        {
            self.take_record(FeedKind::Osv, display, source, osv::parse_json(bytes));
        } else {
            self.diagnose(source, display, "unrecognised JSON: not an OSV, Alpine secdb, Debian tracker or Node Security WG record".to_owned());
            self.counts.entry(FeedKind::Osv).or_default().invalid += 1;
        }
    }

    fn take_record(
        &mut self,
        kind: FeedKind,
        display: &str,
        source: &str,
        result: Result<Advisory, RecordError>,
    ) {
        match result {
            Ok(advisory) => self.add(kind, advisory),
            Err(RecordError::Partial { advisory, reason }) => {
                self.diagnose(source, display, format!("{}: {reason}", advisory.id));
                self.counts.entry(kind).or_default().invalid += 1;
                self.add(kind, *advisory);
            }
            Err(error) => {
                self.diagnose(source, display, error.to_string());
                self.counts.entry(kind).or_default().invalid += 1;
            }
        }
    }

    fn take_file_result(
        &mut self,
        kind: FeedKind,
        display: &str,
        source: &str,
        result: Result<FeedOutput, RecordError>,
    ) {
        match result {
            Ok(output) => self.take_output(kind, display, source, output),
            Err(error) => {
                self.diagnose(source, display, error.to_string());
                self.counts.entry(kind).or_default().invalid += 1;
            }
        }
    }

    fn take_output(&mut self, kind: FeedKind, display: &str, source: &str, output: FeedOutput) {
        for (record, reason) in output.problems {
            self.diagnose(source, display, format!("{record}: {reason}"));
            self.counts.entry(kind).or_default().invalid += 1;
        }
        for advisory in output.advisories {
            self.add(kind, advisory);
        }
    }

    fn add(&mut self, kind: FeedKind, advisory: Advisory) {
        let key = (advisory.feed.clone(), advisory.id.clone());
        match self.advisories.get_mut(&key) {
            Some(existing) => existing.merge(advisory),
            None => {
                self.counts.entry(kind).or_default().loaded += 1;
                self.advisories.insert(key, advisory);
            }
        }
    }

    fn diagnose(&mut self, source: &str, path: &str, message: String) {
        self.diagnostics.push(Diagnostic {
            detector: format!("vulndb:{source}"),
            path: path.to_owned(),
            message,
        });
    }
}

fn looks_like_secdb(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    head.contains("distroversion")
}

/// Files that sit beside feed records and are not records.
fn is_documentation(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    lower.starts_with("readme")
        || lower.starts_with("license")
        || lower.starts_with("notice")
        || lower.starts_with("copying")
        || lower.ends_with(".md")
        || lower.ends_with(".txt")
        || lower.starts_with('.')
        || lower == "id-allocator"
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        let path = entry.path();
        if file_type.is_dir() {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                collect_files(&path, out)?;
            }
        } else if file_type.is_file() {
            out.push(path);
        }
    }
    Ok(())
}
