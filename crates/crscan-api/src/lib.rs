//! HTTP routers for `/v2/` (OCI distribution), `/container-registry/v1/` and
//! `/operations/` (the management API of the contract), plus `/healthz`, `/readyz` and
//! `/openapi.json`; the web console at `/ui/` ([`ui`]); authentication; one mapping from errors to statuses per surface;
//! an access-log line per request, whose id the API's errors carry.
//!
//! The management API's calls are domain operations in [`service`], which take plain
//! request values and return domain values; [`rest`] reads REST requests into them
//! and renders their answers as the contract's JSON, so another transport (gRPC)
//! can call the same operations and render the same values its own way.
//!
//! Architecture invariant: no HTTP in [`service`], and no domain logic in the
//! transports: they parse, call the service, and render.

mod auth;
mod errors;
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

pub use auth::{Auth, AuthError, Principal, Role};
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
        }
    }
}

/// The whole HTTP surface of `crscan serve`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
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
    let id = crscan_store::new_id(crscan_store::IdKind::Request);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
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
