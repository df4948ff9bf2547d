//! The OCI distribution endpoints under `/v2/`
//! (<https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#endpoints>).
//! Repository names contain slashes, so one wildcard route takes every `/v2/…` path and
//! [`Endpoint::parse`] splits it from the right.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use crscan_model::Digest;
use crscan_registry::{
    ChunkRange, Reference, Registry, RegistryError, RepositoryPath, media_type_accepted,
};
use crscan_store::{IpAction, Repository};
use futures::StreamExt;

use crate::access::Permission;
use crate::errors::{ApiError, OciError};
use crate::listen::PeerAddr;
use crate::ranges::{self, Resolved};
use crate::service::Scope;
use crate::{AppState, Principal};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/{*rest}", any(dispatch))
}

type OciResult = Result<Response, OciError>;

/// `/v2/`: any caller with valid credentials (a token whose rights come only from
/// access bindings too), so that `docker login` works for every token.
async fn base(State(state): State<AppState>, headers: HeaderMap) -> OciResult {
    state
        .auth
        .authenticate(&headers)
        .map_err(OciError::from_auth)?;
    Ok(with_headers(
        (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response(),
        &[("docker-distribution-api-version", "registry/2.0".to_owned())],
    ))
}

/// What a `/v2/…` path addresses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    Uploads(String),
    Upload(String, String),
    Referrers(String, String),
}

impl Endpoint {
    pub(crate) fn parse(rest: &str) -> Option<Endpoint> {
        if rest == "_catalog" {
            return Some(Endpoint::Catalog);
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let count = segments.len();
        let name = |drop: usize| segments[..count - drop].join("/");
        if count >= 3 && segments[count - 2] == "tags" && segments[count - 1] == "list" {
            return Some(Endpoint::Tags(name(2)));
        }
        if count >= 4 && segments[count - 3] == "blobs" && segments[count - 2] == "uploads" {
            let id = segments[count - 1];
            return Some(if id.is_empty() {
                Endpoint::Uploads(name(3))
            } else {
                Endpoint::Upload(name(3), id.to_owned())
            });
        }
        if count >= 3 && segments[count - 2] == "blobs" && segments[count - 1] == "uploads" {
            return Some(Endpoint::Uploads(name(2)));
        }
        if count >= 3 {
            let last = segments[count - 1].to_owned();
            match segments[count - 2] {
                "manifests" => return Some(Endpoint::Manifest(name(2), last)),
                "blobs" => return Some(Endpoint::Blob(name(2), last)),
                "referrers" => return Some(Endpoint::Referrers(name(2), last)),
                _ => {}
            }
        }
        None
    }
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Query(query): Query<HashMap<String, String>>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    body: Body,
) -> Response {
    // Without a connection (a router called in process) the peer is unknown, which no
    // allow-list holds.
    let peer = extensions
        .get::<PeerAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.0.ip());
    let client = state.trusted_proxies.client_address(peer, &headers);
    match handle(&state, &method, &headers, &query, &rest, body, client).await {
        Ok(response) => response,
        Err(error) => {
            let mut response = error.into_response();
            if method == Method::HEAD {
                *response.body_mut() = Body::empty();
            }
            response
        }
    }
}

/// The caller of a `/v2/` request: no `Authorization` header is an anonymous caller
/// (who may pull where `allUsers` is bound), bad credentials are refused.
fn caller(state: &AppState, headers: &HeaderMap) -> Result<Principal, OciError> {
    if state.auth.enabled() && !headers.contains_key(header::AUTHORIZATION) {
        return Ok(Principal::anonymous());
    }
    state
        .auth
        .authenticate(headers)
        .map_err(OciError::from_auth)
}

/// A refusal of the service's authorization or IP check on `/v2/`.
fn refused(error: ApiError) -> OciError {
    match error.code {
        16 => OciError::unauthorized(),
        7 => OciError::new(StatusCode::FORBIDDEN, "DENIED", error.message),
        5 => OciError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", error.message),
        // The store could not be asked (PostgreSQL down): the client retries.
        14 => {
            let mut oci = OciError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                error.message,
            );
            oci.headers.push((header::RETRY_AFTER, "1".to_owned()));
            oci
        }
        _ => OciError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", error.message),
    }
}

