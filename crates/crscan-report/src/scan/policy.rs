//! What a scan shows, what it hides, and what makes it fail.
//!
//! Two things hide a finding: an ignore rule that applies to it and has not expired,
//! and `--ignore-unfixed` when no fixed version is known. Hidden findings never count.
//! `--severity` chooses which of the remaining findings are shown. The exit status
//! ([`ExitRule`]): with `--fail-on LEVEL`, every finding not hidden at that level or
//! above counts, whatever `--severity` shows; with `--exit-code N` alone, as in Trivy,
//! every finding shown counts (so `--severity` narrows it).
//!
//! Ignore rules come in four formats, recognised by [`IgnoreFileKind::detect`]: crscan's
//! own text format, Trivy's `.trivyignore` and `.trivyignore.yaml`, and the `ignore:`
//! list of Grype's `.grype.yaml`. crscan's own format is text, one entry per line:
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
//!
//! Trivy's text format (<https://trivy.dev/latest/docs/configuration/filtering/>) is one
//! id per line, `#` comments, and an optional `exp:YYYY-MM-DD` word after the id (other
//! words are ignored, as Trivy does); `exp:` is the day the entry stops hiding. Its YAML
//! form lists `vulnerabilities:` with `id`, `paths` (globs over the files the package
//! was found in), `purls`, `expired_at` and `statement`; the other lists (misconfigurations,
//! secrets, licenses) have no findings here to hide.
//!
//! A Grype rule (<https://github.com/anchore/grype#specifying-matches-to-ignore>) applies
//! when every field it gives matches: `vulnerability`, `fix-state` (`fixed`, `not-fixed`,
//! `wont-fix`, `unknown`), and `package` with `name`, `version`, `type` (Grype's package
//! types: `deb`, `apk`, `rpm`, `python`, `npm`, `rust-crate`, `go-module`,
//! `java-archive`, `gem`, `php-composer`, `dotnet`), `language`, `location` (a glob) and
//! `upstream-name` (the source package). A finding's aliases count as its ids, as with
//! Grype's `include-aliases`, because crscan merges aliases into one finding. Package
//! names are compared literally, not as Grype's regular expressions. A rule with a field
//! crscan cannot evaluate (`namespace`, `match-type`, `vex-status`) never applies, with a
//! warning.

use crscan_model::{Finding, FindingStatus, PackageType, Severity, SeverityCounts};
use serde::{Deserialize, Serialize};

/// A part of an ignore file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreFileError {
    #[error("ignore file line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("ignore file is not the YAML of a {format} file: {message}")]
    Yaml {
        format: &'static str,
        message: String,
    },
    #[error("ignore rule {rule} of the {format} file: {message}")]
    Rule {
        format: &'static str,
        rule: usize,
        message: String,
    },
    #[error(
        "a YAML ignore file needs Grype's `ignore:` list or Trivy's `vulnerabilities:` list, and this one has neither"
    )]
    UnknownYaml,
}

/// The formats of ignore files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreFileKind {
    /// crscan's own text format (module documentation).
    Native,
    /// Trivy's `.trivyignore`.
    TrivyText,
    /// Trivy's `.trivyignore.yaml`.
    TrivyYaml,
    /// The `ignore:` list of Grype's `.grype.yaml`.
    Grype,
}

/// The ignore files `crscan scan` reads from the working directory when no
/// `--ignore-file` is given, in this order.
pub const DEFAULT_IGNORE_FILES: [&str; 4] = [
    ".trivyignore",
    ".trivyignore.yaml",
    ".grype.yaml",
    ".grype.yml",
];

