//! Matching an inventory against the database: from packages to findings.
//!
//! The rules (see DESIGN.md, "Matching, in short"):
//! - OS packages are looked up under the ecosystem of the detected release
//!   ([`crate::ecosystem::os_ecosystems`]) by *source* package name, and reported once
//!   per source package with the binary packages it installed.
//! - The version compared for a dpkg package is its source version when the status
//!   file records one (`Source: openssl (1.1.1n-0+deb10u3)`), as Debian's and Ubuntu's
//!   trackers write fixed versions of source packages (trivy does the same); otherwise
//!   the installed version. apk origins have no separate version, so the installed
//!   version is compared.
//! - A version is affected when an OSV range or the `versions` list contains it,
//!   in the ecosystem's own ordering (`crscan-version`). Withdrawn advisories never
//!   match.
//! - One finding per flaw and package: records naming the same CVE (or aliasing each
//!   other) are merged, the finding is named by the CVE where there is one, and a
//!   bundled DSA/DLA/USN gives one finding per CVE it fixes.
//! - `fixed_by` is the lowest fixed version above the installed one.
//! - Severity: the distribution's rating, else the CVSS base score computed from the
//!   best vector (v4, then v3.x, then v2), else the advisory's label, else UNDEFINED.

use std::cmp::Ordering;
use std::collections::HashMap;

use crscan_model::{Diagnostic, Inventory, Package, PackageType, Severity};
use crscan_version::Scheme;
use serde::Serialize;

use crate::advisory::{Advisory, AffectedStatus, Event, RangeKind, SeverityStatement};
use crate::cvss::{self, CvssScore, CvssVersion};
use crate::db::{Database, DbError};
use crate::ecosystem::{ecosystem_family, language_ecosystem, normalize_name, os_ecosystems};

pub use crscan_model::{Finding, FindingStatus, SeveritySource};

/// The result of matching one inventory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchReport {
    pub findings: Vec<Finding>,
    /// Ecosystem keys used for the OS packages.
    pub os_ecosystems: Vec<String>,
    /// Packages looked up (OS packages count once per source package).
    pub packages_checked: usize,
    /// Problems met while matching (unsupported OS, versions that do not parse).
    pub diagnostics: Vec<Diagnostic>,
    /// Set when the image has OS packages but no loaded feed covers its OS release
    /// (an OS crscan has no feed for, or a release the database's feeds do not
    /// reach): a sentence saying so, since its 0 OS findings do not mean a clean
    /// image.
    pub os_not_covered: Option<String>,
    pub database_digest: String,
    pub database_built_at: i64,
}

/// Matching options.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchOptions {
    /// Also report flaws the distribution states its package is not affected by.
    pub include_not_affected: bool,
}

/// Errors of matching: only the database failing is one.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Matches an inventory with default options.
pub fn match_inventory(db: &Database, inventory: &Inventory) -> Result<MatchReport, MatchError> {
    match_inventory_with(db, inventory, MatchOptions::default())
}

/// One lookup unit: a language package, or the binary packages of one source package.
struct Subject<'a> {
    ecosystems: Vec<String>,
    lookup_name: String,
    version: String,
    scheme: Scheme,
    packages: Vec<&'a Package>,
}