/// The repository an endpoint names and what it needs there: reads of manifests,
/// blobs, tags and referrers pull; everything else pushes; the catalog reads every
/// repository.
fn needs<'a>(endpoint: &'a Endpoint, method: &Method) -> (Option<&'a str>, Permission) {
    let read = method == Method::GET || method == Method::HEAD;
    match endpoint {
        Endpoint::Catalog => (None, Permission::Read),
        Endpoint::Tags(name) | Endpoint::Referrers(name, _) => (Some(name), Permission::Pull),
        Endpoint::Manifest(name, _) | Endpoint::Blob(name, _) if read => {
            (Some(name), Permission::Pull)
        }
        Endpoint::Manifest(name, _)
        | Endpoint::Blob(name, _)
        | Endpoint::Uploads(name)
        | Endpoint::Upload(name, _) => (Some(name), Permission::Push),
    }
}

fn scope(name: Option<&str>) -> Scope<'_> {
    match name.and_then(|name| name.split_once('/')) {
        Some((registry, name)) => Scope::Repository { registry, name },
        None => Scope::Global,
    }
}

/// Authorizes a `/v2/` request through the one check every surface uses, then the
/// registry's IP permission for the action.
///
/// A `HEAD` is part of a push too (clients ask whether a blob is there before sending
/// it), so it passes the IP check when either the PULL or the PUSH list allows the
/// address.
async fn authorize(
    state: &AppState,
    principal: &Principal,
    (name, permission): (Option<&str>, Permission),
    head: bool,
    client: IpAddr,
) -> Result<(), OciError> {
    state
        .service
        .authorize(principal, permission, scope(name))
        .await
        .map_err(refused)?;
    // The registry as the path names it, by ID or name.
    let Some((registry_id, _)) = name.and_then(|name| name.split_once('/')) else {
        return Ok(());
    };
    let service = &state.service;
    match permission {
        Permission::Push => service
            .check_ip_permission(registry_id, IpAction::Push, client)
            .await
            .map_err(refused),
        _ => match service
            .check_ip_permission(registry_id, IpAction::Pull, client)
            .await
        {
            Err(error)
                if head
                    && service
                        .check_ip_permission(registry_id, IpAction::Push, client)
                        .await
                        .is_ok() =>
            {
                drop(error);
                Ok(())
            }
            outcome => outcome.map_err(refused),
        },
    }
}

