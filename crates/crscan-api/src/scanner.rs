//! ScannerService and ScanPolicyService over REST (contract §2 and §4), and the
//! scanner's part of OperationService (§7): Scan queues a job and answers with a
//! running Operation; the workers (`crscan-scanner`) finish it. Filters, orderBy and
//! paging follow §1.5, §1.6 and §11.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crscan_model::Severity;
use crscan_scanner::policy::parse_duration;
use crscan_scanner::{wire, worker};
use crscan_store::{
    IdKind, Operation, ScanOrder, ScanPolicy, ScanQuery, ScanStatus, VulnerabilityQuery, new_id,
    now,
};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::errors::ApiError;
use crate::json;
use crate::mgmt::{
    check, check_id, idempotency_key, page_response, paging, parse_body, string_field,
};
use crate::{AppState, Role};

type ApiResult = Result<Response, ApiError>;

const READ: &[Role] = &[Role::Viewer, Role::Pusher, Role::Scanner];
const SCAN: &[Role] = &[Role::Scanner];
const MANAGE: &[Role] = &[Role::Admin];

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/container-registry/v1/scans", get(list_scans).post(scan))
        .route(
            "/container-registry/v1/scans/{scan_result_id}",
            get(get_scan),
        )
        .route(
            "/container-registry/v1/scanPolicies",
            axum::routing::post(create_policy),
        )
        .route(
            "/container-registry/v1/scanPolicies/{key}",
            get(get_policy).patch(update_policy).delete(delete_policy),
        )
}

fn json_response(value: Value) -> Response {
    axum::Json(value).into_response()
}

/// Parses `field="value" AND field="value"` (§1.6, §11) for the allowed fields.
fn parse_filter(
    query: &HashMap<String, String>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(filter) = query
        .get("filter")
        .map(|text| text.trim())
        .filter(|t| !t.is_empty())
    else {
        return Ok(Vec::new());
    };
    if filter.len() > 1000 {
        return Err(ApiError::invalid("filter is longer than 1000 characters"));
    }
    let mut conditions = Vec::new();
    let mut rest = filter;
    loop {
        let (field, after) = rest.split_once('=').ok_or_else(|| {
            ApiError::invalid(format!("filter {filter:?} is not field=\"value\""))
        })?;
        let field = field.trim();
        if field.ends_with('!') || field.contains(' ') {
            return Err(ApiError::invalid(format!(
                "filter {filter:?}: only field=\"value\" conditions joined by AND are supported"
            )));
        }
        if !allowed.contains(&field) {
            return Err(ApiError::invalid(format!(
                "filter field {field:?} is not supported (supported: {})",
                allowed.join(", ")
            )));
        }
        let after = after.trim_start();
        let value_and_rest = after.strip_prefix('"').ok_or_else(|| {
            ApiError::invalid(format!("filter value of {field} is not in double quotes"))
        })?;
        let (value, tail) = value_and_rest
            .split_once('"')
            .ok_or_else(|| ApiError::invalid(format!("filter value of {field} is not closed")))?;
        conditions.push((field.to_owned(), value.to_owned()));
        let tail = tail.trim_start();
        if tail.is_empty() {
            break;
        }
        let Some(next) = tail
            .get(..3)
            .filter(|word| word.eq_ignore_ascii_case("and"))
            .map(|_| &tail[3..])
        else {
            return Err(ApiError::invalid(format!(
                "filter {filter:?}: conditions must be joined by AND"
            )));
        };
        rest = next;
    }
    Ok(conditions)
}

