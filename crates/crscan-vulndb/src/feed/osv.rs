//! OSV records (<https://ossf.github.io/osv-schema/>) in JSON or YAML.
//!
//! The wire types are private and lenient where OSV keeps growing (ecosystems are
//! strings, unknown fields are ignored), and strict where a record is useless without
//! a field (`id`, each affected package's `ecosystem` and `name`). Quirks handled here:
//! Ubuntu's `:LTS` ecosystems and `upstream` CVE list, Ubuntu's per-package
//! `ubuntu_priority`, and GHSA's `database_specific.severity` label. The RPM
//! distributions' errata (AlmaLinux `ALSA-`, Rocky Linux `RLSA-`, Red Hat `RHSA-`,
//! SUSE `SUSE-SU-`) name their CVEs in `related`, bundle several flaws, and rate them
//! on the Red Hat scale as the summary's prefix (`Important: openssl security update`);
//! their bug fix and enhancement errata (`ALBA-`, `ALEA-`, …) name no flaw, so their
//! packages are left out of the lookup.

use serde::Deserialize;

use crate::advisory::{
    Advisory, Affected, AffectedStatus, Event, FeedKind, Range, RangeKind, SeverityStatement,
};
use crate::ecosystem::{normalize_ecosystem, normalize_name};
use crate::feed::RecordError;

