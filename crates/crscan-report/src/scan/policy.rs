//! What a scan shows, what it hides, and what counts towards `--fail-on`.
//!
//! Two things hide a finding: an entry of the ignore file that names it and has not
//! expired, and `--ignore-unfixed` when no fixed version is known. Hidden findings do
//! not count towards `--fail-on`. `--severity` only chooses which of the remaining
//! findings are shown; the exit status still counts all of them.
//!
//! The ignore file is text, one entry per line:
//!
//! ```text
//! # Lines starting with '#' are comments.
//! CVE-2019-11236
//! CVE-2020-26137 expires: 2030-01-01 reason: no untrusted URLs reach urllib3
//! GHSA-p6mc-m468-83gw reason: lodash is only used by the build
//! ```
//!
//! The first word is a vulnerability id; it matches a finding's id, any of its
//! aliases, or a matched advisory (`DSA-4444-1`). `expires: YYYY-MM-DD` makes the
//! entry stop hiding after that day; `reason:` takes the rest of the line.

use crscan_model::{Finding, FindingStatus, Severity, SeverityCounts};
use serde::Serialize;

/// A line of the ignore file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreFileError {
    #[error("ignore file line {line}: {message}")]
    Line { line: usize, message: String },
}

/// One entry of the ignore file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoreEntry {
    pub id: String,
    /// The last day the entry hides its finding, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The line number in the file, from 1.
    pub line: usize,
}

impl IgnoreEntry {
    /// Whether the entry has expired on `today` (`YYYY-MM-DD`).
    pub fn is_expired(&self, today: &str) -> bool {
        self.expires
            .as_deref()
            .is_some_and(|expires| today > expires)
    }
}

/// The entries of an ignore file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    pub entries: Vec<IgnoreEntry>,
}

impl IgnoreList {
    /// Reads the text format described in the module documentation.
    pub fn parse(text: &str) -> Result<IgnoreList, IgnoreFileError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let error = |message: String| IgnoreFileError::Line { line, message };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (id, mut rest) = trimmed
                .split_once(char::is_whitespace)
                .unwrap_or((trimmed, ""));
            let mut entry = IgnoreEntry {
                id: id.to_owned(),
                expires: None,
                reason: None,
                line,
            };
            loop {
                rest = rest.trim_start();
                if rest.is_empty() {
                    break;
                }
                if let Some(after) = rest.strip_prefix("expires:") {
                    let after = after.trim_start();
                    let (date, remainder) =
                        after.split_once(char::is_whitespace).unwrap_or((after, ""));
                    if !is_date(date) {
                        return Err(error(format!(
                            "expiry date {date:?} is not a date written YYYY-MM-DD"
                        )));
                    }
                    entry.expires = Some(date.to_owned());
                    rest = remainder;
                } else if let Some(after) = rest.strip_prefix("reason:") {
                    let reason = after.trim();
                    if !reason.is_empty() {
                        entry.reason = Some(reason.to_owned());
                    }
                    break;
                } else {
                    let word = rest.split_whitespace().next().unwrap_or(rest);
                    return Err(error(format!(
                        "unexpected {word:?} after the id {id:?} (expected `expires: YYYY-MM-DD` or `reason: TEXT`)"
                    )));
                }
            }
            entries.push(entry);
        }
        Ok(IgnoreList { entries })
    }

    /// The first entry naming `finding` that is still in force on `today`.
    pub fn hiding(&self, finding: &Finding, today: &str) -> Option<&IgnoreEntry> {
        self.entries
            .iter()
            .find(|entry| finding.is_named(&entry.id) && !entry.is_expired(today))
    }

    /// Entries that have expired on `today`.
    pub fn expired(&self, today: &str) -> Vec<&IgnoreEntry> {
        self.entries
            .iter()
            .filter(|entry| entry.is_expired(today))
            .collect()
    }
}

/// Whether `text` is a calendar date `YYYY-MM-DD` (Gregorian, leap years included).
fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

/// Why a finding was hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum IgnoreCause {
    /// An entry of the ignore file names it.
    IgnoreFile {
        entry: String,
        line: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `--ignore-unfixed` and no fixed version is known.
    Unfixed,
}

/// A finding hidden from the report, with the cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IgnoredFinding {
    pub id: String,
    pub package_name: String,
    pub installed_version: String,
    pub severity: Severity,
    pub cause: IgnoreCause,
}

/// The choices of `--severity`, `--ignore-unfixed` and `--ignore-file`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Severities to show; empty shows all.
    pub severities: Vec<Severity>,
    pub ignore_unfixed: bool,
    pub ignore: IgnoreList,
    /// The caller's date, `YYYY-MM-DD` (UTC), for expiry.
    pub today: String,
}

/// The findings split by a [`Policy`].
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Findings to show.
    pub shown: Vec<Finding>,
    /// Findings hidden by the ignore file or `--ignore-unfixed`.
    pub ignored: Vec<IgnoredFinding>,
    /// Findings not ignored, counted per level whether shown or not.
    pub counted: SeverityCounts,
}