async fn handle(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    rest: &str,
    body: Body,
    client: IpAddr,
) -> OciResult {
    let principal = caller(state, headers)?;
    let Some(endpoint) = Endpoint::parse(rest) else {
        if !principal.is_authenticated() {
            return Err(OciError::unauthorized());
        }
        return Err(OciError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("no endpoint at /v2/{rest}"),
        ));
    };
    let head = *method == Method::HEAD;
    authorize(state, &principal, needs(&endpoint, method), head, client).await?;
    // A cross-repository mount reads the source: without pull there, the mount is
    // not tried and the client uploads the blob itself.
    let mut query = query.clone();
    if let (Endpoint::Uploads(_), Some(from)) = (&endpoint, query.get("from").cloned())
        && authorize(
            state,
            &principal,
            (Some(&from), Permission::Pull),
            false,
            client,
        )
        .await
        .is_err()
    {
        query.remove("mount");
        query.remove("from");
    }
    let query = &query;
    let registry = &state.registry;
    let unsupported = || {
        OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{method} is not supported on /v2/{rest}"),
        )
    };
    match endpoint {
        Endpoint::Catalog if *method == Method::GET => catalog(registry, query).await,
        Endpoint::Tags(name) if *method == Method::GET => {
            let path = RepositoryPath::parse(&name)?;
            tags(registry, &path, query).await
        }
        Endpoint::Manifest(name, reference_text) => {
            let path = RepositoryPath::parse(&name)?;
            match *method {
                Method::GET | Method::HEAD => {
                    get_manifest(
                        registry,
                        &path,
                        &reference_text,
                        headers,
                        *method == Method::HEAD,
                    )
                    .await
                }
                Method::PUT => {
                    let reference = Reference::parse(&reference_text)?;
                    put_manifest(state, &path, &reference, headers, body).await
                }
                Method::DELETE => {
                    let reference = Reference::parse(&reference_text)?;
                    let repository = registry.repository(&path).await?;
                    registry.delete_manifest(&repository, &reference).await?;
                    Ok(StatusCode::ACCEPTED.into_response())
                }
                _ => Err(unsupported()),
            }
        }
        Endpoint::Blob(name, digest) => {
            let path = RepositoryPath::parse(&name)?;
            let digest = parse_digest(&digest)?;
            let repository = registry.repository(&path).await?;
            match *method {
                // With `blobs_redirect` on S3, the client fetches from the bucket.
                Method::GET => match registry.blob_redirect(&repository, &digest).await? {
                    Some(url) => Ok((
                        StatusCode::TEMPORARY_REDIRECT,
                        [
                            (header::LOCATION, url),
                            (
                                header::HeaderName::from_static("docker-content-digest"),
                                digest.to_string(),
                            ),
                        ],
                    )
                        .into_response()),
                    None => get_blob(registry, &repository, &digest, headers, false).await,
                },
                Method::HEAD => {
                    get_blob(
                        registry,
                        &repository,
                        &digest,
                        headers,
                        *method == Method::HEAD,
                    )
                    .await
                }
                Method::DELETE => {
                    registry.delete_blob(&repository, &digest).await?;
                    Ok(StatusCode::ACCEPTED.into_response())
                }
                _ => Err(unsupported()),
            }
        }
        Endpoint::Uploads(name) if *method == Method::POST => {
            let path = RepositoryPath::parse(&name)?;
            start_upload(registry, &path, query, body).await
        }
        Endpoint::Upload(name, id) => {
            let path = RepositoryPath::parse(&name)?;
            let owner = registry
                .upload_owner(&path)
                .await
                .map_err(|_| OciError::from(RegistryError::BlobUploadUnknown(id.clone())))?;
            match *method {
                Method::GET => {
                    let size = registry.upload_status(&owner, &id).await?;
                    Ok(upload_accepted(StatusCode::NO_CONTENT, &path, &id, size))
                }
                Method::PATCH => match write_chunk(registry, &owner, &id, headers, body).await {
                    Ok(size) => Ok(upload_accepted(StatusCode::ACCEPTED, &path, &id, size)),
                    Err(error) => Err(upload_refused(registry, &owner, error, &path, &id).await),
                },
                Method::PUT => {
                    let digest = query
                        .get("digest")
                        .ok_or_else(|| {
                            OciError::new(
                                StatusCode::BAD_REQUEST,
                                "DIGEST_INVALID",
                                "the digest query parameter is required",
                            )
                        })
                        .and_then(|text| parse_digest(text))?;
                    if let Err(error) = write_chunk(registry, &owner, &id, headers, body).await {
                        return Err(upload_refused(registry, &owner, error, &path, &id).await);
                    }
                    registry.finish_upload(&path, &id, &digest).await?;
                    Ok(blob_created(&path, &digest))
                }
                Method::DELETE => {
                    registry.cancel_upload(&owner, &id).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                _ => Err(unsupported()),
            }
        }
        Endpoint::Referrers(name, digest) if *method == Method::GET => {
            let path = RepositoryPath::parse(&name)?;
            let digest = parse_digest(&digest)?;
            let artifact_type = query.get("artifactType").map(String::as_str);
            // An unknown repository has no referrers; the spec wants an empty index.
            let body = match registry.repository(&path).await {
                Ok(repository) => registry.referrers(&repository, &digest, artifact_type).await?,
                Err(RegistryError::NameUnknown(_)) => {
                    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": crscan_registry::OCI_INDEX, "manifests": []}))
                        .unwrap_or_default()
                }
                Err(error) => return Err(error.into()),
            };
            let mut extra = vec![(
                header::CONTENT_TYPE.as_str(),
                crscan_registry::OCI_INDEX.to_owned(),
            )];
            if artifact_type.is_some() {
                extra.push(("oci-filters-applied", "artifactType".to_owned()));
            }
            Ok(with_headers((StatusCode::OK, body).into_response(), &extra))
        }
        _ => Err(unsupported()),
    }
}

fn parse_digest(text: &str) -> Result<Digest, OciError> {
    text.parse::<Digest>().map_err(|error| {
        OciError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", error.to_string())
    })
}

fn with_headers(mut response: Response, headers: &[(&str, String)]) -> Response {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn page_size(query: &HashMap<String, String>) -> Result<Option<u32>, OciError> {
    match query.get("n") {
        None => Ok(None),
        Some(text) => text.parse::<u32>().map(Some).map_err(|_| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("n={text} is not a number"),
            )
        }),
    }
}

