//! The management API over REST (contract §2–§7): every path under
//! `/container-registry/v1/` and `/operations/`. One dispatcher reads the path (ids,
//! repository names with slashes, and `:method` suffixes), authenticates the caller
//! from the headers *before* any body is read, reads a body of at most
//! [`MAX_BODY_BYTES`], calls the [`Service`], and renders the answer ([`wire`]).
//! A path crscan does not serve is a JSON `NOT_FOUND` (an unknown resource) or
//! `UNIMPLEMENTED` (an unknown method of a known resource), never an empty body.

mod lifecycle;
pub(crate) mod wire;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;

use crate::AppState;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::service::{
    Call, ListRequest, NewScanPolicy, RegistryUpdate, RepositoryKey, ScanPolicyUpdate, Service,
    check_idempotency_key,
};

/// The largest request body the management API reads: its requests are small JSON
/// objects.
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/container-registry/v1/{*path}", any(container_registry))
        .route("/operations/{*path}", any(operations))
}

type ApiResult = Result<Response, ApiError>;

fn json(value: impl Serialize) -> Response {
    axum::Json(value).into_response()
}

/// What a request needs besides its path: the method, the query, the caller and the
/// (not yet read) body.
struct Incoming {
    method: Method,
    query: HashMap<String, String>,
    headers: HeaderMap,
    principal: Principal,
    body: Body,
}

impl Incoming {
    fn query(&self, field: &str) -> String {
        self.query.get(field).cloned().unwrap_or_default()
    }

    /// `pageSize`, `pageToken`, `filter` and `orderBy` of a List call.
    fn list(&self) -> Result<ListRequest, ApiError> {
        let page_size = match self.query.get("pageSize").map(String::as_str) {
            None | Some("") => 0,
            Some(text) => text.parse::<i64>().map_err(|_| {
                ApiError::invalid(format!("pageSize {text} is not between 0 and 1000"))
            })?,
        };
        Ok(ListRequest {
            page_size,
            page_token: self.query("pageToken"),
            filter: self.query("filter"),
            order_by: self.query("orderBy"),
        })
    }

    /// The call context of a mutating call, with its `Idempotency-Key`: absent, or 1
    /// to 128 ASCII characters; anything else is refused rather than ignored, so a
    /// retry never runs twice by mistake.
    fn call(&self) -> Result<Call, ApiError> {
        let idempotency_key = match self.headers.get("idempotency-key") {
            None => None,
            Some(value) => {
                let text = value
                    .to_str()
                    .map_err(|_| ApiError::invalid("Idempotency-Key is not ASCII"))?;
                Some(check_idempotency_key(text)?)
            }
        };
        Ok(Call {
            principal: self.principal.clone(),
            idempotency_key,
        })
    }

    /// Reads the body, refusing one over [`MAX_BODY_BYTES`].
    async fn body<T: serde::de::DeserializeOwned>(self) -> Result<T, ApiError> {
        let bytes = axum::body::to_bytes(self.body, MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::body_too_large(MAX_BODY_BYTES))?;
        wire::body(&bytes)
    }
}

async fn container_registry(State(state): State<AppState>, request: Request) -> Response {
    answer(state, request, "/container-registry/v1/").await
}

async fn operations(State(state): State<AppState>, request: Request) -> Response {
    answer(state, request, "/operations/").await
}

async fn answer(state: AppState, request: Request, prefix: &str) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path()
        .strip_prefix(prefix)
        .unwrap_or_default()
        .to_owned();
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|Query(query)| query)
        .unwrap_or_default();
    let principal = match state.auth.authenticate(&parts.headers) {
        Ok(principal) => principal,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let incoming = Incoming {
        method: parts.method,
        query,
        headers: parts.headers,
        principal,
        body,
    };
    let answered = if prefix == "/operations/" {
        route_operation(&state.service, &path, incoming).await
    } else {
        route(&state.service, &path, incoming).await
    };
    answered.unwrap_or_else(IntoResponse::into_response)
}

/// `OperationService`: `/operations/{id}` and `/operations/{id}:cancel` (cancel also
/// by `GET`, as the proto binds it; §9.2).
async fn route_operation(service: &Service, path: &str, incoming: Incoming) -> ApiResult {
    let (id, verb) = path.split_once(':').unwrap_or((path, ""));
    let id = &percent_decode(id);
    let method = &incoming.method;
    let principal = &incoming.principal;
    if id.is_empty() || id.contains('/') {
        return Err(ApiError::not_found(format!("no operation at {path:?}")));
    }
    match verb {
        "" if method == Method::GET => Ok(json(wire::operation(
            &service.get_operation(principal, id).await?,
        ))),
        "cancel" if method == Method::GET || method == Method::POST => Ok(json(wire::operation(
            &service.cancel_operation(principal, id).await?,
        ))),
        "" => Err(ApiError::unimplemented(format!(
            "{method} /operations/{path} is not a method of this API"
        ))),
        _ => Err(ApiError::unimplemented(format!(
            "method :{verb} of operations is not implemented by crscan"
        ))),
    }
}

