//! `/metrics`: the process's Prometheus metrics ([`crscan_metrics`]) and the gauges
//! read at scrape time (the job queue by state, the vulnerability database's age and
//! advisory count), and the recording of each HTTP request by its route template.
//!
//! A route template names what a path addresses (`/v2/{name}/blobs/{digest}`,
//! `/container-registry/v1/images/{id}:lastScanResult`), never the raw path, so the
//! number of series stays bounded whatever clients send. `/metrics` needs no token,
//! like `/healthz` and `/readyz`: it holds counts and route templates, no names, ids
//! or digests; an operator who wants it private keeps the port off the scrapers'
//! network or filters the path at the proxy.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crscan_metrics::Gauge;
use crscan_scanner::DatabaseCheck;
use crscan_scanner::DatabaseState;
use futures::StreamExt as _;

use crate::AppState;
use crate::oci::Endpoint;

/// Collections of the management API that templates keep by name.
const COLLECTIONS: &[&str] = &[
    "registries",
    "repositories",
    "images",
    "scans",
    "scanPolicies",
    "lifecyclePolicies",
    "dryRunLifecyclePolicy",
    "dryRunLifecyclePolicyResults",
];

/// The route template of a request to `path`, given the route axum matched.
pub(crate) fn route_template(path: &str, matched: Option<&str>, status: StatusCode) -> String {
    if let Some(rest) = path.strip_prefix("/v2/") {
        if rest.is_empty() {
            return "/v2/".to_owned();
        }
        return match Endpoint::parse(rest) {
            Some(Endpoint::Catalog) => "/v2/_catalog",
            Some(Endpoint::Tags(_)) => "/v2/{name}/tags/list",
            Some(Endpoint::Manifest(..)) => "/v2/{name}/manifests/{reference}",
            Some(Endpoint::Blob(..)) => "/v2/{name}/blobs/{digest}",
            Some(Endpoint::Uploads(_)) => "/v2/{name}/blobs/uploads/",
            Some(Endpoint::Upload(..)) => "/v2/{name}/blobs/uploads/{uuid}",
            Some(Endpoint::Referrers(..)) => "/v2/{name}/referrers/{digest}",
            None => "/v2/{unknown}",
        }
        .to_owned();
    }
    for prefix in ["/container-registry/v1/", "/operations/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return format!("{prefix}{}", api_template(prefix, rest, status));
        }
    }
    match matched {
        Some(route) if !route.contains('*') => route.to_owned(),
        _ => "{unknown}".to_owned(),
    }
}

/// `collection[/{id}][:verb]` of a management API path; unknown collections and the
/// verbs of unanswered paths are placeholders, so strangers cannot add series.
fn api_template(prefix: &str, rest: &str, status: StatusCode) -> String {
    let (head, verb) = match rest.rsplit_once(':') {
        Some((head, verb)) => (head, Some(verb)),
        None => (rest, None),
    };
    let mut template = if prefix == "/operations/" {
        "{id}".to_owned()
    } else {
        let (collection, item) = head.split_once('/').unwrap_or((head, ""));
        let collection = if COLLECTIONS.contains(&collection) {
            collection
        } else {
            "{unknown}"
        };
        if item.is_empty() {
            collection.to_owned()
        } else {
            format!("{collection}/{{id}}")
        }
    };
    if let Some(verb) = verb {
        let known = matches!(
            status,
            StatusCode::NOT_FOUND | StatusCode::NOT_IMPLEMENTED | StatusCode::BAD_REQUEST
        );
        if !known
            && !verb.is_empty()
            && verb.len() <= 40
            && verb.chars().all(|c| c.is_ascii_alphabetic())
        {
            template.push(':');
            template.push_str(verb);
        } else {
            template.push_str(":{verb}");
        }
    }
    template
}

/// The route axum matched for `request`, before it is consumed.
pub(crate) fn matched_route(request: &Request) -> Option<String> {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
}

/// Counts the bytes of a request body pushed to the registry (blob uploads and
/// manifests) as they stream through.
pub(crate) fn count_received(request: Request) -> Request {
    let counted = request.uri().path().starts_with("/v2/")
        && matches!(
            *request.method(),
            Method::PATCH | Method::PUT | Method::POST
        );
    if !counted {
        return request;
    }
    let (parts, body) = request.into_parts();
    let stream = body.into_data_stream().inspect(|chunk| {
        if let Ok(chunk) = chunk {
            crscan_metrics::global()
                .registry_bytes
                .add(&["received"], chunk.len() as u64);
        }
    });
    Request::from_parts(parts, Body::from_stream(stream))
}

