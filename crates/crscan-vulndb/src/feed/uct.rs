//! Ubuntu CVE Tracker files (<https://git.launchpad.net/ubuntu-cve-tracker>), one per
//! CVE: RFC-822-like fields (`Candidate:`, `Priority:`, `CVSS:` …) and per package a
//! `Patches_<pkg>:` block of `<release>_<pkg>: <status> (<version or note>)` lines.
//!
//! Statuses: `released` (fixed in the version given), `needed`, `needs-triage`,
//! `pending`, `deferred`, `active` (affected, no fix yet), `ignored` (will not fix),
//! `not-affected`, and `DNE` (the package does not exist in that release; skipped).
//! `trusty/esm`, `esm-infra/xenial` and the like are Ubuntu Pro releases.
//! `Priority_<pkg>[_<release>]:` overrides the CVE's priority for one package.

use std::collections::HashMap;

use crate::advisory::{Advisory, Affected, AffectedStatus, FeedKind, Range, SeverityStatement};
use crate::ecosystem::ubuntu_version_for_codename;
use crate::feed::{FeedOutput, RecordError};

/// The ecosystem key of a UCT release name; `Ok(None)` for names that are not a
/// release (`upstream`, `devel`, `snap`).
fn release_ecosystem(release: &str) -> Result<Option<String>, String> {
    if matches!(release, "upstream" | "devel" | "snap" | "product") {
        return Ok(None);
    }
    let (pro, codename) = if let Some(codename) = release.strip_suffix("/esm") {
        (true, codename)
    } else if let Some((_, codename)) = release.split_once('/') {
        (true, codename)
    } else {
        (false, release)
    };
    let version = ubuntu_version_for_codename(codename)
        .ok_or_else(|| format!("unknown Ubuntu release {release:?}"))?;
    Ok(Some(if pro {
        format!("Ubuntu:Pro:{version}")
    } else {
        format!("Ubuntu:{version}")
    }))
}

/// Parses one tracker file.
pub fn parse(text: &str) -> Result<FeedOutput, RecordError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((key, value)) if !key.contains(' ') => {
                fields.push((key.to_owned(), value.trim().to_owned()));
            }
            _ => {
                if let Some((_, value)) = fields.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim());
                }
            }
        }
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let candidate = field("Candidate")
        .filter(|value| !value.is_empty())
        .ok_or(RecordError::Missing("Candidate"))?;
    let mut advisory = Advisory::new(candidate, FeedKind::UbuntuCveTracker);
    advisory.published = field("PublicDate").map(str::to_owned);
    advisory.details = field("Description")
        .map(|text| text.trim().replace('\n', " "))
        .filter(|text| !text.is_empty());
    advisory.references = field("References")
        .unwrap_or("")
        .split_whitespace()
        .filter(|word| word.starts_with("http"))
        .map(str::to_owned)
        .collect();
    for line in field("CVSS").unwrap_or("").lines() {
        let vector = line.split_once(':').map_or(line, |(_, rest)| rest).trim();
        let vector = vector.split_whitespace().next().unwrap_or("");
        if vector.starts_with("CVSS:3") {
            advisory
                .severity
                .push(SeverityStatement::CvssV3(vector.to_owned()));
        } else if vector.starts_with("CVSS:4") {
            advisory
                .severity
                .push(SeverityStatement::CvssV4(vector.to_owned()));
        }
    }
    advisory.link = Some(format!("https://ubuntu.com/security/{candidate}"));
    let priority = field("Priority")
        .map(str::to_owned)
        .filter(|priority| is_rating(priority));
    let mut package_priority: HashMap<String, String> = HashMap::new();
    for (key, value) in &fields {
        if let Some(target) = key.strip_prefix("Priority_")
            && is_rating(value)
        {
            package_priority.insert(target.to_owned(), value.clone());
        }
    }
    let mut output = FeedOutput::default();
    for (key, value) in &fields {
        if key.starts_with("Patches_")
            || key.starts_with("Priority")
            || key.starts_with("Tags_")
            || !key.contains('_')
        {
            continue;
        }
        let Some((release, package)) = key.split_once('_') else {
            continue;
        };
        let ecosystem = match release_ecosystem(release) {
            Ok(Some(ecosystem)) => ecosystem,
            Ok(None) => continue,
            Err(reason) => {
                output.problem(format!("{candidate} {key}"), reason);
                continue;
            }
        };
        let (status_word, note) = match value.split_once(char::is_whitespace) {
            Some((status, note)) => (
                status,
                note.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .trim(),
            ),
            None => (value.as_str(), ""),
        };
        let (status, ranges) = match status_word {
            "released" => {
                let version = note.split_whitespace().next().unwrap_or("");
                if version.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
                    output.problem(format!("{candidate} {key}"), "released without a version");
                    continue;
                }
                (AffectedStatus::Affected, vec![Range::fixed_in(version)])
            }
            "needed" | "needs-triage" | "pending" | "deferred" | "active" => {
                (AffectedStatus::NoFixYet, vec![Range::all_versions()])
            }
            "ignored" => (AffectedStatus::WillNotFix, vec![Range::all_versions()]),
            "not-affected" => (AffectedStatus::NotAffected, Vec::new()),
            "DNE" => continue,
            other => {
                output.problem(
                    format!("{candidate} {key}"),
                    format!("unknown status {other:?}"),
                );
                continue;
            }
        };
        let rating = package_priority
            .get(&format!("{package}_{release}"))
            .or_else(|| package_priority.get(package))
            .or(priority.as_ref())
            .cloned();
        advisory.affected.push(Affected {
            ecosystem,
            package: package.to_owned(),
            ranges,
            versions: Vec::new(),
            status,
            distro_rating: rating,
            severity: Vec::new(),
        });
    }
    advisory.derive_cves();
    output.advisories.push(advisory);
    Ok(output)
}

fn is_rating(value: &str) -> bool {
    matches!(value, "negligible" | "low" | "medium" | "high" | "critical")
}
