//! The console's pages, one handler each: ask the service, then write HTML.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::header::{self, HeaderMap};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use crscan_model::{Finding, Severity, SeverityCounts};
use crscan_scanner::DatabaseState;
use crscan_store::{ScanResult, ScanScope, ScanStatus};

use super::html::{
    self, copy_command, esc, severity_badge, severity_bar, short_digest, size, time, url_encode,
};
use super::{caller, database_state, error_page, viewer};
use crate::AppState;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::service::{ListRequest, RepositoryKey};

type Params = Query<HashMap<String, String>>;

/// Authenticates, then renders with `render`; errors become pages.
async fn respond<F, Fut>(state: AppState, headers: &HeaderMap, uri: &Uri, render: F) -> Response
where
    F: FnOnce(AppState, Principal) -> Fut,
    Fut: std::future::Future<Output = Result<String, ApiError>>,
{
    let next = uri
        .path_and_query()
        .map_or("/ui/", |path| path.as_str())
        .to_owned();
    let principal = match caller(&state, headers) {
        Ok(principal) => principal,
        Err(error) => return error_page(error.into(), &next),
    };
    match render(state.clone(), principal).await {
        Ok(body) => super::html(StatusCode::OK, body),
        Err(error) => error_page(error, &next),
    }
}

/// The host name clients pull from (`docker pull HOST/…`).
fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            host.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        })
        .unwrap_or("localhost:5000")
        .to_owned()
}

fn status_text(result: Option<&ScanResult>, running: bool) -> String {
    match (result, running) {
        (_, true) => "<span class=\"status running\">RUNNING</span>".to_owned(),
        (Some(result), false) => format!(
            "<a class=\"status {}\" href=\"/ui/scans/{}\">{}</a>",
            result.status.name().to_ascii_lowercase(),
            url_encode(&result.id),
            result.status.name()
        ),
        (None, false) => "<span class=\"status none\">not scanned</span>".to_owned(),
    }
}

