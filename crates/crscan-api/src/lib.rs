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
mod scanner;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use crscan_registry::Registry;

pub use auth::{Auth, AuthError, Role};

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub auth: Auth,
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

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.registry.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "store is not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
