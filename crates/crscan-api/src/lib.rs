//! HTTP routers for `/v2/` (OCI distribution), `/container-registry/v1/` and
//! `/operations/` (the management API of the contract), plus `/healthz`, `/readyz` and
//! `/openapi.json`; the web console at `/ui/` ([`ui`]); authentication; one mapping from errors to statuses per surface;
//! an access-log line per request, whose id the API's errors carry.
//!
//! The management API's calls are domain operations in [`service`], which take plain
//! request values and return domain values; [`rest`] reads REST requests into them
//! and renders their answers as the contract's JSON, and [`grpc`] serves the same
//! operations as the hosted service's gRPC services, rendering the same values as
//! protobuf messages. One router answers both: a request whose `content-type` is
//! `application/grpc` goes to gRPC, every other to REST and `/v2/`. [`listen`] serves
//! that router on one port: HTTP/1.1 and HTTP/2 (h2c), cleartext or TLS.
//!
//! Architecture invariant: no HTTP in [`service`], and no domain logic in the
//! transports: they parse, call the service, and render.

pub mod access;
mod auth;
mod errors;
pub mod grpc;
pub mod listen;
mod metrics;
mod oci;
mod openapi;
mod ranges;
mod rest;
pub mod service;
mod ui;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crscan_registry::Registry;
use crscan_scanner::DatabaseCheck;
use crscan_scanner::worker::Scanner;

pub use auth::{
    Auth, AuthError, IAM_TOKEN_LIFETIME_SECONDS, IssuedToken, Principal, Role, TokenSpec,
    check_subject,
};
pub use errors::ApiError;
pub use service::Service;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub auth: Auth,
    /// This process's scan service: woken when a scan is queued, told about pushes so
    /// push rules start scans at once. `None` leaves both to the polling workers.
    pub scanner: Option<Scanner>,
    /// The management API's calls.
    pub service: Service,
    /// Tells `/readyz` about the vulnerability database.
    pub database: DatabaseCheck,
    /// `host:port` that `ApiEndpointService` hands to clients; `None` answers with
    /// the address each client dialled.
    pub public_address: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the client (`trusted_proxies`).
    pub trusted_proxies: access::TrustedProxies,
}

impl AppState {
    pub fn new(
        registry: Registry,
        auth: Auth,
        scanner: Option<Scanner>,
        database: DatabaseCheck,
    ) -> AppState {
        AppState {
            service: Service::new(registry.clone(), scanner.clone()),
            registry,
            auth,
            scanner,
            database,
            public_address: None,
            trusted_proxies: access::TrustedProxies::default(),
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed (`trusted_proxies`).
    pub fn with_trusted_proxies(mut self, proxies: access::TrustedProxies) -> AppState {
        self.trusted_proxies = proxies;
        self
    }

    /// The address `ApiEndpointService` answers with (`public_address`).
    pub fn with_public_address(mut self, address: Option<String>) -> AppState {
        self.public_address = address;
        self
    }
}

/// The whole surface of `crscan serve`: gRPC for requests with `content-type:
/// application/grpc`, REST, `/v2/` and the probes for every other.
pub fn router(state: AppState) -> Router {
    use tower::ServiceExt as _;
    let grpc = grpc::router(state.clone()).layer(axum::middleware::from_fn(access_log));
    let rest = rest_router(state);
    let dispatch = tower::service_fn(move |request: Request| {
        let target = if grpc::is_grpc(&request) {
            grpc.clone()
        } else {
            rest.clone()
        };
        target.oneshot(request)
    });
    Router::new().fallback_service(dispatch)
}

/// The HTTP surface: REST, `/v2/` and the probes.
fn rest_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics::scrape))
        .route("/openapi.json", get(openapi::document))
        .merge(oci::router())
        .merge(rest::router())
        .merge(ui::router())
        // Bodies are read by the handlers after the caller is known, each under its
        // own limit (the management API's, the manifest limit); blobs are streamed.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(access_log))
        .with_state(state)
}

tokio::task_local! {
    /// The id of the request being answered, for the errors it returns.
    static REQUEST_ID: String;
}

/// The id of the request this task answers (a fresh one outside a request).
pub(crate) fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| crscan_store::new_id(crscan_store::IdKind::Request))
}

/// Gives each request an id, answers it with that id in scope (errors put it in
/// their `google.rpc.RequestInfo`), and writes one access-log line: method, path,
/// status, latency and the id, so that an id a user reports leads to its request.
async fn access_log(request: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    let id = crscan_store::new_id(crscan_store::IdKind::Request);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let matched = metrics::matched_route(&request);
    let request = metrics::count_received(request);
    let started = Instant::now();
    // Every log line written while the request is answered carries its id (a field
    // of the span; `--log-format json` puts it in each line's `span`).
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span)
        .await;
    let latency = started.elapsed();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    if response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
    {
        let grpc_status = grpc::answer_status(&response);
        // A method crscan lacks is not a series of its own: clients could name any.
        let template = if grpc_status == 12 {
            "{unknown gRPC method}".to_owned()
        } else {
            path.clone()
        };
        let labels = [template.as_str(), "POST", &grpc_status.to_string()];
        crscan_metrics::global().http_requests.inc(&labels);
        crscan_metrics::global()
            .http_request_duration
            .observe(&labels, latency);
        if grpc_status == 12 {
            // A method a client needed and crscan lacks: named in full, so a user
            // can see what their client called.
            tracing::warn!(
                target: "crscan::access",
                request_id = %id,
                grpc.method = %path.trim_start_matches('/'),
                "gRPC method not implemented by crscan"
            );
        }
        tracing::info!(
            target: "crscan::access",
            request_id = %id,
            grpc.method = %path.trim_start_matches('/'),
            grpc.status = grpc_status,
            latency_ms = format!("{latency_ms:.2}"),
            "request"
        );
        return response;
    }
    let template = metrics::route_template(&path, matched.as_deref(), response.status());
    metrics::record(&method, &template, &response, latency);
    tracing::info!(
        target: "crscan::access",
        request_id = %id,
        http.method = %method,
        http.path = %path,
        http.status = response.status().as_u16(),
        latency_ms = format!("{latency_ms:.2}"),
        "request"
    );
    response
}

/// Ready when the store answers. The vulnerability database is reported, not
/// required: a stale or missing one comes back as a warning with what to run, while
/// the registry keeps serving.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let check = state.database.clone();
    let database = tokio::task::spawn_blocking(move || {
        let found = check.state();
        (check.to_json(&found), check.warning(&found))
    })
    .await;
    let (database, warning) = match database {
        Ok(answer) => answer,
        Err(error) => (
            serde_json::json!({"status": "unknown"}),
            Some(error.to_string()),
        ),
    };
    let warnings: Vec<String> = warning.into_iter().collect();
    match state.registry.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "ready",
                "store": "ok",
                "vulnerabilityDatabase": database,
                "warnings": warnings,
            })),
        ),
        Err(error) => {
            tracing::warn!(%error, "store is not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "status": "unavailable",
                    "store": "unavailable",
                    "vulnerabilityDatabase": database,
                    "warnings": warnings,
                })),
            )
        }
    }
}
