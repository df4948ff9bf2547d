//! CycloneDX 1.6 JSON with `vulnerabilities` (<https://cyclonedx.org/docs/1.6/json/>).
//!
//! The document is the SBOM that `crscan sbom --format cyclonedx` writes for the same
//! image (so `crscan scan --sbom` can read it back), plus one `vulnerabilities` entry
//! per finding:
//! - `id`, `references` (aliases and matched advisories), `description`, and the
//!   reference URLs as `advisories`;
//! - `ratings`: the rating the severity came from (the distribution's, the CVSS base
//!   score with its vector, or the advisory's label), and the CVSS score as well when
//!   the severity came from elsewhere; NEGLIGIBLE is CycloneDX `info` and UNDEFINED
//!   `unknown`;
//! - `affects`: the `bom-ref` of every affected component (all binary packages of an
//!   affected source package), with the installed version `affected` and the fixed
//!   version `unaffected`;
//! - `analysis.response` and `recommendation` from the fix status;
//! - `properties` `crscan:finding:…` for the ecosystem, status and installing layer.

use crscan_model::{
    CvssVersion, Finding, FindingStatus, Package, PackageType, Severity, SeveritySource,
};
use serde::Serialize;
use serde_json::Value;

use super::ScanDocument;
use crate::ReportError;