// ---- dashboard ---------------------------------------------------------------------

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    respond(state, &headers, &uri, |state, principal| async move {
        let service = &state.service;
        let latest = service
            .latest_scan_results(&principal, &ScanScope::All)
            .await?;
        let mut totals = SeverityCounts::default();
        for result in &latest {
            for severity in Severity::ALL {
                totals.set(severity, totals.get(severity) + result.counts.get(severity));
            }
        }
        let mut body = String::new();
        let _ = write!(
            body,
            "<section aria-labelledby=\"totals\"><h2 id=\"totals\">Vulnerabilities in the latest scans</h2>\
             <p>Across the newest scan of each of {} scanned {}.</p>{}</section>",
            latest.len(),
            if latest.len() == 1 { "image" } else { "images" },
            severity_bar(&totals)
        );
        // The most vulnerable images: most critical, then high, … first.
        let mut worst: Vec<&ScanResult> = latest
            .iter()
            .filter(|result| result.counts.total() > 0)
            .collect();
        worst.sort_by_key(|result| {
            std::cmp::Reverse(Severity::ALL.map(|severity| result.counts.get(severity)))
        });
        body.push_str(
            "<section aria-labelledby=\"worst\"><h2 id=\"worst\">Most vulnerable images</h2>",
        );
        if worst.is_empty() {
            body.push_str("<p>No scanned image has a known vulnerability.</p>");
        } else {
            body.push_str(
                "<table><thead><tr><th scope=\"col\">Image</th><th scope=\"col\">Tags</th>\
                 <th scope=\"col\">Latest scan</th></tr></thead><tbody>",
            );
            for result in worst.into_iter().take(10) {
                let image = match service.get_image(&principal, &result.image_id).await {
                    Ok(image) => image,
                    Err(_) => continue,
                };
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/ui/images/{}\">{}</a> {}</td><td>{}</td><td>{}</td></tr>",
                    url_encode(&image.id),
                    esc(&image.name),
                    short_digest(image.digest.to_string().as_str()),
                    esc(&image.tags.join(", ")),
                    severity_bar(&result.counts)
                );
            }
            body.push_str("</tbody></table>");
        }
        body.push_str("</section>");
        let jobs = service.job_counts(&principal).await?;
        let count = |state: &str| {
            jobs.iter()
                .find(|(name, _)| name == state)
                .map_or(0, |(_, count)| *count)
        };
        let running = service
            .running_scan_results(&principal, &ScanScope::All)
            .await?;
        let _ = write!(
            body,
            "<section aria-labelledby=\"queue\"><h2 id=\"queue\">Scans</h2>\
             <dl class=\"facts\"><dt>Running</dt><dd data-jobs=\"running\">{}</dd>\
             <dt>Queued</dt><dd data-jobs=\"queued\">{}</dd></dl>",
            count("running"),
            count("queued")
        );
        if !running.is_empty() {
            body.push_str("<ul>");
            for result in running.iter().take(20) {
                let _ = write!(
                    body,
                    "<li><a href=\"/ui/images/{}\">image {}</a>, queued {}</li>",
                    url_encode(&result.image_id),
                    esc(&result.image_id),
                    time(result.created_at)
                );
            }
            body.push_str("</ul>");
        }
        body.push_str("</section>");
        let database = database_state(&state).await;
        body.push_str(
            "<section aria-labelledby=\"db\"><h2 id=\"db\">Vulnerability database</h2><dl class=\"facts\">",
        );
        match &database {
            DatabaseState::Fresh {
                built_at,
                age_hours,
                advisories,
                digest,
            }
            | DatabaseState::Stale {
                built_at,
                age_hours,
                advisories,
                digest,
            } => {
                let fresh = matches!(database, DatabaseState::Fresh { .. });
                let _ = write!(
                    body,
                    "<dt>Status</dt><dd><span class=\"status {}\" data-database>{}</span></dd>\
                     <dt>Built</dt><dd>{}</dd><dt>Age</dt><dd>{age_hours} hours (warns after {})</dd>\
                     <dt>Advisories</dt><dd>{advisories}</dd><dt>Digest</dt><dd>{}</dd>",
                    if fresh { "ready" } else { "error" },
                    if fresh { "fresh" } else { "stale" },
                    time(built_at.saturating_mul(1000)),
                    state.database.max_age_hours,
                    short_digest(digest)
                );
            }
            DatabaseState::Missing => {
                body.push_str("<dt>Status</dt><dd><span class=\"status error\" data-database>missing</span></dd>");
            }
            DatabaseState::Building => {
                body.push_str("<dt>Status</dt><dd><span class=\"status error\" data-database>building</span></dd>");
            }
            DatabaseState::Unusable(_) => {
                body.push_str("<dt>Status</dt><dd><span class=\"status error\" data-database>unusable</span></dd>");
            }
        }
        body.push_str("</dl>");
        if let Some(warning) = state.database.warning(&database) {
            let _ = write!(body, "<p class=\"warning\" role=\"status\">{}</p>", esc(&warning));
        }
        body.push_str("</section>");
        Ok(html::page(
            "Dashboard",
            &[],
            Some(&viewer(&state, &principal)),
            &body,
        ))
    })
    .await
}

// ---- registries --------------------------------------------------------------------

pub(crate) async fn registries(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    respond(state, &headers, &uri, |state, principal| async move {
        let registries = state.service.all_registries(&principal).await?;
        let mut body = String::from(
            "<table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">ID</th>\
             <th scope=\"col\">Folder</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th>\
             </tr></thead><tbody>",
        );
        for registry in &registries {
            let _ = write!(
                body,
                "<tr><td><a href=\"/ui/registries/{}\">{}</a></td><td><code>{}</code></td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                url_encode(&registry.id),
                esc(&registry.name),
                esc(&registry.id),
                esc(&registry.folder_id),
                registry.status.name(),
                time(registry.created_at)
            );
        }
        body.push_str("</tbody></table>");
        if registries.is_empty() {
            body.push_str("<p>No registries yet.</p>");
        }
        Ok(html::page(
            "Registries",
            &[("Dashboard", "/ui/".to_owned())],
            Some(&viewer(&state, &principal)),
            &body,
        ))
    })
    .await
}