/// A `Link` header for the next page, percent-encoding what needs it.
fn next_link(base: &str, n: u32, last: &str) -> String {
    let mut encoded = String::new();
    for byte in last.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("<{base}?n={n}&last={encoded}>; rel=\"next\"")
}

async fn catalog(registry: &Registry, query: &HashMap<String, String>) -> OciResult {
    let n = page_size(query)?;
    let names = registry
        .catalog(n, query.get("last").map(String::as_str))
        .await?;
    let mut response = axum::Json(serde_json::json!({"repositories": names})).into_response();
    if let (Some(n), Some(last)) = (n, names.last())
        && n > 0
        && names.len() == n as usize
    {
        response = with_headers(response, &[("link", next_link("/v2/_catalog", n, last))]);
    }
    Ok(response)
}

async fn tags(
    registry: &Registry,
    path: &RepositoryPath,
    query: &HashMap<String, String>,
) -> OciResult {
    let repository = registry.repository(path).await?;
    let n = page_size(query)?;
    let tags = registry
        .tags(&repository, n, query.get("last").map(String::as_str))
        .await?;
    let mut response =
        axum::Json(serde_json::json!({"name": path.to_string(), "tags": tags})).into_response();
    if let (Some(n), Some(last)) = (n, tags.last())
        && n > 0
        && tags.len() == n as usize
    {
        response = with_headers(
            response,
            &[("link", next_link(&format!("/v2/{path}/tags/list"), n, last))],
        );
    }
    Ok(response)
}

/// `GET`/`HEAD` of a manifest. A reference that is neither a valid tag nor a valid
/// digest cannot name a stored manifest, so it is `404 MANIFEST_UNKNOWN` (as the
/// reference registry answers and the conformance suite expects), not a `400`; a
/// `PUT` to it stays `400`.
async fn get_manifest(
    registry: &Registry,
    path: &RepositoryPath,
    reference_text: &str,
    headers: &HeaderMap,
    head: bool,
) -> OciResult {
    let repository = registry.repository(path).await?;
    let reference = Reference::parse(reference_text).map_err(|error| {
        RegistryError::ManifestUnknown(format!(
            "{reference_text:?} is not a valid tag or digest ({error})"
        ))
    })?;
    let reference = &reference;
    let accept: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_owned))
        .collect();
    let (image, bytes) = if head {
        let image = registry.manifest_image(&repository, reference).await?;
        (image, Vec::new())
    } else {
        let content = registry.get_manifest(&repository, reference).await?;
        (content.image, content.bytes)
    };
    if !media_type_accepted(&image.media_type, &accept) {
        return Err(RegistryError::ManifestUnknown(format!(
            "{} is stored as {}, which the client does not accept",
            image.digest, image.media_type
        ))
        .into());
    }
    let length = if head {
        image.manifest_size.to_string()
    } else {
        bytes.len().to_string()
    };
    let response = (
        StatusCode::OK,
        if head {
            Body::empty()
        } else {
            Body::from(bytes)
        },
    )
        .into_response();
    Ok(with_headers(
        response,
        &[
            (header::CONTENT_TYPE.as_str(), image.media_type.clone()),
            (header::CONTENT_LENGTH.as_str(), length),
            ("docker-content-digest", image.digest.to_string()),
        ],
    ))
}

async fn put_manifest(
    state: &AppState,
    path: &RepositoryPath,
    reference: &Reference,
    headers: &HeaderMap,
    body: Body,
) -> OciResult {
    let registry = &state.registry;
    let limit = registry.limits().manifest_bytes;
    let bytes = read_limited(body, limit).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let pushed = registry
        .put_manifest(path, reference, content_type, &bytes)
        .await?;
    if let Some(scanner) = &state.scanner {
        // Scan on push runs beside the answer; the push never waits for the policy.
        let scanner = scanner.clone();
        let image_id = pushed.image.id.clone();
        tokio::spawn(async move {
            if let Err(error) = scanner.image_pushed(&image_id).await {
                tracing::warn!(%error, image.id = %image_id, "cannot apply the push rule; the scheduler retries");
            }
        });
    }
    let mut extra = vec![
        (
            header::LOCATION.as_str(),
            format!("/v2/{path}/manifests/{}", pushed.digest),
        ),
        ("docker-content-digest", pushed.digest.to_string()),
    ];
    if let Some(subject) = &pushed.subject {
        extra.push(("oci-subject", subject.to_string()));
    }
    Ok(with_headers(StatusCode::CREATED.into_response(), &extra))
}

