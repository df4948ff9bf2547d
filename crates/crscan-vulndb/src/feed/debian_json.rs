//! The Debian security tracker's JSON export
//! (<https://security-tracker.debian.org/tracker/data/json>):
//! `{source package: {CVE id: {description, releases: {codename: {status,
//! fixed_version, urgency, nodsa}}}}}`.
//!
//! Per release: `resolved` with a fixed version is fixed in that version (`0` means
//! never affected); `open` or `undetermined` is affected with no fix yet, or "will not
//! fix" when the entry carries `nodsa` or its urgency is `unimportant`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::advisory::{Advisory, Affected, AffectedStatus, FeedKind, Range};
use crate::ecosystem::debian_ecosystem_for_codename;
use crate::feed::{FeedOutput, RecordError};

#[derive(Deserialize)]
struct WireIssue {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    releases: Option<BTreeMap<String, WireRelease>>,
}

#[derive(Deserialize)]
struct WireRelease {
    status: Option<String>,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    nodsa: Option<serde_json::Value>,
}

/// Parses the whole export: one advisory per CVE (or `TEMP-…` id).
pub fn parse(bytes: &[u8]) -> Result<FeedOutput, RecordError> {
    let root: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        serde_json::from_slice(bytes).map_err(|error| RecordError::Syntax(error.to_string()))?;
    let mut output = FeedOutput::default();
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for (package, issues) in root {
        for (id, value) in issues {
            let issue: WireIssue = match serde_json::from_value(value) {
                Ok(issue) => issue,
                Err(error) => {
                    output.problem(format!("{package}/{id}"), error.to_string());
                    continue;
                }
            };
            let advisory = by_id.entry(id.clone()).or_insert_with(|| {
                let mut advisory = Advisory::new(&id, FeedKind::DebianJson);
                advisory.link = Some(format!("https://security-tracker.debian.org/tracker/{id}"));
                advisory
            });
            if advisory.details.is_none() {
                advisory.details = issue.description.filter(|text| !text.is_empty());
            }
            for (codename, release) in issue.releases.unwrap_or_default() {
                let Some(ecosystem) = debian_ecosystem_for_codename(&codename) else {
                    // `sid` and `experimental` have no OSV ecosystem.
                    continue;
                };
                let Some(status) = release.status else {
                    output.problem(
                        format!("{package}/{id}/{codename}"),
                        "release has no status",
                    );
                    continue;
                };
                let urgency = release
                    .urgency
                    .filter(|urgency| !urgency.is_empty() && urgency != "not yet assigned");
                let fixed = release.fixed_version.filter(|version| !version.is_empty());
                let (status, ranges) = match (status.as_str(), fixed.as_deref()) {
                    ("resolved", Some("0")) => (AffectedStatus::NotAffected, Vec::new()),
                    ("resolved", Some(version)) => {
                        (AffectedStatus::Affected, vec![Range::fixed_in(version)])
                    }
                    ("resolved", None) => (AffectedStatus::NotAffected, Vec::new()),
                    ("open" | "undetermined", _) => {
                        let ignored = release.nodsa.is_some()
                            || urgency
                                .as_deref()
                                .is_some_and(|urgency| urgency.starts_with("unimportant"));
                        let status = if ignored {
                            AffectedStatus::WillNotFix
                        } else {
                            AffectedStatus::NoFixYet
                        };
                        (status, vec![Range::all_versions()])
                    }
                    (other, _) => {
                        output.problem(
                            format!("{package}/{id}/{codename}"),
                            format!("unknown status {other:?}"),
                        );
                        continue;
                    }
                };
                advisory.affected.push(Affected {
                    ecosystem,
                    package: package.clone(),
                    ranges,
                    versions: Vec::new(),
                    status,
                    distro_rating: urgency,
                    severity: Vec::new(),
                });
            }
        }
    }
    for (_, mut advisory) in by_id {
        advisory.derive_cves();
        if advisory.affected.is_empty() {
            continue;
        }
        output.advisories.push(advisory);
    }
    Ok(output)
}