impl IgnoreFileKind {
    /// Recognises a file by its name (`.trivyignore`, `*.yaml` naming trivy or grype),
    /// else by its content: YAML with a top-level `ignore:` is Grype's, with
    /// `vulnerabilities:` Trivy's; text with an `exp:` word is Trivy's; anything else is
    /// crscan's own format.
    pub fn detect(file_name: &str, text: &str) -> IgnoreFileKind {
        let name = file_name.to_ascii_lowercase();
        let yaml_name = name.ends_with(".yaml") || name.ends_with(".yml");
        if yaml_name && name.contains("grype") {
            return IgnoreFileKind::Grype;
        }
        if yaml_name && name.contains("trivy") {
            return IgnoreFileKind::TrivyYaml;
        }
        if !yaml_name && name.contains("trivyignore") {
            return IgnoreFileKind::TrivyText;
        }
        let top_level = |key: &str| {
            text.lines().any(|line| {
                line.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with(':'))
            })
        };
        if top_level("ignore") {
            return IgnoreFileKind::Grype;
        }
        if top_level("vulnerabilities") {
            return IgnoreFileKind::TrivyYaml;
        }
        if yaml_name {
            // Neither list: parsing says so.
            return IgnoreFileKind::Grype;
        }
        let trivy_words = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .any(|line| line.split_whitespace().any(|word| word.starts_with("exp:")));
        if trivy_words {
            IgnoreFileKind::TrivyText
        } else {
            IgnoreFileKind::Native
        }
    }

    /// The format's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            IgnoreFileKind::Native => "crscan ignore",
            IgnoreFileKind::TrivyText => ".trivyignore",
            IgnoreFileKind::TrivyYaml => ".trivyignore.yaml",
            IgnoreFileKind::Grype => "Grype configuration",
        }
    }
}

/// What a rule asks of the package and the fix, beyond the vulnerability id (Grype's
/// `package` and `fix-state`, Trivy's `paths` and `purls`). Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageCriteria {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Grype's package type (`deb`, `python`, `java-archive`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grype_type: Option<String>,
    /// Grype's language (`python`, `java`, `go`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The source package (Grype's `upstream-name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_name: Option<String>,
    /// Globs over the files the package was found in; any one matching is enough.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// Package URLs; any one matching is enough (type, namespace and name; version and
    /// qualifiers when the pattern has them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub purls: Vec<String>,
    /// Grype's fix state: `fixed`, `not-fixed`, `wont-fix` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_state: Option<String>,
}

impl PackageCriteria {
    fn is_empty(&self) -> bool {
        *self == PackageCriteria::default()
    }

    fn matches(&self, finding: &Finding) -> bool {
        let equal = |wanted: &Option<String>, actual: &str| {
            wanted.as_deref().is_none_or(|wanted| wanted == actual)
        };
        equal(&self.name, &finding.package_name)
            && equal(&self.version, &finding.installed_version)
            && equal(&self.grype_type, grype_type(finding.package_type))
            && equal(&self.language, grype_language(finding.package_type))
            && self.upstream_name.as_deref().is_none_or(|wanted| {
                finding
                    .source_package
                    .as_deref()
                    .unwrap_or(&finding.package_name)
                    == wanted
            })
            && (self.locations.is_empty()
                || self.locations.iter().any(|pattern| {
                    finding
                        .locations
                        .iter()
                        .any(|location| path_matches(pattern, location))
                }))
            && (self.purls.is_empty()
                || self
                    .purls
                    .iter()
                    .any(|pattern| purl_matches(pattern, &finding.purl)))
            && equal(&self.fix_state, grype_fix_state(finding.status))
    }
}

/// One ignore rule: an entry of crscan's or Trivy's format, or a Grype rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoreEntry {
    /// The vulnerability id the rule names; `None` for a Grype rule that names only a
    /// package or a fix state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The last day the entry hides its finding, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The line in a text file, or the rule's position in a YAML list, from 1.
    pub line: usize,
    #[serde(skip_serializing_if = "PackageCriteria::is_empty")]
    pub criteria: PackageCriteria,
    /// Why the rule can never apply (a field crscan cannot evaluate).
    #[serde(skip)]
    pub unusable: Option<String>,
}

impl IgnoreEntry {
    fn with_id(id: &str, line: usize) -> IgnoreEntry {
        IgnoreEntry {
            id: Some(id.to_owned()),
            expires: None,
            reason: None,
            line,
            criteria: PackageCriteria::default(),
            unusable: None,
        }
    }

    /// Whether the entry has expired on `today` (`YYYY-MM-DD`).
    pub fn is_expired(&self, today: &str) -> bool {
        self.expires
            .as_deref()
            .is_some_and(|expires| today > expires)
    }