/// The `bom-ref` the SBOM gives the image component; affects falls back to it.
const IMAGE_REF: &str = "crscan:image";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Vulnerability {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
    ratings: Vec<Rating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recommendation: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    advisories: Vec<AdvisoryLink>,
    analysis: Analysis,
    affects: Vec<Affects>,
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Source {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

#[derive(Serialize)]
struct Reference {
    id: String,
    source: Source,
}

#[derive(Serialize)]
struct Rating {
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    severity: &'static str,
    method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    justification: Option<String>,
}

#[derive(Serialize)]
struct AdvisoryLink {
    url: String,
}

#[derive(Serialize)]
struct Analysis {
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    response: Vec<&'static str>,
    detail: String,
}

#[derive(Serialize)]
struct Affects {
    #[serde(rename = "ref")]
    reference: String,
    versions: Vec<AffectedVersion>,
}

#[derive(Serialize)]
struct AffectedVersion {
    version: String,
    status: &'static str,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

/// CycloneDX's severity words (`severity` definition of the 1.6 schema).
pub fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Negligible => "info",
        Severity::Undefined => "unknown",
    }
}

/// Renders the SBOM with its vulnerabilities, pretty-printed, with a final newline.
pub fn render(document: &ScanDocument) -> Result<String, ReportError> {
    let serialize_error = |source| ReportError::Serialize {
        format: "CycloneDX",
        source,
    };
    let sbom = crate::sbom::cyclonedx::render(&document.sbom)?;
    let bom: Value = serde_json::from_str(&sbom).map_err(serialize_error)?;
    let refs = package_refs(&bom, &document.sbom.inventory.packages);
    let vulnerabilities: Vec<Vulnerability> = document
        .findings
        .iter()
        .enumerate()
        .map(|(index, finding)| vulnerability(document, &refs, index, finding))
        .collect();
    // The SBOM's text is kept as written (its keys in their order) and the
    // vulnerabilities are appended as its last member.
    let vulnerabilities =
        serde_json::to_string_pretty(&vulnerabilities).map_err(serialize_error)?;
    let body = sbom
        .trim_end()
        .strip_suffix('}')
        .unwrap_or(&sbom)
        .trim_end();
    let mut text = String::with_capacity(sbom.len() + vulnerabilities.len() + 64);
    text.push_str(body);
    text.push_str(",\n  \"vulnerabilities\": ");
    for (index, line) in vulnerabilities.lines().enumerate() {
        if index > 0 {
            text.push_str("\n  ");
        }
        text.push_str(line);
    }
    text.push_str("\n}\n");
    Ok(text)
}

/// The `bom-ref` of each package, by its position in the inventory: the SBOM lists
/// the operating system first, then every package in inventory order.
fn package_refs(bom: &Value, packages: &[Package]) -> Vec<String> {
    let listed: Vec<String> = bom["components"]
        .as_array()
        .map(|components| {
            components
                .iter()
                .filter(|component| component["type"] != "operating-system")
                .map(|component| {
                    component["bom-ref"]
                        .as_str()
                        .unwrap_or(IMAGE_REF)
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    (0..packages.len())
        .map(|index| {
            listed
                .get(index)
                .cloned()
                .unwrap_or_else(|| IMAGE_REF.to_owned())
        })
        .collect()
}

/// The positions of the packages a finding is about: every binary package of an OS
/// source package at the matched version, or the language packages with the
/// finding's purl found at the finding's locations.
fn affected_packages(document: &ScanDocument, finding: &Finding) -> Vec<usize> {
    let packages = &document.sbom.inventory.packages;
    let matched: Vec<usize> = if finding.package_type.is_os() {
        packages
            .iter()
            .enumerate()
            .filter(|(_, package)| {
                package.package_type == finding.package_type
                    && package.source_name_or_name() == finding.package_name
                    && compared_version(package) == finding.installed_version
            })
            .map(|(index, _)| index)
            .collect()
    } else {
        let same_purl = |package: &&Package| package.purl == finding.purl;
        let found_here: Vec<usize> = packages
            .iter()
            .enumerate()
            .filter(|(_, package)| {
                same_purl(package)
                    && package
                        .locations
                        .iter()
                        .all(|location| finding.locations.contains(location))
            })
            .map(|(index, _)| index)
            .collect();
        if found_here.is_empty() {
            packages
                .iter()
                .position(|package| same_purl(&package))
                .into_iter()
                .collect()
        } else {
            found_here
        }
    };
    matched
}

/// The version the matcher compares: the source version of a dpkg package when the
/// status file records one, else the installed version.
fn compared_version(package: &Package) -> &str {
    match package.package_type {
        PackageType::Deb => package.source_version_or_version(),
        _ => &package.version,
    }
}

fn vulnerability(
    document: &ScanDocument,
    refs: &[String],
    index: usize,
    finding: &Finding,
) -> Vulnerability {
    let mut versions = vec![AffectedVersion {
        version: finding.installed_version.clone(),
        status: "affected",
    }];
    if let Some(fixed) = &finding.fixed_by {
        versions.push(AffectedVersion {
            version: fixed.clone(),
            status: "unaffected",
        });
    }
    let mut affected_refs: Vec<String> = affected_packages(document, finding)
        .into_iter()
        .filter_map(|position| refs.get(position).cloned())
        .collect();
    affected_refs.dedup();
    if affected_refs.is_empty() {
        affected_refs.push(IMAGE_REF.to_owned());
    }
    let affects = affected_refs
        .into_iter()
        .map(|reference| Affects {
            reference,
            versions: versions
                .iter()
                .map(|version| AffectedVersion {
                    version: version.version.clone(),
                    status: version.status,
                })
                .collect(),
        })
        .collect();

    let mut references: Vec<Reference> = Vec::new();
    for other in finding.aliases.iter().chain(&finding.advisories) {
        if other != &finding.id && !references.iter().any(|known| &known.id == other) {
            references.push(Reference {
                id: other.clone(),
                source: Source {
                    name: Some(id_prefix(other).to_owned()),
                    url: None,
                },
            });
        }
    }

    let (state, response, detail) = match finding.status {
        FindingStatus::Fixed => (
            None,
            vec!["update"],
            match &finding.fixed_by {
                Some(version) => format!("fixed in {version}"),
                None => "fixed".to_owned(),
            },
        ),
        FindingStatus::NotFixedYet => {
            (None, vec!["can_not_fix"], "no fix published yet".to_owned())
        }
        FindingStatus::WillNotFix => (
            None,
            vec!["will_not_fix"],
            "the distribution will not fix it".to_owned(),
        ),
        FindingStatus::NotAffected => (
            Some("not_affected"),
            Vec::new(),
            "the distribution states the package is not affected".to_owned(),
        ),
    };

    let mut properties = vec![
        Property {
            name: "crscan:finding:ecosystem",
            value: finding.ecosystem.clone(),
        },
        Property {
            name: "crscan:finding:status",
            value: status_name(finding.status).to_owned(),
        },
        Property {
            name: "crscan:finding:severity",
            value: finding.severity.as_str().to_owned(),
        },
    ];
    if let Some(digest) = &finding.layer_digest {
        properties.push(Property {
            name: "crscan:finding:layer_digest",
            value: digest.to_string(),
        });
    }

    Vulnerability {
        bom_ref: format!("crscan:vulnerability:{index}:{}", finding.id),
        id: finding.id.clone(),
        source: finding.help_link().map(|url| Source {
            name: Some(id_prefix(finding.advisories.first().unwrap_or(&finding.id)).to_owned()),
            url: Some(url.to_owned()),
        }),
        references,
        ratings: ratings(finding),
        description: finding
            .summary
            .clone()
            .or_else(|| finding.description.clone()),
        detail: finding
            .description
            .clone()
            .filter(|_| finding.summary.is_some()),
        recommendation: finding
            .fixed_by
            .as_ref()
            .map(|version| format!("Upgrade {} to {version}", finding.package_name)),
        advisories: finding
            .references
            .iter()
            .map(|url| AdvisoryLink { url: url.clone() })
            .collect(),
        analysis: Analysis {
            state,
            response,
            detail,
        },
        affects,
        properties,
    }
}

fn ratings(finding: &Finding) -> Vec<Rating> {
    let severity = severity_word(finding.severity);
    let cvss_source =
        matches!(finding.severity_source, SeveritySource::Nvd { .. }).then(|| Source {
            name: Some("NVD".to_owned()),
            url: Some("https://nvd.nist.gov/".to_owned()),
        });
    let cvss_rating = finding.cvss.as_ref().map(|cvss| Rating {
        source: cvss_source,
        score: Some(cvss.score),
        severity: severity_word(Severity::from_cvss_score(cvss.score)),
        method: cvss_method(cvss.version),
        vector: Some(cvss.vector.clone()),
        justification: None,
    });
    let mut ratings = Vec::new();
    match &finding.severity_source {
        SeveritySource::Distribution {
            distribution,
            rating,
        } => ratings.push(Rating {
            source: Some(Source {
                name: Some(distribution.clone()),
                url: None,
            }),
            score: None,
            severity,
            method: "other",
            vector: None,
            justification: Some(format!("{distribution} rates it {rating}")),
        }),
        SeveritySource::Cvss { .. } | SeveritySource::Nvd { .. } => {}
        SeveritySource::AdvisoryLabel { advisory, label } => ratings.push(Rating {
            source: Some(Source {
                name: Some(advisory.clone()),
                url: None,
            }),
            score: None,
            severity,
            method: "other",
            vector: None,
            justification: Some(format!("{advisory} labels it {label}")),
        }),
        SeveritySource::None => {
            if cvss_rating.is_none() {
                ratings.push(Rating {
                    source: None,
                    score: None,
                    severity,
                    method: "other",
                    vector: None,
                    justification: None,
                });
            }
        }
    }
    ratings.extend(cvss_rating);
    ratings
}

/// The `scoreMethod` of a CVSS version.
fn cvss_method(version: CvssVersion) -> &'static str {
    match version {
        CvssVersion::V2 => "CVSSv2",
        CvssVersion::V3_0 => "CVSSv3",
        CvssVersion::V3_1 => "CVSSv31",
        CvssVersion::V4 => "CVSSv4",
    }
}

fn status_name(status: FindingStatus) -> &'static str {
    match status {
        FindingStatus::Fixed => "fixed",
        FindingStatus::NotFixedYet => "not_fixed_yet",
        FindingStatus::WillNotFix => "will_not_fix",
        FindingStatus::NotAffected => "not_affected",
    }
}

/// The database an id comes from, by its prefix (`GHSA-…` → `GHSA`).
fn id_prefix(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use crscan_model::CvssScore;

    use super::*;

    #[test]
    fn an_nvd_rating_names_nvd_as_its_source() {
        let finding = Finding {
            id: "CVE-2022-27664".to_owned(),
            aliases: Vec::new(),
            advisories: vec!["GO-2022-0969".to_owned()],
            references: Vec::new(),
            summary: None,
            description: None,
            severity: Severity::High,
            severity_source: SeveritySource::Nvd {
                version: CvssVersion::V3_1,
                score: 7.5,
            },
            cvss: Some(CvssScore {
                version: CvssVersion::V3_1,
                vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H".to_owned(),
                score: 7.5,
            }),
            package_name: "stdlib".to_owned(),
            source_package: None,
            installed_version: "1.19.0".to_owned(),
            fixed_by: Some("1.19.1".to_owned()),
            status: FindingStatus::Fixed,
            package_type: PackageType::Golang,
            ecosystem: "Go".to_owned(),
            purl: "pkg:golang/stdlib@1.19.0".to_owned(),
            binary_packages: Vec::new(),
            layer_digest: None,
            locations: Vec::new(),
            advisory_link: None,
        };
        let rated = serde_json::to_value(ratings(&finding)).unwrap();
        assert_eq!(rated.as_array().unwrap().len(), 1, "{rated}");
        assert_eq!(rated[0]["source"]["name"], "NVD");
        assert_eq!(rated[0]["method"], "CVSSv31");
        assert_eq!(rated[0]["score"], 7.5);
    }
}
