//! The scanner's messages in proto3 JSON as the API renders them
//! (`shared/api/yandex-container-registry.md` §1.2, §3, §7): the worker writes a
//! finished scan's `ScanResult` into its Operation, and the API renders the same
//! shape for `Get`, `GetLast` and `List`, so both come from here.

use crscan_model::Severity;
use crscan_store::{ScanResult, StoredVulnerability};
use serde_json::{Value, json};

/// The `@type` prefix of the Container Registry messages.
pub const TYPE_PREFIX: &str = "type.googleapis.com/yandex.cloud.containerregistry.v1.";

/// Formats Unix milliseconds as an RFC 3339 UTC timestamp with milliseconds.
pub fn timestamp(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(moment) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            moment.year(),
            u8::from(moment.month()),
            moment.day(),
            moment.hour(),
            moment.minute(),
            moment.second(),
            moment.millisecond()
        ),
        Err(_) => "1970-01-01T00:00:00Z".to_owned(),
    }
}

/// `ScanResult`: all six counters always present, as decimal strings (§11);
/// `scannedAt` only once the scan finished.
pub fn scan_result(result: &ScanResult) -> Value {
    let [critical, high, medium, low, negligible, undefined] = result.counts;
    let mut value = json!({
        "id": result.id,
        "imageId": result.image_id,
        "status": result.status.name(),
        "vulnerabilities": {
            "critical": critical.to_string(),
            "high": high.to_string(),
            "medium": medium.to_string(),
            "low": low.to_string(),
            "negligible": negligible.to_string(),
            "undefined": undefined.to_string(),
        },
    });
    if let Some(at) = result.scanned_at {
        value["scannedAt"] = Value::String(timestamp(at));
    }
    value
}

/// A `ScanResult` as an `Any`.
pub fn scan_result_any(result: &ScanResult) -> Value {
    let mut value = scan_result(result);
    value["@type"] = Value::String(format!("{TYPE_PREFIX}ScanResult"));
    value
}

/// `ScanMetadata` as an `Any`.
pub fn scan_metadata(scan_result_id: &str) -> Value {
    json!({"@type": format!("{TYPE_PREFIX}ScanMetadata"), "scanResultId": scan_result_id})
}

/// The severity for an enum number.
pub fn severity_of(number: i64) -> Option<Severity> {
    Severity::ALL
        .into_iter()
        .find(|severity| i64::from(severity.proto_number()) == number)
}

/// `Vulnerability` with its `package` member.
pub fn vulnerability(stored: &StoredVulnerability) -> Value {
    json!({
        "severity": severity_of(stored.severity).map_or("SEVERITY_UNSPECIFIED", Severity::as_str),
        "package": {
            "name": stored.name,
            "link": stored.link,
            "package": stored.package,
            "source": stored.source,
            "version": stored.version,
            "fixedBy": stored.fixed_by,
            "origin": stored.origin,
            "type": stored.kind,
        }
    })
}

/// A `google.rpc.Status`.
pub fn status(code: i64, message: &str) -> Value {
    json!({"code": code, "message": message, "details": []})
}

#[cfg(test)]
mod tests {
    use super::*;
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
            counts: [0, 0, 6, 13, 3, 0],
            manifest_digest: None,
            database_digest: None,
            error: None,
        };
        let value = scan_result(&result);
        assert_eq!(value["status"], "READY");
        assert_eq!(value["scannedAt"], "2021-03-16T14:34:02.401Z");
        assert_eq!(value["vulnerabilities"]["medium"], "6");
        assert_eq!(value["vulnerabilities"]["critical"], "0");
        let running = ScanResult {
            status: ScanStatus::Running,
            scanned_at: None,
            ..result
        };
        assert!(scan_result(&running).get("scannedAt").is_none());
    }
}
