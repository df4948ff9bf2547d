//! The one advisory model every feed is converted into.
//!
//! Each feed module keeps its wire format private and produces [`Advisory`] values.
//! The model follows OSV (<https://ossf.github.io/osv-schema/>) closely, because OSV is
//! the richest of the formats, and adds what distribution trackers say that OSV cannot:
//! a per-package status (no fix yet, will not fix, not affected) and the distribution's
//! own rating.
//!
//! Ecosystems stay open strings (`Debian:12`, `Alpine:v3.19`, `Ubuntu:22.04`, `PyPI`):
//! a new release or a new OSV ecosystem needs no code change here.

use serde::{Deserialize, Serialize};

/// One vulnerability record from one feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The record's own id (`GHSA-…`, `PYSEC-…`, `DSA-5380-1`, `CVE-2020-1967`).
    pub id: String,
    /// The feed it came from (see [`FeedKind::name`]).
    pub feed: String,
    /// Other ids of the same flaw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// CVE ids this record covers. For a bundle (DSA, DLA, USN) these are several
    /// flaws; for other records they are the CVE names of the one flaw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    /// True when the record bundles several flaws (a DSA, DLA or USN), so that the
    /// matcher gives one finding per CVE instead of one finding per record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bundle: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Set when the record was withdrawn; withdrawn records never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// Reference URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Severity statements about the whole record (CVSS vectors, labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<SeverityStatement>,
    /// Where a person can read the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    pub affected: Vec<Affected>,
}

impl Advisory {
    /// An empty advisory of a feed, to be filled in by the feed parser.
    pub fn new(id: impl Into<String>, feed: FeedKind) -> Advisory {
        Advisory {
            id: id.into(),
            feed: feed.name().to_owned(),
            aliases: Vec::new(),
            cves: Vec::new(),
            bundle: false,
            summary: None,
            details: None,
            published: None,
            modified: None,
            withdrawn: None,
            references: Vec::new(),
            severity: Vec::new(),
            link: None,
            affected: Vec::new(),
        }
    }

    /// Fills `cves` from the id and the aliases when the feed did not set it.
    pub fn derive_cves(&mut self) {
        let mut cves: Vec<String> = std::mem::take(&mut self.cves);
        for id in std::iter::once(&self.id).chain(self.aliases.iter()) {
            if let Some(cve) = cve_of(id)
                && !cves.contains(&cve)
            {
                cves.push(cve);
            }
        }
        self.cves = cves;
    }

    /// Merges another record with the same feed and id into this one (a CVE listed
    /// in several Alpine release files, or the same OSV record in two exports).
    pub fn merge(&mut self, other: Advisory) {
        extend_unique(&mut self.aliases, other.aliases);
        extend_unique(&mut self.cves, other.cves);
        extend_unique(&mut self.references, other.references);
        for statement in other.severity {
            if !self.severity.contains(&statement) {
                self.severity.push(statement);
            }
        }
        for affected in other.affected {
            if !self.affected.contains(&affected) {
                self.affected.push(affected);
            }
        }
        self.summary = self.summary.take().or(other.summary);
        self.details = self.details.take().or(other.details);
        self.link = self.link.take().or(other.link);
        self.bundle |= other.bundle;
    }
}

/// Appends the items of `more` that `list` does not hold yet.
pub(crate) fn extend_unique(list: &mut Vec<String>, more: Vec<String>) {
    for item in more {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// The CVE id an id names: `CVE-2024-1` itself, or the `UBUNTU-CVE-…` / `DEBIAN-CVE-…`
/// wrappers that Canonical and Debian use in OSV.
pub fn cve_of(id: &str) -> Option<String> {
    let start = id.find("CVE-")?;
    let prefix = &id[..start];
    if !(prefix.is_empty() || prefix.ends_with('-')) {
        return None;
    }
    let cve = &id[start..];
    let mut parts = cve.splitn(3, '-');
    let (_, year, number) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && number.len() >= 4
        && number.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| cve.to_owned())
}

/// One package (in one ecosystem) that a record says something about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// OSV ecosystem with the release for distributions: `Debian:12`, `Alpine:v3.19`,
    /// `Ubuntu:22.04`, `Ubuntu:Pro:18.04`, `PyPI`, `npm`, `Go`, `crates.io`.
    pub ecosystem: String,
    /// Package name, normalised for lookups (see [`crate::ecosystem::normalize_name`]).
    pub package: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// What the distribution says beyond the ranges.
    #[serde(default, skip_serializing_if = "AffectedStatus::is_default")]
    pub status: AffectedStatus,
    /// The distribution's own rating for this package (Ubuntu priority, Debian
    /// urgency), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro_rating: Option<String>,
    /// Severity statements attached to this package only (OSV `affected[].severity`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<SeverityStatement>,
}

