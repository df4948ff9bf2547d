//! The calls of the Container Registry API as domain operations, independent of the
//! transport: each takes the caller and a request of plain values (the fields of the
//! API's request message), checks them as the contract says (§1.4–§1.6, §11), decides
//! which role the call needs, does it through [`Registry`], the store and the scan
//! service, and returns domain values (`crscan_store` types, `crscan_model::Finding`).
//! The REST routes (`crate::rest`) and the gRPC services render those values, each
//! in its own wire form, so both answer every question from this one code.
//!
//! Errors are [`ApiError`]s: a `google.rpc.Code` and a message naming the field.

mod console;
mod lifecycle;

use std::collections::BTreeMap;

use crscan_model::{Finding, Severity};
use crscan_registry::{Registry, RepositoryPath};
use crscan_scanner::worker::{self, Scanner};
use crscan_store::{
    Image, ImageOrder, ImageQuery, Operation, OperationMetadata, OperationResponse, PageStart,
    Repository, RepositoryQuery, RuleError, ScanOrder, ScanPolicy, ScanQuery, ScanResult,
    ScanRules, ScanStatus, Store, VulnerabilityQuery, new_id, now,
};

use crate::auth::{Principal, Role};
use crate::errors::ApiError;

pub use console::{Capabilities, ImageConfig, LayerHistory};
pub use lifecycle::{
    LifecycleDeletion, LifecyclePolicyUpdate, LifecycleRuleRequest, NewLifecyclePolicy,
    lifecycle_rules, lifecycle_slot, spawn_lifecycle_runs,
};

/// Roles that may read.
const READ: &[Role] = &[Role::Viewer, Role::Pusher, Role::Scanner];
/// Roles that may push and delete images.
const PUSH: &[Role] = &[Role::Pusher];
/// Roles that may start and cancel scans.
const SCAN: &[Role] = &[Role::Scanner];
/// Only admin.
const ADMIN: &[Role] = &[];

/// Everything the calls need. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    registry: Registry,
    /// This process's scan service: woken when a scan is queued. `None` leaves that
    /// to the polling workers.
    scanner: Option<Scanner>,
}

/// Who calls, and the `Idempotency-Key` of a mutating call.
#[derive(Debug, Clone)]
pub struct Call {
    pub principal: Principal,
    pub idempotency_key: Option<String>,
}

impl Call {
    /// The key under which the operation is recorded: the client's key, scoped to the
    /// method and the caller, so that two callers, or two methods, never share one.
    fn scoped_key(&self, method: &str) -> Option<String> {
        self.idempotency_key
            .as_ref()
            .map(|key| format!("{method}:{}:{key}", self.principal.name))
    }
}

/// The paging and query fields every List request has (§1.5, §1.6).
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub page_size: i64,
    pub page_token: String,
    pub filter: String,
    pub order_by: String,
}