    /// Whether the rule applies to `finding` (expiry aside).
    pub fn applies_to(&self, finding: &Finding) -> bool {
        self.unusable.is_none()
            && self.id.as_deref().is_none_or(|id| finding.is_named(id))
            && self.criteria.matches(finding)
    }

    /// What the rule names, for messages and reports: the id, else its package fields.
    pub fn describe(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        let criteria = &self.criteria;
        let mut parts = Vec::new();
        for (field, value) in [
            ("package", &criteria.name),
            ("version", &criteria.version),
            ("type", &criteria.grype_type),
            ("language", &criteria.language),
            ("upstream", &criteria.upstream_name),
            ("fix-state", &criteria.fix_state),
        ] {
            if let Some(value) = value {
                parts.push(format!("{field} {value}"));
            }
        }
        for location in &criteria.locations {
            parts.push(format!("location {location}"));
        }
        for purl in &criteria.purls {
            parts.push(format!("purl {purl}"));
        }
        parts.join(", ")
    }
}

/// The rules of one or more ignore files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    pub entries: Vec<IgnoreEntry>,
}

impl IgnoreList {
    /// Reads an ignore file of any of the four formats, recognised by
    /// [`IgnoreFileKind::detect`] from its name and content.
    pub fn parse_file(file_name: &str, text: &str) -> Result<IgnoreList, IgnoreFileError> {
        match IgnoreFileKind::detect(file_name, text) {
            IgnoreFileKind::Native => IgnoreList::parse(text),
            IgnoreFileKind::TrivyText => IgnoreList::parse_trivy(text),
            IgnoreFileKind::TrivyYaml => IgnoreList::parse_trivy_yaml(text),
            IgnoreFileKind::Grype => IgnoreList::parse_grype(text),
        }
    }

    /// Adds the rules of another file.
    pub fn extend(&mut self, other: IgnoreList) {
        self.entries.extend(other.entries);
    }

    /// Rules that can never apply, with the reason.
    pub fn unusable(&self) -> Vec<(&IgnoreEntry, &str)> {
        self.entries
            .iter()
            .filter_map(|entry| entry.unusable.as_deref().map(|why| (entry, why)))
            .collect()
    }

