//! The REST API's JSON: the protobuf JSON mapping of the Container Registry messages
//! (contract §1.2) as typed serde structs, private to this crate. Answers are rendered
//! here from domain values; request bodies are read here into the service's requests.
//! Field order follows the proto's field numbers, as protobuf JSON printers write it.
//!
//! Mapping rules: lowerCamelCase names; int64 as decimal strings; enums by name;
//! `google.protobuf.Timestamp` as RFC 3339 with milliseconds; `Duration` as seconds
//! with an `s`; `Any` as the message with an `@type` member first.

use std::collections::BTreeMap;

use crscan_model::Finding;
use crscan_store::{
    BlobRef, ErrorStatus, Image, MetadataSubject, Operation, OperationMetadata, OperationResponse,
    OperationResult, PushRule, Registry, Repository, ScanPolicy, ScanResult, ScanRules,
    ScheduledRule,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::service::{Page, rule_error};

/// The `@type` prefix of the Container Registry messages.
const REGISTRY_TYPES: &str = "type.googleapis.com/yandex.cloud.containerregistry.v1.";

fn timestamp(millis: i64) -> String {
    crscan_model::time::rfc3339_millis(millis)
}

/// An `Any`: the message with its type URL first.
#[derive(Serialize)]
pub(crate) struct Any<T> {
    #[serde(rename = "@type")]
    type_url: String,
    #[serde(flatten)]
    message: T,
}

fn any<T>(type_url: String, message: T) -> Any<T> {
    Any { type_url, message }
}

// ---- resources ------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegistryJson<'a> {
    id: &'a str,
    folder_id: &'a str,
    name: &'a str,
    status: &'static str,
    created_at: String,
    labels: &'a BTreeMap<String, String>,
}

pub(crate) fn registry(registry: &Registry) -> RegistryJson<'_> {
    RegistryJson {
        id: &registry.id,
        folder_id: &registry.folder_id,
        name: &registry.name,
        status: registry.status.name(),
        created_at: timestamp(registry.created_at),
        labels: &registry.labels,
    }
}

#[derive(Serialize)]
pub(crate) struct RepositoryJson<'a> {
    name: &'a str,
    id: &'a str,
}

pub(crate) fn repository(repository: &Repository) -> RepositoryJson<'_> {
    RepositoryJson {
        name: &repository.name,
        id: &repository.id,
    }
}

#[derive(Serialize)]
pub(crate) struct BlobJson<'a> {
    id: &'a str,
    digest: String,
    size: String,
}

fn blob(blob: &BlobRef) -> BlobJson<'_> {
    BlobJson {
        id: &blob.id,
        digest: blob.digest.to_string(),
        size: blob.size.to_string(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageJson<'a> {
    id: &'a str,
    name: &'a str,
    digest: String,
    compressed_size: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<BlobJson<'a>>,
    layers: Vec<BlobJson<'a>>,
    tags: &'a [String],
    created_at: String,
}

pub(crate) fn image(image: &Image) -> ImageJson<'_> {
    ImageJson {
        id: &image.id,
        name: &image.name,
        digest: image.digest.to_string(),
        compressed_size: image.compressed_size.to_string(),
        config: image.config.as_ref().map(blob),
        layers: image.layers.iter().map(blob).collect(),
        tags: &image.tags,
        created_at: timestamp(image.created_at),
    }
}

// ---- scanner --------------------------------------------------------------------

/// `VulnerabilityStats`: all six counters, always present (§11).
#[derive(Serialize)]
pub(crate) struct StatsJson {
    critical: String,
    high: String,
    medium: String,
    low: String,
    negligible: String,
    undefined: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScanResultJson<'a> {
    id: &'a str,
    image_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scanned_at: Option<String>,
    status: &'static str,
    vulnerabilities: StatsJson,
}