pub(crate) async fn registry(
    State(state): State<AppState>,
    Path(registry_id): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    respond(state, &headers, &uri, |state, principal| async move {
        let service = &state.service;
        let registry = service.get_registry(&principal, &registry_id).await?;
        let summaries = service
            .repository_summaries(&principal, &registry_id)
            .await?;
        let mut body = format!(
            "<dl class=\"facts\"><dt>ID</dt><dd><code>{}</code></dd><dt>Folder</dt><dd>{}</dd>\
             <dt>Status</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd></dl>\
             <h2>Repositories</h2>",
            esc(&registry.id),
            esc(&registry.folder_id),
            registry.status.name(),
            time(registry.created_at)
        );
        if summaries.is_empty() {
            body.push_str("<p>No repositories yet: push an image to create one.</p>");
        } else {
            body.push_str(
                "<table><thead><tr><th scope=\"col\">Repository</th><th scope=\"col\" class=\"num\">Images</th>\
                 <th scope=\"col\">Last push</th></tr></thead><tbody>",
            );
            for summary in &summaries {
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/ui/repositories/{}\">{}</a></td><td class=\"num\">{}</td><td>{}</td></tr>",
                    url_encode(&summary.repository.id),
                    esc(&summary.repository.name),
                    summary.image_count,
                    summary.last_push.map(time).unwrap_or_else(|| "never".to_owned())
                );
            }
            body.push_str("</tbody></table>");
        }
        // The scan policy: a form for admins, the rules for everyone else.
        let policy = match service
            .get_scan_policy_by_registry(&principal, &registry_id)
            .await
        {
            Ok(policy) => Some(policy),
            Err(error) if error.code == 5 => None,
            Err(error) => return Err(error),
        };
        let rules = policy.as_ref().map(|policy| policy.rules.clone()).unwrap_or_default();
        let push_prefixes = rules
            .push_rule
            .as_ref()
            .map(|rule| rule.repository_prefixes().join("\n"))
            .unwrap_or_default();
        let push_enabled = rules.push_rule.as_ref().is_some_and(|rule| !rule.disabled);
        let schedule = rules.schedule_rules.first();
        let schedule_prefixes = schedule
            .map(|rule| rule.repository_prefixes().join("\n"))
            .unwrap_or_default();
        let schedule_days = schedule.map_or(7, |rule| rule.rescan_period_seconds() / 86_400);
        let schedule_enabled = schedule.is_some_and(|rule| !rule.disabled);
        body.push_str("<section id=\"policy\" aria-labelledby=\"policy-title\"><h2 id=\"policy-title\">Scan policy</h2>");
        if params.contains_key("saved") {
            body.push_str("<p class=\"notice\" role=\"status\">Scan policy saved.</p>");
        }
        if service.capabilities(&principal).admin {
            let checked = |on: bool| if on { " checked" } else { "" };
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/ui/registries/{}/policy\" class=\"policy\">\
                 <fieldset><legend>Scan on push</legend>\
                 <label for=\"push_prefixes\">Repository prefixes, one per line (<code>{}/app</code>)</label>\
                 <textarea id=\"push_prefixes\" name=\"push_prefixes\" rows=\"3\">{}</textarea>\
                 <label class=\"check\"><input type=\"checkbox\" name=\"push_enabled\" value=\"on\"{}> Enabled</label></fieldset>\
                 <fieldset><legend>Rescan on a schedule</legend>\
                 <label for=\"schedule_prefixes\">Repository prefixes, one per line</label>\
                 <textarea id=\"schedule_prefixes\" name=\"schedule_prefixes\" rows=\"3\">{}</textarea>\
                 <label for=\"schedule_days\">Rescan every (days)</label>\
                 <input id=\"schedule_days\" name=\"schedule_days\" type=\"number\" min=\"1\" value=\"{}\">\
                 <label class=\"check\"><input type=\"checkbox\" name=\"schedule_enabled\" value=\"on\"{}> Enabled</label></fieldset>\
                 <p class=\"hint\">Lifecycle policies are per repository: each repository's page shows them.</p>\
                 <button type=\"submit\">Save scan policy</button></form>",
                url_encode(&registry.id),
                esc(&registry.id),
                esc(&push_prefixes),
                checked(push_enabled),
                esc(&schedule_prefixes),
                schedule_days.max(1),
                checked(schedule_enabled)
            );
        } else if policy.is_none() {
            body.push_str("<p>No scan policy: images are scanned when someone asks.</p>");
        } else {
            let _ = write!(
                body,
                "<dl class=\"facts\"><dt>Scan on push</dt><dd>{}</dd><dt>Rescan</dt><dd>{}</dd></dl>",
                if push_enabled {
                    esc(&push_prefixes.replace('\n', ", "))
                } else {
                    "off".to_owned()
                },
                if schedule_enabled {
                    format!(
                        "{} every {schedule_days} days",
                        esc(&schedule_prefixes.replace('\n', ", "))
                    )
                } else {
                    "off".to_owned()
                }
            );
        }
        body.push_str("</section>");
        Ok(html::page(
            &format!("Registry {}", registry.name),
            &[
                ("Dashboard", "/ui/".to_owned()),
                ("Registries", "/ui/registries".to_owned()),
            ],
            Some(&viewer(&state, &principal)),
            &body,
        ))
    })
    .await
}