/// Matches an inventory.
pub fn match_inventory_with(
    db: &Database,
    inventory: &Inventory,
    options: MatchOptions,
) -> Result<MatchReport, MatchError> {
    let mut diagnostics = Vec::new();
    let os_keys = inventory.os.as_ref().map(os_ecosystems).unwrap_or_default();
    let mut subjects: Vec<Subject> = Vec::new();
    let mut os_index: HashMap<(String, String), usize> = HashMap::new();
    let mut reported_os_gap = false;
    for package in &inventory.packages {
        if package.package_type.is_os() {
            let scheme = match package.package_type {
                PackageType::Deb => Scheme::Dpkg,
                PackageType::Apk => Scheme::Apk,
                _ => Scheme::Rpm,
            };
            if os_keys.is_empty() || package.package_type == PackageType::Rpm {
                if !reported_os_gap {
                    reported_os_gap = true;
                    let os = inventory
                        .os
                        .as_ref()
                        .map(|os| format!("{} {}", os.id, os.version_id))
                        .unwrap_or_else(|| "unknown".to_owned());
                    diagnostics.push(Diagnostic {
                        detector: "matcher".to_owned(),
                        path: String::new(),
                        message: format!(
                            "no vulnerability feed for {} packages of OS {os:?}; they were not matched",
                            package.package_type
                        ),
                    });
                }
                continue;
            }
            let name = package.source_name_or_name().to_owned();
            let version = match package.package_type {
                PackageType::Deb => package.source_version_or_version().to_owned(),
                _ => package.version.clone(),
            };
            let key = (name.clone(), version.clone());
            if let Some(index) = os_index.get(&key) {
                subjects[*index].packages.push(package);
                continue;
            }
            os_index.insert(key, subjects.len());
            subjects.push(Subject {
                ecosystems: os_keys.clone(),
                lookup_name: name,
                version,
                scheme,
                packages: vec![package],
            });
        } else if let Some(ecosystem) = language_ecosystem(package.package_type) {
            let Some(scheme) = Scheme::from_ecosystem(ecosystem) else {
                continue;
            };
            let version = if package.package_type == PackageType::Golang {
                go_version(&package.version)
            } else {
                package.version.clone()
            };
            subjects.push(Subject {
                ecosystems: vec![ecosystem.to_owned()],
                lookup_name: normalize_name(ecosystem, &package.name),
                version,
                scheme,
                packages: vec![package],
            });
        }
    }

    let mut advisory_cache: HashMap<i64, Advisory> = HashMap::new();
    let mut findings = Vec::new();
    for subject in &subjects {
        match_subject(
            db,
            subject,
            options,
            &mut advisory_cache,
            &mut findings,
            &mut diagnostics,
        )?;
    }
    let os_packages = inventory
        .packages
        .iter()
        .filter(|package| package.package_type.is_os())
        .count();
    let covered = os_keys.iter().any(|key| {
        db.info()
            .ecosystems
            .iter()
            .any(|(ecosystem, count)| ecosystem == key && *count > 0)
    });
    let os_not_covered = (os_packages > 0 && !covered).then(|| {
        let os = inventory
            .os
            .as_ref()
            .map(|os| format!("{} {}", os.id, os.version_id.trim()))
            .unwrap_or_else(|| "an unknown OS".to_owned());
        let wanted = if os_keys.is_empty() {
            "crscan has no feed for it".to_owned()
        } else {
            format!(
                "the database has no advisories for {}",
                os_keys.join(" or ")
            )
        };
        format!(
            "the OS release {os} is not covered by any loaded feed ({wanted}); its {os_packages} OS packages were not matched, so 0 OS findings does not mean the image is clean"
        )
    });
    findings.sort_by(|a: &Finding, b: &Finding| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.package_name.cmp(&b.package_name))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(MatchReport {
        findings,
        os_ecosystems: os_keys,
        packages_checked: subjects.len(),
        diagnostics,
        os_not_covered,
        database_digest: db.info().content_digest.clone(),
        database_built_at: db.info().built_at,
    })
}

/// A Go version as OSV writes it: `v1.2.3` → `1.2.3`, the toolchain's `v1.19` →
/// `1.19.0`, `1.21rc2` → `1.21.0-rc.2`.
fn go_version(version: &str) -> String {
    let version = version
        .trim()
        .trim_start_matches("go")
        .trim_start_matches('v');
    let (core, pre) = match version.find(|c: char| c.is_ascii_alphabetic() || c == '-') {
        Some(index) => (&version[..index], &version[index..]),
        None => (version, ""),
    };
    let mut core = core.to_owned();
    if core.matches('.').count() == 1 {
        core.push_str(".0");
    }
    let pre = if let Some(number) = pre.strip_prefix("rc") {
        format!("-rc.{number}")
    } else if let Some(number) = pre.strip_prefix("beta") {
        format!("-beta.{number}")
    } else {
        pre.to_owned()
    };
    format!("{core}{pre}")
}

/// What one matched record contributes to a finding.
struct Contribution {
    advisory_row: i64,
    ecosystem: String,
    fixed: Option<String>,
    status: AffectedStatus,
    distro_rating: Option<String>,
    severity: Vec<SeverityStatement>,
}

/// A finding being assembled from merged records.
struct Pending {
    id: String,
    ecosystem: String,
    aliases: Vec<String>,
    advisories: Vec<String>,
    references: Vec<String>,
    summary: Option<String>,
    description: Option<String>,
    link: Option<String>,
    fixed: Vec<String>,
    statuses: Vec<AffectedStatus>,
    ratings: Vec<(String, String)>,
    statements: Vec<(String, SeverityStatement)>,
}