    /// Reads Trivy's `.trivyignore`: an id per line, `#` comments, `exp:YYYY-MM-DD`.
    pub fn parse_trivy(text: &str) -> Result<IgnoreList, IgnoreFileError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut words = trimmed.split_whitespace();
            let Some(id) = words.next() else { continue };
            let mut entry = IgnoreEntry::with_id(id, line);
            if let Some(date) = words.find_map(|word| word.strip_prefix("exp:")) {
                entry.expires =
                    Some(last_day_before(date).ok_or_else(|| IgnoreFileError::Line {
                        line,
                        message: format!("expiry date {date:?} is not a date written YYYY-MM-DD"),
                    })?);
            }
            entries.push(entry);
        }
        Ok(IgnoreList { entries })
    }

    /// Reads Trivy's `.trivyignore.yaml` (its `vulnerabilities:` list).
    pub fn parse_trivy_yaml(text: &str) -> Result<IgnoreList, IgnoreFileError> {
        const FORMAT: &str = ".trivyignore.yaml";
        let document: TrivyYaml =
            serde_norway::from_str(text).map_err(|error| IgnoreFileError::Yaml {
                format: FORMAT,
                message: error.to_string(),
            })?;
        let mut entries = Vec::new();
        for (index, finding) in document
            .vulnerabilities
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let rule = index + 1;
            let error = |message: String| IgnoreFileError::Rule {
                format: FORMAT,
                rule,
                message,
            };
            let id = finding
                .id
                .filter(|id| !id.trim().is_empty())
                .ok_or_else(|| error("it has no `id`".to_owned()))?;
            let mut entry = IgnoreEntry::with_id(id.trim(), rule);
            if let Some(expired_at) = finding.expired_at {
                // A timestamp counts from its day.
                let date = expired_at.get(..10).unwrap_or(&expired_at);
                entry.expires = Some(last_day_before(date).ok_or_else(|| {
                    error(format!(
                        "expired_at {expired_at:?} is not a date written YYYY-MM-DD"
                    ))
                })?);
            }
            entry.reason = finding.statement.filter(|statement| !statement.is_empty());
            entry.criteria.locations = finding.paths.unwrap_or_default();
            entry.criteria.purls = finding.purls.unwrap_or_default();
            for purl in &entry.criteria.purls {
                if split_purl(purl).is_none() {
                    return Err(error(format!(
                        "{purl:?} is not a package URL (pkg:TYPE/NAME)"
                    )));
                }
            }
            entries.push(entry);
        }
        Ok(IgnoreList { entries })
    }

    /// Reads the `ignore:` list of a Grype configuration file.
    pub fn parse_grype(text: &str) -> Result<IgnoreList, IgnoreFileError> {
        const FORMAT: &str = "Grype configuration";
        let value: serde_norway::Value =
            serde_norway::from_str(text).map_err(|error| IgnoreFileError::Yaml {
                format: FORMAT,
                message: error.to_string(),
            })?;
        let has_key = |key: &str| value.as_mapping().is_some_and(|map| map.contains_key(key));
        if !has_key("ignore") {
            return Err(IgnoreFileError::UnknownYaml);
        }
        let document: GrypeConfig =
            serde_norway::from_value(value).map_err(|error| IgnoreFileError::Yaml {
                format: FORMAT,
                message: error.to_string(),
            })?;
        let mut entries = Vec::new();
        for (index, rule) in document.ignore.unwrap_or_default().into_iter().enumerate() {
            let package = rule.package.unwrap_or_default();
            let nonempty = |value: Option<String>| value.filter(|value| !value.is_empty());
            let mut entry = IgnoreEntry {
                id: nonempty(rule.vulnerability),
                expires: None,
                reason: nonempty(rule.reason),
                line: index + 1,
                criteria: PackageCriteria {
                    name: nonempty(package.name),
                    version: nonempty(package.version),
                    grype_type: nonempty(package.package_type),
                    language: nonempty(package.language),
                    upstream_name: nonempty(package.upstream_name),
                    locations: nonempty(package.location).into_iter().collect(),
                    purls: Vec::new(),
                    fix_state: nonempty(rule.fix_state),
                },
                unusable: None,
            };
            let unevaluable: Vec<&str> = [
                ("namespace", &rule.namespace),
                ("match-type", &rule.match_type),
                ("vex-status", &rule.vex_status),
            ]
            .into_iter()
            .filter(|(_, value)| value.as_deref().is_some_and(|value| !value.is_empty()))
            .map(|(field, _)| field)
            .collect();
            if !unevaluable.is_empty() {
                entry.unusable = Some(format!(
                    "it uses {}, which crscan cannot evaluate",
                    unevaluable.join(" and ")
                ));
            } else if entry.id.is_none() && entry.criteria.is_empty() {
                entry.unusable = Some("it gives no field to match".to_owned());
            }
            entries.push(entry);
        }
        Ok(IgnoreList { entries })
    }

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
            let mut entry = IgnoreEntry::with_id(id, line);
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

    /// The first rule applying to `finding` that is still in force on `today`.
    pub fn hiding(&self, finding: &Finding, today: &str) -> Option<&IgnoreEntry> {
        self.entries
            .iter()
            .find(|entry| entry.applies_to(finding) && !entry.is_expired(today))
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

/// The day before `date` (`YYYY-MM-DD`), the last day a Trivy entry that expires at
/// the start of `date` still hides; `None` when `date` is not a calendar date.
fn last_day_before(date: &str) -> Option<String> {
    if !is_date(date) {
        return None;
    }
    let year: u32 = date[0..4].parse().ok()?;
    let month: u32 = date[5..7].parse().ok()?;
    let day: u32 = date[8..10].parse().ok()?;
    let (year, month, day) = match (month, day) {
        (1, 1) => (year.checked_sub(1)?, 12, 31),
        (_, 1) => {
            let previous = month - 1;
            let last = (28..=31)
                .rev()
                .find(|day| is_date(&format!("{year:04}-{previous:02}-{day:02}")))?;
            (year, previous, last)
        }
        _ => (year, month, day - 1),
    };
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// Grype's name for a package type.
fn grype_type(package_type: PackageType) -> &'static str {
    match package_type {
        PackageType::Deb => "deb",
        PackageType::Apk => "apk",
        PackageType::Rpm => "rpm",
        PackageType::Pypi => "python",
        PackageType::Npm => "npm",
        PackageType::Cargo => "rust-crate",
        PackageType::Golang => "go-module",
        PackageType::Maven => "java-archive",
        PackageType::Gem => "gem",
        PackageType::Composer => "php-composer",
        PackageType::Nuget => "dotnet",
    }
}

/// Grype's language of a package type (empty for OS packages).
fn grype_language(package_type: PackageType) -> &'static str {
    match package_type {
        PackageType::Deb | PackageType::Apk | PackageType::Rpm => "",
        PackageType::Pypi => "python",
        PackageType::Npm => "javascript",
        PackageType::Cargo => "rust",
        PackageType::Golang => "go",
        PackageType::Maven => "java",
        PackageType::Gem => "ruby",
        PackageType::Composer => "php",
        PackageType::Nuget => "dotnet",
    }
}