/// Parses `orderBy` as `""`, `<field>` or `<field> asc|desc`; returns the field and
/// whether it is descending (`None` when absent).
fn parse_order(
    query: &HashMap<String, String>,
    allowed: &[&str],
) -> Result<Option<(String, Option<bool>)>, ApiError> {
    let Some(text) = query
        .get("orderBy")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    if text.len() > 100 {
        return Err(ApiError::invalid("orderBy is longer than 100 characters"));
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let (field, direction) = match words.as_slice() {
        [field] => (*field, None),
        [field, direction] if direction.eq_ignore_ascii_case("asc") => (*field, Some(false)),
        [field, direction] if direction.eq_ignore_ascii_case("desc") => (*field, Some(true)),
        _ => {
            return Err(ApiError::invalid(format!(
                "orderBy {text:?} is not \"<field> [asc|desc]\""
            )));
        }
    };
    if !allowed.contains(&field) {
        return Err(ApiError::invalid(format!(
            "orderBy field {field:?} is not supported (supported: {})",
            allowed.join(", ")
        )));
    }
    Ok(Some((field.to_owned(), direction)))
}

// ---- ScannerService -------------------------------------------------------------

async fn scan(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let principal = check(&state, &headers, SCAN)?;
    let body = parse_body(&body)?;
    let image_id = string_field(&body, "imageId")?.unwrap_or_default();
    check_id("imageId", image_id)?;
    let key = idempotency_key(&headers)?;
    let store = state.registry.store();
    if let Some(key) = &key
        && let Some(earlier) = store.find_operation_by_key(key).await?
    {
        return Ok(json_response(json::operation(&earlier)));
    }
    let repository = store.repository_of_image(image_id).await?;
    let (operation, created) = worker::enqueue_scan(
        store,
        image_id,
        &repository.id,
        &repository.registry_id,
        &principal.name,
        key.as_deref(),
    )
    .await?;
    if created && let Some(scanner) = &state.scanner {
        scanner.wake();
    }
    Ok(json_response(json::operation(&operation)))
}

async fn get_scan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(scan_result_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    if let Some(id) = scan_result_id.strip_suffix(":listVulnerabilities") {
        return list_vulnerabilities(&state, id, &query).await;
    }
    check_id("scanResultId", &scan_result_id)?;
    let result = state
        .registry
        .store()
        .get_scan_result(&scan_result_id)
        .await?;
    Ok(json_response(wire::scan_result(&result)))
}

/// `GET /images/{imageId}:lastScanResult`, dispatched here by the image route.
pub(crate) async fn get_last(state: &AppState, headers: &HeaderMap, image_id: &str) -> ApiResult {
    check(state, headers, READ)?;
    check_id("imageId", image_id)?;
    let store = state.registry.store();
    store.get_image(image_id).await?;
    let result = store.last_scan_result(image_id).await?;
    Ok(json_response(wire::scan_result(&result)))
}

async fn list_scans(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    let image_id = query.get("imageId").filter(|v| !v.is_empty()).cloned();
    let repository_id = query.get("repositoryId").filter(|v| !v.is_empty()).cloned();
    match (&image_id, &repository_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "only one of imageId and repositoryId may be given",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "one of imageId and repositoryId is required",
            ));
        }
        (Some(id), None) => check_id("imageId", id)?,
        (None, Some(id)) => check_id("repositoryId", id)?,
    }
    let (offset, limit) = paging(&query)?;
    let mut status = None;
    for (_, value) in parse_filter(&query, &["status"])? {
        status = Some(ScanStatus::parse(&value).ok_or_else(|| {
            ApiError::invalid(format!(
                "filter status {value:?} is not RUNNING, READY or ERROR"
            ))
        })?);
    }
    let (order, descending) = match parse_order(&query, &["scannedAt", "status"])? {
        None => (ScanOrder::ScannedAt, true),
        Some((field, direction)) if field == "status" => {
            (ScanOrder::Status, direction.unwrap_or(false))
        }
        Some((_, direction)) => (ScanOrder::ScannedAt, direction.unwrap_or(true)),
    };
    let store = state.registry.store();
    if let Some(id) = &image_id {
        store.get_image(id).await?;
    }
    if let Some(id) = &repository_id {
        store.get_repository(id).await?;
    }
    let rows = store
        .list_scan_results(&ScanQuery {
            image_id,
            repository_id,
            status,
            order,
            descending,
            offset,
            limit: limit + 1,
        })
        .await?;
    Ok(page_response(
        "scanResults",
        rows,
        offset,
        limit,
        wire::scan_result,
    ))
}

async fn list_vulnerabilities(
    state: &AppState,
    scan_result_id: &str,
    query: &HashMap<String, String>,
) -> ApiResult {
    check_id("scanResultId", scan_result_id)?;
    let (offset, limit) = paging(query)?;
    let mut severity = None;
    let mut name = None;
    for (field, value) in parse_filter(query, &["severity", "name"])? {
        if field == "severity" {
            let parsed = Severity::ALL
                .into_iter()
                .find(|level| level.as_str() == value)
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "filter severity {value:?} is not one of CRITICAL, HIGH, MEDIUM, LOW, NEGLIGIBLE, UNDEFINED"
                    ))
                })?;
            severity = Some(i64::from(parsed.proto_number()));
        } else {
            name = Some(value);
        }
    }
    let descending = parse_order(query, &["severity"])?
        .and_then(|(_, direction)| direction)
        .unwrap_or(false);
    let store = state.registry.store();
    store.get_scan_result(scan_result_id).await?;
    let rows = store
        .list_vulnerabilities(&VulnerabilityQuery {
            scan_result_id: scan_result_id.to_owned(),
            severity,
            name,
            descending,
            offset,
            limit: limit + 1,
        })
        .await?;
    Ok(page_response(
        "vulnerabilities",
        rows,
        offset,
        limit,
        wire::vulnerability,
    ))
}