/// One page of a listing and the token of the next (empty on the last page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// An update of a registry: fields named by the mask (or, without one, present).
#[derive(Debug, Clone, Default)]
pub struct RegistryUpdate {
    pub update_mask: Option<Vec<String>>,
    pub name: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// A new scan policy.
#[derive(Debug, Clone)]
pub struct NewScanPolicy {
    pub registry_id: String,
    pub name: String,
    pub description: String,
    pub rules: Option<ScanRules>,
}

/// An update of a scan policy: fields named by the mask (or, without one, all).
#[derive(Debug, Clone, Default)]
pub struct ScanPolicyUpdate {
    pub update_mask: Option<Vec<String>>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub rules: Option<ScanRules>,
    pub disabled: Option<bool>,
}

/// Which repository a Get names.
#[derive(Debug, Clone)]
pub enum RepositoryKey {
    Id(String),
    Name(String),
}

/// An `Idempotency-Key`: 1 to 128 characters; anything else is refused rather than
/// ignored, so a retry never runs twice by mistake.
pub fn check_idempotency_key(text: &str) -> Result<String, ApiError> {
    if text.is_empty() || text.len() > 128 {
        return Err(ApiError::invalid(format!(
            "Idempotency-Key {text:?} is empty or longer than 128 characters"
        )));
    }
    Ok(text.to_owned())
}

/// An id field: required, at most 50 characters (§1.4).
pub fn check_id(field: &str, value: &str) -> Result<(), ApiError> {
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

/// An optional id field: empty, or at most 50 characters.
fn check_optional_id(field: &str, value: &str) -> Result<Option<String>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    check_id(field, value)?;
    Ok(Some(value.to_owned()))
}

/// `page_size` and `page_token` as (where the page starts, limit) per §1.5: 0 means
/// 100, at most 1000; tokens are this server's own, at most 100 characters.
fn paging(list: &ListRequest) -> Result<(PageStart, i64), ApiError> {
    let limit = match list.page_size {
        0 => 100,
        size if (1..=1000).contains(&size) => size,
        size => {
            return Err(ApiError::invalid(format!(
                "pageSize {size} is not between 0 and 1000"
            )));
        }
    };
    let token = list.page_token.as_str();
    if token.chars().count() > 100 {
        return Err(ApiError::invalid("pageToken is longer than 100 characters"));
    }
    let start = if token.is_empty() {
        PageStart::default()
    } else {
        decode_page_token(token).ok_or_else(|| {
            ApiError::invalid(format!(
                "pageToken {token:?} is not a token this server issued"
            ))
        })?
    };
    Ok((start, limit))
}

/// The prefix of this server's page tokens (and of their format's version).
const PAGE_TOKEN_PREFIX: &str = "p1";

/// A page token, opaque to clients: the id of the page's last row (the next page
/// starts after that row while it exists, so rows inserted between pages neither
/// repeat nor hide rows) and the offset to fall back on when it was deleted, as
/// hex after [`PAGE_TOKEN_PREFIX`].
fn encode_page_token(start: &PageStart) -> String {
    let plain = format!("{}:{}", start.offset, start.after.as_deref().unwrap_or(""));
    let mut token = PAGE_TOKEN_PREFIX.to_owned();
    for byte in plain.bytes() {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

fn decode_page_token(token: &str) -> Option<PageStart> {
    let hex = token.strip_prefix(PAGE_TOKEN_PREFIX)?;
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let plain = String::from_utf8(bytes).ok()?;
    let (offset, after) = plain.split_once(':')?;
    let offset = offset.parse::<i64>().ok().filter(|offset| *offset >= 0)?;
    if !after.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(PageStart {
        after: (!after.is_empty()).then(|| after.to_owned()),
        offset,
    })
}

/// A page from rows fetched with `limit + 1` (the extra row only says that another
/// page exists); `id` gives a row's id for the next page's anchor (`None` for lists
/// that never change once written, which page by offset alone).
fn page<T>(
    mut rows: Vec<T>,
    start: &PageStart,
    limit: i64,
    id: impl Fn(&T) -> Option<&str>,
) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_page_token = match rows.last() {
        Some(last) if more => encode_page_token(&PageStart {
            after: id(last).map(str::to_owned),
            offset: start.offset + limit,
        }),
        _ => String::new(),
    };
    Page {
        items: rows,
        next_page_token,
    }
}

/// Parses a filter, `field="value"` conditions joined by `AND` (§1.6, §11), for the
/// allowed fields.
fn parse_filter(filter: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let filter = filter.trim();
    if filter.is_empty() {
        return Ok(Vec::new());
    }
    if filter.chars().count() > 1000 {
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
        let value_and_rest = after.trim_start().strip_prefix('"').ok_or_else(|| {
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

/// The value of a `name="…"` filter, the only one the resource lists take.
fn name_filter(filter: &str) -> Result<Option<String>, ApiError> {
    Ok(parse_filter(filter, &["name"])?
        .pop()
        .map(|(_, value)| value))
}

/// Parses `orderBy`: comma-separated items `<field> [asc|desc]` of the allowed
/// fields (one item unless `several`). Returns (field, descending?) pairs, the
/// direction `None` when not given.
fn parse_order(
    order_by: &str,
    allowed: &[&str],
    several: bool,
) -> Result<Vec<(String, Option<bool>)>, ApiError> {
    let text = order_by.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.chars().count() > 100 {
        return Err(ApiError::invalid("orderBy is longer than 100 characters"));
    }
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() > 1 && !several {
        return Err(ApiError::invalid(format!(
            "orderBy {text:?} is not \"<field> [asc|desc]\""
        )));
    }
    let mut order = Vec::new();
    for item in items {
        let words: Vec<&str> = item.split_whitespace().collect();
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
        order.push((field.to_owned(), direction));
    }
    Ok(order)
}

/// A registry name: `[a-z][-a-z0-9]{1,61}[a-z0-9]` (§5.4); `optional` also allows
/// the empty name.
fn check_resource_name(field: &str, name: &str, optional: bool) -> Result<(), ApiError> {
    let bytes = name.as_bytes();
    let valid = (optional && name.is_empty())
        || ((3..=63).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[bytes.len() - 1] != b'-');
    if valid {
        return Ok(());
    }
    let pattern = if optional {
        "|[a-z][-a-z0-9]{1,61}[a-z0-9]"
    } else {
        "[a-z][-a-z0-9]{1,61}[a-z0-9]"
    };
    Err(ApiError::invalid(format!(
        "{field} {name:?} does not match {pattern}"
    )))
}

/// Labels as the hosted service allows them: at most 64; keys of 1–63 characters
/// matching `[a-z][-_0-9a-z]*`; values of at most 63 matching `[-_0-9a-z]*`
/// (`registry_service.proto`).
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if labels.len() > 64 {
        return Err(ApiError::invalid(format!(
            "labels has {} entries, more than 64",
            labels.len()
        )));
    }
    let label_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
    for (key, value) in labels {
        let key_valid = (1..=63).contains(&key.len())
            && key.as_bytes()[0].is_ascii_lowercase()
            && key.bytes().all(label_char);
        if !key_valid {
            return Err(ApiError::invalid(format!(
                "label key {key:?} is not 1 to 63 characters matching [a-z][-_0-9a-z]*"
            )));
        }
        if value.len() > 63 || !value.bytes().all(label_char) {
            return Err(ApiError::invalid(format!(
                "value of label {key:?} is not at most 63 characters matching [-_0-9a-z]*"
            )));
        }
    }
    Ok(())
}

/// A description: at most 256 characters.
fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > 256 {
        return Err(ApiError::invalid(
            "description is longer than 256 characters",
        ));
    }
    Ok(())
}

/// A scan rule refused by its constructor, named by where it sits in the request.
pub fn rule_error(field: &str, error: RuleError) -> ApiError {
    ApiError::invalid(format!("{field}.{error}"))
}

/// Checks the update mask's paths against the fields an update may change; without a
/// mask, `default` (the fields to change) is used.
fn mask_paths(
    mask: Option<&Vec<String>>,
    allowed: &[&str],
    default: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let Some(paths) = mask.filter(|paths| !paths.is_empty()) else {
        return Ok(default);
    };
    for path in paths {
        let top = path.split('.').next().unwrap_or_default();
        if !allowed.contains(&top) {
            return Err(ApiError::invalid(format!(
                "updateMask path {path:?} is not one of {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(paths.clone())
}

impl Service {
    pub fn new(registry: Registry, scanner: Option<Scanner>) -> Service {
        Service { registry, scanner }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn store(&self) -> &Store {
        self.registry.store()
    }

    /// The operation recorded earlier under the call's key for this method, if any.
    async fn replay(&self, call: &Call, method: &str) -> Result<Option<Operation>, ApiError> {
        match call.scoped_key(method) {
            Some(key) => Ok(self.store().find_operation_by_key(&key).await?),
            None => Ok(None),
        }
    }

    /// Records a finished operation under the call's key for this method.
    async fn record(
        &self,
        call: &Call,
        method: &str,
        metadata: OperationMetadata,
        response: OperationResponse,
    ) -> Result<Operation, ApiError> {
        let operation = Operation::finished(&call.principal.name, now(), metadata, response);
        let key = call.scoped_key(method);
        let (stored, _) = self
            .store()
            .insert_operation(&operation, key.as_deref())
            .await?;
        Ok(stored)
    }

    // ---- RegistryService --------------------------------------------------------

    pub async fn list_registries(
        &self,
        principal: &Principal,
        folder_id: &str,
        list: &ListRequest,
    ) -> Result<Page<crscan_store::Registry>, ApiError> {
        principal.require(READ)?;
        check_id("folderId", folder_id)?;
        let (start, limit) = paging(list)?;
        let name = name_filter(&list.filter)?;
        let rows = self
            .store()
            .list_registries(Some(folder_id), name.as_deref(), &start, limit + 1)
            .await?;
        Ok(page(rows, &start, limit, |row| Some(&row.id)))
    }

    pub async fn get_registry(
        &self,
        principal: &Principal,
        registry_id: &str,
    ) -> Result<crscan_store::Registry, ApiError> {
        principal.require(READ)?;
        check_id("registryId", registry_id)?;
        Ok(self.store().get_registry(registry_id).await?)
    }

    pub async fn create_registry(
        &self,
        call: &Call,
        folder_id: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "RegistryService.Create";
        call.principal.require(ADMIN)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        check_id("folderId", folder_id)?;
        check_resource_name("name", name, true)?;
        check_labels(labels)?;
        let name = if name.is_empty() { folder_id } else { name };
        let registry = self
            .store()
            .create_registry(folder_id, name, labels)
            .await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::CreateRegistry {
                registry_id: registry.id.clone(),
            },
            OperationResponse::Registry(registry),
        )
        .await
    }

    pub async fn update_registry(
        &self,
        call: &Call,
        registry_id: &str,
        update: &RegistryUpdate,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "RegistryService.Update";
        call.principal.require(ADMIN)?;
        check_id("registryId", registry_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        // Without a mask every field present in the request is updated.
        let present = [
            ("name", update.name.is_some()),
            ("labels", update.labels.is_some()),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .map(|(field, _)| field.to_owned())
        .collect();
        let mut name = None;
        let mut labels = None;
        for path in mask_paths(update.update_mask.as_ref(), &["name", "labels"], present)? {
            if path == "name" {
                let value = update.name.clone().unwrap_or_default();
                check_resource_name("name", &value, false)?;
                name = Some(value);
            } else {
                let value = update.labels.clone().unwrap_or_default();
                check_labels(&value)?;
                labels = Some(value);
            }
        }
        let registry = self
            .store()
            .update_registry(registry_id, name.as_deref(), labels.as_ref())
            .await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::UpdateRegistry {
                registry_id: registry.id.clone(),
            },
            OperationResponse::Registry(registry),
        )
        .await
    }

    pub async fn delete_registry(
        &self,
        call: &Call,
        registry_id: &str,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "RegistryService.Delete";
        call.principal.require(ADMIN)?;
        check_id("registryId", registry_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        self.store().delete_registry(registry_id).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::DeleteRegistry {
                registry_id: registry_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }

    // ---- RepositoryService ------------------------------------------------------

    pub async fn list_repositories(
        &self,
        principal: &Principal,
        registry_id: &str,
        folder_id: &str,
        list: &ListRequest,
    ) -> Result<Page<Repository>, ApiError> {
        principal.require(READ)?;
        let registry_id = check_optional_id("registryId", registry_id)?;
        let folder_id = check_optional_id("folderId", folder_id)?;
        let (start, limit) = paging(list)?;
        let descending = parse_order(&list.order_by, &["name"], false)?
            .first()
            .and_then(|(_, direction)| *direction)
            .unwrap_or(false);
        let rows = self
            .store()
            .list_repositories(&RepositoryQuery {
                registry_id,
                folder_id,
                name: name_filter(&list.filter)?,
                descending,
                start: start.clone(),
                limit: limit + 1,
            })
            .await?;
        Ok(page(rows, &start, limit, |row| Some(&row.id)))
    }

    pub async fn get_repository(
        &self,
        principal: &Principal,
        key: &RepositoryKey,
    ) -> Result<Repository, ApiError> {
        principal.require(READ)?;
        Ok(match key {
            RepositoryKey::Name(name) => self.store().get_repository_by_name(name).await?,
            RepositoryKey::Id(id) => {
                check_id("repositoryId", id)?;
                self.store().get_repository(id).await?
            }
        })
    }

    pub async fn upsert_repository(&self, call: &Call, name: &str) -> Result<Operation, ApiError> {
        const METHOD: &str = "RepositoryService.Upsert";
        call.principal.require(PUSH)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        if name.is_empty() {
            return Err(ApiError::invalid("name is required"));
        }
        let path = RepositoryPath::parse(name).map_err(|_| {
            ApiError::invalid(format!("name {name:?} is not <registryId>/<image name>"))
        })?;
        let repository = self.registry.repository_for_push(&path).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::UpsertRepository {
                repository_id: repository.id.clone(),
            },
            OperationResponse::Repository(repository),
        )
        .await
    }

    pub async fn delete_repository(
        &self,
        call: &Call,
        repository_id: &str,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "RepositoryService.Delete";
        call.principal.require(PUSH)?;
        check_id("repositoryId", repository_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        self.store().delete_repository(repository_id).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::DeleteRepository {
                repository_id: repository_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }

    // ---- ImageService -----------------------------------------------------------

    pub async fn list_images(
        &self,
        principal: &Principal,
        registry_id: &str,
        repository_name: &str,
        folder_id: &str,
        list: &ListRequest,
    ) -> Result<Page<Image>, ApiError> {
        principal.require(READ)?;
        let registry_id = check_optional_id("registryId", registry_id)?;
        let folder_id = check_optional_id("folderId", folder_id)?;
        let (start, limit) = paging(list)?;
        let order_by = parse_order(
            &list.order_by,
            &[
                "name",
                "digest",
                "created_at",
                "createdAt",
                "last_modified",
                "lastModified",
            ],
            true,
        )?
        .into_iter()
        .map(|(field, direction)| {
            let field = match field.as_str() {
                "name" => ImageOrder::Name,
                "digest" => ImageOrder::Digest,
                _ => ImageOrder::CreatedAt,
            };
            (field, direction.unwrap_or(false))
        })
        .collect();
        let rows = self
            .store()
            .list_images(&ImageQuery {
                registry_id,
                repository_name: (!repository_name.is_empty()).then(|| repository_name.to_owned()),
                folder_id,
                name: name_filter(&list.filter)?,
                order_by,
                start: start.clone(),
                limit: limit + 1,
            })
            .await?;
        Ok(page(rows, &start, limit, |row| Some(&row.id)))
    }

    pub async fn get_image(
        &self,
        principal: &Principal,
        image_id: &str,
    ) -> Result<Image, ApiError> {
        principal.require(READ)?;
        check_id("imageId", image_id)?;
        Ok(self.store().get_image(image_id).await?)
    }

    pub async fn delete_image(&self, call: &Call, image_id: &str) -> Result<Operation, ApiError> {
        const METHOD: &str = "ImageService.Delete";
        call.principal.require(PUSH)?;
        check_id("imageId", image_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        self.remove_image(image_id).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::DeleteImage {
                image_id: image_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }

    // ---- ScannerService ---------------------------------------------------------

    pub async fn scan(&self, call: &Call, image_id: &str) -> Result<Operation, ApiError> {
        const METHOD: &str = "ScannerService.Scan";
        call.principal.require(SCAN)?;
        check_id("imageId", image_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        let store = self.store();
        let repository = store.repository_of_image(image_id).await?;
        let key = call.scoped_key(METHOD);
        let (operation, created) = worker::enqueue_scan(
            store,
            image_id,
            &repository.id,
            &repository.registry_id,
            &call.principal.name,
            key.as_deref(),
        )
        .await?;
        if created && let Some(scanner) = &self.scanner {
            scanner.wake();
        }
        Ok(operation)
    }

    pub async fn get_scan_result(
        &self,
        principal: &Principal,
        scan_result_id: &str,
    ) -> Result<ScanResult, ApiError> {
        principal.require(READ)?;
        check_id("scanResultId", scan_result_id)?;
        Ok(self.store().get_scan_result(scan_result_id).await?)
    }

    pub async fn get_last_scan_result(
        &self,
        principal: &Principal,
        image_id: &str,
    ) -> Result<ScanResult, ApiError> {
        principal.require(READ)?;
        check_id("imageId", image_id)?;
        let store = self.store();
        store.get_image(image_id).await?;
        Ok(store.last_scan_result(image_id).await?)
    }

    pub async fn list_scan_results(
        &self,
        principal: &Principal,
        image_id: &str,
        repository_id: &str,
        list: &ListRequest,
    ) -> Result<Page<ScanResult>, ApiError> {
        principal.require(READ)?;
        match (image_id.is_empty(), repository_id.is_empty()) {
            (false, false) => {
                return Err(ApiError::invalid(
                    "only one of imageId and repositoryId may be given",
                ));
            }
            (true, true) => {
                return Err(ApiError::invalid(
                    "one of imageId and repositoryId is required",
                ));
            }
            (false, true) => check_id("imageId", image_id)?,
            (true, false) => check_id("repositoryId", repository_id)?,
        }
        let (start, limit) = paging(list)?;
        let mut status = None;
        for (_, value) in parse_filter(&list.filter, &["status"])? {
            status = Some(ScanStatus::parse(&value).ok_or_else(|| {
                ApiError::invalid(format!(
                    "filter status {value:?} is not RUNNING, READY or ERROR"
                ))
            })?);
        }
        let (order, descending) =
            match parse_order(&list.order_by, &["scannedAt", "status"], false)?.pop() {
                None => (ScanOrder::ScannedAt, true),
                Some((field, direction)) if field == "status" => {
                    (ScanOrder::Status, direction.unwrap_or(false))
                }
                Some((_, direction)) => (ScanOrder::ScannedAt, direction.unwrap_or(true)),
            };
        let store = self.store();
        if !image_id.is_empty() {
            store.get_image(image_id).await?;
        } else {
            store.get_repository(repository_id).await?;
        }
        let rows = store
            .list_scan_results(&ScanQuery {
                image_id: (!image_id.is_empty()).then(|| image_id.to_owned()),
                repository_id: (!repository_id.is_empty()).then(|| repository_id.to_owned()),
                status,
                order,
                descending,
                start: start.clone(),
                limit: limit + 1,
            })
            .await?;
        Ok(page(rows, &start, limit, |row| Some(&row.id)))
    }

    pub async fn list_vulnerabilities(
        &self,
        principal: &Principal,
        scan_result_id: &str,
        list: &ListRequest,
    ) -> Result<Page<Finding>, ApiError> {
        principal.require(READ)?;
        check_id("scanResultId", scan_result_id)?;
        let (start, limit) = paging(list)?;
        let mut severity = None;
        let mut name = None;
        for (field, value) in parse_filter(&list.filter, &["severity", "name"])? {
            if field == "severity" {
                severity = Some(value.parse::<Severity>().ok().filter(|level| level.as_str() == value).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "filter severity {value:?} is not one of CRITICAL, HIGH, MEDIUM, LOW, NEGLIGIBLE, UNDEFINED"
                    ))
                })?);
            } else {
                name = Some(value);
            }
        }
        let descending = parse_order(&list.order_by, &["severity"], false)?
            .pop()
            .and_then(|(_, direction)| direction)
            .unwrap_or(false);
        let store = self.store();
        store.get_scan_result(scan_result_id).await?;
        let rows = store
            .list_vulnerabilities(&VulnerabilityQuery {
                scan_result_id: scan_result_id.to_owned(),
                severity,
                name,
                descending,
                // A scan's findings never change once stored: an offset is stable.
                offset: start.offset,
                limit: limit + 1,
            })
            .await?;
        Ok(page(rows, &start, limit, |_| None))
    }

    // ---- ScanPolicyService ------------------------------------------------------

    pub async fn get_scan_policy(
        &self,
        principal: &Principal,
        scan_policy_id: &str,
    ) -> Result<ScanPolicy, ApiError> {
        principal.require(READ)?;
        check_id("scanPolicyId", scan_policy_id)?;
        Ok(self.store().get_scan_policy(scan_policy_id).await?)
    }

    pub async fn get_scan_policy_by_registry(
        &self,
        principal: &Principal,
        registry_id: &str,
    ) -> Result<ScanPolicy, ApiError> {
        principal.require(READ)?;
        check_id("registryId", registry_id)?;
        Ok(self
            .store()
            .get_scan_policy_by_registry(registry_id)
            .await?)
    }

    pub async fn create_scan_policy(
        &self,
        call: &Call,
        new: NewScanPolicy,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "ScanPolicyService.Create";
        call.principal.require(ADMIN)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        check_id("registryId", &new.registry_id)?;
        check_resource_name("name", &new.name, true)?;
        check_description(&new.description)?;
        let store = self.store();
        store.get_registry(&new.registry_id).await?;
        let policy = store
            .create_scan_policy(&ScanPolicy {
                id: new_id(crscan_store::IdKind::ScanPolicy),
                registry_id: new.registry_id,
                name: new.name,
                description: new.description,
                rules: new.rules.unwrap_or_default(),
                disabled: false,
                created_at: now(),
            })
            .await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::CreateScanPolicy {
                scan_policy_id: policy.id.clone(),
            },
            OperationResponse::ScanPolicy(policy),
        )
        .await
    }

    pub async fn update_scan_policy(
        &self,
        call: &Call,
        scan_policy_id: &str,
        update: ScanPolicyUpdate,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "ScanPolicyService.Update";
        const FIELDS: [&str; 4] = ["name", "description", "rules", "disabled"];
        call.principal.require(ADMIN)?;
        check_id("scanPolicyId", scan_policy_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        let store = self.store();
        let mut policy = store.get_scan_policy(scan_policy_id).await?;
        // Without a mask every field is replaced; a masked field without a value
        // goes back to its default (§4).
        let all = FIELDS.iter().map(|field| (*field).to_owned()).collect();
        for path in mask_paths(update.update_mask.as_ref(), &FIELDS, all)? {
            match path.split('.').next().unwrap_or_default() {
                "name" => {
                    let name = update.name.clone().unwrap_or_default();
                    check_resource_name("name", &name, true)?;
                    policy.name = name;
                }
                "description" => {
                    let description = update.description.clone().unwrap_or_default();
                    check_description(&description)?;
                    policy.description = description;
                }
                "rules" => policy.rules = update.rules.clone().unwrap_or_default(),
                _ => policy.disabled = update.disabled.unwrap_or(false),
            }
        }
        let policy = store.update_scan_policy(&policy).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::UpdateScanPolicy {
                scan_policy_id: policy.id.clone(),
            },
            OperationResponse::ScanPolicy(policy),
        )
        .await
    }

    pub async fn delete_scan_policy(
        &self,
        call: &Call,
        scan_policy_id: &str,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "ScanPolicyService.Delete";
        call.principal.require(ADMIN)?;
        check_id("scanPolicyId", scan_policy_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        self.store().delete_scan_policy(scan_policy_id).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::DeleteScanPolicy {
                scan_policy_id: scan_policy_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }

    // ---- OperationService -------------------------------------------------------

    pub async fn get_operation(
        &self,
        principal: &Principal,
        operation_id: &str,
    ) -> Result<Operation, ApiError> {
        principal.require(READ)?;
        check_id("operationId", operation_id)?;
        Ok(self.store().get_operation(operation_id).await?)
    }

    /// Cancel changes state, so it needs the scanner (or admin) role. A running scan
    /// stops at its next layer; every other operation is done at once already, so
    /// cancel returns its current state, as the contract allows.
    pub async fn cancel_operation(
        &self,
        principal: &Principal,
        operation_id: &str,
    ) -> Result<Operation, ApiError> {
        principal.require(SCAN)?;
        check_id("operationId", operation_id)?;
        let store = self.store();
        store.request_cancel(operation_id).await?;
        if let Some(scanner) = &self.scanner {
            scanner.wake();
        }
        Ok(store.get_operation(operation_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_quoted_values_joined_by_and() {
        let conditions = parse_filter(r#"severity="HIGH" and name="CVE-1""#, &["severity", "name"])
            .expect("a valid filter");
        assert_eq!(
            conditions,
            [
                ("severity".to_owned(), "HIGH".to_owned()),
                ("name".to_owned(), "CVE-1".to_owned())
            ]
        );
        assert!(parse_filter(r#"status!="READY""#, &["status"]).is_err());
        assert!(parse_filter(r#"other="x""#, &["status"]).is_err());
        assert!(parse_filter(r#"status=READY"#, &["status"]).is_err());
    }

    #[test]
    fn orders_name_a_field_and_a_direction() {
        assert_eq!(
            parse_order("name desc, digest", &["name", "digest"], true).expect("valid"),
            [("name".to_owned(), Some(true)), ("digest".to_owned(), None)]
        );
        assert!(parse_order("name, digest", &["name", "digest"], false).is_err());
        assert!(parse_order("size", &["name"], false).is_err());
        assert!(parse_order("name sideways", &["name"], false).is_err());
    }

    #[test]
    fn labels_follow_the_hosted_rules() {
        let labels = |key: &str, value: &str| BTreeMap::from([(key.to_owned(), value.to_owned())]);
        assert!(check_labels(&labels("env", "prod_1")).is_ok());
        assert!(check_labels(&labels("Env", "x")).is_err());
        assert!(check_labels(&labels("1env", "x")).is_err());
        assert!(check_labels(&labels("env", &"x".repeat(64))).is_err());
        assert!(check_labels(&labels(&"k".repeat(64), "x")).is_err());
        let many: BTreeMap<String, String> = (0..65)
            .map(|index| (format!("k{index}"), String::new()))
            .collect();
        assert!(check_labels(&many).is_err());
    }

    #[test]
    fn page_tokens_and_sizes_follow_the_contract() {
        let list = |size: i64, token: &str| ListRequest {
            page_size: size,
            page_token: token.to_owned(),
            ..ListRequest::default()
        };
        assert_eq!(paging(&list(0, "")).ok(), Some((PageStart::default(), 100)));
        let start = PageStart {
            after: Some("crpe38rojbplksgfh5i1".to_owned()),
            offset: 10,
        };
        let token = encode_page_token(&start);
        assert!(token.len() <= 100, "{token}");
        assert!(!token.contains("crpe38rojbplksgfh5i1"), "{token}");
        assert_eq!(paging(&list(5, &token)).ok(), Some((start, 5)));
        let no_anchor = PageStart {
            after: None,
            offset: 7,
        };
        assert_eq!(
            decode_page_token(&encode_page_token(&no_anchor)),
            Some(no_anchor)
        );
        assert!(paging(&list(1001, "")).is_err());
        assert!(paging(&list(-1, "")).is_err());
        // Bare offsets, foreign and damaged tokens are refused.
        for bad in ["x", "10", "p1", "p1zz", "p13a", &format!("{token}0")] {
            assert!(paging(&list(5, bad)).is_err(), "{bad}");
        }
        assert!(paging(&list(5, &"1".repeat(101))).is_err());
    }
}