/// The status a distribution gives a package, beyond its version ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AffectedStatus {
    /// Affected where the ranges say so (the OSV meaning).
    #[default]
    Affected,
    /// Affected in every version, no fix published yet.
    NoFixYet,
    /// Affected, and the distribution will not fix it or ignores it (`<no-dsa>`,
    /// `ignored`, `<end-of-life>`).
    WillNotFix,
    /// The distribution says the package is not affected.
    NotAffected,
}

impl AffectedStatus {
    fn is_default(&self) -> bool {
        *self == AffectedStatus::Affected
    }
}

/// An OSV range: events on one ordering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

impl Range {
    /// The common distribution case: every version before `fixed` is affected.
    pub fn fixed_in(fixed: &str) -> Range {
        Range {
            kind: RangeKind::Ecosystem,
            events: vec![
                Event::Introduced("0".to_owned()),
                Event::Fixed(fixed.to_owned()),
            ],
        }
    }

    /// Every version is affected.
    pub fn all_versions() -> Range {
        Range {
            kind: RangeKind::Ecosystem,
            events: vec![Event::Introduced("0".to_owned())],
        }
    }
}

/// OSV range types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    Ecosystem,
    Semver,
    Git,
}

/// OSV range events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// A statement about a flaw's severity, as a feed gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum SeverityStatement {
    /// A CVSS v2 vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`).
    CvssV2(String),
    /// A CVSS v3.0 or v3.1 vector (`CVSS:3.1/…`).
    CvssV3(String),
    /// A CVSS v4.0 vector (`CVSS:4.0/…`).
    CvssV4(String),
    /// The advisory's own label (`HIGH`, `MODERATE`, …).
    Label(String),
}

/// The feeds crscan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedKind {
    /// OSV JSON or YAML (osv.dev exports, GHSA, PyPA, Go, RustSec, Ubuntu OSV).
    Osv,
    /// Alpine secdb (YAML or JSON).
    AlpineSecdb,
    /// Debian security tracker `DSA/list`, `DLA/list`, `DTSA/list`.
    DebianList,
    /// Debian security tracker JSON export.
    DebianJson,
    /// Ubuntu CVE Tracker text files.
    UbuntuCveTracker,
    /// Node Security WG JSON (pre-OSV npm advisories).
    NodeSecurityWg,
    /// NVD CVE API 2.0 JSON: CVSS per CVE id, no packages.
    Nvd,
}

impl FeedKind {
    pub const ALL: [FeedKind; 7] = [
        FeedKind::Osv,
        FeedKind::AlpineSecdb,
        FeedKind::DebianList,
        FeedKind::DebianJson,
        FeedKind::UbuntuCveTracker,
        FeedKind::NodeSecurityWg,
        FeedKind::Nvd,
    ];

    /// The short name stored in the database and printed by `crscan db status`.
    pub fn name(self) -> &'static str {
        match self {
            FeedKind::Osv => "osv",
            FeedKind::AlpineSecdb => "alpine-secdb",
            FeedKind::DebianList => "debian-list",
            FeedKind::DebianJson => "debian-json",
            FeedKind::UbuntuCveTracker => "ubuntu-cve-tracker",
            FeedKind::NodeSecurityWg => "nodejs-security-wg",
            FeedKind::Nvd => "nvd",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cve_ids_in_wrappers() {
        assert_eq!(cve_of("CVE-2020-1967").as_deref(), Some("CVE-2020-1967"));
        assert_eq!(
            cve_of("UBUNTU-CVE-2024-22365").as_deref(),
            Some("CVE-2024-22365")
        );
        assert_eq!(cve_of("GHSA-p6mc-m468-83gw"), None);
        assert_eq!(cve_of("XCVE-2020-1967"), None);
        assert_eq!(cve_of("CVE-20-1"), None);
    }
}
