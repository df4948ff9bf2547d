//! The management API (contract §5 and §7): RegistryService, RepositoryService,
//! ImageService and OperationService over REST, with the contract's paging, filter and
//! orderBy rules (§1.5, §1.6, §11). Mutating calls return an `Operation`, recorded in
//! the store, honouring `Idempotency-Key`.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crscan_registry::RepositoryPath;
use crscan_store::{
    IdKind, ImageOrder, ImageQuery, Operation, Registry, RepositoryQuery, new_id, now,
};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::errors::ApiError;
use crate::json::{self, TYPE_PREFIX};
use crate::{AppState, Role};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/container-registry/v1/registries",
            get(list_registries).post(create_registry),
        )
        .route(
            "/container-registry/v1/registries/{registry_id}",
            get(get_registry)
                .patch(update_registry)
                .delete(delete_registry),
        )
        .route(
            "/container-registry/v1/repositories",
            get(list_repositories).post(upsert_repository),
        )
        .route(
            "/container-registry/v1/repositories/{*key}",
            get(get_repository).delete(delete_repository),
        )
        .route("/container-registry/v1/images", get(list_images))
        .route(
            "/container-registry/v1/images/{image_id}",
            get(get_image).delete(delete_image),
        )
        .route(
            "/operations/{operation_id}",
            get(get_operation).post(cancel_operation),
        )
}

type ApiResult = Result<Response, ApiError>;

const READ: &[Role] = &[Role::Viewer, Role::Pusher, Role::Scanner];

pub(crate) fn check(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Principal, ApiError> {
    Ok(state.auth.check(headers, roles)?)
}

/// An id field: required, at most 50 characters (§1.4).
pub(crate) fn check_id(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(format!("{field} is required")));
    }
    if value.chars().count() > 50 {
        return Err(ApiError::invalid(format!(
            "{field} is longer than 50 characters"
        )));
    }
    Ok(())
}

/// `pageSize` and `pageToken` as (offset, limit) per §1.5. Tokens are opaque to
/// clients; the `o` prefix that the scanner's lists once issued is still accepted.
pub(crate) fn paging(query: &HashMap<String, String>) -> Result<(i64, i64), ApiError> {
    let limit = match query.get("pageSize").map(String::as_str) {
        None | Some("") => 100,
        Some(text) => match text.parse::<i64>() {
            Ok(0) => 100,
            Ok(size) if (1..=1000).contains(&size) => size,
            _ => {
                return Err(ApiError::invalid(format!(
                    "pageSize {text} is not between 0 and 1000"
                )));
            }
        },
    };
    let offset = match query.get("pageToken").map(String::as_str) {
        None | Some("") => 0,
        Some(token) if token.len() <= 100 => token
            .strip_prefix('o')
            .unwrap_or(token)
            .parse::<i64>()
            .ok()
            .filter(|offset| *offset >= 0)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "pageToken {token:?} is not a token this server issued"
                ))
            })?,
        Some(_) => return Err(ApiError::invalid("pageToken is longer than 100 characters")),
    };
    Ok((offset, limit))
}

/// A list answer (§1.5): `{"<field>": [...], "nextPageToken": "..."}` from rows
/// fetched with `limit + 1` (the extra row only says that another page exists).
pub(crate) fn page_response<T>(
    field: &str,
    mut rows: Vec<T>,
    offset: i64,
    limit: i64,
    render: impl Fn(&T) -> Value,
) -> Response {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let token = if more {
        (offset + limit).to_string()
    } else {
        String::new()
    };
    let mut answer = serde_json::Map::new();
    answer.insert(
        field.to_owned(),
        Value::Array(rows.iter().map(render).collect()),
    );
    answer.insert("nextPageToken".to_owned(), Value::String(token));
    axum::Json(Value::Object(answer)).into_response()
}

/// Parses a filter that may only be `name="…"` (§1.6, §11).
fn name_filter(query: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    let Some(filter) = query
        .get("filter")
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
    else {
        return Ok(None);
    };
    if filter.len() > 1000 {
        return Err(ApiError::invalid("filter is longer than 1000 characters"));
    }
    let parsed = filter.split_once('=').and_then(|(field, value)| {
        let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
        (field.trim() == "name" && !value.contains('"')).then(|| value.to_owned())
    });
    parsed
        .map(Some)
        .ok_or_else(|| ApiError::invalid(format!("filter {filter:?} is not name=\"…\"")))
}