/// `Cancel` on a scan operation: asks its job to stop, then returns the operation.
/// Called by the operation routes.
pub(crate) async fn cancel(state: &AppState, operation_id: &str) -> Result<(), ApiError> {
    state.registry.store().request_cancel(operation_id).await?;
    Ok(())
}

// ---- ScanPolicyService ----------------------------------------------------------

fn policy_json(policy: &ScanPolicy) -> Value {
    json!({
        "id": policy.id,
        "registryId": policy.registry_id,
        "name": policy.name,
        "description": policy.description,
        "rules": policy.rules,
        "createdAt": wire::timestamp(policy.created_at),
        "disabled": policy.disabled,
    })
}

fn policy_any(policy: &ScanPolicy) -> Value {
    let mut value = policy_json(policy);
    value["@type"] = Value::String(format!("{}ScanPolicy", wire::TYPE_PREFIX));
    value
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let bytes = name.as_bytes();
    let valid = name.is_empty()
        || ((3..=63).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[bytes.len() - 1] != b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "name {name:?} does not match |[a-z][-a-z0-9]{{1,61}}[a-z0-9]"
        )))
    }
}

fn check_prefix(prefix: &str) -> bool {
    if prefix == "*" {
        return true;
    }
    prefix.split('/').all(|part| {
        !part.is_empty()
            && part.split(['.', '_', '-']).all(|piece| {
                !piece.is_empty()
                    && piece
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
    })
}

/// Validates `ScanRules` and returns it in canonical form.
fn check_rules(rules: Option<&Value>) -> Result<Value, ApiError> {
    let Some(rules) = rules.filter(|value| !value.is_null()) else {
        return Ok(json!({}));
    };
    let object = rules
        .as_object()
        .ok_or_else(|| ApiError::invalid("rules is not an object"))?;
    for key in object.keys() {
        if key != "pushRule" && key != "scheduleRules" {
            return Err(ApiError::invalid(format!(
                "rules.{key} is not a field of ScanRules"
            )));
        }
    }
    let prefixes = |field: &str, rule: &Value| -> Result<Vec<String>, ApiError> {
        let list = rule
            .get("repositoryPrefixes")
            .and_then(Value::as_array)
            .filter(|list| !list.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{field}.repositoryPrefixes must contain at least one element"
                ))
            })?;
        list.iter()
            .map(|prefix| {
                prefix
                    .as_str()
                    .filter(|text| check_prefix(text))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "{field}.repositoryPrefixes has an invalid prefix {prefix}"
                        ))
                    })
            })
            .collect()
    };
    let disabled = |field: &str, rule: &Value| -> Result<bool, ApiError> {
        match rule.get("disabled") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(_) => Err(ApiError::invalid(format!(
                "{field}.disabled is not a boolean"
            ))),
        }
    };
    let mut canonical = json!({});
    if let Some(push) = object.get("pushRule").filter(|value| !value.is_null()) {
        canonical["pushRule"] = json!({
            "repositoryPrefixes": prefixes("rules.pushRule", push)?,
            "disabled": disabled("rules.pushRule", push)?,
        });
    }
    if let Some(schedules) = object.get("scheduleRules").filter(|value| !value.is_null()) {
        let list = schedules
            .as_array()
            .ok_or_else(|| ApiError::invalid("rules.scheduleRules is not a list"))?;
        let mut out = Vec::new();
        for (index, rule) in list.iter().enumerate() {
            let field = format!("rules.scheduleRules[{index}]");
            let period = rule
                .get("rescanPeriod")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid(format!("{field}.rescanPeriod is required")))?;
            if parse_duration(period).is_none_or(|millis| millis <= 0) {
                return Err(ApiError::invalid(format!(
                    "{field}.rescanPeriod {period:?} is not a positive duration such as \"604800s\""
                )));
            }
            out.push(json!({
                "repositoryPrefixes": prefixes(&field, rule)?,
                "rescanPeriod": period,
                "disabled": disabled(&field, rule)?,
            }));
        }
        canonical["scheduleRules"] = Value::Array(out);
    }
    Ok(canonical)
}

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > 256 {
        return Err(ApiError::invalid(
            "description is longer than 256 characters",
        ));
    }
    Ok(())
}

async fn policy_operation(
    state: &AppState,
    principal: &Principal,
    key: Option<&str>,
    description: &str,
    metadata_type: &str,
    policy_id: &str,
    response: Value,
) -> ApiResult {
    let at = now();
    let operation = Operation {
        id: new_id(IdKind::Operation),
        description: description.to_owned(),
        created_by: principal.name.clone(),
        created_at: at,
        modified_at: at,
        done: true,
        metadata: Some(
            json!({"@type": format!("{}{metadata_type}", wire::TYPE_PREFIX), "scanPolicyId": policy_id}),
        ),
        error: None,
        response: Some(response),
    };
    let (stored, _) = state
        .registry
        .store()
        .insert_operation(&operation, key)
        .await?;
    Ok(json_response(json::operation(&stored)))
}

