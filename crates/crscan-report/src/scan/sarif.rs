//! SARIF 2.1.0 for code-scanning user interfaces
//! (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>).
//!
//! One run by crscan. Each vulnerability id is a `reportingDescriptor` in
//! `tool.driver.rules` (§3.49), with the most severe level it was found at as its
//! default level and GitHub's `security-severity` property (the CVSS score, else the
//! lower bound of the severity's band). Each finding is a `result` (§3.27) whose
//! `level` follows its severity (CRITICAL and HIGH `error`, MEDIUM `warning`, the rest
//! `note`) and whose location is the file the package was found in, as a path
//! relative to the image root.

use std::collections::HashMap;

use crscan_model::Severity;
use serde::Serialize;

use crscan_model::Finding;

use super::ScanDocument;
use crate::ReportError;

/// The schema URI written in `$schema` (§3.13.3).
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Serialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    results: Vec<ResultObject>,
    properties: RunProperties,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunProperties {
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest_digest: Option<String>,
    database_digest: String,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: String,
    version: String,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: String,
    short_description: Message,
    full_description: Message,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<String>,
    help: Message,
    default_configuration: Configuration,
    properties: RuleProperties,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    #[serde(rename = "security-severity")]
    security_severity: String,
    tags: Vec<String>,
}

#[derive(Serialize)]
struct Message {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultObject {
    rule_id: String,
    rule_index: usize,
    level: &'static str,
    message: Message,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<Location>,
    properties: ResultProperties,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultProperties {
    severity: Severity,
    purl: String,
    package_name: String,
    installed_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer_digest: Option<String>,
}

/// The SARIF level of a severity (§3.27.10).
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Negligible | Severity::Undefined => "note",
    }
}

/// GitHub's `security-severity`: the CVSS score, else the lower bound of the band of
/// the CVSS qualitative rating scale that the severity names.
fn security_severity(finding: &Finding) -> f64 {
    if let Some(cvss) = &finding.cvss {
        return cvss.score;
    }
    match finding.severity {
        Severity::Critical => 9.0,
        Severity::High => 7.0,
        Severity::Medium => 4.0,
        Severity::Low => 0.1,
        Severity::Negligible | Severity::Undefined => 0.0,
    }
}

/// Renders the log, pretty-printed, with a final newline.
pub fn render(document: &ScanDocument) -> Result<String, ReportError> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut rule_severity: Vec<(Severity, f64)> = Vec::new();
    let mut rule_index: HashMap<&str, usize> = HashMap::new();
    let mut results = Vec::new();
    for finding in &document.findings {
        let index = match rule_index.get(finding.id.as_str()) {
            Some(index) => *index,
            None => {
                let index = rules.len();
                rule_index.insert(&finding.id, index);
                rules.push(rule(finding));
                rule_severity.push((finding.severity, security_severity(finding)));
                index
            }
        };
        // A rule takes the most severe level and the highest score it was found at.
        if let Some((severity, score)) = rule_severity.get_mut(index) {
            *severity = (*severity).min(finding.severity);
            *score = score.max(security_severity(finding));
        }
        results.push(result(finding, index));
    }
    for (rule, (severity, score)) in rules.iter_mut().zip(&rule_severity) {
        rule.default_configuration.level = level(*severity);
        rule.properties.security_severity = format!("{score:.1}");
        rule.properties.tags = vec![
            "security".to_owned(),
            "vulnerability".to_owned(),
            severity.as_str().to_owned(),
        ];
    }
    let generator = &document.sbom.generator;
    let log = Log {
        schema: SCHEMA_URI,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: generator.tool_name.clone(),
                    version: generator.tool_version.clone(),
                    rules,
                },
            },
            results,
            properties: RunProperties {
                image: document.sbom.subject.name.clone(),
                manifest_digest: document
                    .sbom
                    .subject
                    .manifest_digest
                    .as_ref()
                    .map(ToString::to_string),
                database_digest: document.database.digest.clone(),
            },
        }],
    };
    let mut text = serde_json::to_string_pretty(&log).map_err(|source| ReportError::Serialize {
        format: "SARIF",
        source,
    })?;
    text.push('\n');
    Ok(text)
}

fn rule(finding: &Finding) -> Rule {
    let title = finding
        .summary
        .clone()
        .unwrap_or_else(|| format!("{} in {}", finding.id, finding.package_name));
    let full = finding
        .description
        .clone()
        .or_else(|| finding.summary.clone())
        .unwrap_or_else(|| title.clone());
    let mut help = format!("{}\n\n{full}", finding.id);
    if !finding.aliases.is_empty() {
        help.push_str(&format!("\n\nAliases: {}", finding.aliases.join(", ")));
    }
    if let Some(link) = finding.help_link() {
        help.push_str(&format!("\n\n{link}"));
    }
    Rule {
        id: finding.id.clone(),
        short_description: Message { text: title },
        full_description: Message { text: full },
        help_uri: finding.help_link().map(str::to_owned),
        help: Message { text: help },
        default_configuration: Configuration {
            level: level(finding.severity),
        },
        properties: RuleProperties {
            security_severity: String::new(),
            tags: Vec::new(),
        },
    }
}

fn result(finding: &Finding, rule_index: usize) -> ResultObject {
    let fix = match &finding.fixed_by {
        Some(version) => format!("fixed in {version}"),
        None => finding.status.label().to_owned(),
    };
    let text = format!(
        "{} {} {} is affected by {} ({}); {fix}",
        finding.package_type,
        finding.package_name,
        finding.installed_version,
        finding.id,
        finding.severity
    );
    ResultObject {
        rule_id: finding.id.clone(),
        rule_index,
        level: level(finding.severity),
        message: Message { text },
        locations: finding
            .locations
            .iter()
            .take(1)
            .map(|path| Location {
                physical_location: PhysicalLocation {
                    artifact_location: ArtifactLocation {
                        uri: relative_uri(path),
                    },
                },
            })
            .collect(),
        properties: ResultProperties {
            severity: finding.severity,
            purl: finding.purl.clone(),
            package_name: finding.package_name.clone(),
            installed_version: finding.installed_version.clone(),
            fixed_version: finding.fixed_by.clone(),
            layer_digest: finding.layer_digest.as_ref().map(ToString::to_string),
        },
    }
}

/// A path inside the image as a relative URI reference (RFC 3986): the leading `/`
/// dropped, and every byte outside the unreserved set and `/` percent-encoded.
fn relative_uri(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.trim_start_matches('/').bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/' | b'+') {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_relative_uris() {
        assert_eq!(
            relative_uri("/usr/lib/node_modules/a b/package.json"),
            "usr/lib/node_modules/a%20b/package.json"
        );
        assert_eq!(relative_uri("/var/lib/dpkg/status"), "var/lib/dpkg/status");
        assert_eq!(relative_uri("/opt/x#1%"), "opt/x%231%25");
    }

    #[test]
    fn levels_follow_severity() {
        assert_eq!(level(Severity::Critical), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Undefined), "note");
    }
}