/// Grype's fix state of a finding.
fn grype_fix_state(status: FindingStatus) -> &'static str {
    match status {
        FindingStatus::Fixed => "fixed",
        FindingStatus::NotFixedYet => "not-fixed",
        FindingStatus::WillNotFix => "wont-fix",
        FindingStatus::NotAffected => "unknown",
    }
}

/// Whether a glob (`*` within a path segment, `**` across segments, `?` one character)
/// matches a path; a leading `/` on either side is not significant, since tools write
/// image paths both ways.
fn path_matches(pattern: &str, path: &str) -> bool {
    glob(
        pattern.trim_start_matches('/').as_bytes(),
        path.trim_start_matches('/').as_bytes(),
    )
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => {
            // `**/` may also match no directory at all.
            if let [b'/', after @ ..] = rest
                && glob(after, text)
            {
                return true;
            }
            (0..=text.len()).any(|skip| glob(rest, &text[skip..]))
        }
        [b'*', rest @ ..] => {
            let segment = text
                .iter()
                .position(|&byte| byte == b'/')
                .unwrap_or(text.len());
            (0..=segment).any(|skip| glob(rest, &text[skip..]))
        }
        [b'?', rest @ ..] => {
            matches!(text, [first, tail @ ..] if *first != b'/' && glob(rest, tail))
        }
        [expected, rest @ ..] => {
            matches!(text, [first, tail @ ..] if first == expected && glob(rest, tail))
        }
    }
}

/// The parts of a package URL that ignore rules compare.
#[derive(Debug, PartialEq, Eq)]
struct PurlParts {
    package_type: String,
    /// The namespace and name, as written (`debian/openssl`).
    name: String,
    version: Option<String>,
    qualifiers: Vec<(String, String)>,
}

/// Splits `pkg:type/namespace/name@version?qualifiers#subpath` into its parts.
fn split_purl(purl: &str) -> Option<PurlParts> {
    let rest = purl.strip_prefix("pkg:")?;
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (rest, qualifiers) = match rest.split_once('?') {
        Some((before, qualifiers)) => (before, qualifiers),
        None => (rest, ""),
    };
    let (path, version) = match rest.rsplit_once('@') {
        Some((path, version)) if !path.contains('@') || path.contains('/') => {
            (path, Some(version.to_owned()))
        }
        _ => (rest, None),
    };
    let (package_type, name) = path.trim_matches('/').split_once('/')?;
    if package_type.is_empty() || name.is_empty() {
        return None;
    }
    let qualifiers = qualifiers
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    Some(PurlParts {
        package_type: package_type.to_ascii_lowercase(),
        name: name.to_owned(),
        version,
        qualifiers,
    })
}

/// Whether a purl pattern matches a finding's purl: same type, namespace and name;
/// the same version and qualifier values where the pattern gives them.
fn purl_matches(pattern: &str, purl: &str) -> bool {
    let (Some(wanted), Some(actual)) = (split_purl(pattern), split_purl(purl)) else {
        return false;
    };
    wanted.package_type == actual.package_type
        && wanted.name == actual.name
        && wanted
            .version
            .as_ref()
            .is_none_or(|version| Some(version) == actual.version.as_ref())
        && wanted
            .qualifiers
            .iter()
            .all(|qualifier| actual.qualifiers.contains(qualifier))
}