/// Reads a request body, refusing it once it passes `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, OciError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                format!("reading the body failed: {error}"),
            )
        })?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > limit {
            return Err(RegistryError::ManifestTooLarge {
                size: bytes.len(),
                limit,
            }
            .into());
        }
    }
    Ok(bytes)
}

/// `GET`/`HEAD` of a blob. A blob the repository does not have is `404` before any
/// `Range` is looked at; ranges follow [`ranges`].
async fn get_blob(
    registry: &Registry,
    repository: &Repository,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> OciResult {
    let digest_header = ("docker-content-digest", digest.to_string());
    let octet_stream = (
        header::CONTENT_TYPE.as_str(),
        "application/octet-stream".to_owned(),
    );
    let accept_ranges = (header::ACCEPT_RANGES.as_str(), "bytes".to_owned());
    if head {
        let size = registry.blob_size(repository, digest).await?;
        return Ok(with_headers(
            StatusCode::OK.into_response(),
            &[
                (header::CONTENT_LENGTH.as_str(), size.to_string()),
                octet_stream,
                accept_ranges,
                digest_header,
            ],
        ));
    }
    let mut read = registry.open_blob(repository, digest).await?;
    let request = ranges::parse(headers.get(header::RANGE));
    let status = match ranges::resolve(request, read.total) {
        Resolved::Whole => StatusCode::OK,
        Resolved::Part { start, end } => {
            read.restrict(start, end)
                .await
                .map_err(RegistryError::from)?;
            StatusCode::PARTIAL_CONTENT
        }
        Resolved::Unsatisfiable => {
            let mut error = OciError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                RegistryError::RangeNotSatisfiable { size: read.total }.code(),
                format!(
                    "range {:?} starts at or past the end of blob {digest} ({} bytes)",
                    headers
                        .get(header::RANGE)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default(),
                    read.total
                ),
            );
            error
                .headers
                .push((header::CONTENT_RANGE, format!("bytes */{}", read.total)));
            return Err(error);
        }
    };
    let (start, length, total) = (read.start, read.length, read.total);
    let stream = futures::stream::unfold(read, |mut read| async move {
        match read.next_chunk().await {
            Ok(chunk) if chunk.is_empty() => None,
            Ok(chunk) => Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), read)),
            Err(error) => Some((Err(error), read)),
        }
    });
    let mut extra = vec![
        (header::CONTENT_LENGTH.as_str(), length.to_string()),
        octet_stream,
        accept_ranges,
        digest_header,
    ];
    if status == StatusCode::PARTIAL_CONTENT {
        extra.push((
            header::CONTENT_RANGE.as_str(),
            format!("bytes {start}-{}/{total}", start + length - 1),
        ));
    }
    Ok(with_headers(
        (status, Body::from_stream(stream)).into_response(),
        &extra,
    ))
}

/// Writes one chunk of an upload (a `PATCH`, or the body of the closing `PUT`). With a
/// `Content-Range` the chunk must start at the upload's current size and its body
/// must be exactly as long as the range says (a `Content-Length` that disagrees is
/// refused before the body is read); otherwise nothing of it is kept. Returns the
/// upload's new size.
async fn write_chunk(
    registry: &Registry,
    owner: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<u64, OciError> {
    let range = match headers.get(header::CONTENT_RANGE) {
        None => None,
        Some(value) => Some(ChunkRange::parse(&String::from_utf8_lossy(
            value.as_bytes(),
        ))?),
    };
    let declared_body = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok());
    let mut append = registry.append_upload(owner, id, range).await?;
    if let (Some(range), Some(received)) = (range, declared_body)
        && received != range.length()
    {
        let offset = append.discard().await?;
        return Err(RegistryError::ChunkLengthMismatch {
            declared: range.length(),
            received,
            offset,
        }
        .into());
    }
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                // A declared chunk that cannot be read whole is not kept; a streamed
                // one keeps what arrived, and the client asks for the offset.
                if range.is_some() {
                    append.discard().await?;
                } else {
                    append.finish().await?;
                }
                return Err(OciError::new(
                    StatusCode::BAD_REQUEST,
                    "BLOB_UPLOAD_INVALID",
                    format!("reading the chunk failed: {error}"),
                ));
            }
        };
        append.write(&chunk).await?;
    }
    Ok(append.finish().await?)
}