#[derive(Deserialize)]
struct WireRecord {
    id: Option<String>,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    upstream: Option<Vec<String>>,
    #[serde(default)]
    related: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<WireSeverity>>,
    #[serde(default)]
    affected: Option<Vec<WireAffected>>,
    #[serde(default)]
    references: Option<Vec<WireReference>>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireSeverity {
    #[serde(rename = "type")]
    kind: Option<String>,
    score: Option<String>,
}

#[derive(Deserialize)]
struct WireAffected {
    package: Option<WirePackage>,
    #[serde(default)]
    ranges: Option<Vec<WireRange>>,
    #[serde(default)]
    versions: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    severity: Option<Vec<WireSeverity>>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WirePackage {
    ecosystem: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireRange {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    events: Option<Vec<WireEvent>>,
}

#[derive(Deserialize)]
struct WireEvent {
    introduced: Option<serde_json::Value>,
    fixed: Option<serde_json::Value>,
    last_affected: Option<serde_json::Value>,
    limit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireReference {
    url: Option<String>,
}

/// Marks a label that came from an OSV severity of type `Ubuntu`.
const UBUNTU_LABEL_PREFIX: &str = "ubuntu:";

fn wire_ubuntu_rating(advisory: &Advisory) -> Option<String> {
    advisory
        .severity
        .iter()
        .find_map(|statement| match statement {
            SeverityStatement::Label(label) => {
                label.strip_prefix(UBUNTU_LABEL_PREFIX).map(str::to_owned)
            }
            _ => None,
        })
}

/// Parses one OSV record from JSON bytes.
pub fn parse_json(bytes: &[u8]) -> Result<Advisory, RecordError> {
    let wire: WireRecord =
        serde_json::from_slice(bytes).map_err(|error| RecordError::Syntax(error.to_string()))?;
    convert(wire)
}

/// Parses one OSV record from YAML bytes (the PyPA advisory database's format).
pub fn parse_yaml(bytes: &[u8]) -> Result<Advisory, RecordError> {
    let wire: WireRecord =
        serde_norway::from_slice(bytes).map_err(|error| RecordError::Syntax(error.to_string()))?;
    convert(wire)
}

/// A YAML or JSON scalar as text: YAML turns `2.0` into a number and `0` into an
/// integer, while OSV means the string.
fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn convert_severity(list: Option<Vec<WireSeverity>>) -> Vec<SeverityStatement> {
    let mut out = Vec::new();
    for severity in list.unwrap_or_default() {
        let (Some(kind), Some(score)) = (severity.kind, severity.score) else {
            continue;
        };
        match kind.as_str() {
            "CVSS_V2" => out.push(SeverityStatement::CvssV2(score)),
            "CVSS_V3" => out.push(SeverityStatement::CvssV3(score)),
            "CVSS_V4" => out.push(SeverityStatement::CvssV4(score)),
            "Ubuntu" => out.push(SeverityStatement::Label(format!(
                "{UBUNTU_LABEL_PREFIX}{score}"
            ))),
            _ => {}
        }
    }
    out
}

fn convert(wire: WireRecord) -> Result<Advisory, RecordError> {
    let id = wire
        .id
        .filter(|id| !id.trim().is_empty())
        .ok_or(RecordError::Missing("id"))?;
    let mut advisory = Advisory::new(id.trim(), FeedKind::Osv);
    advisory.aliases = wire.aliases.unwrap_or_default();
    advisory.summary = wire.summary.filter(|text| !text.is_empty());
    advisory.details = wire.details.filter(|text| !text.is_empty());
    advisory.published = wire.published;
    advisory.modified = wire.modified;
    advisory.withdrawn = wire.withdrawn;
    advisory.references = wire
        .references
        .unwrap_or_default()
        .into_iter()
        .filter_map(|reference| reference.url)
        .collect();
    advisory.severity = convert_severity(wire.severity);
    if let Some(label) = wire
        .database_specific
        .as_ref()
        .and_then(|specific| specific.get("severity"))
        .and_then(|label| label.as_str())
    {
        advisory
            .severity
            .push(SeverityStatement::Label(label.to_owned()));
    }
    // Canonical's USN records name their CVEs only in `upstream`
    // (`UBUNTU-CVE-2024-22365`), and a USN can fix several of them. The RPM
    // distributions' errata do the same in `related`.
    let mut upstream = wire.upstream.unwrap_or_default();
    let errata = rpm_errata_kind(&advisory.id);
    if advisory.id.starts_with("USN-") || errata.is_some() {
        advisory.bundle = true;
    }
    if errata.is_some() {
        upstream.extend(wire.related.unwrap_or_default());
    }
    for id in &upstream {
        if let Some(cve) = crate::advisory::cve_of(id)
            && !advisory.cves.contains(&cve)
        {
            advisory.cves.push(cve);
        }
    }
    advisory.derive_cves();
    advisory.link = Some(advisory_link(&advisory.id));

    // Canonical's newer records rate the whole record with a severity of type
    // `Ubuntu` (`medium`); that is the distribution's rating for every package.
    let ubuntu_rating = wire_ubuntu_rating(&advisory);
    let red_hat_rating = advisory.summary.as_deref().and_then(red_hat_scale_prefix);
    if errata == Some(ErrataKind::BugFixOrEnhancement) {
        // Nothing to match: the record names no flaw.
        return Ok(advisory);
    }
    let affected_list = wire.affected.unwrap_or_default();
    let mut skipped = Vec::new();
    let had_affected = !affected_list.is_empty();
    for (index, affected) in affected_list.into_iter().enumerate() {
        match convert_affected(affected) {
            Ok(mut converted) => {
                if converted.distro_rating.is_none() && converted.ecosystem.starts_with("Ubuntu:") {
                    converted.distro_rating.clone_from(&ubuntu_rating);
                }
                if converted.distro_rating.is_none() && is_rpm_distribution(&converted.ecosystem) {
                    converted.distro_rating = red_hat_rating.map(str::to_owned);
                }
                advisory.affected.push(converted);
            }
            Err(reason) => skipped.push(format!("affected[{index}]: {reason}")),
        }
    }
    if had_affected && advisory.affected.is_empty() {
        return Err(RecordError::Invalid(skipped.join("; ")));
    }
    if !skipped.is_empty() {
        return Err(RecordError::Partial {
            advisory: Box::new(advisory),
            reason: skipped.join("; "),
        });
    }
    Ok(advisory)
}

fn convert_affected(wire: WireAffected) -> Result<Affected, String> {
    let package = wire.package.ok_or("no package")?;
    let ecosystem_raw = package
        .ecosystem
        .filter(|text| !text.trim().is_empty())
        .ok_or("package has no ecosystem")?;
    let name = package
        .name
        .filter(|text| !text.trim().is_empty())
        .ok_or("package has no name")?;
    let ecosystem = normalize_ecosystem(&ecosystem_raw);
    if crscan_version::Scheme::from_ecosystem(&ecosystem).is_none() {
        return Err(format!("unknown ecosystem {ecosystem_raw:?}"));
    }
    let mut ranges = Vec::new();
    for range in wire.ranges.unwrap_or_default() {
        let kind = match range.kind.as_deref() {
            Some("ECOSYSTEM") => RangeKind::Ecosystem,
            Some("SEMVER") => RangeKind::Semver,
            Some("GIT") => RangeKind::Git,
            other => return Err(format!("unknown range type {other:?}")),
        };
        let mut events = Vec::new();
        for event in range.events.unwrap_or_default() {
            let converted = if let Some(value) = event.introduced.as_ref().and_then(scalar_text) {
                Event::Introduced(value)
            } else if let Some(value) = event.fixed.as_ref().and_then(scalar_text) {
                Event::Fixed(value)
            } else if let Some(value) = event.last_affected.as_ref().and_then(scalar_text) {
                Event::LastAffected(value)
            } else if let Some(value) = event.limit.as_ref().and_then(scalar_text) {
                Event::Limit(value)
            } else {
                return Err("range event without a version".to_owned());
            };
            events.push(converted);
        }
        if kind != RangeKind::Git {
            ranges.push(Range { kind, events });
        }
    }
    let versions: Vec<String> = wire
        .versions
        .unwrap_or_default()
        .iter()
        .filter_map(scalar_text)
        .collect();
    let distro_rating = wire
        .ecosystem_specific
        .as_ref()
        .and_then(|specific| specific.get("ubuntu_priority"))
        .and_then(|priority| priority.as_str())
        .map(str::to_owned)
        .or_else(|| {
            wire.database_specific
                .as_ref()
                .and_then(|specific| specific.get("urgency"))
                .and_then(|urgency| urgency.as_str())
                .map(str::to_owned)
        });
    Ok(Affected {
        package: normalize_name(&ecosystem, &name),
        ecosystem,
        ranges,
        versions,
        status: AffectedStatus::Affected,
        distro_rating,
        severity: convert_severity(wire.severity),
    })
}

/// What an RPM distribution's erratum is, by its id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrataKind {
    /// A security advisory (`ALSA-`, `RLSA-`, `RHSA-`, `SUSE-SU-`, `openSUSE-SU-`).
    Security,
    /// A bug fix or enhancement erratum (`ALBA-`, `ALEA-`, `RLBA-`, `RLEA-`, `RHBA-`,
    /// `RHEA-`, `SUSE-RU-`, `SUSE-FU-`, `SUSE-OU-`).
    BugFixOrEnhancement,
}

fn rpm_errata_kind(id: &str) -> Option<ErrataKind> {
    const SECURITY: [&str; 5] = ["ALSA-", "RLSA-", "RHSA-", "SUSE-SU-", "openSUSE-SU-"];
    const OTHER: [&str; 9] = [
        "ALBA-", "ALEA-", "RLBA-", "RLEA-", "RHBA-", "RHEA-", "SUSE-RU-", "SUSE-FU-", "SUSE-OU-",
    ];
    if SECURITY.iter().any(|prefix| id.starts_with(prefix)) {
        Some(ErrataKind::Security)
    } else if OTHER.iter().any(|prefix| id.starts_with(prefix)) {
        Some(ErrataKind::BugFixOrEnhancement)
    } else {
        None
    }
}

/// Whether an ecosystem is one of the RPM distributions whose errata rate flaws on
/// the Red Hat scale.
fn is_rpm_distribution(ecosystem: &str) -> bool {
    matches!(
        crate::ecosystem::ecosystem_family(ecosystem),
        "AlmaLinux" | "Rocky Linux" | "Red Hat"
    )
}

/// The Red Hat scale rating an erratum's summary starts with
/// (`Important: openssl security update` → `Important`).
fn red_hat_scale_prefix(summary: &str) -> Option<&'static str> {
    let (prefix, _) = summary.split_once(':')?;
    ["Critical", "Important", "Moderate", "Low"]
        .into_iter()
        .find(|level| prefix.trim().eq_ignore_ascii_case(level))
}

/// Where a person reads a record, by its id prefix.
fn advisory_link(id: &str) -> String {
    if id.starts_with("GHSA-") {
        format!("https://github.com/advisories/{id}")
    } else if id.starts_with("USN-") {
        format!("https://ubuntu.com/security/notices/{id}")
    } else if let Some(cve) = id.strip_prefix("UBUNTU-") {
        format!("https://ubuntu.com/security/{cve}")
    } else if id.starts_with("GO-") {
        format!("https://pkg.go.dev/vuln/{id}")
    } else if id.starts_with("RUSTSEC-") {
        format!("https://rustsec.org/advisories/{id}.html")
    } else {
        format!("https://osv.dev/vulnerability/{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alma(id: &str, summary: &str) -> Vec<u8> {
        serde_json::json!({
            "id": id,
            "summary": summary,
            "related": ["CVE-2023-5363", "CVE-2023-5678"],
            "affected": [
                {"package": {"ecosystem": "AlmaLinux:9", "name": "openssl-libs"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9_3"}]}]},
                {"package": {"ecosystem": "AlmaLinux:8", "name": "openssl-libs"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.1.1k-12.el8_9"}]}]}
            ]
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn almalinux_errata_bundle_their_related_cves_and_rate_by_summary_prefix() {
        let advisory =
            parse_json(&alma("ALSA-2024:0310", "Moderate: openssl security update")).unwrap();
        assert!(advisory.bundle);
        assert_eq!(advisory.cves, ["CVE-2023-5363", "CVE-2023-5678"]);
        assert_eq!(advisory.affected.len(), 2);
        assert_eq!(advisory.affected[0].ecosystem, "AlmaLinux:9");
        assert_eq!(
            advisory.affected[0].distro_rating.as_deref(),
            Some("Moderate")
        );
        let unrated = parse_json(&alma("ALSA-2024:0311", "openssl security update")).unwrap();
        assert_eq!(unrated.affected[0].distro_rating, None);
    }

    #[test]
    fn bug_fix_errata_name_no_flaw() {
        let advisory = parse_json(&alma("ALBA-2024:0312", "openssl bug fix update")).unwrap();
        assert!(advisory.affected.is_empty());
    }

    #[test]
    fn red_hat_scale_prefixes() {
        assert_eq!(
            red_hat_scale_prefix("Important: kernel update"),
            Some("Important")
        );
        assert_eq!(red_hat_scale_prefix("critical: x"), Some("Critical"));
        assert_eq!(red_hat_scale_prefix("None: x"), None);
        assert_eq!(red_hat_scale_prefix("no prefix"), None);
    }
}