fn match_subject(
    db: &Database,
    subject: &Subject,
    options: MatchOptions,
    cache: &mut HashMap<i64, Advisory>,
    findings: &mut Vec<Finding>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(), MatchError> {
    let mut contributions: Vec<Contribution> = Vec::new();
    for ecosystem in &subject.ecosystems {
        for entry in db.lookup(ecosystem, &subject.lookup_name)? {
            if entry.withdrawn {
                continue;
            }
            let affected = entry.affected;
            if affected.status == AffectedStatus::NotAffected {
                if options.include_not_affected {
                    contributions.push(Contribution {
                        advisory_row: entry.advisory_row,
                        ecosystem: ecosystem.clone(),
                        fixed: None,
                        status: AffectedStatus::NotAffected,
                        distro_rating: affected.distro_rating,
                        severity: affected.severity,
                    });
                }
                continue;
            }
            let ranges = to_version_ranges(&affected.ranges);
            let hit = match crscan_version::osv::is_affected(
                subject.scheme,
                &subject.version,
                &ranges,
                &affected.versions,
            ) {
                Ok(hit) => hit,
                Err(error) => {
                    diagnostics.push(Diagnostic {
                        detector: "matcher".to_owned(),
                        path: subject
                            .packages
                            .first()
                            .map(|p| p.purl.clone())
                            .unwrap_or_default(),
                        message: format!(
                            "cannot compare {} {} in {ecosystem}: {error}",
                            subject.lookup_name, subject.version
                        ),
                    });
                    continue;
                }
            };
            if !hit {
                continue;
            }
            let fixed =
                crscan_version::osv::lowest_fix_above(subject.scheme, &subject.version, &ranges);
            contributions.push(Contribution {
                advisory_row: entry.advisory_row,
                ecosystem: ecosystem.clone(),
                fixed,
                status: affected.status,
                distro_rating: affected.distro_rating,
                severity: affected.severity,
            });
        }
    }
    if contributions.is_empty() {
        return Ok(());
    }

    // Merge per flaw. CVE-named flaws first, so that records without a CVE can join
    // them through their aliases.
    let mut pending: Vec<Pending> = Vec::new();
    let mut ordered: Vec<(bool, Contribution)> = Vec::new();
    for contribution in contributions {
        if let std::collections::hash_map::Entry::Vacant(slot) =
            cache.entry(contribution.advisory_row)
        {
            slot.insert(db.advisory(contribution.advisory_row)?);
        }
        let has_cve = cache
            .get(&contribution.advisory_row)
            .is_some_and(|advisory| !advisory.cves.is_empty());
        ordered.push((!has_cve, contribution));
    }
    ordered.sort_by_key(|(no_cve, _)| *no_cve);
    for (_, contribution) in ordered {
        let Some(advisory) = cache.get(&contribution.advisory_row) else {
            continue;
        };
        let flaw_ids: Vec<String> = if advisory.bundle {
            if advisory.cves.is_empty() {
                vec![advisory.id.clone()]
            } else {
                advisory.cves.clone()
            }
        } else {
            vec![
                advisory
                    .cves
                    .first()
                    .cloned()
                    .unwrap_or_else(|| advisory.id.clone()),
            ]
        };
        for flaw_id in flaw_ids {
            let position = pending.iter().position(|existing| {
                existing.id == flaw_id
                    || (advisory.cves.is_empty()
                        && (existing.aliases.contains(&advisory.id)
                            || advisory.aliases.contains(&existing.id)
                            || existing
                                .advisories
                                .iter()
                                .any(|id| advisory.aliases.contains(id))))
            });
            let index = match position {
                Some(index) => index,
                None => {
                    pending.push(Pending {
                        id: flaw_id.clone(),
                        ecosystem: contribution.ecosystem.clone(),
                        aliases: Vec::new(),
                        advisories: Vec::new(),
                        references: Vec::new(),
                        summary: None,
                        description: None,
                        link: None,
                        fixed: Vec::new(),
                        statuses: Vec::new(),
                        ratings: Vec::new(),
                        statements: Vec::new(),
                    });
                    pending.len() - 1
                }
            };
            let item = &mut pending[index];
            absorb(item, advisory, &contribution, &flaw_id);
        }
    }

    let first = subject.packages[0];
    for item in pending {
        findings.push(finish(item, subject, first));
    }
    Ok(())
}

fn absorb(item: &mut Pending, advisory: &Advisory, contribution: &Contribution, flaw_id: &str) {
    let push = |list: &mut Vec<String>, value: &str| {
        if value != flaw_id && !list.iter().any(|known| known == value) {
            list.push(value.to_owned());
        }
    };
    if !advisory.bundle {
        push(&mut item.aliases, &advisory.id);
        for alias in &advisory.aliases {
            push(&mut item.aliases, alias);
        }
        for cve in &advisory.cves {
            push(&mut item.aliases, cve);
        }
    }
    if !item.advisories.contains(&advisory.id) {
        item.advisories.push(advisory.id.clone());
    }
    for reference in &advisory.references {
        if !item.references.contains(reference) {
            item.references.push(reference.clone());
        }
    }
    // A bundle's title describes all its flaws; keep a record's own text first.
    if !advisory.bundle || item.summary.is_none() {
        if item.summary.is_none() {
            item.summary = advisory.summary.clone();
        }
        if item.description.is_none() {
            item.description = advisory.details.clone();
        }
    }
    if item.link.is_none() {
        item.link = advisory.link.clone();
    }
    if let Some(fixed) = &contribution.fixed {
        item.fixed.push(fixed.clone());
    }
    item.statuses.push(contribution.status);
    if let Some(rating) = &contribution.distro_rating {
        let family = ecosystem_family(&contribution.ecosystem);
        if matches!(family, "Debian" | "Ubuntu" | "Alpine") {
            item.ratings
                .push((family.to_ascii_lowercase(), rating.clone()));
        }
    }
    for statement in advisory.severity.iter().chain(contribution.severity.iter()) {
        item.statements
            .push((advisory.id.clone(), statement.clone()));
    }
}

fn finish(item: Pending, subject: &Subject, first: &Package) -> Finding {
    let mut fixed_by: Option<String> = None;
    for candidate in &item.fixed {
        fixed_by = match fixed_by {
            None => Some(candidate.clone()),
            Some(current) => {
                let lower = matches!(
                    crscan_version::compare(subject.scheme, candidate, &current),
                    Ok(Ordering::Less)
                );
                Some(if lower { candidate.clone() } else { current })
            }
        };
    }
    let status = if item
        .statuses
        .iter()
        .all(|status| *status == AffectedStatus::NotAffected)
    {
        FindingStatus::NotAffected
    } else if fixed_by.is_some() {
        FindingStatus::Fixed
    } else if item.statuses.contains(&AffectedStatus::WillNotFix) {
        FindingStatus::WillNotFix
    } else {
        FindingStatus::NotFixedYet
    };
    let cvss = best_cvss(&item.statements);
    let (severity, severity_source) = choose_severity(&item, cvss.as_ref());
    let is_os = first.package_type.is_os();
    let mut binary_packages: Vec<String> = Vec::new();
    let mut locations: Vec<String> = Vec::new();
    for package in &subject.packages {
        if is_os && !binary_packages.contains(&package.name) {
            binary_packages.push(package.name.clone());
        }
        for location in &package.locations {
            if !locations.contains(location) {
                locations.push(location.clone());
            }
        }
    }
    binary_packages.sort();
    let layer_digest = subject
        .packages
        .iter()
        .find_map(|package| package.layer_digest.clone());
    Finding {
        id: item.id,
        aliases: item.aliases,
        advisories: item.advisories,
        references: item.references,
        summary: item.summary,
        description: item.description,
        severity,
        severity_source,
        cvss,
        package_name: if is_os {
            subject.lookup_name.clone()
        } else {
            first.name.clone()
        },
        source_package: is_os.then(|| subject.lookup_name.clone()),
        installed_version: subject.version.clone(),
        fixed_by,
        status,
        package_type: first.package_type,
        ecosystem: item.ecosystem,
        purl: first.purl.clone(),
        binary_packages,
        layer_digest,
        locations,
        advisory_link: item.link,
    }
}

/// The most recent CVSS version among the statements that scores: v4, then v3.x,
/// then v2; within a version, the first statement.
fn best_cvss(statements: &[(String, SeverityStatement)]) -> Option<CvssScore> {
    let mut best: Option<CvssScore> = None;
    for (_, statement) in statements {
        let vector = match statement {
            SeverityStatement::CvssV2(vector)
            | SeverityStatement::CvssV3(vector)
            | SeverityStatement::CvssV4(vector) => vector,
            SeverityStatement::Label(_) => continue,
        };
        let Ok(scored) = cvss::score(vector) else {
            continue;
        };
        let rank = |version: CvssVersion| match version {
            CvssVersion::V4 => 3,
            CvssVersion::V3_0 | CvssVersion::V3_1 => 2,
            CvssVersion::V2 => 1,
        };
        if best
            .as_ref()
            .is_none_or(|current| rank(scored.version) > rank(current.version))
        {
            best = Some(scored);
        }
    }
    best
}

/// A distribution's rating as a severity level; `None` for "not yet rated".
pub fn distro_rating_severity(rating: &str) -> Option<Severity> {
    let rating = rating.trim().trim_end_matches('*').to_ascii_lowercase();
    match rating.as_str() {
        "unimportant" | "negligible" => Some(Severity::Negligible),
        "low" => Some(Severity::Low),
        "medium" | "moderate" => Some(Severity::Medium),
        "high" | "important" => Some(Severity::High),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

fn choose_severity(item: &Pending, cvss: Option<&CvssScore>) -> (Severity, SeveritySource) {
    // The most severe of the distribution ratings given for this package.
    let rated = item
        .ratings
        .iter()
        .filter_map(|(distribution, rating)| {
            distro_rating_severity(rating).map(|severity| (severity, distribution, rating))
        })
        .min_by_key(|(severity, _, _)| *severity);
    if let Some((severity, distribution, rating)) = rated {
        return (
            severity,
            SeveritySource::Distribution {
                distribution: distribution.clone(),
                rating: rating.clone(),
            },
        );
    }
    if let Some(cvss) = cvss {
        return (
            Severity::from_cvss_score(cvss.score),
            SeveritySource::Cvss {
                version: cvss.version,
                score: cvss.score,
            },
        );
    }
    let labelled = item
        .statements
        .iter()
        .find_map(|(advisory, statement)| match statement {
            SeverityStatement::Label(label) => {
                distro_rating_severity(label).map(|severity| (severity, advisory, label))
            }
            _ => None,
        });
    if let Some((severity, advisory, label)) = labelled {
        return (
            severity,
            SeveritySource::AdvisoryLabel {
                advisory: advisory.clone(),
                label: label.clone(),
            },
        );
    }
    (Severity::Undefined, SeveritySource::None)
}

fn to_version_ranges(ranges: &[crate::advisory::Range]) -> Vec<crscan_version::osv::Range> {
    ranges
        .iter()
        .map(|range| crscan_version::osv::Range {
            kind: match range.kind {
                RangeKind::Ecosystem => crscan_version::osv::RangeKind::Ecosystem,
                RangeKind::Semver => crscan_version::osv::RangeKind::Semver,
                RangeKind::Git => crscan_version::osv::RangeKind::Git,
            },
            events: range
                .events
                .iter()
                .map(|event| match event {
                    Event::Introduced(version) => {
                        crscan_version::osv::Event::Introduced(version.clone())
                    }
                    Event::Fixed(version) => crscan_version::osv::Event::Fixed(version.clone()),
                    Event::LastAffected(version) => {
                        crscan_version::osv::Event::LastAffected(version.clone())
                    }
                    Event::Limit(version) => crscan_version::osv::Event::Limit(version.clone()),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_take_osv_form() {
        assert_eq!(go_version("v1.19"), "1.19.0");
        assert_eq!(go_version("v1.19.8"), "1.19.8");
        assert_eq!(go_version("go1.21rc2"), "1.21.0-rc.2");
        assert_eq!(
            go_version("v0.0.0-20220906165146-f3363e06e74c"),
            "0.0.0-20220906165146-f3363e06e74c"
        );
    }

    #[test]
    fn ratings_map_to_levels() {
        assert_eq!(
            distro_rating_severity("unimportant"),
            Some(Severity::Negligible)
        );
        assert_eq!(
            distro_rating_severity("negligible"),
            Some(Severity::Negligible)
        );
        assert_eq!(distro_rating_severity("low**"), Some(Severity::Low));
        assert_eq!(distro_rating_severity("MODERATE"), Some(Severity::Medium));
        assert_eq!(distro_rating_severity("not yet assigned"), None);
    }
}