async fn replay(state: &AppState, key: Option<&str>) -> Result<Option<Response>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    let earlier = state.registry.store().find_operation_by_key(key).await?;
    Ok(earlier.map(|operation| json_response(json::operation(&operation))))
}

async fn create_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let principal = check(&state, &headers, MANAGE)?;
    let key = idempotency_key(&headers)?;
    if let Some(earlier) = replay(&state, key.as_deref()).await? {
        return Ok(earlier);
    }
    let body = parse_body(&body)?;
    let registry_id = string_field(&body, "registryId")?.unwrap_or_default();
    check_id("registryId", registry_id)?;
    let name = string_field(&body, "name")?.unwrap_or_default();
    check_name(name)?;
    let description = string_field(&body, "description")?.unwrap_or_default();
    check_description(description)?;
    let rules = check_rules(body.get("rules"))?;
    let store = state.registry.store();
    store.get_registry(registry_id).await?;
    let policy = store
        .create_scan_policy(&ScanPolicy {
            id: new_id(IdKind::ScanPolicy),
            registry_id: registry_id.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            rules,
            disabled: false,
            created_at: now(),
        })
        .await?;
    policy_operation(
        &state,
        &principal,
        key.as_deref(),
        "Create scan policy",
        "CreateScanPolicyMetadata",
        &policy.id,
        policy_any(&policy),
    )
    .await
}

async fn get_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    let store = state.registry.store();
    let policy = if let Some(registry_id) = key.strip_suffix(":byRegistry") {
        check_id("registryId", registry_id)?;
        store.get_scan_policy_by_registry(registry_id).await?
    } else {
        check_id("scanPolicyId", &key)?;
        store.get_scan_policy(&key).await?
    };
    Ok(json_response(policy_json(&policy)))
}

async fn update_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(policy_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let principal = check(&state, &headers, MANAGE)?;
    check_id("scanPolicyId", &policy_id)?;
    let key = idempotency_key(&headers)?;
    if let Some(earlier) = replay(&state, key.as_deref()).await? {
        return Ok(earlier);
    }
    let body = parse_body(&body)?;
    let store = state.registry.store();
    let mut policy = store.get_scan_policy(&policy_id).await?;
    let mask: Option<Vec<String>> = string_field(&body, "updateMask")?
        .filter(|text| !text.trim().is_empty())
        .map(|text| text.split(',').map(|path| path.trim().to_owned()).collect());
    let fields = ["name", "description", "rules", "disabled"];
    let paths: Vec<String> = match mask {
        Some(paths) => {
            for path in &paths {
                let top = path.split('.').next().unwrap_or_default();
                if !fields.contains(&top) {
                    return Err(ApiError::invalid(format!(
                        "updateMask path {path:?} is not one of name, description, rules, disabled"
                    )));
                }
            }
            paths
        }
        None => fields.iter().map(|field| (*field).to_owned()).collect(),
    };
    for path in &paths {
        match path.split('.').next().unwrap_or_default() {
            "name" => {
                let name = string_field(&body, "name")?.unwrap_or_default();
                check_name(name)?;
                name.clone_into(&mut policy.name);
            }
            "description" => {
                let description = string_field(&body, "description")?.unwrap_or_default();
                check_description(description)?;
                description.clone_into(&mut policy.description);
            }
            "rules" => policy.rules = check_rules(body.get("rules"))?,
            _ => {
                policy.disabled = match body.get("disabled") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(flag)) => *flag,
                    Some(_) => return Err(ApiError::invalid("disabled is not a boolean")),
                }
            }
        }
    }
    let policy = store.update_scan_policy(&policy).await?;
    policy_operation(
        &state,
        &principal,
        key.as_deref(),
        "Update scan policy",
        "UpdateScanPolicyMetadata",
        &policy.id,
        policy_any(&policy),
    )
    .await
}

async fn delete_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(policy_id): Path<String>,
) -> ApiResult {
    let principal = check(&state, &headers, MANAGE)?;
    check_id("scanPolicyId", &policy_id)?;
    let key = idempotency_key(&headers)?;
    if let Some(earlier) = replay(&state, key.as_deref()).await? {
        return Ok(earlier);
    }
    state
        .registry
        .store()
        .delete_scan_policy(&policy_id)
        .await?;
    let empty = json!({"@type": "type.googleapis.com/google.protobuf.Empty"});
    policy_operation(
        &state,
        &principal,
        key.as_deref(),
        "Delete scan policy",
        "DeleteScanPolicyMetadata",
        &policy_id,
        empty,
    )
    .await
}

// ---- OpenAPI --------------------------------------------------------------------

/// The scanner's paths and schemas for `/openapi.json`.
pub(crate) fn openapi(
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