// ---- repository --------------------------------------------------------------------

/// The most images a repository page lists.
const MAX_IMAGES: i64 = 1000;

pub(crate) async fn repository(
    State(state): State<AppState>,
    Path(repository_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let host = host(&headers);
    respond(state, &headers, &uri, |state, principal| async move {
        let service = &state.service;
        let repository = service
            .get_repository(&principal, &RepositoryKey::Id(repository_id.clone()))
            .await?;
        let scope = ScanScope::Repository(repository.id.clone());
        let (images, latest, running) = tokio::try_join!(
            service.repository_images(&principal, &repository.name, MAX_IMAGES),
            service.latest_scan_results(&principal, &scope),
            service.running_scan_results(&principal, &scope),
        )?;
        let latest: HashMap<&str, &ScanResult> = latest
            .iter()
            .map(|result| (result.image_id.as_str(), result))
            .collect();
        let running: std::collections::HashSet<&str> =
            running.iter().map(|result| result.image_id.as_str()).collect();
        let mut body = format!(
            "<dl class=\"facts\"><dt>ID</dt><dd><code>{}</code></dd><dt>Images</dt><dd>{}</dd></dl>{}",
            esc(&repository.id),
            images.len(),
            copy_command("Pull the newest image", &format!("docker pull {host}/{}", repository.name))
        );
        let _ = write!(
            body,
            "<h2>Images</h2><p><label for=\"image-filter\">Filter images</label> \
             <input id=\"image-filter\" type=\"search\" data-filter=\"images\" placeholder=\"digest or tag\"></p>\
             <table id=\"images\" class=\"sortable\"><thead><tr><th scope=\"col\">Digest</th><th scope=\"col\">Tags</th>\
             <th scope=\"col\" class=\"num\">Size</th><th scope=\"col\">Pushed</th><th scope=\"col\">Scan</th>\
             <th scope=\"col\">Vulnerabilities</th></tr></thead><tbody>"
        );
        for image in &images {
            let result = latest.get(image.id.as_str()).copied();
            let _ = write!(
                body,
                "<tr data-image=\"{}\"><td><a href=\"/ui/images/{}\">{}</a></td><td>{}</td>\
                 <td class=\"num\" data-value=\"{}\">{}</td><td data-value=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&image.id),
                url_encode(&image.id),
                short_digest(image.digest.to_string().as_str()),
                image
                    .tags
                    .iter()
                    .map(|tag| format!("<span class=\"tag\">{}</span>", esc(tag)))
                    .collect::<Vec<_>>()
                    .join(" "),
                image.compressed_size,
                size(image.compressed_size),
                image.created_at,
                time(image.created_at),
                status_text(result, running.contains(image.id.as_str())),
                result.map(|result| severity_bar(&result.counts)).unwrap_or_default()
            );
        }
        body.push_str("</tbody></table>");
        if images.is_empty() {
            body.push_str("<p>No images in this repository.</p>");
        }
        body.push_str(&super::lifecycle::section(service, &principal, &repository.id).await?);
        let registry_link = format!("/ui/registries/{}", url_encode(&repository.registry_id));
        Ok(html::page(
            &format!("Repository {}", repository.name),
            &[
                ("Dashboard", "/ui/".to_owned()),
                ("Registries", "/ui/registries".to_owned()),
                (repository.registry_id.as_str(), registry_link),
            ],
            Some(&viewer(&state, &principal)),
            &body,
        ))
    })
    .await
}

// ---- image -------------------------------------------------------------------------

pub(crate) async fn image(
    State(state): State<AppState>,
    Path(image_id): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let host = host(&headers);
    respond(state, &headers, &uri, |state, principal| async move {
        let service = &state.service;
        let image = service.get_image(&principal, &image_id).await?;
        let config = service.image_config(&principal, &image).await?;
        let history = service
            .list_scan_results(
                &principal,
                &image.id,
                "",
                &ListRequest {
                    page_size: 50,
                    ..ListRequest::default()
                },
            )
            .await?;
        let can = service.capabilities(&principal);
        let reference = format!("{host}/{}@{}", image.name, image.digest);
        let short_name = image.name.rsplit('/').next().unwrap_or(&image.name);
        let mut body = format!(
            "<dl class=\"facts\"><dt>Digest</dt><dd><code data-digest>{}</code></dd>\
             <dt>Tags</dt><dd data-tags>{}</dd><dt>Size</dt><dd>{}</dd><dt>Pushed</dt><dd>{}</dd>\
             <dt>Media type</dt><dd>{}</dd><dt>Platform</dt><dd>{}</dd></dl>",
            esc(image.digest.to_string().as_str()),
            image
                .tags
                .iter()
                .map(|tag| format!("<span class=\"tag\">{}</span>", esc(tag)))
                .collect::<Vec<_>>()
                .join(" "),
            size(image.compressed_size),
            time(image.created_at),
            esc(&image.media_type),
            esc(&format!(
                "{}/{}",
                config.os.as_deref().unwrap_or("?"),
                config.architecture.as_deref().unwrap_or("?")
            )),
        );
        body.push_str(&copy_command("Pull", &format!("docker pull {reference}")));
        body.push_str(&copy_command(
            "Copy",
            &format!("skopeo copy docker://{reference} oci:{short_name}:latest"),
        ));
        // Actions the token allows.
        let mut actions = String::new();
        if can.scan {
            let _ = write!(
                actions,
                "<form method=\"post\" action=\"/ui/images/{}/scan\" data-scan>\
                 <button type=\"submit\">Scan</button> <output data-scan-status aria-live=\"polite\"></output></form>",
                url_encode(&image.id)
            );
        }
        if can.push {
            let _ = write!(
                actions,
                "<form method=\"post\" action=\"/ui/images/{}/delete\" data-confirm=\"Delete this image?\">\
                 <button type=\"submit\" class=\"danger\">Delete image</button></form>",
                url_encode(&image.id)
            );
        }
        if !actions.is_empty() {
            let _ = write!(body, "<div class=\"actions\">{actions}</div>");
        }
        // Scan history.
        let _ = write!(
            body,
            "<section id=\"history\" aria-labelledby=\"history-title\"><h2 id=\"history-title\">Scan history</h2>"
        );
        if history.items.is_empty() {
            body.push_str("<p data-history-empty>Not scanned yet.</p>");
        }
        body.push_str(
            "<table data-history><thead><tr><th scope=\"col\">Scan</th><th scope=\"col\">Status</th>\
             <th scope=\"col\">Finished</th><th scope=\"col\">Vulnerabilities</th></tr></thead><tbody>",
        );
        for result in &history.items {
            let _ = write!(
                body,
                "<tr data-scan-result=\"{}\"><td><a href=\"/ui/scans/{}\"><code>{}</code></a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&result.id),
                url_encode(&result.id),
                esc(&result.id),
                status_text(Some(result), result.status == ScanStatus::Running),
                result.scanned_at.map(time).unwrap_or_else(|| "—".to_owned()),
                if result.status == ScanStatus::Ready {
                    severity_bar(&result.counts)
                } else {
                    result
                        .error
                        .as_ref()
                        .map(|error| esc(&error.message))
                        .unwrap_or_default()
                }
            );
        }
        body.push_str("</tbody></table></section>");
        // Layers.
        body.push_str(
            "<section aria-labelledby=\"layers-title\"><h2 id=\"layers-title\">Layers</h2>\
             <table><thead><tr><th scope=\"col\" class=\"num\">#</th><th scope=\"col\">Digest</th>\
             <th scope=\"col\" class=\"num\">Size</th><th scope=\"col\">Created by</th></tr></thead><tbody>",
        );
        for (index, layer) in config.layers.iter().enumerate() {
            let _ = write!(
                body,
                "<tr><td class=\"num\">{index}</td><td>{}</td><td class=\"num\">{}</td><td><code class=\"command\">{}</code></td></tr>",
                short_digest(layer.digest.to_string().as_str()),
                size(layer.size),
                esc(&layer.created_by)
            );
        }
        body.push_str("</tbody></table>");
        if !image.children.is_empty() {
            let _ = write!(
                body,
                "<p>A multi-platform index of {} manifests; scans read its linux/amd64 image.</p>",
                image.children.len()
            );
        }
        body.push_str("</section>");
        // Packages, from the newest READY scan's inventory.
        let ready = history
            .items
            .iter()
            .find(|result| result.status == ScanStatus::Ready);
        body.push_str("<section aria-labelledby=\"packages-title\"><h2 id=\"packages-title\">Packages</h2>");
        let manifest = ready
            .and_then(|result| result.manifest_digest.as_deref())
            .and_then(|digest| digest.parse().ok())
            .unwrap_or_else(|| image.digest.clone());
        match service.image_inventory(&principal, &manifest).await? {
            None => body.push_str("<p>The packages are listed once the image has been scanned.</p>"),
            Some(inventory) => {
                let search = params.get("package").cloned().unwrap_or_default();
                let needle = search.to_lowercase();
                let layer_index = |digest: &Option<crscan_model::Digest>| {
                    digest.as_ref().and_then(|digest| {
                        config
                            .layers
                            .iter()
                            .position(|layer| &layer.digest == digest || layer.diff_id.as_ref() == Some(digest))
                    })
                };
                let _ = write!(
                    body,
                    "<form method=\"get\" class=\"filters\"><label for=\"package\">Search packages</label> \
                     <input id=\"package\" name=\"package\" type=\"search\" value=\"{}\" data-filter=\"packages\"> \
                     <button type=\"submit\">Search</button></form>\
                     <table id=\"packages\" class=\"sortable\"><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Version</th>\
                     <th scope=\"col\">Type</th><th scope=\"col\">Layer</th><th scope=\"col\">PURL</th></tr></thead><tbody>",
                    esc(&search)
                );
                for package in &inventory.packages {
                    if !needle.is_empty()
                        && !package.name.to_lowercase().contains(&needle)
                        && !package.purl.to_lowercase().contains(&needle)
                    {
                        continue;
                    }
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td><code>{}</code></td></tr>",
                        esc(&package.name),
                        esc(&package.version),
                        package.package_type.as_str(),
                        layer_index(&package.layer_digest)
                            .map(|index| index.to_string())
                            .unwrap_or_default(),
                        esc(&package.purl)
                    );
                }
                body.push_str("</tbody></table>");
            }
        }
        body.push_str("</section>");
        Ok(html::page(
            &format!("Image {}", image.name),
            &[
                ("Dashboard", "/ui/".to_owned()),
                ("Registries", "/ui/registries".to_owned()),
                (
                    image.name.as_str(),
                    format!("/ui/repositories/{}", url_encode(&image.repository_id)),
                ),
            ],
            Some(&viewer(&state, &principal)),
            &body,
        ))
    })
    .await
}