pub(crate) fn scan_result(result: &ScanResult) -> ScanResultJson<'_> {
    let counts = result.counts;
    ScanResultJson {
        id: &result.id,
        image_id: &result.image_id,
        scanned_at: result.scanned_at.map(timestamp),
        status: result.status.name(),
        vulnerabilities: StatsJson {
            critical: counts.critical.to_string(),
            high: counts.high.to_string(),
            medium: counts.medium.to_string(),
            low: counts.low.to_string(),
            negligible: counts.negligible.to_string(),
            undefined: counts.undefined.to_string(),
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PackageVulnerabilityJson<'a> {
    name: &'a str,
    link: String,
    package: &'a str,
    source: &'static str,
    version: &'a str,
    fixed_by: &'a str,
    origin: &'static str,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize)]
pub(crate) struct VulnerabilityJson<'a> {
    severity: &'static str,
    package: PackageVulnerabilityJson<'a>,
}

pub(crate) fn vulnerability(finding: &Finding) -> VulnerabilityJson<'_> {
    let fields = finding.api_fields();
    VulnerabilityJson {
        severity: finding.severity.as_str(),
        package: PackageVulnerabilityJson {
            name: fields.name,
            link: fields.link,
            package: fields.package,
            source: fields.source,
            version: fields.version,
            fixed_by: fields.fixed_by,
            origin: fields.origin,
            kind: fields.kind,
        },
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PushRuleJson {
    #[serde(default)]
    repository_prefixes: Vec<String>,
    #[serde(default)]
    disabled: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ScheduledRuleJson {
    #[serde(default)]
    repository_prefixes: Vec<String>,
    #[serde(default)]
    rescan_period: Option<String>,
    #[serde(default)]
    disabled: bool,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ScanRulesJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push_rule: Option<PushRuleJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule_rules: Option<Vec<ScheduledRuleJson>>,
}

fn rules_json(rules: &ScanRules) -> ScanRulesJson {
    ScanRulesJson {
        push_rule: rules.push_rule.as_ref().map(|rule| PushRuleJson {
            repository_prefixes: rule.repository_prefixes().to_vec(),
            disabled: rule.disabled,
        }),
        schedule_rules: (!rules.schedule_rules.is_empty()).then(|| {
            rules
                .schedule_rules
                .iter()
                .map(|rule| ScheduledRuleJson {
                    repository_prefixes: rule.repository_prefixes().to_vec(),
                    rescan_period: Some(format!("{}s", rule.rescan_period_seconds())),
                    disabled: rule.disabled,
                })
                .collect()
        }),
    }
}

/// Parses a protobuf JSON `Duration` (`"604800s"`, `"1.5s"`) into whole seconds.
fn parse_duration_seconds(text: &str) -> Option<i64> {
    let seconds = text.strip_suffix('s')?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 9
    {
        return None;
    }
    whole.parse().ok()
}

impl ScanRulesJson {
    /// The domain rules, checked by their constructors; errors name the field.
    pub(crate) fn into_rules(self) -> Result<ScanRules, ApiError> {
        let push_rule = self
            .push_rule
            .map(|rule| {
                PushRule::new(rule.repository_prefixes, rule.disabled)
                    .map_err(|error| rule_error("rules.pushRule", error))
            })
            .transpose()?;
        let mut schedule_rules = Vec::new();
        for (index, rule) in self
            .schedule_rules
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let field = format!("rules.scheduleRules[{index}]");
            let text = rule
                .rescan_period
                .ok_or_else(|| ApiError::invalid(format!("{field}.rescanPeriod is required")))?;
            let seconds = parse_duration_seconds(&text).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{field}.rescanPeriod {text:?} is not a duration such as \"604800s\""
                ))
            })?;
            schedule_rules.push(
                ScheduledRule::new(rule.repository_prefixes, seconds, rule.disabled)
                    .map_err(|error| rule_error(&field, error))?,
            );
        }
        Ok(ScanRules {
            push_rule,
            schedule_rules,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScanPolicyJson<'a> {
    id: &'a str,
    registry_id: &'a str,
    name: &'a str,
    description: &'a str,
    rules: ScanRulesJson,
    created_at: String,
    disabled: bool,
}

pub(crate) fn scan_policy(policy: &ScanPolicy) -> ScanPolicyJson<'_> {
    ScanPolicyJson {
        id: &policy.id,
        registry_id: &policy.registry_id,
        name: &policy.name,
        description: &policy.description,
        rules: rules_json(&policy.rules),
        created_at: timestamp(policy.created_at),
        disabled: policy.disabled,
    }
}

// ---- operations and errors ------------------------------------------------------

/// `google.rpc.Status`, with a `google.rpc.RequestInfo` detail naming the request.
#[derive(Serialize)]
pub(crate) struct StatusJson<'a> {
    code: i32,
    message: &'a str,
    details: Vec<Any<RequestInfoJson<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestInfoJson<'a> {
    request_id: &'a str,
}

pub(crate) fn status<'a>(code: i32, message: &'a str, request_id: &'a str) -> StatusJson<'a> {
    StatusJson {
        code,
        message,
        details: vec![any(
            "type.googleapis.com/google.rpc.RequestInfo".to_owned(),
            RequestInfoJson { request_id },
        )],
    }
}