/// A path split into its collection, the item (which may hold slashes: repository
/// names) and the `:method` suffix.
fn split(path: &str) -> (&str, &str, &str) {
    let (collection, rest) = path.split_once('/').unwrap_or((path, ""));
    match rest.rsplit_once(':') {
        Some((item, verb)) => (collection, item, verb),
        None => match collection.split_once(':') {
            Some((collection, verb)) => (collection, "", verb),
            None => (collection, rest, ""),
        },
    }
}

const COLLECTIONS: [&str; 5] = [
    "registries",
    "repositories",
    "images",
    "scans",
    "scanPolicies",
];

/// Decodes `%XX` escapes (a repository name is sent as `crp1%2Fapp`); text that is
/// not valid UTF-8 afterwards is kept as it was. The console's cookie uses it too.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).unwrap_or_else(|_| text.to_owned())
}

async fn route(service: &Service, path: &str, incoming: Incoming) -> ApiResult {
    let (collection, item, verb) = split(path);
    let item = percent_decode(item);
    let method = incoming.method.clone();
    let get = method == Method::GET;
    let (post, patch, delete) = (
        method == Method::POST,
        method == Method::PATCH,
        method == Method::DELETE,
    );
    let principal = &incoming.principal;
    match (collection, item.is_empty(), verb) {
        // ---- RegistryService
        ("registries", true, "") if get => {
            let page = service
                .list_registries(principal, &incoming.query("folderId"), &incoming.list()?)
                .await?;
            Ok(json(wire::page("registries", &page, |item| {
                wire::value(wire::registry(item))
            })))
        }
        ("registries", true, "") if post => {
            let call = incoming.call()?;
            let body: wire::CreateRegistryBody = incoming.body().await?;
            let operation = service
                .create_registry(
                    &call,
                    body.folder_id.as_deref().unwrap_or_default(),
                    body.name.as_deref().unwrap_or_default(),
                    &body.labels.unwrap_or_default(),
                )
                .await?;
            Ok(json(wire::operation(&operation)))
        }
        ("registries", false, "") if get => Ok(json(wire::registry(
            &service.get_registry(principal, &item).await?,
        ))),
        ("registries", false, "") if patch => {
            let call = incoming.call()?;
            let body: wire::UpdateRegistryBody = incoming.body().await?;
            let update = RegistryUpdate {
                update_mask: wire::update_mask(body.update_mask.as_deref()),
                name: body.name,
                labels: body.labels,
            };
            let operation = service.update_registry(&call, &item, &update).await?;
            Ok(json(wire::operation(&operation)))
        }
        ("registries", false, "") if delete => {
            let operation = service.delete_registry(&incoming.call()?, &item).await?;
            Ok(json(wire::operation(&operation)))
        }
        // ---- RepositoryService
        ("repositories", true, "") if get => {
            let page = service
                .list_repositories(
                    principal,
                    &incoming.query("registryId"),
                    &incoming.query("folderId"),
                    &incoming.list()?,
                )
                .await?;
            Ok(json(wire::page("repositories", &page, |item| {
                wire::value(wire::repository(item))
            })))
        }
        ("repositories", true, "") if post => {
            let call = incoming.call()?;
            let body: wire::UpsertRepositoryBody = incoming.body().await?;
            let operation = service
                .upsert_repository(&call, body.name.as_deref().unwrap_or_default())
                .await?;
            Ok(json(wire::operation(&operation)))
        }
        ("repositories", false, "byName") if get => {
            let key = RepositoryKey::Name(item);
            Ok(json(wire::repository(
                &service.get_repository(principal, &key).await?,
            )))
        }
        ("repositories", false, "") if get => {
            let key = RepositoryKey::Id(item);
            Ok(json(wire::repository(
                &service.get_repository(principal, &key).await?,
            )))
        }
        ("repositories", false, "") if delete => {
            let operation = service.delete_repository(&incoming.call()?, &item).await?;
            Ok(json(wire::operation(&operation)))
        }
        // ---- ImageService, and ScannerService.GetLast
        ("images", true, "") if get => {
            let page = service
                .list_images(
                    principal,
                    &incoming.query("registryId"),
                    &incoming.query("repositoryName"),
                    &incoming.query("folderId"),
                    &incoming.list()?,
                )
                .await?;
            Ok(json(wire::page("images", &page, |item| {
                wire::value(wire::image(item))
            })))
        }
        ("images", false, "") if get => Ok(json(wire::image(
            &service.get_image(principal, &item).await?,
        ))),
        ("images", false, "") if delete => {
            let operation = service.delete_image(&incoming.call()?, &item).await?;
            Ok(json(wire::operation(&operation)))
        }
        ("images", false, "lastScanResult") if get => {
            let result = service.get_last_scan_result(principal, &item).await?;
            Ok(json(wire::scan_result(&result)))
        }
        // ---- ScannerService
        ("scans", true, "") if get => {
            let page = service
                .list_scan_results(
                    principal,
                    &incoming.query("imageId"),
                    &incoming.query("repositoryId"),
                    &incoming.list()?,
                )
                .await?;
            Ok(json(wire::page("scanResults", &page, |item| {
                wire::value(wire::scan_result(item))
            })))
        }
        ("scans", true, "") if post => {
            let call = incoming.call()?;
            let body: wire::ScanBody = incoming.body().await?;
            let operation = service
                .scan(&call, body.image_id.as_deref().unwrap_or_default())
                .await?;
            Ok(json(wire::operation(&operation)))
        }
        ("scans", false, "") if get => Ok(json(wire::scan_result(
            &service.get_scan_result(principal, &item).await?,
        ))),
        ("scans", false, "listVulnerabilities") if get => {
            let page = service
                .list_vulnerabilities(principal, &item, &incoming.list()?)
                .await?;
            Ok(json(wire::page("vulnerabilities", &page, |item| {
                wire::value(wire::vulnerability(item))
            })))
        }
        // ---- ScanPolicyService
        ("scanPolicies", true, "") if post => {
            let call = incoming.call()?;
            let body: wire::CreateScanPolicyBody = incoming.body().await?;
            let new = NewScanPolicy {
                registry_id: body.registry_id.unwrap_or_default(),
                name: body.name.unwrap_or_default(),
                description: body.description.unwrap_or_default(),
                rules: body
                    .rules
                    .map(wire::ScanRulesJson::into_rules)
                    .transpose()?,
            };
            let operation = service.create_scan_policy(&call, new).await?;
            Ok(json(wire::operation(&operation)))
        }
        ("scanPolicies", false, "byRegistry") if get => {
            let policy = service
                .get_scan_policy_by_registry(principal, &item)
                .await?;
            Ok(json(wire::scan_policy(&policy)))
        }
        ("scanPolicies", false, "") if get => Ok(json(wire::scan_policy(
            &service.get_scan_policy(principal, &item).await?,
        ))),
        ("scanPolicies", false, "") if patch => {
            let call = incoming.call()?;
            let body: wire::UpdateScanPolicyBody = incoming.body().await?;
            let update = ScanPolicyUpdate {
                update_mask: wire::update_mask(body.update_mask.as_deref()),
                name: body.name,
                description: body.description,
                rules: body
                    .rules
                    .map(wire::ScanRulesJson::into_rules)
                    .transpose()?,
                disabled: body.disabled,
            };
            let operation = service.update_scan_policy(&call, &item, update).await?;
            Ok(json(wire::operation(&operation)))
        }
        ("scanPolicies", false, "") if delete => {
            let operation = service.delete_scan_policy(&incoming.call()?, &item).await?;
            Ok(json(wire::operation(&operation)))
        }
        (lifecycle_collection, _, _) if lifecycle::COLLECTIONS.contains(&lifecycle_collection) => {
            lifecycle::route(service, path, (collection, item.as_str(), verb), incoming).await
        }
        _ => Err(not_served(path, &method, collection, verb)),
    }
}

/// Why a path is not served: an unknown resource is `NOT_FOUND`; a known resource
/// asked for a method or an HTTP verb crscan does not have is `UNIMPLEMENTED`.
fn not_served(path: &str, method: &Method, collection: &str, verb: &str) -> ApiError {
    if !COLLECTIONS.contains(&collection) {
        return ApiError::not_found(format!("no resource at {path:?}"));
    }
    if verb.is_empty() {
        ApiError::unimplemented(format!("{method} {path} is not a method of this API"))
    } else {
        ApiError::unimplemented(format!(
            "method :{verb} of {collection} is not implemented by crscan"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_collection_item_and_method() {
        assert_eq!(split("registries"), ("registries", "", ""));
        assert_eq!(split("registries/crp1"), ("registries", "crp1", ""));
        assert_eq!(
            split("repositories/crp1/app/web:byName"),
            ("repositories", "crp1/app/web", "byName")
        );
        assert_eq!(
            split("images/crp1:lastScanResult"),
            ("images", "crp1", "lastScanResult")
        );
        assert_eq!(split("scans:unknown"), ("scans", "", "unknown"));
        assert_eq!(percent_decode("crp1%2Fapp%2fweb"), "crp1/app/web");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