/// Adds what the spec asks of a refused chunk (`416`): the upload's `Location` and
/// its current `Range`, so the client can resume.
async fn upload_refused(
    registry: &Registry,
    owner: &str,
    mut error: OciError,
    path: &RepositoryPath,
    id: &str,
) -> OciError {
    if error.status != StatusCode::RANGE_NOT_SATISFIABLE {
        return error;
    }
    error
        .headers
        .push((header::LOCATION, format!("/v2/{path}/blobs/uploads/{id}")));
    if !error.headers.iter().any(|(name, _)| name == header::RANGE)
        && let Ok(size) = registry.upload_status(owner, id).await
    {
        error
            .headers
            .push((header::RANGE, format!("0-{}", size.max(1) - 1)));
    }
    error
}

fn upload_accepted(status: StatusCode, path: &RepositoryPath, id: &str, size: u64) -> Response {
    with_headers(
        status.into_response(),
        &[
            (
                header::LOCATION.as_str(),
                format!("/v2/{path}/blobs/uploads/{id}"),
            ),
            (header::RANGE.as_str(), format!("0-{}", size.max(1) - 1)),
            ("docker-upload-uuid", id.to_owned()),
            (header::CONTENT_LENGTH.as_str(), "0".to_owned()),
        ],
    )
}

fn blob_created(path: &RepositoryPath, digest: &Digest) -> Response {
    with_headers(
        StatusCode::CREATED.into_response(),
        &[
            (
                header::LOCATION.as_str(),
                format!("/v2/{path}/blobs/{digest}"),
            ),
            ("docker-content-digest", digest.to_string()),
            (header::CONTENT_LENGTH.as_str(), "0".to_owned()),
        ],
    )
}

async fn start_upload(
    registry: &Registry,
    path: &RepositoryPath,
    query: &HashMap<String, String>,
    body: Body,
) -> OciResult {
    let owner = registry.upload_owner(path).await?;
    if let (Some(mount), Some(from)) = (query.get("mount"), query.get("from")) {
        let digest = parse_digest(mount)?;
        if let Ok(from) = RepositoryPath::parse(from)
            && registry.mount_blob(path, &digest, &from).await?
        {
            return Ok(blob_created(path, &digest));
        }
    }
    let digest = match query.get("digest") {
        Some(digest) => Some(parse_digest(digest)?),
        None => None,
    };
    let id = registry.start_upload(&owner).await?;
    if let Some(digest) = digest {
        // Monolithic upload: the whole blob is in this POST.
        let finished = match write_chunk(registry, &owner, &id, &HeaderMap::new(), body).await {
            Ok(_) => registry
                .finish_upload(path, &id, &digest)
                .await
                .map_err(OciError::from),
            Err(error) => Err(error),
        };
        if let Err(error) = finished {
            let _ = registry.cancel_upload(&owner, &id).await;
            return Err(error);
        }
        return Ok(blob_created(path, &digest));
    }
    Ok(upload_accepted(StatusCode::ACCEPTED, path, &id, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_from_the_right() {
        assert_eq!(Endpoint::parse("_catalog"), Some(Endpoint::Catalog));
        assert_eq!(
            Endpoint::parse("default/a/b/tags/list"),
            Some(Endpoint::Tags("default/a/b".to_owned()))
        );
        assert_eq!(
            Endpoint::parse("default/blobs/manifests/latest"),
            Some(Endpoint::Manifest(
                "default/blobs".to_owned(),
                "latest".to_owned()
            ))
        );
        assert_eq!(
            Endpoint::parse("default/app/blobs/uploads/"),
            Some(Endpoint::Uploads("default/app".to_owned()))
        );
        assert_eq!(
            Endpoint::parse("default/app/blobs/uploads/abc"),
            Some(Endpoint::Upload("default/app".to_owned(), "abc".to_owned()))
        );
        assert_eq!(
            Endpoint::parse("default/app/blobs/sha256:00"),
            Some(Endpoint::Blob(
                "default/app".to_owned(),
                "sha256:00".to_owned()
            ))
        );
        assert_eq!(Endpoint::parse("x"), None);
    }
}