/// `.trivyignore.yaml`, as Trivy reads it (`pkg/result/ignore.go`).
#[derive(Debug, Deserialize)]
struct TrivyYaml {
    #[serde(default)]
    vulnerabilities: Option<Vec<TrivyIgnoreFinding>>,
}

#[derive(Debug, Deserialize)]
struct TrivyIgnoreFinding {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    purls: Option<Vec<String>>,
    #[serde(default)]
    expired_at: Option<String>,
    #[serde(default)]
    statement: Option<String>,
}

/// The part of a Grype configuration crscan reads: the `ignore:` rules.
#[derive(Debug, Deserialize)]
struct GrypeConfig {
    #[serde(default)]
    ignore: Option<Vec<GrypeRule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct GrypeRule {
    #[serde(default)]
    vulnerability: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    fix_state: Option<String>,
    #[serde(default)]
    package: Option<GrypePackage>,
    #[serde(default)]
    vex_status: Option<String>,
    #[serde(default)]
    match_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct GrypePackage {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default, rename = "type")]
    package_type: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    upstream_name: Option<String>,
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

    /// The exit status `rule` gives this outcome.
    pub fn exit_status(&self, rule: ExitRule) -> u8 {
        match (rule.fail_on, rule.exit_code) {
            (Some(threshold), code) if self.fails(threshold) => code.unwrap_or(1),
            (None, Some(code)) if !self.shown.is_empty() => code,
            _ => 0,
        }
    }
}