impl Outcome {
    /// Whether a finding at `threshold` or more severe was counted.
    pub fn fails(&self, threshold: Severity) -> bool {
        Severity::ALL
            .into_iter()
            .any(|severity| severity <= threshold && self.counted.get(severity) > 0)
    }
}

impl Policy {
    /// Splits `findings` into shown, hidden, and counted.
    pub fn apply(&self, findings: Vec<Finding>) -> Outcome {
        let mut shown = Vec::new();
        let mut ignored = Vec::new();
        let mut kept_severities = Vec::new();
        for finding in findings {
            let cause = if let Some(entry) = self.ignore.hiding(&finding, &self.today) {
                Some(IgnoreCause::IgnoreFile {
                    entry: entry.id.clone(),
                    line: entry.line,
                    expires: entry.expires.clone(),
                    reason: entry.reason.clone(),
                })
            } else if self.ignore_unfixed
                && (finding.status != FindingStatus::Fixed || finding.fixed_by.is_none())
            {
                Some(IgnoreCause::Unfixed)
            } else {
                None
            };
            if let Some(cause) = cause {
                ignored.push(IgnoredFinding {
                    id: finding.id.clone(),
                    package_name: finding.package_name.clone(),
                    installed_version: finding.installed_version.clone(),
                    severity: finding.severity,
                    cause,
                });
                continue;
            }
            kept_severities.push(finding.severity);
            if self.severities.is_empty() || self.severities.contains(&finding.severity) {
                shown.push(finding);
            }
        }
        Outcome {
            shown,
            ignored,
            counted: SeverityCounts::of(kept_severities),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crscan_model::{PackageType, SeveritySource};

    fn finding(id: &str, severity: Severity, fixed_by: Option<&str>) -> Finding {
        Finding {
            id: id.to_owned(),
            aliases: vec![format!("GHSA-{id}")],
            advisories: vec![format!("PYSEC-{id}")],
            references: Vec::new(),
            summary: None,
            description: None,
            severity,
            severity_source: SeveritySource::None,
            cvss: None,
            package_name: "urllib3".to_owned(),
            source_package: None,
            installed_version: "1.24.1".to_owned(),
            fixed_by: fixed_by.map(str::to_owned),
            status: if fixed_by.is_some() {
                FindingStatus::Fixed
            } else {
                FindingStatus::NotFixedYet
            },
            package_type: PackageType::Pypi,
            ecosystem: "PyPI".to_owned(),
            purl: "pkg:pypi/urllib3@1.24.1".to_owned(),
            binary_packages: Vec::new(),
            layer_digest: None,
            locations: Vec::new(),
            advisory_link: None,
        }
    }

    #[test]
    fn reads_the_ignore_format() {
        let list = IgnoreList::parse(
            "# comment\n\nCVE-1\nCVE-2 expires: 2024-02-29 reason: not reachable: really\n\
             CVE-3 reason: only a reason\n",
        )
        .unwrap();
        assert_eq!(list.entries.len(), 3);
        assert_eq!(list.entries[0].id, "CVE-1");
        assert_eq!(list.entries[1].expires.as_deref(), Some("2024-02-29"));
        assert_eq!(
            list.entries[1].reason.as_deref(),
            Some("not reachable: really")
        );
        assert_eq!(list.entries[1].line, 4);
        assert_eq!(list.entries[2].expires, None);
    }

    #[test]
    fn rejects_bad_dates_and_words() {
        for text in [
            "CVE-1 expires: 2023-02-29",
            "CVE-1 expires: 2024-13-01",
            "CVE-1 expires: tomorrow",
            "CVE-1 because",
        ] {
            let error = IgnoreList::parse(text).unwrap_err();
            assert!(
                error.to_string().starts_with("ignore file line 1:"),
                "{error}"
            );
        }
    }

    #[test]
    fn expired_entries_stop_hiding() {
        let policy = Policy {
            ignore: IgnoreList::parse("GHSA-A expires: 2024-01-31\nPYSEC-B expires: 2024-02-01\n")
                .unwrap(),
            today: "2024-02-01".to_owned(),
            ..Policy::default()
        };
        let outcome = policy.apply(vec![
            finding("A", Severity::High, Some("2")),
            finding("B", Severity::Low, Some("2")),
        ]);
        assert_eq!(outcome.shown.len(), 1);
        assert_eq!(outcome.shown[0].id, "A");
        assert_eq!(outcome.ignored.len(), 1);
        assert_eq!(outcome.ignored[0].id, "B");
        assert!(outcome.fails(Severity::High));
        assert!(!outcome.fails(Severity::Critical));
    }

    #[test]
    fn severity_filter_does_not_change_what_counts() {
        let policy = Policy {
            severities: vec![Severity::Low],
            ignore_unfixed: true,
            today: "2024-01-01".to_owned(),
            ..Policy::default()
        };
        let outcome = policy.apply(vec![
            finding("A", Severity::Critical, Some("2")),
            finding("B", Severity::Low, Some("2")),
            finding("C", Severity::Critical, None),
        ]);
        assert_eq!(outcome.shown.len(), 1);
        assert_eq!(outcome.counted.critical, 1);
        assert_eq!(outcome.ignored[0].cause, IgnoreCause::Unfixed);
        assert!(outcome.fails(Severity::Critical));
    }
}
