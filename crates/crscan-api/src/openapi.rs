//! The OpenAPI 3.0 document served at `/openapi.json`, written by hand from the
//! contract so that it says exactly what the handlers do.

use axum::Json;
use serde_json::{Value, json};

fn operation(summary: &str, tag: &str, params: &[(&str, &str)], response: &str) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|(name, location)| {
            json!({"name": name, "in": location, "required": *location == "path", "schema": {"type": "string"}})
        })
        .collect();
    json!({
        "summary": summary,
        "tags": [tag],
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{response}")}}}},
            "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
        },
    })
}

fn with_body(mut value: Value, schema: &str) -> Value {
    value["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    value
}

pub(crate) async fn document() -> Json<Value> {
    let paging = [
        ("pageSize", "query"),
        ("pageToken", "query"),
        ("filter", "query"),
        ("orderBy", "query"),
    ];
    let list_registries = [&[("folderId", "query")][..], &paging[..]].concat();
    let list_repositories = [
        &[("registryId", "query"), ("folderId", "query")][..],
        &paging[..],
    ]
    .concat();
    let list_images = [
        &[
            ("registryId", "query"),
            ("repositoryName", "query"),
            ("folderId", "query"),
        ][..],
        &paging[..],
    ]
    .concat();
    let string = json!({"type": "string"});
    let int64 = json!({"type": "string", "format": "int64"});
    let time = json!({"type": "string", "format": "date-time"});
    let mut document = json!({
        "openapi": "3.0.3",
        "info": {"title": "crscan Container Registry API", "version": "v1"},
        "paths": {
            "/container-registry/v1/registries": {
                "get": operation("List registries of a folder", "RegistryService", &list_registries, "ListRegistriesResponse"),
                "post": with_body(operation("Create a registry", "RegistryService", &[("Idempotency-Key", "header")], "Operation"), "CreateRegistryRequest"),
            },
            "/container-registry/v1/registries/{registryId}": {
                "get": operation("Get a registry", "RegistryService", &[("registryId", "path")], "Registry"),
                "patch": with_body(operation("Update a registry", "RegistryService", &[("registryId", "path"), ("Idempotency-Key", "header")], "Operation"), "UpdateRegistryRequest"),
                "delete": operation("Delete an empty registry", "RegistryService", &[("registryId", "path"), ("Idempotency-Key", "header")], "Operation"),
            },
            "/container-registry/v1/repositories": {
                "get": operation("List repositories", "RepositoryService", &list_repositories, "ListRepositoriesResponse"),
                "post": with_body(operation("Create a repository if it does not exist", "RepositoryService", &[("Idempotency-Key", "header")], "Operation"), "UpsertRepositoryRequest"),
            },
            "/container-registry/v1/repositories/{repositoryId}": {
                "get": operation("Get a repository", "RepositoryService", &[("repositoryId", "path")], "Repository"),
                "delete": operation("Delete a repository with its images", "RepositoryService", &[("repositoryId", "path"), ("Idempotency-Key", "header")], "Operation"),
            },
            "/container-registry/v1/repositories/{repositoryName}:byName": {
                "get": operation("Get a repository by its URL-encoded name", "RepositoryService", &[("repositoryName", "path")], "Repository"),
            },
            "/container-registry/v1/images": {
                "get": operation("List images", "ImageService", &list_images, "ListImagesResponse"),
            },
            "/container-registry/v1/images/{imageId}": {
                "get": operation("Get an image", "ImageService", &[("imageId", "path")], "Image"),
                "delete": operation("Delete an image", "ImageService", &[("imageId", "path"), ("Idempotency-Key", "header")], "Operation"),
            },
            "/operations/{operationId}": {
                "get": operation("Get an operation", "OperationService", &[("operationId", "path")], "Operation"),
            },
            "/operations/{operationId}:cancel": {
                "get": operation("Cancel an operation (returns its state)", "OperationService", &[("operationId", "path")], "Operation"),
                "post": operation("Cancel an operation (returns its state)", "OperationService", &[("operationId", "path")], "Operation"),
            },
        },
        "components": {"schemas": {
            "Status": {"type": "object", "properties": {"code": {"type": "integer"}, "message": string, "details": {"type": "array", "items": {"type": "object"}}}},
            "Registry": {"type": "object", "properties": {"id": string, "folderId": string, "name": string, "status": {"type": "string", "enum": ["STATUS_UNSPECIFIED", "CREATING", "ACTIVE", "DELETING"]}, "createdAt": time, "labels": {"type": "object", "additionalProperties": string}}},
            "Repository": {"type": "object", "properties": {"name": string, "id": string}},
            "Blob": {"type": "object", "properties": {"id": string, "digest": string, "size": int64, "urls": {"type": "array", "items": string}}},
            "Image": {"type": "object", "properties": {"id": string, "name": string, "digest": string, "compressedSize": int64, "config": {"$ref": "#/components/schemas/Blob"}, "layers": {"type": "array", "items": {"$ref": "#/components/schemas/Blob"}}, "tags": {"type": "array", "items": string}, "createdAt": time}},
            "Operation": {"type": "object", "properties": {"id": string, "description": string, "createdAt": time, "createdBy": string, "modifiedAt": time, "done": {"type": "boolean"}, "metadata": {"type": "object"}, "error": {"$ref": "#/components/schemas/Status"}, "response": {"type": "object"}}},
            "ListRegistriesResponse": {"type": "object", "properties": {"registries": {"type": "array", "items": {"$ref": "#/components/schemas/Registry"}}, "nextPageToken": string}},
            "ListRepositoriesResponse": {"type": "object", "properties": {"repositories": {"type": "array", "items": {"$ref": "#/components/schemas/Repository"}}, "nextPageToken": string}},
            "ListImagesResponse": {"type": "object", "properties": {"images": {"type": "array", "items": {"$ref": "#/components/schemas/Image"}}, "nextPageToken": string}},
            "CreateRegistryRequest": {"type": "object", "required": ["folderId"], "properties": {"folderId": string, "name": string, "labels": {"type": "object", "additionalProperties": string}}},
            "UpdateRegistryRequest": {"type": "object", "properties": {"updateMask": string, "name": string, "labels": {"type": "object", "additionalProperties": string}}},
            "UpsertRepositoryRequest": {"type": "object", "required": ["name"], "properties": {"name": string}},
        }},
    });
    let mut schemas = serde_json::Map::new();
    if let Some(paths) = document["paths"].as_object_mut() {
        scanner_paths(paths, &mut schemas);
        lifecycle_paths(paths, &mut schemas);
    }
    if let Some(existing) = document["components"]["schemas"].as_object_mut() {
        existing.extend(schemas);
    }
    // Every call takes `Authorization: Bearer <token>` when tokens are configured
    // (README, "Tokens and roles").
    document["components"]["securitySchemes"] =
        json!({"bearer": {"type": "http", "scheme": "bearer"}});
    document["security"] = json!([{"bearer": []}]);
    Json(document)
}

/// The scanner's paths and schemas for `/openapi.json`.
fn scanner_paths(
    paths: &mut serde_json::Map<String, Value>,
    schemas: &mut serde_json::Map<String, Value>,
) {
    let op = |summary: &str,
              tag: &str,
              params: &[(&str, &str)],
              response: &str,
              body: Option<&str>| {
        let parameters: Vec<Value> = params
            .iter()
            .map(|(name, location)| json!({"name": name, "in": location, "required": *location == "path", "schema": {"type": "string"}}))
            .collect();
        let mut value = json!({
            "summary": summary, "tags": [tag], "parameters": parameters,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{response}")}}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
            },
        });
        if let Some(body) = body {
            value["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        value
    };
    let list = [
        ("pageSize", "query"),
        ("pageToken", "query"),
        ("filter", "query"),
        ("orderBy", "query"),
    ];
    let idem = ("Idempotency-Key", "header");
    paths.insert("/container-registry/v1/scans".into(), json!({
        "get": op("List scan results of an image or a repository", "ScannerService",
            &[&[("imageId", "query"), ("repositoryId", "query")][..], &list[..]].concat(), "ListScanResultsResponse", None),
        "post": op("Scan an image", "ScannerService", &[idem], "Operation", Some("ScanRequest")),
    }));
    paths.insert("/container-registry/v1/scans/{scanResultId}".into(), json!({
        "get": op("Get a scan result", "ScannerService", &[("scanResultId", "path")], "ScanResult", None),
    }));
    paths.insert("/container-registry/v1/scans/{scanResultId}:listVulnerabilities".into(), json!({
        "get": op("List the vulnerabilities of a scan", "ScannerService",
            &[&[("scanResultId", "path")][..], &list[..]].concat(), "ListVulnerabilitiesResponse", None),
    }));
    paths.insert("/container-registry/v1/images/{imageId}:lastScanResult".into(), json!({
        "get": op("Get the last finished scan result of an image", "ScannerService", &[("imageId", "path")], "ScanResult", None),
    }));
    paths.insert("/container-registry/v1/scanPolicies".into(), json!({
        "post": op("Create a registry's scan policy", "ScanPolicyService", &[idem], "Operation", Some("CreateScanPolicyRequest")),
    }));
    paths.insert("/container-registry/v1/scanPolicies/{scanPolicyId}".into(), json!({
        "get": op("Get a scan policy", "ScanPolicyService", &[("scanPolicyId", "path")], "ScanPolicy", None),
        "patch": op("Update a scan policy", "ScanPolicyService", &[("scanPolicyId", "path"), idem], "Operation", Some("UpdateScanPolicyRequest")),
        "delete": op("Delete a scan policy", "ScanPolicyService", &[("scanPolicyId", "path"), idem], "Operation", None),
    }));
    paths.insert("/container-registry/v1/scanPolicies/{registryId}:byRegistry".into(), json!({
        "get": op("Get the scan policy of a registry", "ScanPolicyService", &[("registryId", "path")], "ScanPolicy", None),
    }));
    paths.insert("/operations/{operationId}:cancel".into(), json!({
        "get": op("Cancel an operation (a running scan stops)", "OperationService", &[("operationId", "path")], "Operation", None),
        "post": op("Cancel an operation (a running scan stops)", "OperationService", &[("operationId", "path")], "Operation", None),
    }));
    let string = json!({"type": "string"});
    let int64 = json!({"type": "string", "format": "int64"});
    let prefixes = json!({"type": "array", "items": {"type": "string"}, "minItems": 1});
    let severity = json!({"type": "string", "enum": ["SEVERITY_UNSPECIFIED", "CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNDEFINED"]});
    schemas.insert("ScanRequest".into(), json!({"type": "object", "required": ["imageId"], "properties": {"imageId": {"type": "string", "maxLength": 50}}}));
    schemas.insert("VulnerabilityStats".into(), json!({"type": "object", "properties": {
        "critical": int64, "high": int64, "medium": int64, "low": int64, "negligible": int64, "undefined": int64}}));
    schemas.insert(
        "ScanResult".into(),
        json!({"type": "object", "properties": {
        "id": string, "imageId": string, "scannedAt": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": ["STATUS_UNSPECIFIED", "RUNNING", "READY", "ERROR"]},
        "vulnerabilities": {"$ref": "#/components/schemas/VulnerabilityStats"}}}),
    );
    schemas.insert("ListScanResultsResponse".into(), json!({"type": "object", "properties": {
        "scanResults": {"type": "array", "items": {"$ref": "#/components/schemas/ScanResult"}}, "nextPageToken": string}}));
    schemas.insert(
        "PackageVulnerability".into(),
        json!({"type": "object", "properties": {
        "name": string, "link": string, "package": string, "source": string, "version": string,
        "fixedBy": string, "origin": string, "type": string}}),
    );
    schemas.insert(
        "Vulnerability".into(),
        json!({"type": "object", "properties": {
        "severity": severity, "package": {"$ref": "#/components/schemas/PackageVulnerability"}}}),
    );
    schemas.insert("ListVulnerabilitiesResponse".into(), json!({"type": "object", "properties": {
        "vulnerabilities": {"type": "array", "items": {"$ref": "#/components/schemas/Vulnerability"}}, "nextPageToken": string}}));
    schemas.insert("ScanRules".into(), json!({"type": "object", "properties": {
        "pushRule": {"type": "object", "properties": {"repositoryPrefixes": prefixes, "disabled": {"type": "boolean"}}},
        "scheduleRules": {"type": "array", "items": {"type": "object", "required": ["rescanPeriod"], "properties": {
            "repositoryPrefixes": prefixes, "rescanPeriod": {"type": "string", "example": "604800s"}, "disabled": {"type": "boolean"}}}}}}));
    schemas.insert("ScanPolicy".into(), json!({"type": "object", "properties": {
        "id": string, "registryId": string, "name": string, "description": string,
        "rules": {"$ref": "#/components/schemas/ScanRules"}, "createdAt": {"type": "string", "format": "date-time"}, "disabled": {"type": "boolean"}}}));
    schemas.insert("CreateScanPolicyRequest".into(), json!({"type": "object", "required": ["registryId"], "properties": {
        "registryId": {"type": "string", "maxLength": 50}, "name": string, "description": {"type": "string", "maxLength": 256},
        "rules": {"$ref": "#/components/schemas/ScanRules"}}}));
    schemas.insert(
        "UpdateScanPolicyRequest".into(),
        json!({"type": "object", "properties": {
        "updateMask": string, "name": string, "description": {"type": "string", "maxLength": 256},
        "rules": {"$ref": "#/components/schemas/ScanRules"}, "disabled": {"type": "boolean"}}}),
    );
}

/// `LifecyclePolicyService`'s paths and schemas for `/openapi.json`.
fn lifecycle_paths(
    paths: &mut serde_json::Map<String, Value>,
    schemas: &mut serde_json::Map<String, Value>,
) {
    const TAG: &str = "LifecyclePolicyService";
    let paging = [
        ("pageSize", "query"),
        ("pageToken", "query"),
        ("filter", "query"),
        ("orderBy", "query"),
    ];
    let idem = ("Idempotency-Key", "header");
    paths.insert("/container-registry/v1/lifecyclePolicies".into(), json!({
        "get": operation("List the lifecycle policies of a registry or a repository", TAG,
            &[&[("registryId", "query"), ("repositoryId", "query")][..], &paging[..]].concat(), "ListLifecyclePoliciesResponse"),
        "post": with_body(operation("Create a lifecycle policy", TAG, &[idem], "Operation"), "CreateLifecyclePolicyRequest"),
    }));
    paths.insert("/container-registry/v1/lifecyclePolicies/{lifecyclePolicyId}".into(), json!({
        "get": operation("Get a lifecycle policy", TAG, &[("lifecyclePolicyId", "path")], "LifecyclePolicy"),
        "patch": with_body(operation("Update a lifecycle policy", TAG, &[("lifecyclePolicyId", "path"), idem], "Operation"), "UpdateLifecyclePolicyRequest"),
        "delete": operation("Delete a lifecycle policy", TAG, &[("lifecyclePolicyId", "path"), idem], "Operation"),
    }));
    paths.insert("/container-registry/v1/dryRunLifecyclePolicy/{lifecyclePolicyId}".into(), json!({
        "post": operation("Compute and store what a lifecycle policy would delete now, deleting nothing", TAG, &[("lifecyclePolicyId", "path"), idem], "Operation"),
    }));
    paths.insert("/container-registry/v1/dryRunLifecyclePolicyResults".into(), json!({
        "get": operation("List the dry-run results of a lifecycle policy, newest first", TAG,
            &[&[("lifecyclePolicyId", "query")][..], &paging[..]].concat(), "ListDryRunLifecyclePolicyResultsResponse"),
    }));
    paths.insert("/container-registry/v1/dryRunLifecyclePolicyResults/{dryRunLifecyclePolicyResultId}".into(), json!({
        "get": operation("Get a dry-run result", TAG, &[("dryRunLifecyclePolicyResultId", "path")], "DryRunLifecyclePolicyResult"),
    }));
    paths.insert("/container-registry/v1/dryRunLifecyclePolicyResults/{dryRunLifecyclePolicyResultId}:affectedImages".into(), json!({
        "get": operation("List the images a dry run would have deleted, as they were at the run", TAG,
            &[&[("dryRunLifecyclePolicyResultId", "path")][..], &paging[..]].concat(), "ListDryRunLifecyclePolicyResultAffectedImagesResponse"),
    }));
    let string = json!({"type": "string"});
    let int64 = json!({"type": "string", "format": "int64"});
    let time = json!({"type": "string", "format": "date-time"});
    let status = json!({"type": "string", "enum": ["STATUS_UNSPECIFIED", "ACTIVE", "DISABLED"]});
    let rules = json!({"type": "array", "items": {"$ref": "#/components/schemas/LifecycleRule"}});
    schemas.insert("LifecycleRule".into(), json!({"type": "object", "properties": {
        "description": {"type": "string", "maxLength": 256},
        "expirePeriod": {"type": "string", "example": "172800s", "description": "a multiple of 24 hours"},
        "tagRegexp": {"type": "string", "maxLength": 256, "description": "matched against whole tags"},
        "untagged": {"type": "boolean"}, "retainedTop": int64}}));
    schemas.insert(
        "LifecyclePolicy".into(),
        json!({"type": "object", "properties": {
        "id": string, "name": string, "repositoryId": string, "description": string,
        "status": status, "createdAt": time, "rules": rules}}),
    );
    schemas.insert("CreateLifecyclePolicyRequest".into(), json!({"type": "object", "required": ["repositoryId"], "properties": {
        "repositoryId": {"type": "string", "maxLength": 50}, "name": string, "description": {"type": "string", "maxLength": 256},
        "status": status, "rules": rules}}));
    schemas.insert(
        "UpdateLifecyclePolicyRequest".into(),
        json!({"type": "object", "properties": {
        "updateMask": string, "name": string, "description": {"type": "string", "maxLength": 256},
        "status": status, "rules": rules}}),
    );
    schemas.insert(
        "DryRunLifecyclePolicyResult".into(),
        json!({"type": "object", "properties": {
        "dryRunLifecyclePolicyResultId": string, "lifecyclePolicyId": string, "runAt": time,
        "affectedImagesCount": int64}}),
    );
    schemas.insert("ListLifecyclePoliciesResponse".into(), json!({"type": "object", "properties": {
        "lifecyclePolicies": {"type": "array", "items": {"$ref": "#/components/schemas/LifecyclePolicy"}}, "nextPageToken": string}}));
    schemas.insert("ListDryRunLifecyclePolicyResultsResponse".into(), json!({"type": "object", "properties": {
        "dryRunLifecyclePolicyResults": {"type": "array", "items": {"$ref": "#/components/schemas/DryRunLifecyclePolicyResult"}}, "nextPageToken": string}}));
    schemas.insert("ListDryRunLifecyclePolicyResultAffectedImagesResponse".into(), json!({"type": "object", "properties": {
        "affectedImages": {"type": "array", "items": {"$ref": "#/components/schemas/Image"}}, "nextPageToken": string}}));
}
