//! The gRPC answers: protobuf messages rendered from the same domain values the REST
//! layer renders (`crate::rest::wire`), field for field, so both surfaces say the
//! same thing. Enums are mapped by their API name; `Any` carries the encoded message
//! with a `type.googleapis.com/…` type URL.

use crscan_model::Finding;
use crscan_store::{
    BlobRef, ErrorStatus, Image, MetadataSubject, Operation, OperationMetadata, OperationResponse,
    OperationResult, Registry, Repository, ScanPolicy, ScanResult, ScanRules,
};
use prost::Message;

use super::proto::google::rpc;
use super::proto::yandex::cloud::containerregistry::v1 as cr;
use super::proto::yandex::cloud::operation as op;

/// The `type.googleapis.com/` prefix of the Container Registry messages.
const REGISTRY_TYPES: &str = "type.googleapis.com/yandex.cloud.containerregistry.v1.";

/// A `google.protobuf.Timestamp` from Unix milliseconds.
pub(crate) fn timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: i32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// An `Any` holding `message` under `type.googleapis.com/<full_name>`.
pub(crate) fn any(full_name: &str, message: &impl Message) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{full_name}"),
        value: message.encode_to_vec(),
    }
}

fn registry_any(name: &str, message: &impl Message) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("{REGISTRY_TYPES}{name}"),
        value: message.encode_to_vec(),
    }
}

pub(crate) fn registry(registry: &Registry) -> cr::Registry {
    cr::Registry {
        id: registry.id.clone(),
        folder_id: registry.folder_id.clone(),
        name: registry.name.clone(),
        status: cr::registry::Status::from_str_name(registry.status.name()).unwrap_or_default()
            as i32,
        created_at: Some(timestamp(registry.created_at)),
        labels: registry
            .labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    }
}

pub(crate) fn repository(repository: &Repository) -> cr::Repository {
    cr::Repository {
        name: repository.name.clone(),
        id: repository.id.clone(),
    }
}

fn blob(blob: &BlobRef) -> cr::Blob {
    cr::Blob {
        id: blob.id.clone(),
        digest: blob.digest.to_string(),
        size: blob.size,
        urls: Vec::new(),
    }
}

pub(crate) fn image(image: &Image) -> cr::Image {
    cr::Image {
        id: image.id.clone(),
        name: image.name.clone(),
        digest: image.digest.to_string(),
        compressed_size: image.compressed_size,
        config: image.config.as_ref().map(blob),
        layers: image.layers.iter().map(blob).collect(),
        tags: image.tags.clone(),
        created_at: Some(timestamp(image.created_at)),
    }
}

pub(crate) fn scan_result(result: &ScanResult) -> cr::ScanResult {
    let counts = result.counts;
    let count = |value| i64::try_from(value).unwrap_or(i64::MAX);
    cr::ScanResult {
        id: result.id.clone(),
        image_id: result.image_id.clone(),
        scanned_at: result.scanned_at.map(timestamp),
        status: cr::scan_result::Status::from_str_name(result.status.name()).unwrap_or_default()
            as i32,
        vulnerabilities: Some(cr::VulnerabilityStats {
            critical: count(counts.critical),
            high: count(counts.high),
            medium: count(counts.medium),
            low: count(counts.low),
            negligible: count(counts.negligible),
            undefined: count(counts.undefined),
        }),
    }
}

pub(crate) fn vulnerability(finding: &Finding) -> cr::Vulnerability {
    let fields = finding.api_fields();
    cr::Vulnerability {
        severity: cr::vulnerability::Severity::from_str_name(finding.severity.as_str())
            .unwrap_or_default() as i32,
        vulnerability: Some(cr::vulnerability::Vulnerability::Package(
            cr::PackageVulnerability {
                name: fields.name.to_owned(),
                link: fields.link,
                package: fields.package.to_owned(),
                source: fields.source.to_owned(),
                version: fields.version.to_owned(),
                fixed_by: fields.fixed_by.to_owned(),
                origin: fields.origin.to_owned(),
                r#type: fields.kind,
            },
        )),
    }
}