fn operation_response(
    principal: &Principal,
    description: &str,
    metadata: Value,
    response: Value,
) -> Operation {
    let at = now();
    Operation {
        id: new_id(IdKind::Operation),
        description: description.to_owned(),
        created_by: principal.name.clone(),
        created_at: at,
        modified_at: at,
        done: true,
        metadata: Some(metadata),
        error: None,
        response: Some(response),
    }
}

/// The `Idempotency-Key` header: absent, or 1 to 128 ASCII characters; anything else
/// is refused rather than ignored, so a retry never runs twice by mistake.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key is not ASCII"))?;
            if text.is_empty() || text.len() > 128 {
                return Err(ApiError::invalid(format!(
                    "Idempotency-Key {text:?} is empty or longer than 128 characters"
                )));
            }
            Ok(Some(text.to_owned()))
        }
    }
}

/// Returns the earlier operation of a repeated `Idempotency-Key`, if any.
async fn replay(state: &AppState, headers: &HeaderMap) -> Result<Option<Response>, ApiError> {
    let Some(key) = idempotency_key(headers)? else {
        return Ok(None);
    };
    let earlier = state.registry.store().find_operation_by_key(&key).await?;
    Ok(earlier.map(|operation| axum::Json(json::operation(&operation)).into_response()))
}

/// Answers a delete: an Operation done at once whose metadata
/// (`Delete<Resource>Metadata`) names the deleted id.
async fn record_delete(
    state: &AppState,
    headers: &HeaderMap,
    principal: &Principal,
    resource: &str,
    id_field: &str,
    id: &str,
) -> ApiResult {
    let mut metadata = serde_json::Map::new();
    metadata.insert(id_field.to_owned(), Value::String(id.to_owned()));
    let operation = operation_response(
        principal,
        &format!("Delete {}", resource.to_ascii_lowercase()),
        json::any(
            &format!("{TYPE_PREFIX}Delete{resource}Metadata"),
            Value::Object(metadata),
        ),
        json::empty_any(),
    );
    record(state, headers, operation).await
}

async fn record(state: &AppState, headers: &HeaderMap, operation: Operation) -> ApiResult {
    let key = idempotency_key(headers)?;
    let (stored, _) = state
        .registry
        .store()
        .insert_operation(&operation, key.as_deref())
        .await?;
    Ok(axum::Json(json::operation(&stored)).into_response())
}

pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid(format!("request body is not JSON: {error}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("request body is not a JSON object"));
    }
    Ok(value)
}

fn labels_of(value: &Value) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    match value.get("labels") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if map.len() > 64 {
                return Err(ApiError::invalid("labels has more than 64 entries"));
            }
            map.iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key.clone(), text.clone())),
                    _ => Err(ApiError::invalid(format!("label {key:?} is not a string"))),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some)
        }
        Some(_) => Err(ApiError::invalid("labels is not an object")),
    }
}

/// Checks a registry name against `[a-z][-a-z0-9]{1,61}[a-z0-9]` from the contract (§5.4).
fn check_registry_name(name: &str) -> Result<(), ApiError> {
    if valid_registry_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "name {name:?} does not match [a-z][-a-z0-9]{{1,61}}[a-z0-9]"
        )))
    }
}

fn valid_registry_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 3
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1].is_ascii_lowercase() | bytes[bytes.len() - 1].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

pub(crate) fn string_field<'a>(value: &'a Value, field: &str) -> Result<Option<&'a str>, ApiError> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::invalid(format!("{field} is not a string"))),
    }
}

// ---- registries -------------------------------------------------------------------

async fn list_registries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    let folder_id = query.get("folderId").cloned().unwrap_or_default();
    check_id("folderId", &folder_id)?;
    let (offset, limit) = paging(&query)?;
    let name = name_filter(&query)?;
    let rows = state
        .registry
        .store()
        .list_registries(Some(&folder_id), name.as_deref(), offset, limit + 1)
        .await?;
    Ok(page_response(
        "registries",
        rows,
        offset,
        limit,
        json::registry,
    ))
}

async fn get_registry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(registry_id): Path<String>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    check_id("registryId", &registry_id)?;
    let registry = state.registry.store().get_registry(&registry_id).await?;
    Ok(axum::Json(json::registry(&registry)).into_response())
}

async fn create_registry(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let principal = check(&state, &headers, &[])?;
    if let Some(earlier) = replay(&state, &headers).await? {
        return Ok(earlier);
    }
    let body = parse_body(&body)?;
    let folder_id = string_field(&body, "folderId")?.unwrap_or_default();
    check_id("folderId", folder_id)?;
    let name = string_field(&body, "name")?.unwrap_or_default();
    if !name.is_empty() {
        check_registry_name(name)?;
    }
    let name = if name.is_empty() { folder_id } else { name };
    let labels = labels_of(&body)?.unwrap_or_default();
    let registry = state
        .registry
        .store()
        .create_registry(folder_id, name, &labels)
        .await?;
    let operation = registry_operation(&principal, "Create", &registry);
    record(&state, &headers, operation).await
}

