//! The management API's wire forms (contract §1.2, §5, §7): camelCase, int64 as strings,
//! RFC 3339 times, `Any` values with `@type`. Domain types are converted by hand here.

use crscan_store::{BlobRef, Image, Operation, Registry, Repository};
use serde_json::{Value, json};

pub const TYPE_PREFIX: &str = "type.googleapis.com/yandex.cloud.containerregistry.v1.";

/// RFC 3339 UTC with millisecond precision, shared with the scanner's wire forms.
pub use crscan_scanner::wire::timestamp;

pub fn registry(registry: &Registry) -> Value {
    json!({
        "id": registry.id,
        "folderId": registry.folder_id,
        "name": registry.name,
        "status": registry.status.name(),
        "createdAt": timestamp(registry.created_at),
        "labels": registry.labels,
    })
}

pub fn repository(repository: &Repository) -> Value {
    json!({"name": repository.name, "id": repository.id})
}

fn blob(blob: &BlobRef) -> Value {
    json!({"id": blob.id, "digest": blob.digest.to_string(), "size": blob.size.to_string()})
}

pub fn image(image: &Image) -> Value {
    let mut value = json!({
        "id": image.id,
        "name": image.name,
        "digest": image.digest.to_string(),
        "compressedSize": image.compressed_size.to_string(),
        "layers": image.layers.iter().map(blob).collect::<Vec<_>>(),
        "tags": image.tags,
        "createdAt": timestamp(image.created_at),
    });
    if let Some(config) = &image.config {
        value["config"] = blob(config);
    }
    value
}

/// Wraps a message as a proto3 JSON `Any`.
pub fn any(type_name: &str, mut body: Value) -> Value {
    if let Value::Object(map) = &mut body {
        map.insert("@type".to_owned(), Value::String(type_name.to_owned()));
    }
    body
}

pub fn empty_any() -> Value {
    json!({"@type": "type.googleapis.com/google.protobuf.Empty"})
}

pub fn operation(operation: &Operation) -> Value {
    let mut value = json!({
        "id": operation.id,
        "description": operation.description,
        "createdAt": timestamp(operation.created_at),
        "createdBy": operation.created_by,
        "modifiedAt": timestamp(operation.modified_at),
        "done": operation.done,
    });
    if let Some(metadata) = &operation.metadata {
        value["metadata"] = metadata.clone();
    }
    if let Some(error) = &operation.error {
        value["error"] = error.clone();
    } else if let Some(response) = &operation.response {
        value["response"] = response.clone();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_612_861_034_435), "2021-02-09T08:57:14.435Z");
    }
}