// ---- scan --------------------------------------------------------------------------

/// The columns of the vulnerability table, by their `?sort=` name.
const COLUMNS: [(&str, &str); 6] = [
    ("severity", "Severity"),
    ("vulnerability", "Vulnerability"),
    ("package", "Package"),
    ("installed", "Installed"),
    ("fixed", "Fixed in"),
    ("layer", "Layer"),
];

pub(crate) async fn scan(
    State(state): State<AppState>,
    Path(scan_result_id): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    respond(state, &headers, &uri, |state, principal| async move {
        let service = &state.service;
        let result = service.get_scan_result(&principal, &scan_result_id).await?;
        let image = match service.get_image(&principal, &result.image_id).await {
            Ok(image) => Some(image),
            Err(error) if error.code == 5 => None,
            Err(error) => return Err(error),
        };
        let layers = match &image {
            Some(image) => service.image_config(&principal, image).await?.layers,
            None => Vec::new(),
        };
        let severity = match params.get("severity").map(String::as_str) {
            None | Some("") => None,
            Some(name) => Some(
                Severity::ALL
                    .into_iter()
                    .find(|severity| severity.as_str() == name)
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "severity {name:?} is not one of CRITICAL, HIGH, MEDIUM, LOW, NEGLIGIBLE, UNDEFINED"
                        ))
                    })?,
            ),
        };
        let text = params.get("q").cloned().unwrap_or_default();
        let sort = params
            .get("sort")
            .map(String::as_str)
            .filter(|sort| COLUMNS.iter().any(|(name, _)| name == sort))
            .unwrap_or("severity")
            .to_owned();
        let descending = params.get("dir").is_some_and(|dir| dir == "desc");
        // The severity filter is ListVulnerabilities' own; the text filter reads
        // every field a reader may search by.
        let filter = severity
            .map(|severity| format!("severity=\"{}\"", severity.as_str()))
            .unwrap_or_default();
        let findings = service
            .all_vulnerabilities(&principal, &result.id, &filter)
            .await?;
        let layer_of = |finding: &Finding| {
            finding.layer_digest.as_ref().and_then(|digest| {
                layers
                    .iter()
                    .position(|layer| &layer.digest == digest || layer.diff_id.as_ref() == Some(digest))
            })
        };
        let needle = text.to_lowercase();
        let mut shown: Vec<&Finding> = findings
            .iter()
            .filter(|finding| {
                needle.is_empty()
                    || [
                        finding.id.as_str(),
                        finding.package_name.as_str(),
                        finding.installed_version.as_str(),
                        finding.fixed_by.as_deref().unwrap_or_default(),
                    ]
                    .iter()
                    .chain(finding.aliases.iter().map(String::as_str).collect::<Vec<_>>().iter())
                    .any(|field| field.to_lowercase().contains(&needle))
            })
            .collect();
        match sort.as_str() {
            "vulnerability" => shown.sort_by(|a, b| a.id.cmp(&b.id)),
            "package" => shown.sort_by(|a, b| a.package_name.cmp(&b.package_name)),
            "installed" => shown.sort_by(|a, b| a.installed_version.cmp(&b.installed_version)),
            "fixed" => shown.sort_by(|a, b| a.fixed_by.cmp(&b.fixed_by)),
            "layer" => shown.sort_by_key(|finding| layer_of(finding)),
            _ => shown.sort_by(|a, b| a.api_order(b)),
        }
        if descending {
            shown.reverse();
        }
        let base = format!("/ui/scans/{}", url_encode(&result.id));
        let mut body = String::new();
        if let Some(image) = &image {
            let _ = write!(
                body,
                "<dl class=\"facts\"><dt>Image</dt><dd><a href=\"/ui/images/{}\">{}</a> <code data-digest>{}</code></dd>\
                 <dt>Tags</dt><dd data-tags>{}</dd>",
                url_encode(&image.id),
                esc(&image.name),
                esc(image.digest.to_string().as_str()),
                esc(&image.tags.join(", "))
            );
        } else {
            body.push_str("<dl class=\"facts\"><dt>Image</dt><dd>deleted</dd>");
        }
        let _ = write!(
            body,
            "<dt>Status</dt><dd>{}</dd><dt>Finished</dt><dd>{}</dd><dt>Database</dt><dd>{}</dd></dl>",
            status_text(Some(&result), false),
            result.scanned_at.map(time).unwrap_or_else(|| "—".to_owned()),
            result
                .database_digest
                .as_deref()
                .map(short_digest)
                .unwrap_or_else(|| "—".to_owned())
        );
        if let Some(error) = &result.error {
            let _ = write!(body, "<p class=\"error\" role=\"alert\">{}</p>", esc(&error.message));
        }
        body.push_str(&severity_bar(&result.counts));
        let _ = write!(
            body,
            "<p class=\"downloads\">Download: <a href=\"{base}/download?format=json\" download>JSON</a> \
             <a href=\"{base}/download?format=csv\" download>CSV</a> \
             <a href=\"{base}/download?format=cyclonedx\" download>CycloneDX</a> \
             <a href=\"{base}/download?format=sarif\" download>SARIF</a></p>"
        );
        // Filters: a form that works without the script; the script filters as
        // one types.
        let _ = write!(
            body,
            "<form method=\"get\" class=\"filters\" role=\"search\">\
             <label for=\"severity\">Severity</label> <select id=\"severity\" name=\"severity\">\
             <option value=\"\">all</option>"
        );
        for level in Severity::ALL {
            let _ = write!(
                body,
                "<option{}>{}</option>",
                if severity == Some(level) { " selected" } else { "" },
                level.as_str()
            );
        }
        let _ = write!(
            body,
            "</select> <label for=\"q\">Text</label> \
             <input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" data-filter=\"vulnerabilities\" placeholder=\"CVE, package, version\"> \
             <button type=\"submit\">Filter</button></form>\
             <p><output data-count=\"vulnerabilities\" aria-live=\"polite\">{} of {}</output> vulnerabilities shown</p>",
            esc(&text),
            shown.len(),
            result.counts.total()
        );
        body.push_str("<table id=\"vulnerabilities\" class=\"sortable\"><thead><tr>");
        for (name, label) in COLUMNS {
            let (next_dir, aria) = if sort == name {
                if descending {
                    ("asc", " aria-sort=\"descending\"")
                } else {
                    ("desc", " aria-sort=\"ascending\"")
                }
            } else {
                ("asc", "")
            };
            let mut link = format!("{base}?sort={name}&dir={next_dir}");
            if let Some(severity) = severity {
                let _ = write!(link, "&severity={}", severity.as_str());
            }
            if !text.is_empty() {
                let _ = write!(link, "&q={}", url_encode(&text));
            }
            let _ = write!(
                body,
                "<th scope=\"col\"{aria} data-sort=\"{name}\"><a href=\"{}\">{label}</a></th>",
                esc(&link)
            );
        }
        body.push_str("</tr></thead><tbody>");
        for finding in &shown {
            let fields = finding.api_fields();
            let layer = layer_of(finding);
            let _ = write!(
                body,
                "<tr data-severity-row=\"{}\"><td data-value=\"{}\">{}</td><td><a href=\"{}\" rel=\"noreferrer\">{}</a></td>\
                 <td>{}</td><td>{}</td><td>{}</td><td data-value=\"{}\">{}</td></tr>",
                finding.severity.as_str(),
                finding.severity.proto_number(),
                severity_badge(finding.severity),
                esc(&fields.link),
                esc(&finding.id),
                esc(&finding.package_name),
                esc(&finding.installed_version),
                esc(finding.fixed_by.as_deref().unwrap_or("")),
                layer.map_or(-1, |index| index as i64),
                match (layer, &finding.layer_digest) {
                    (Some(index), Some(digest)) => format!("{index} {}", short_digest(&digest.to_string())),
                    _ => String::new(),
                }
            );
        }
        body.push_str("</tbody></table>");
        let mut crumbs = vec![
            ("Dashboard", "/ui/".to_owned()),
            ("Registries", "/ui/registries".to_owned()),
        ];
        let image_name = image.as_ref().map(|image| image.name.clone()).unwrap_or_default();
        if let Some(image) = &image {
            crumbs.push((image_name.as_str(), format!("/ui/images/{}", url_encode(&image.id))));
        }
        Ok(html::page(
            &format!("Scan {}", result.id),
            &crumbs,
            Some(&viewer(&state, &principal)),
            &body,
        ))
    })
    .await
}
