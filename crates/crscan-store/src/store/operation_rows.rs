//! How an operation's metadata and result are kept in their text columns: this
//! version writes the domain values ([`OperationMetadata`], [`OperationResponse`],
//! [`ErrorStatus`]) with serde. Stores from before migration 4 hold the API's JSON
//! there instead (`Any` values with `@type`); those rows are read through
//! [`legacy`], so an upgraded store keeps answering for its old operations.

use crate::StoreError;
use crate::model::{ErrorStatus, OperationMetadata, OperationResponse, OperationResult};

pub(crate) fn metadata_text(metadata: &OperationMetadata) -> String {
    serde_json::to_string(metadata).unwrap_or_default()
}

/// The `response` and `error` columns of a result.
pub(crate) fn result_texts(result: Option<&OperationResult>) -> (Option<String>, Option<String>) {
    match result {
        None => (None, None),
        Some(OperationResult::Response(response)) => (serde_json::to_string(response).ok(), None),
        Some(OperationResult::Error(error)) => (None, serde_json::to_string(error).ok()),
    }
}

pub(crate) fn read_metadata(text: &str) -> Result<OperationMetadata, StoreError> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| legacy::metadata(text))
        .ok_or_else(|| StoreError::Corrupt(text.to_owned()))
}

pub(crate) fn read_result(
    response: Option<&str>,
    error: Option<&str>,
) -> Result<Option<OperationResult>, StoreError> {
    if let Some(text) = error {
        // The legacy error is a `google.rpc.Status`, which reads as an ErrorStatus.
        let error: ErrorStatus =
            serde_json::from_str(text).map_err(|_| StoreError::Corrupt(text.to_owned()))?;
        return Ok(Some(OperationResult::Error(error)));
    }
    let Some(text) = response else {
        return Ok(None);
    };
    let response: OperationResponse = serde_json::from_str(text)
        .ok()
        .or_else(|| legacy::response(text))
        .ok_or_else(|| StoreError::Corrupt(text.to_owned()))?;
    Ok(Some(OperationResult::Response(Box::new(response))))
}

/// Operations written before migration 4: the API's JSON, `Any` values with `@type`.
mod legacy {
    use std::collections::BTreeMap;

    use crscan_model::{Severity, SeverityCounts};
    use serde_json::Value;

    use crate::model::{
        OperationMetadata, OperationResponse, Registry, RegistryStatus, Repository,
    };
    use crate::{ScanPolicy, ScanResult, ScanRules, ScanStatus};

    /// The message name of an `Any`: `…v1.ScanMetadata` gives `ScanMetadata`.
    fn type_name(value: &Value) -> Option<&str> {
        value.get("@type")?.as_str()?.rsplit('.').next()
    }