pub(crate) fn scan_rules(rules: &ScanRules) -> cr::ScanRules {
    cr::ScanRules {
        push_rule: rules.push_rule.as_ref().map(|rule| cr::PushRule {
            repository_prefixes: rule.repository_prefixes().to_vec(),
            disabled: rule.disabled,
        }),
        schedule_rules: rules
            .schedule_rules
            .iter()
            .map(|rule| cr::ScheduledRule {
                repository_prefixes: rule.repository_prefixes().to_vec(),
                rescan_period: Some(prost_types::Duration {
                    seconds: rule.rescan_period_seconds(),
                    nanos: 0,
                }),
                disabled: rule.disabled,
            })
            .collect(),
    }
}

pub(crate) fn scan_policy(policy: &ScanPolicy) -> cr::ScanPolicy {
    cr::ScanPolicy {
        id: policy.id.clone(),
        registry_id: policy.registry_id.clone(),
        name: policy.name.clone(),
        description: policy.description.clone(),
        rules: Some(scan_rules(&policy.rules)),
        created_at: Some(timestamp(policy.created_at)),
        disabled: policy.disabled,
    }
}

/// Every Container Registry operation metadata message (`ScanMetadata`,
/// `CreateRegistryMetadata`, …) is one string field 1 naming the resource
/// (`scan_result_id`, `registry_id`, …), so one message encodes them all; the store's
/// one table gives the name and the id ([`OperationMetadata::message_name`],
/// [`OperationMetadata::subject`]), as it does for REST.
#[derive(Clone, PartialEq, prost::Message)]
struct ResourceMetadata {
    #[prost(string, tag = "1")]
    resource_id: String,
}

fn metadata(metadata: &OperationMetadata) -> prost_types::Any {
    let resource_id = match metadata.subject() {
        MetadataSubject::ScanResult(id)
        | MetadataSubject::Registry(id)
        | MetadataSubject::Repository(id)
        | MetadataSubject::Image(id)
        | MetadataSubject::ScanPolicy(id)
        | MetadataSubject::LifecyclePolicy(id) => id.to_owned(),
        // The one metadata with two fields.
        MetadataSubject::DryRun {
            result_id,
            policy_id,
        } => {
            return registry_any(
                metadata.message_name(),
                &cr::DryRunLifecyclePolicyMetadata {
                    dry_run_lifecycle_policy_result_id: result_id.to_owned(),
                    lifecycle_policy_id: policy_id.to_owned(),
                },
            );
        }
    };
    registry_any(metadata.message_name(), &ResourceMetadata { resource_id })
}

fn response(response: &OperationResponse) -> prost_types::Any {
    match response {
        OperationResponse::Empty => any("google.protobuf.Empty", &()),
        OperationResponse::Registry(value) => registry_any("Registry", &registry(value)),
        OperationResponse::Repository(value) => registry_any("Repository", &repository(value)),
        OperationResponse::ScanResult(value) => registry_any("ScanResult", &scan_result(value)),
        OperationResponse::ScanPolicy(value) => registry_any("ScanPolicy", &scan_policy(value)),
        OperationResponse::LifecyclePolicy(value) => {
            registry_any("LifecyclePolicy", &super::lifecycle::policy(value))
        }
        OperationResponse::DryRunResult(value) => registry_any(
            "DryRunLifecyclePolicyResult",
            &super::lifecycle::dry_run(value),
        ),
    }
}

pub(crate) fn operation(operation: &Operation) -> op::Operation {
    let result = match &operation.result {
        None => None,
        Some(OperationResult::Error(ErrorStatus { code, message })) => {
            Some(op::operation::Result::Error(rpc::Status {
                code: *code,
                message: message.clone(),
                details: Vec::new(),
            }))
        }
        Some(OperationResult::Response(value)) => {
            Some(op::operation::Result::Response(response(value)))
        }
    };
    op::Operation {
        id: operation.id.clone(),
        description: operation.description.clone(),
        created_at: Some(timestamp(operation.created_at)),
        created_by: operation.created_by.clone(),
        modified_at: Some(timestamp(operation.modified_at)),
        done: operation.done,
        metadata: Some(metadata(&operation.metadata)),
        result,
    }
}

