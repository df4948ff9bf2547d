//! HTTP routers for `/v2/` (OCI distribution), `/container-registry/v1/` and
//! `/operations/` (the management API of the contract), plus `/healthz`, `/readyz` and
//! `/openapi.json`; authentication; one mapping from errors to statuses per surface.
//!
//! Architecture invariant: no domain logic here. Handlers parse requests, call
//! [`crscan_registry::Registry`] or [`crscan_store::Store`], and render the answer.

mod auth;
mod errors;
mod json;
mod mgmt;
mod oci;
mod openapi;
mod ranges;
mod scanner;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use crscan_registry::Registry;
use crscan_scanner::DatabaseCheck;
use crscan_scanner::worker::Scanner;

pub use auth::{Auth, AuthError, Role};

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub auth: Auth,
    /// This process's scan service: woken when a scan is queued, told about pushes so
    /// push rules start scans at once. `None` leaves both to the polling workers.
    pub scanner: Option<Scanner>,
    /// Tells `/readyz` about the vulnerability database.
    pub database: DatabaseCheck,
}

/// The whole HTTP surface of `crscan serve`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/openapi.json", get(openapi::document))
        .merge(oci::router())
        .merge(mgmt::router())
        .merge(scanner::router())
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
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