/// The Operation of a registry create or update: `<verb>RegistryMetadata` naming the
/// registry, with the registry itself as the response.
fn registry_operation(principal: &Principal, verb: &str, registry: &Registry) -> Operation {
    operation_response(
        principal,
        &format!("{verb} registry"),
        json::any(
            &format!("{TYPE_PREFIX}{verb}RegistryMetadata"),
            json!({"registryId": registry.id}),
        ),
        json::any(&format!("{TYPE_PREFIX}Registry"), json::registry(registry)),
    )
}

async fn update_registry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(registry_id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let principal = check(&state, &headers, &[])?;
    check_id("registryId", &registry_id)?;
    if let Some(earlier) = replay(&state, &headers).await? {
        return Ok(earlier);
    }
    let body = parse_body(&body)?;
    let mask: Vec<String> = match string_field(&body, "updateMask")? {
        Some(mask) if !mask.trim().is_empty() => {
            mask.split(',').map(|path| path.trim().to_owned()).collect()
        }
        // Without a mask every field present in the body is updated.
        _ => ["name", "labels"]
            .iter()
            .filter(|field| body.get(**field).is_some())
            .map(|field| (*field).to_owned())
            .collect(),
    };
    let mut name = None;
    let mut labels = None;
    for path in &mask {
        match path.as_str() {
            "name" => {
                let value = string_field(&body, "name")?.unwrap_or_default();
                check_registry_name(value)?;
                name = Some(value.to_owned());
            }
            "labels" => labels = Some(labels_of(&body)?.unwrap_or_default()),
            other => {
                return Err(ApiError::invalid(format!(
                    "updateMask path {other:?} is not name or labels"
                )));
            }
        }
    }
    let registry = state
        .registry
        .store()
        .update_registry(&registry_id, name.as_deref(), labels.as_ref())
        .await?;
    let operation = registry_operation(&principal, "Update", &registry);
    record(&state, &headers, operation).await
}

async fn delete_registry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(registry_id): Path<String>,
) -> ApiResult {
    let principal = check(&state, &headers, &[])?;
    check_id("registryId", &registry_id)?;
    if let Some(earlier) = replay(&state, &headers).await? {
        return Ok(earlier);
    }
    state.registry.store().delete_registry(&registry_id).await?;
    record_delete(
        &state,
        &headers,
        &principal,
        "Registry",
        "registryId",
        &registry_id,
    )
    .await
}

// ---- repositories -----------------------------------------------------------------

async fn list_repositories(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    let (offset, limit) = paging(&query)?;
    let registry_id = query
        .get("registryId")
        .filter(|value| !value.is_empty())
        .cloned();
    let folder_id = query
        .get("folderId")
        .filter(|value| !value.is_empty())
        .cloned();
    for (field, value) in [("registryId", &registry_id), ("folderId", &folder_id)] {
        if let Some(value) = value {
            check_id(field, value)?;
        }
    }
    let descending = match query
        .get("orderBy")
        .map(|text| text.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("name") | Some("name asc") => false,
        Some("name desc") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "orderBy {other:?} is not name [asc|desc]"
            )));
        }
    };
    let rows = state
        .registry
        .store()
        .list_repositories(&RepositoryQuery {
            registry_id,
            folder_id,
            name: name_filter(&query)?,
            descending,
            offset,
            limit: limit + 1,
        })
        .await?;
    Ok(page_response(
        "repositories",
        rows,
        offset,
        limit,
        json::repository,
    ))
}

async fn get_repository(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    let store = state.registry.store();
    let repository = if let Some(name) = key.strip_suffix(":byName") {
        store.get_repository_by_name(name).await?
    } else {
        check_id("repositoryId", &key)?;
        store.get_repository(&key).await?
    };
    Ok(axum::Json(json::repository(&repository)).into_response())
}

async fn upsert_repository(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let principal = check(&state, &headers, &[Role::Pusher])?;
    if let Some(earlier) = replay(&state, &headers).await? {
        return Ok(earlier);
    }
    let body = parse_body(&body)?;
    let name = string_field(&body, "name")?.unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid("name is required"));
    }
    let path = RepositoryPath::parse(name).map_err(|_| {
        ApiError::invalid(format!("name {name:?} is not <registryId>/<image name>"))
    })?;
    let repository = state.registry.repository_for_push(&path).await?;
    let operation = operation_response(
        &principal,
        "Upsert repository",
        json::any(
            &format!("{TYPE_PREFIX}UpsertRepositoryMetadata"),
            json!({"repositoryId": repository.id}),
        ),
        json::any(
            &format!("{TYPE_PREFIX}Repository"),
            json::repository(&repository),
        ),
    );
    record(&state, &headers, operation).await
}