/// Records one answered HTTP request.
pub(crate) fn record(method: &Method, template: &str, response: &Response, latency: Duration) {
    let metrics = crscan_metrics::global();
    let status = response.status();
    let labels = [template, method.as_str(), status.as_str()];
    metrics.http_requests.inc(&labels);
    metrics.http_request_duration.observe(&labels, latency);
    let manifest = template == "/v2/{name}/manifests/{reference}";
    if manifest && *method == Method::PUT && status == StatusCode::CREATED {
        metrics.pushes.inc(&[]);
    }
    if manifest && *method == Method::GET && status == StatusCode::OK {
        metrics.pulls.inc(&[]);
    }
    let pulled = manifest || template == "/v2/{name}/blobs/{digest}";
    if pulled
        && *method == Method::GET
        && (status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT)
        && let Some(length) = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
    {
        metrics.registry_bytes.add(&["sent"], length);
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub(crate) async fn scrape(State(state): State<AppState>) -> Response {
    let mut gauges = Vec::new();
    match state.registry.store().job_counts().await {
        Ok(counts) => {
            let mut series: Vec<(Vec<(&'static str, String)>, f64)> = Vec::new();
            // Every state appears, at 0 when empty, so a dashboard's series exist.
            for known in ["queued", "running", "done"] {
                if !counts.iter().any(|(state, _)| state == known) {
                    series.push((vec![("state", known.to_owned())], 0.0));
                }
            }
            for (state, count) in counts {
                series.push((vec![("state", state)], count as f64));
            }
            series.sort_by(|a, b| a.0.cmp(&b.0));
            gauges.push(Gauge {
                name: "crscan_scan_queue_jobs",
                help: "Scan jobs in the store's queue by state (the whole cluster's)",
                series,
            });
        }
        Err(error) => {
            crscan_metrics::global().errors.inc(&["store"]);
            tracing::warn!(%error, "cannot count the scan queue for /metrics");
        }
    }
    let check = state.database.clone();
    if let Ok(found) = tokio::task::spawn_blocking(move || database_gauges(&check)).await {
        gauges.extend(found);
    }
    let text = crscan_metrics::global().render(&gauges);
    ([(header::CONTENT_TYPE, crscan_metrics::CONTENT_TYPE)], text).into_response()
}

fn database_gauges(check: &DatabaseCheck) -> Vec<Gauge> {
    let state = check.state();
    let (built_at, advisories, usable) = match &state {
        DatabaseState::Fresh {
            built_at,
            advisories,
            ..
        }
        | DatabaseState::Stale {
            built_at,
            advisories,
            ..
        } => (Some(*built_at), *advisories, 1.0),
        _ => (None, 0, 0.0),
    };
    let mut gauges = vec![
        Gauge {
            name: "crscan_vulnerability_database_usable",
            help: "1 when this node's vulnerability database can be used for scans",
            series: vec![(Vec::new(), usable)],
        },
        Gauge {
            name: "crscan_vulnerability_database_advisories",
            help: "Advisories in this node's vulnerability database",
            series: vec![(Vec::new(), advisories as f64)],
        },
    ];
    if let Some(built_at) = built_at {
        let now = crscan_store::now() / 1000;
        gauges.push(Gauge {
            name: "crscan_vulnerability_database_age_seconds",
            help: "Seconds since this node's vulnerability database was built",
            series: vec![(Vec::new(), (now - built_at).max(0) as f64)],
        });
    }
    gauges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_bounded() {
        let ok = StatusCode::OK;
        assert_eq!(
            route_template("/v2/default/a/b/blobs/sha256:00", Some("/v2/{*rest}"), ok),
            "/v2/{name}/blobs/{digest}"
        );
        assert_eq!(
            route_template("/v2/default/app/blobs/uploads/abc", None, ok),
            "/v2/{name}/blobs/uploads/{uuid}"
        );
        assert_eq!(
            route_template(
                "/container-registry/v1/images/crp123:lastScanResult",
                None,
                ok
            ),
            "/container-registry/v1/images/{id}:lastScanResult"
        );
        assert_eq!(
            route_template(
                "/container-registry/v1/images/crp123:random",
                None,
                StatusCode::NOT_IMPLEMENTED
            ),
            "/container-registry/v1/images/{id}:{verb}"
        );
        assert_eq!(
            route_template(
                "/container-registry/v1/whatever/x",
                None,
                StatusCode::NOT_FOUND
            ),
            "/container-registry/v1/{unknown}/{id}"
        );
        assert_eq!(
            route_template("/operations/crq1:cancel", None, ok),
            "/operations/{id}:cancel"
        );
        assert_eq!(
            route_template("/ui/images/x", Some("/ui/images/{image_id}"), ok),
            "/ui/images/{image_id}"
        );
        assert_eq!(
            route_template("/nothing/here", None, StatusCode::NOT_FOUND),
            "{unknown}"
        );
    }
}
