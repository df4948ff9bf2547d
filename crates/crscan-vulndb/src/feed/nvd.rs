//! NVD's CVE API 2.0 JSON (<https://nvd.nist.gov/developers/vulnerabilities>; schema
//! `cve_api_json_2.0.schema`): one response page, `{"format": "NVD_CVE", "version":
//! "2.0", "vulnerabilities": [{"cve": {…}}]}`.
//!
//! NVD names no packages, so each CVE becomes an [`Advisory`] with no affected
//! packages: the database keeps it per CVE id, and the matcher reads its CVSS vectors
//! when a finding's own records rate nothing. Per CVSS version the `Primary` metric
//! (NVD's own) is kept, else the first one (a CNA's). A `Rejected` CVE is withdrawn.

use serde::Deserialize;

use crate::advisory::{Advisory, FeedKind, SeverityStatement, cve_of};
use crate::feed::{FeedOutput, RecordError};

#[derive(Deserialize)]
struct WirePage {
    vulnerabilities: Option<Vec<WireItem>>,
}

#[derive(Deserialize)]
struct WireItem {
    cve: Option<WireCve>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCve {
    id: Option<String>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    #[serde(default)]
    vuln_status: Option<String>,
    #[serde(default)]
    descriptions: Option<Vec<WireDescription>>,
    #[serde(default)]
    metrics: Option<WireMetrics>,
    #[serde(default)]
    references: Option<Vec<WireReference>>,
}

#[derive(Deserialize)]
struct WireDescription {
    lang: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
struct WireReference {
    url: Option<String>,
}

#[derive(Deserialize)]
struct WireMetrics {
    #[serde(default, rename = "cvssMetricV40")]
    v40: Option<Vec<WireMetric>>,
    #[serde(default, rename = "cvssMetricV31")]
    v31: Option<Vec<WireMetric>>,
    #[serde(default, rename = "cvssMetricV30")]
    v30: Option<Vec<WireMetric>>,
    #[serde(default, rename = "cvssMetricV2")]
    v2: Option<Vec<WireMetric>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMetric {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    cvss_data: Option<WireCvssData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCvssData {
    vector_string: Option<String>,
}

/// Makes the statement of one CVSS version from its vector.
type StatementOf = fn(String) -> SeverityStatement;

/// Whether JSON bytes look like an NVD CVE API 2.0 page.
pub fn looks_like_nvd(head: &str) -> bool {
    head.contains("\"NVD_CVE\"")
}

/// Parses one CVE API 2.0 response page.
pub fn parse(bytes: &[u8]) -> Result<FeedOutput, RecordError> {
    let page: WirePage =
        serde_json::from_slice(bytes).map_err(|error| RecordError::Syntax(error.to_string()))?;
    let items = page
        .vulnerabilities
        .ok_or(RecordError::Missing("vulnerabilities"))?;
    let mut output = FeedOutput::default();
    for (index, item) in items.into_iter().enumerate() {
        let Some(cve) = item.cve else {
            output.problem(format!("vulnerabilities[{index}]"), "no cve object");
            continue;
        };
        let Some(id) = cve.id.as_deref().and_then(cve_of) else {
            output.problem(
                format!("vulnerabilities[{index}]"),
                format!("id {:?} is not a CVE id", cve.id.unwrap_or_default()),
            );
            continue;
        };
        let mut advisory = Advisory::new(&id, FeedKind::Nvd);
        advisory.cves = vec![id.clone()];
        advisory.published = cve.published;
        advisory.modified = cve.last_modified;
        if cve.vuln_status.as_deref() == Some("Rejected") {
            advisory.withdrawn = advisory.modified.clone().or(Some(String::new()));
        }
        advisory.details = cve
            .descriptions
            .unwrap_or_default()
            .into_iter()
            .find(|description| description.lang.as_deref() == Some("en"))
            .and_then(|description| description.value);
        advisory.references = cve
            .references
            .unwrap_or_default()
            .into_iter()
            .filter_map(|reference| reference.url)
            .collect();
        advisory.link = Some(format!("https://nvd.nist.gov/vuln/detail/{id}"));
        if let Some(metrics) = cve.metrics {
            let versions: [(Option<Vec<WireMetric>>, StatementOf); 4] = [
                (metrics.v40, SeverityStatement::CvssV4),
                (metrics.v31, SeverityStatement::CvssV3),
                (metrics.v30, SeverityStatement::CvssV3),
                (metrics.v2, SeverityStatement::CvssV2),
            ];
            for (list, statement) in versions {
                let list = list.unwrap_or_default();
                let chosen = list
                    .iter()
                    .find(|metric| metric.kind.as_deref() == Some("Primary"))
                    .or_else(|| list.first());
                if let Some(vector) = chosen
                    .and_then(|metric| metric.cvss_data.as_ref())
                    .and_then(|data| data.vector_string.clone())
                {
                    advisory.severity.push(statement(vector));
                }
            }
        }
        output.advisories.push(advisory);
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_primary_vector_of_each_version() {
        let page = serde_json::json!({
            "resultsPerPage": 2, "startIndex": 0, "totalResults": 2,
            "format": "NVD_CVE", "version": "2.0", "timestamp": "2026-08-21T00:00:00.000",
            "vulnerabilities": [
                {"cve": {"id": "CVE-2023-0001", "vulnStatus": "Analyzed",
                  "descriptions": [{"lang": "en", "value": "A flaw."}],
                  "metrics": {"cvssMetricV31": [
                      {"source": "cna@example.org", "type": "Secondary",
                       "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", "baseScore": 5.3}},
                      {"source": "nvd@nist.gov", "type": "Primary",
                       "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseScore": 9.8}}]}}},
                {"cve": {"id": "CVE-2023-0002", "vulnStatus": "Rejected"}}
            ]
        });
        let output = parse(page.to_string().as_bytes()).unwrap();
        assert!(output.problems.is_empty());
        let first = &output.advisories[0];
        assert_eq!(first.id, "CVE-2023-0001");
        assert!(first.affected.is_empty());
        assert_eq!(
            first.severity,
            [SeverityStatement::CvssV3(
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".to_owned()
            )]
        );
        assert!(output.advisories[1].withdrawn.is_some());
    }
}