async fn delete_repository(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ApiResult {
    let principal = check(&state, &headers, &[Role::Pusher])?;
    check_id("repositoryId", &key)?;
    if let Some(earlier) = replay(&state, &headers).await? {
        return Ok(earlier);
    }
    state.registry.store().delete_repository(&key).await?;
    record_delete(
        &state,
        &headers,
        &principal,
        "Repository",
        "repositoryId",
        &key,
    )
    .await
}

// ---- images -----------------------------------------------------------------------

fn image_order(text: Option<&String>) -> Result<Vec<(ImageOrder, bool)>, ApiError> {
    let Some(text) = text.map(|text| text.trim()).filter(|text| !text.is_empty()) else {
        return Ok(Vec::new());
    };
    if text.len() > 100 {
        return Err(ApiError::invalid("orderBy is longer than 100 characters"));
    }
    let mut order = Vec::new();
    for item in text.split(',') {
        let mut words = item.split_whitespace();
        let field = match words.next() {
            Some("name") => ImageOrder::Name,
            Some("digest") => ImageOrder::Digest,
            Some("created_at" | "createdAt" | "last_modified" | "lastModified") => {
                ImageOrder::CreatedAt
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "orderBy item {item:?} is not name, digest, created_at or last_modified"
                )));
            }
        };
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "orderBy direction {other:?} is not asc or desc"
                )));
            }
        };
        order.push((field, descending));
    }
    Ok(order)
}

async fn list_images(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    let (offset, limit) = paging(&query)?;
    let get = |field: &str| query.get(field).filter(|value| !value.is_empty()).cloned();
    for field in ["registryId", "folderId"] {
        if let Some(value) = get(field) {
            check_id(field, &value)?;
        }
    }
    let rows = state
        .registry
        .store()
        .list_images(&ImageQuery {
            registry_id: get("registryId"),
            repository_name: get("repositoryName"),
            folder_id: get("folderId"),
            name: name_filter(&query)?,
            order_by: image_order(query.get("orderBy"))?,
            offset,
            limit: limit + 1,
        })
        .await?;
    Ok(page_response("images", rows, offset, limit, json::image))
}

async fn get_image(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(image_id): Path<String>,
) -> ApiResult {
    if let Some(id) = image_id.strip_suffix(":lastScanResult") {
        return crate::scanner::get_last(&state, &headers, id).await;
    }
    check(&state, &headers, READ)?;
    check_id("imageId", &image_id)?;
    let image = state.registry.store().get_image(&image_id).await?;
    Ok(axum::Json(json::image(&image)).into_response())
}

async fn delete_image(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(image_id): Path<String>,
) -> ApiResult {
    let principal = check(&state, &headers, &[Role::Pusher])?;
    check_id("imageId", &image_id)?;
    if let Some(earlier) = replay(&state, &headers).await? {
        return Ok(earlier);
    }
    state.registry.store().delete_image(&image_id).await?;
    record_delete(&state, &headers, &principal, "Image", "imageId", &image_id).await
}

// ---- operations -------------------------------------------------------------------

async fn get_operation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(operation_id): Path<String>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    // `GET /operations/{id}:cancel` shares this route (contract §7, §9.2).
    let id = operation_id
        .strip_suffix(":cancel")
        .unwrap_or(&operation_id);
    check_id("operationId", id)?;
    if id.len() < operation_id.len() {
        crate::scanner::cancel(&state, id).await?;
    }
    let operation = state.registry.store().get_operation(id).await?;
    Ok(axum::Json(json::operation(&operation)).into_response())
}

/// `POST /operations/{id}:cancel`: every operation here is already done, so cancel
/// returns its current state, as the contract allows.
async fn cancel_operation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(operation_id): Path<String>,
) -> ApiResult {
    check(&state, &headers, READ)?;
    let Some(id) = operation_id.strip_suffix(":cancel") else {
        return Err(ApiError {
            code: 12,
            message: format!("POST /operations/{operation_id} is not a method"),
        });
    };
    check_id("operationId", id)?;
    crate::scanner::cancel(&state, id).await?;
    let operation = state.registry.store().get_operation(id).await?;
    Ok(axum::Json(json::operation(&operation)).into_response())
}