/// The `error` of a failed operation: its own status, without request details.
#[derive(Serialize)]
pub(crate) struct OperationErrorJson<'a> {
    code: i32,
    message: &'a str,
    details: [(); 0],
}

/// An operation's `metadata`: `<Method>Metadata` naming the resource.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetadataJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    scan_result_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repository_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scan_policy_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run_lifecycle_policy_result_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifecycle_policy_id: Option<&'a str>,
}

fn metadata(metadata: &OperationMetadata) -> Any<MetadataJson<'_>> {
    let mut json = MetadataJson {
        scan_result_id: None,
        registry_id: None,
        repository_id: None,
        image_id: None,
        scan_policy_id: None,
        dry_run_lifecycle_policy_result_id: None,
        lifecycle_policy_id: None,
    };
    match metadata.subject() {
        MetadataSubject::ScanResult(id) => json.scan_result_id = Some(id),
        MetadataSubject::Registry(id) => json.registry_id = Some(id),
        MetadataSubject::Repository(id) => json.repository_id = Some(id),
        MetadataSubject::Image(id) => json.image_id = Some(id),
        MetadataSubject::ScanPolicy(id) => json.scan_policy_id = Some(id),
        MetadataSubject::LifecyclePolicy(id) => json.lifecycle_policy_id = Some(id),
        MetadataSubject::DryRun {
            result_id,
            policy_id,
        } => {
            json.dry_run_lifecycle_policy_result_id = Some(result_id);
            json.lifecycle_policy_id = Some(policy_id);
        }
    }
    let name = metadata.message_name();
    any(format!("{REGISTRY_TYPES}{name}"), json)
}

/// `google.protobuf.Empty`.
#[derive(Serialize)]
pub(crate) struct EmptyJson {}