    fn text(value: &Value, field: &str) -> String {
        value
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// An RFC 3339 time as Unix milliseconds.
    fn millis(value: &Value, field: &str) -> Option<i64> {
        let text = value.get(field)?.as_str()?;
        let moment =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .ok()?;
        i64::try_from(moment.unix_timestamp_nanos() / 1_000_000).ok()
    }

    pub(super) fn metadata(row: &str) -> Option<OperationMetadata> {
        let value: Value = serde_json::from_str(row).ok()?;
        let id = |field: &str| text_field(&value, field);
        Some(match type_name(&value)? {
            "ScanMetadata" => OperationMetadata::Scan {
                scan_result_id: id("scanResultId")?,
            },
            "CreateRegistryMetadata" => OperationMetadata::CreateRegistry {
                registry_id: id("registryId")?,
            },
            "UpdateRegistryMetadata" => OperationMetadata::UpdateRegistry {
                registry_id: id("registryId")?,
            },
            "DeleteRegistryMetadata" => OperationMetadata::DeleteRegistry {
                registry_id: id("registryId")?,
            },
            "UpsertRepositoryMetadata" => OperationMetadata::UpsertRepository {
                repository_id: id("repositoryId")?,
            },
            "DeleteRepositoryMetadata" => OperationMetadata::DeleteRepository {
                repository_id: id("repositoryId")?,
            },
            "DeleteImageMetadata" => OperationMetadata::DeleteImage {
                image_id: id("imageId")?,
            },
            "CreateScanPolicyMetadata" => OperationMetadata::CreateScanPolicy {
                scan_policy_id: id("scanPolicyId")?,
            },
            "UpdateScanPolicyMetadata" => OperationMetadata::UpdateScanPolicy {
                scan_policy_id: id("scanPolicyId")?,
            },
            "DeleteScanPolicyMetadata" => OperationMetadata::DeleteScanPolicy {
                scan_policy_id: id("scanPolicyId")?,
            },
            _ => return None,
        })
    }

    fn text_field(value: &Value, field: &str) -> Option<String> {
        value.get(field)?.as_str().map(str::to_owned)
    }

    pub(super) fn response(row: &str) -> Option<OperationResponse> {
        let value: Value = serde_json::from_str(row).ok()?;
        Some(match type_name(&value)? {
            "Empty" => OperationResponse::Empty,
            "Registry" => OperationResponse::Registry(Registry {
                id: text(&value, "id"),
                folder_id: text(&value, "folderId"),
                name: text(&value, "name"),
                status: match value.get("status").and_then(Value::as_str) {
                    Some("CREATING") => RegistryStatus::Creating,
                    Some("ACTIVE") => RegistryStatus::Active,
                    Some("DELETING") => RegistryStatus::Deleting,
                    _ => RegistryStatus::Unspecified,
                },
                labels: serde_json::from_value::<BTreeMap<String, String>>(
                    value.get("labels").cloned().unwrap_or(Value::Null),
                )
                .unwrap_or_default(),
                created_at: millis(&value, "createdAt").unwrap_or(0),
                secure: false,
            }),
            "Repository" => {
                let name = text(&value, "name");
                OperationResponse::Repository(Repository {
                    id: text(&value, "id"),
                    registry_id: name.split('/').next().unwrap_or_default().to_owned(),
                    name,
                    created_at: 0,
                })
            }
            "ScanResult" => {
                let mut counts = SeverityCounts::default();
                if let Some(stats) = value.get("vulnerabilities") {
                    for severity in Severity::ALL {
                        let count = stats
                            .get(severity.counter_name())
                            .and_then(Value::as_str)
                            .and_then(|count| count.parse().ok())
                            .unwrap_or(0);
                        counts.set(severity, count);
                    }
                }
                OperationResponse::ScanResult(ScanResult {
                    id: text(&value, "id"),
                    image_id: text(&value, "imageId"),
                    repository_id: String::new(),
                    registry_id: String::new(),
                    operation_id: String::new(),
                    status: ScanStatus::parse(&text(&value, "status"))?,
                    created_at: 0,
                    scanned_at: millis(&value, "scannedAt"),
                    counts,
                    manifest_digest: None,
                    database_digest: None,
                    error: None,
                })
            }
            "ScanPolicy" => OperationResponse::ScanPolicy(ScanPolicy {
                id: text(&value, "id"),
                registry_id: text(&value, "registryId"),
                name: text(&value, "name"),
                description: text(&value, "description"),
                rules: serde_json::from_value::<ScanRules>(
                    value.get("rules").cloned().unwrap_or(Value::Null),
                )
                .ok()?,
                disabled: value
                    .get("disabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                created_at: millis(&value, "createdAt").unwrap_or(0),
            }),
            _ => return None,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reads_the_api_json_of_older_stores() {
            let metadata = metadata(
                r#"{"@type":"type.googleapis.com/yandex.cloud.containerregistry.v1.ScanMetadata","scanResultId":"che1"}"#,
            );
            assert_eq!(
                metadata,
                Some(OperationMetadata::Scan {
                    scan_result_id: "che1".to_owned()
                })
            );
            let Some(OperationResponse::ScanResult(result)) = response(
                r#"{"@type":"type.googleapis.com/yandex.cloud.containerregistry.v1.ScanResult","id":"che1","imageId":"crp1","status":"READY","scannedAt":"2021-03-16T14:34:02.401Z","vulnerabilities":{"critical":"2","high":"0","medium":"6","low":"13","negligible":"3","undefined":"0"}}"#,
            ) else {
                panic!("a legacy ScanResult reads");
            };
            assert_eq!(result.counts.medium, 6);
            assert_eq!(result.counts.critical, 2);
            assert_eq!(result.scanned_at, Some(1_615_905_242_401));
            let Some(OperationResponse::ScanPolicy(policy)) = response(
                r#"{"@type":"type.googleapis.com/yandex.cloud.containerregistry.v1.ScanPolicy","id":"crs1","registryId":"crp1","name":"p","description":"","rules":{"pushRule":{"repositoryPrefixes":["*"],"disabled":false},"scheduleRules":[{"repositoryPrefixes":["a"],"rescanPeriod":"604800s","disabled":false}]},"createdAt":"2024-07-22T11:04:11.000Z","disabled":false}"#,
            ) else {
                panic!("a legacy ScanPolicy reads");
            };
            assert!(policy.rules.scans_on_push("crp1", "crp1/x"));
            assert_eq!(
                policy.rules.rescan_period_ms("crp1", "crp1/a"),
                Some(604_800_000)
            );
            assert_eq!(
                response(r#"{"@type":"type.googleapis.com/google.protobuf.Empty"}"#),
                Some(OperationResponse::Empty)
            );
        }
    }
}