/// The service's request rules for one ScanRules message: the same constructors as
/// REST's, errors naming the field.
pub(crate) fn rules_from(
    rules: cr::ScanRules,
) -> Result<crscan_store::ScanRules, crate::errors::ApiError> {
    use crate::errors::ApiError;
    use crate::service::rule_error;
    let push_rule = rules
        .push_rule
        .map(|rule| {
            crscan_store::PushRule::new(rule.repository_prefixes, rule.disabled)
                .map_err(|error| rule_error("rules.pushRule", error))
        })
        .transpose()?;
    let mut schedule_rules = Vec::new();
    for (index, rule) in rules.schedule_rules.into_iter().enumerate() {
        let field = format!("rules.scheduleRules[{index}]");
        let period = rule
            .rescan_period
            .ok_or_else(|| ApiError::invalid(format!("{field}.rescanPeriod is required")))?;
        schedule_rules.push(
            crscan_store::ScheduledRule::new(
                rule.repository_prefixes,
                period.seconds,
                rule.disabled,
            )
            .map_err(|error| rule_error(&field, error))?,
        );
    }
    Ok(crscan_store::ScanRules {
        push_rule,
        schedule_rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_milliseconds() {
        let stamp = timestamp(1_615_905_242_401);
        assert_eq!(stamp.seconds, 1_615_905_242);
        assert_eq!(stamp.nanos, 401_000_000);
        let before_epoch = timestamp(-1);
        assert_eq!(
            (before_epoch.seconds, before_epoch.nanos),
            (-1, 999_000_000)
        );
    }

    #[test]
    fn metadata_is_an_any_of_the_method_metadata() {
        let value = metadata(&OperationMetadata::Scan {
            scan_result_id: "che1".to_owned(),
        });
        assert_eq!(
            value.type_url,
            "type.googleapis.com/yandex.cloud.containerregistry.v1.ScanMetadata"
        );
        let decoded = cr::ScanMetadata::decode(value.value.as_slice()).expect("decodes");
        assert_eq!(decoded.scan_result_id, "che1");
        // Each kind decodes as its own typed message.
        let id = || "crx1".to_owned();
        let registry = metadata(&OperationMetadata::UpdateRegistry { registry_id: id() });
        assert!(registry.type_url.ends_with(".UpdateRegistryMetadata"));
        let decoded =
            cr::UpdateRegistryMetadata::decode(registry.value.as_slice()).expect("decodes");
        assert_eq!(decoded.registry_id, "crx1");
        let upsert = metadata(&OperationMetadata::UpsertRepository {
            repository_id: id(),
        });
        let decoded =
            cr::UpsertRepositoryMetadata::decode(upsert.value.as_slice()).expect("decodes");
        assert_eq!(decoded.repository_id, "crx1");
        let image = metadata(&OperationMetadata::DeleteImage { image_id: id() });
        let decoded = cr::DeleteImageMetadata::decode(image.value.as_slice()).expect("decodes");
        assert_eq!(decoded.image_id, "crx1");
        let policy = metadata(&OperationMetadata::DeleteScanPolicy {
            scan_policy_id: id(),
        });
        assert!(policy.type_url.ends_with(".DeleteScanPolicyMetadata"));
        let decoded =
            cr::DeleteScanPolicyMetadata::decode(policy.value.as_slice()).expect("decodes");
        assert_eq!(decoded.scan_policy_id, "crx1");
        let empty = response(&OperationResponse::Empty);
        assert_eq!(empty.type_url, "type.googleapis.com/google.protobuf.Empty");
        assert!(empty.value.is_empty());
    }
}