/// An operation's `response`.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum ResponseJson<'a> {
    Empty(Any<EmptyJson>),
    Registry(Any<RegistryJson<'a>>),
    Repository(Any<RepositoryJson<'a>>),
    ScanResult(Any<ScanResultJson<'a>>),
    ScanPolicy(Any<ScanPolicyJson<'a>>),
    LifecyclePolicy(Any<super::lifecycle::LifecyclePolicyJson<'a>>),
    DryRunResult(Any<super::lifecycle::DryRunResultJson<'a>>),
}

fn response(response: &OperationResponse) -> ResponseJson<'_> {
    let typed = |name: &str| format!("{REGISTRY_TYPES}{name}");
    match response {
        OperationResponse::Empty => ResponseJson::Empty(any(
            "type.googleapis.com/google.protobuf.Empty".to_owned(),
            EmptyJson {},
        )),
        OperationResponse::Registry(value) => {
            ResponseJson::Registry(any(typed("Registry"), registry(value)))
        }
        OperationResponse::Repository(value) => {
            ResponseJson::Repository(any(typed("Repository"), repository(value)))
        }
        OperationResponse::ScanResult(value) => {
            ResponseJson::ScanResult(any(typed("ScanResult"), scan_result(value)))
        }
        OperationResponse::ScanPolicy(value) => {
            ResponseJson::ScanPolicy(any(typed("ScanPolicy"), scan_policy(value)))
        }
        OperationResponse::LifecyclePolicy(value) => ResponseJson::LifecyclePolicy(any(
            typed("LifecyclePolicy"),
            super::lifecycle::policy(value),
        )),
        OperationResponse::DryRunResult(value) => ResponseJson::DryRunResult(any(
            typed("DryRunLifecyclePolicyResult"),
            super::lifecycle::dry_run(value),
        )),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OperationJson<'a> {
    id: &'a str,
    description: &'a str,
    created_at: String,
    created_by: &'a str,
    modified_at: String,
    done: bool,
    metadata: Any<MetadataJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<OperationErrorJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ResponseJson<'a>>,
}

pub(crate) fn operation(operation: &Operation) -> OperationJson<'_> {
    let (error, answer) = match &operation.result {
        None => (None, None),
        Some(OperationResult::Error(ErrorStatus { code, message })) => (
            Some(OperationErrorJson {
                code: *code,
                message,
                details: [],
            }),
            None,
        ),
        Some(OperationResult::Response(value)) => (None, Some(response(value))),
    };
    OperationJson {
        id: &operation.id,
        description: &operation.description,
        created_at: timestamp(operation.created_at),
        created_by: &operation.created_by,
        modified_at: timestamp(operation.modified_at),
        done: operation.done,
        metadata: metadata(&operation.metadata),
        error,
        response: answer,
    }
}

/// A rendered message as a JSON value (serialising these structs cannot fail).
pub(crate) fn value(message: impl Serialize) -> serde_json::Value {
    serde_json::to_value(message).unwrap_or_default()
}

/// A list answer: `{"<field>": [...], "nextPageToken": "..."}` (§1.5).
pub(crate) fn page<T>(
    field: &str,
    page: &Page<T>,
    render: impl Fn(&T) -> serde_json::Value,
) -> serde_json::Value {
    let items: Vec<serde_json::Value> = page.items.iter().map(render).collect();
    let mut answer = serde_json::Map::new();
    answer.insert(field.to_owned(), serde_json::Value::Array(items));
    answer.insert(
        "nextPageToken".to_owned(),
        serde_json::Value::String(page.next_page_token.clone()),
    );
    serde_json::Value::Object(answer)
}

// ---- request bodies -------------------------------------------------------------

/// Reads a JSON object body into `T`; errors name the field that did not fit.
pub(crate) fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| ApiError::invalid(format!("request body is not JSON: {error}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("request body is not a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        ApiError::invalid(format!("{path}: {}", error.into_inner()))
    })
}

/// An `updateMask` (`google.protobuf.FieldMask` JSON: comma-separated paths).
pub(crate) fn update_mask(mask: Option<&str>) -> Option<Vec<String>> {
    mask.filter(|mask| !mask.trim().is_empty())
        .map(|mask| mask.split(',').map(|path| path.trim().to_owned()).collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateRegistryBody {
    #[serde(default)]
    pub folder_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateRegistryBody {
    #[serde(default)]
    pub update_mask: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
pub(crate) struct UpsertRepositoryBody {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScanBody {
    #[serde(default)]
    pub image_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateScanPolicyBody {
    #[serde(default)]
    pub registry_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Option<ScanRulesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateScanPolicyBody {
    #[serde(default)]
    pub update_mask: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Option<ScanRulesJson>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crscan_model::SeverityCounts;
    use crscan_store::ScanStatus;

    #[test]
    fn scan_results_carry_every_counter_as_a_string() {
        let result = ScanResult {
            id: "che1el9t4t95elduhuq5".to_owned(),
            image_id: "crpqmsqp5mtbh627i7qs".to_owned(),
            repository_id: "crt".to_owned(),
            registry_id: "crp".to_owned(),
            operation_id: "crq".to_owned(),
            status: ScanStatus::Ready,
            created_at: 0,
            scanned_at: Some(1_615_905_242_401),
            counts: SeverityCounts {
                medium: 6,
                low: 13,
                negligible: 3,
                ..SeverityCounts::default()
            },
            manifest_digest: None,
            database_digest: None,
            error: None,
        };
        let value = serde_json::to_value(scan_result(&result)).expect("renders");
        assert_eq!(value["status"], "READY");
        assert_eq!(value["scannedAt"], "2021-03-16T14:34:02.401Z");
        assert_eq!(value["vulnerabilities"]["medium"], "6");
        assert_eq!(value["vulnerabilities"]["critical"], "0");
        let running = ScanResult {
            status: ScanStatus::Running,
            scanned_at: None,
            ..result
        };
        let value = serde_json::to_value(scan_result(&running)).expect("renders");
        assert!(value.get("scannedAt").is_none());
    }

    #[test]
    fn any_puts_its_type_first() {
        let text = serde_json::to_string(&metadata(&OperationMetadata::Scan {
            scan_result_id: "che1".to_owned(),
        }))
        .expect("renders");
        assert_eq!(
            text,
            r#"{"@type":"type.googleapis.com/yandex.cloud.containerregistry.v1.ScanMetadata","scanResultId":"che1"}"#
        );
        let empty = serde_json::to_string(&response(&OperationResponse::Empty)).expect("renders");
        assert_eq!(
            empty,
            r#"{"@type":"type.googleapis.com/google.protobuf.Empty"}"#
        );
    }

    #[test]
    fn durations_are_protobuf_json() {
        assert_eq!(parse_duration_seconds("604800s"), Some(604_800));
        assert_eq!(parse_duration_seconds("1.5s"), Some(1));
        assert_eq!(parse_duration_seconds("7d"), None);
        assert_eq!(parse_duration_seconds("s"), None);
    }
}