/// When a scan fails: `--fail-on` and `--exit-code` (with `--severity` through what
/// is shown).
///
/// - `--fail-on LEVEL`: exit with `--exit-code` (default 1) when a finding not hidden
///   is at LEVEL or above, whether `--severity` shows it or not.
/// - `--exit-code N` alone, as in Trivy: exit N when any finding is shown, so
///   `--severity HIGH,CRITICAL --exit-code 1` fails only on HIGH and CRITICAL.
/// - neither: 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitRule {
    pub fail_on: Option<Severity>,
    pub exit_code: Option<u8>,
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
                    entry: entry.describe(),
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
    use crscan_model::SeveritySource;

    use super::*;

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
        assert_eq!(list.entries[0].id.as_deref(), Some("CVE-1"));
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

    #[test]
    fn recognises_the_four_formats() {
        use IgnoreFileKind::{Grype, Native, TrivyText, TrivyYaml};
        assert_eq!(IgnoreFileKind::detect(".trivyignore", "CVE-1\n"), TrivyText);
        assert_eq!(
            IgnoreFileKind::detect("ci/.trivyignore", "CVE-1\n"),
            TrivyText
        );
        assert_eq!(IgnoreFileKind::detect(".trivyignore.yaml", ""), TrivyYaml);
        assert_eq!(IgnoreFileKind::detect(".grype.yaml", ""), Grype);
        assert_eq!(IgnoreFileKind::detect("grype.yml", ""), Grype);
        assert_eq!(
            IgnoreFileKind::detect("rules.yaml", "ignore:\n  - vulnerability: CVE-1\n"),
            Grype
        );
        assert_eq!(
            IgnoreFileKind::detect("rules", "vulnerabilities:\n  - id: CVE-1\n"),
            TrivyYaml
        );
        assert_eq!(
            IgnoreFileKind::detect("accepted.txt", "CVE-1 exp:2030-01-01\n"),
            TrivyText
        );
        assert_eq!(
            IgnoreFileKind::detect("accepted.txt", "CVE-1 expires: 2030-01-01\n"),
            Native
        );
        assert_eq!(
            IgnoreList::parse_file("x.yaml", "output: json\n").unwrap_err(),
            IgnoreFileError::UnknownYaml
        );
    }

    #[test]
    fn trivy_text_entries_expire_at_the_start_of_their_day() {
        let list = IgnoreList::parse_file(
            ".trivyignore",
            "# accepted\nGHSA-A exp:2024-03-01 # until the upgrade\n\nPYSEC-B\n",
        )
        .unwrap();
        assert_eq!(list.entries.len(), 2);
        assert_eq!(list.entries[0].expires.as_deref(), Some("2024-02-29"));
        assert_eq!(list.entries[0].line, 2);
        assert_eq!(list.entries[1].expires, None);
        let findings = || {
            vec![
                finding("A", Severity::High, Some("2")),
                finding("B", Severity::Low, Some("2")),
            ]
        };
        let on = |today: &str| {
            Policy {
                ignore: list.clone(),
                today: today.to_owned(),
                ..Policy::default()
            }
            .apply(findings())
        };
        assert_eq!(on("2024-02-29").ignored.len(), 2);
        let expired = on("2024-03-01");
        assert_eq!(expired.ignored.len(), 1);
        assert_eq!(expired.shown[0].id, "A");
        for (date, previous) in [("2024-01-01", "2023-12-31"), ("2023-03-01", "2023-02-28")] {
            assert_eq!(last_day_before(date).as_deref(), Some(previous));
        }
        let error = IgnoreList::parse_trivy("CVE-1 exp:2024-02-30\n").unwrap_err();
        assert!(error.to_string().contains("2024-02-30"), "{error}");
    }

    #[test]
    fn trivy_yaml_matches_ids_paths_and_purls() {
        let list = IgnoreList::parse_file(
            ".trivyignore.yaml",
            "vulnerabilities:\n\
             - id: GHSA-A\n\
             \x20 paths:\n\
             \x20   - \"usr/local/lib/**/urllib3/**\"\n\
             \x20 statement: vendored copy only\n\
             - id: PYSEC-B\n\
             \x20 purls:\n\
             \x20   - pkg:pypi/urllib3\n\
             \x20 expired_at: 2030-01-01\n\
             - id: C\n\
             \x20 purls: [\"pkg:pypi/urllib3@9.9\"]\n\
             misconfigurations:\n\
             - id: AVD-DS-0002\n",
        )
        .unwrap();
        assert_eq!(list.entries.len(), 3);
        assert_eq!(list.entries[1].expires.as_deref(), Some("2029-12-31"));
        let mut in_site = finding("A", Severity::High, Some("2"));
        in_site.locations =
            vec!["/usr/local/lib/python3.11/site-packages/urllib3/__init__.py".to_owned()];
        let mut elsewhere = finding("A", Severity::High, Some("2"));
        elsewhere.locations = vec!["/opt/app/urllib3/__init__.py".to_owned()];
        let outcome = Policy {
            ignore: list,
            today: "2024-01-01".to_owned(),
            ..Policy::default()
        }
        .apply(vec![
            in_site,
            elsewhere,
            finding("B", Severity::Low, Some("2")),
            finding("C", Severity::Low, Some("2")),
        ]);
        let ignored: Vec<&str> = outcome.ignored.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ignored, ["A", "B"]);
        assert_eq!(
            outcome.shown.len(),
            2,
            "the other path and the other version stay"
        );
        assert!(matches!(
            &outcome.ignored[0].cause,
            IgnoreCause::IgnoreFile { reason: Some(reason), .. } if reason == "vendored copy only"
        ));
        assert!(IgnoreList::parse_trivy_yaml("vulnerabilities:\n- paths: [x]\n").is_err());
    }

    #[test]
    fn grype_rules_need_every_field_they_give() {
        let list = IgnoreList::parse_file(
            ".grype.yaml",
            "output: table\n\
             ignore:\n\
             \x20 - vulnerability: GHSA-A\n\
             \x20   package:\n\
             \x20     name: urllib3\n\
             \x20     version: 1.24.1\n\
             \x20     type: python\n\
             \x20   reason: not reachable\n\
             \x20 - vulnerability: GHSA-B\n\
             \x20   package: {name: urllib3, type: npm}\n\
             \x20 - fix-state: not-fixed\n\
             \x20 - package: {location: \"/opt/**\"}\n\
             \x20 - vulnerability: GHSA-E\n\
             \x20   match-type: cpe-match\n\
             \x20 - reason: nothing to match\n",
        )
        .unwrap();
        assert_eq!(list.entries.len(), 6);
        let unusable = list.unusable();
        assert_eq!(unusable.len(), 2);
        assert!(unusable[0].1.contains("match-type"));
        let mut in_opt = finding("D", Severity::Medium, Some("2"));
        in_opt.locations = vec!["/opt/app/requirements.txt".to_owned()];
        let outcome = Policy {
            ignore: list,
            today: "2024-01-01".to_owned(),
            ..Policy::default()
        }
        .apply(vec![
            finding("A", Severity::High, Some("2")),
            finding("B", Severity::High, Some("2")),
            finding("C", Severity::Critical, None),
            in_opt,
            finding("E", Severity::Critical, Some("2")),
        ]);
        let ignored: Vec<(&str, String)> = outcome
            .ignored
            .iter()
            .map(|f| match &f.cause {
                IgnoreCause::IgnoreFile { entry, .. } => (f.id.as_str(), entry.clone()),
                IgnoreCause::Unfixed => (f.id.as_str(), String::new()),
            })
            .collect();
        assert_eq!(
            ignored,
            [
                ("A", "GHSA-A".to_owned()),
                ("C", "fix-state not-fixed".to_owned()),
                ("D", "location /opt/**".to_owned())
            ]
        );
        let shown: Vec<&str> = outcome.shown.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(shown, ["B", "E"]);
        assert!(IgnoreList::parse_grype("ignore: [[[\n").is_err());
    }

    #[test]
    fn globs_and_purls() {
        assert!(path_matches("usr/**/METADATA", "/usr/lib/x/METADATA"));
        assert!(path_matches("/usr/**/METADATA", "usr/METADATA"));
        assert!(path_matches("usr/lib/*.so", "usr/lib/libz.so"));
        assert!(!path_matches("usr/lib/*.so", "usr/lib/x/libz.so"));
        assert!(path_matches("usr/lib/libz.so.?", "usr/lib/libz.so.1"));
        assert!(purl_matches(
            "pkg:deb/debian/openssl",
            "pkg:deb/debian/openssl@1.1?arch=amd64&distro=debian-10"
        ));
        assert!(purl_matches(
            "pkg:deb/debian/openssl?arch=amd64",
            "pkg:deb/debian/openssl@1.1?arch=amd64"
        ));
        assert!(!purl_matches(
            "pkg:deb/debian/openssl?arch=arm64",
            "pkg:deb/debian/openssl@1.1?arch=amd64"
        ));
        assert!(!purl_matches(
            "pkg:deb/debian/openssl@1.0",
            "pkg:deb/debian/openssl@1.1"
        ));
        assert!(purl_matches(
            "pkg:npm/%40babel/core",
            "pkg:npm/%40babel/core@7.0.0"
        ));
        assert!(!purl_matches("pkg:npm/core", "pkg:npm/%40babel/core@7.0.0"));
    }

    #[test]
    fn exit_code_alone_fails_on_what_is_shown() {
        let outcome = |severities: Vec<Severity>| {
            Policy {
                severities,
                today: "2024-01-01".to_owned(),
                ..Policy::default()
            }
            .apply(vec![
                finding("A", Severity::Medium, Some("2")),
                finding("B", Severity::Low, Some("2")),
            ])
        };
        let rule = |fail_on, exit_code| ExitRule { fail_on, exit_code };
        let all = outcome(Vec::new());
        assert_eq!(all.exit_status(rule(None, None)), 0);
        assert_eq!(all.exit_status(rule(None, Some(1))), 1);
        assert_eq!(all.exit_status(rule(None, Some(0))), 0);
        let high = outcome(vec![Severity::High, Severity::Critical]);
        assert_eq!(high.exit_status(rule(None, Some(1))), 0);
        let medium = outcome(vec![Severity::Medium]);
        assert_eq!(medium.exit_status(rule(None, Some(4))), 4);
        // --fail-on counts what --severity hides, and takes --exit-code as its status.
        assert_eq!(high.exit_status(rule(Some(Severity::Medium), None)), 1);
        assert_eq!(high.exit_status(rule(Some(Severity::Medium), Some(9))), 9);
        assert_eq!(all.exit_status(rule(Some(Severity::High), Some(9))), 0);
    }
}
