//! The web console at `/ui/`: server-rendered HTML pages for registries,
//! repositories, images, scans and their vulnerabilities, a dashboard, and the
//! actions a token's roles allow (scan, delete an image, edit the scan policy, dry-run
//! a lifecycle policy).
//!
//! Every answer comes from the domain operations of [`crate::service`], the same
//! calls the REST API makes; downloads are rendered by `crscan-report`, as
//! `crscan scan` renders them. The pages read without JavaScript; the script
//! (`console.js`) only adds the scan button's progress, table sorting and filtering,
//! copy buttons and keeping the token in `sessionStorage`. Stylesheet and script are
//! compiled into the binary; nothing is fetched from elsewhere.
//!
//! Auth: with tokens configured, a page without credentials shows a token form. Its
//! POST sets the session cookie `crscan_console` (the token, `HttpOnly`,
//! `SameSite=Strict`, `Path=/ui`, no expiry: it ends with the browser session),
//! which the server reads as if it were `Authorization: Bearer`, so the cookie maps
//! to exactly the token's roles. The script also keeps the token in `sessionStorage`
//! and sends it as a Bearer on its own requests. `SameSite=Strict` keeps other sites
//! from posting the console's forms with the cookie.

mod html;
mod lifecycle;
mod pages;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crscan_report::scan::ScanFormat;
use crscan_scanner::DatabaseState;
use crscan_store::{OperationMetadata, PushRule, ScanRules, ScheduledRule};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{AuthError, Principal};
use crate::errors::ApiError;
use crate::service::{Call, rule_error};

/// The session cookie's name.
const COOKIE: &str = "crscan_console";
/// The largest form body the console reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

const STYLESHEET: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

/// The console's routes, and `/` sending browsers to it.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(|| async { redirect("/ui/") }))
        .route("/ui/", get(pages::dashboard))
        .route("/ui/assets/console.css", get(stylesheet))
        .route("/ui/assets/console.js", get(script))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/registries", get(pages::registries))
        .route("/ui/registries/{registry_id}", get(pages::registry))
        .route("/ui/registries/{registry_id}/policy", post(edit_policy))
        .route("/ui/repositories/{repository_id}", get(pages::repository))
        .route("/ui/images/{image_id}", get(pages::image))
        .route("/ui/images/{image_id}/scan", post(scan))
        .route("/ui/images/{image_id}/delete", post(delete_image))
        .route("/ui/scans/{scan_result_id}", get(pages::scan))
        .route("/ui/scans/{scan_result_id}/download", get(download))
        .route("/ui/operations/{operation_id}", get(operation))
        .route(
            "/ui/lifecycle/{policy_id}/dry-run",
            post(lifecycle::dry_run),
        )
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// `/`: browsers (`Accept: text/html`) go to the console; other clients get the
/// plain 404 they always got.
async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        redirect("/ui/")
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// An HTML answer: never cached (it shows what one token may see), framed by no
/// other site, and allowed only this server's stylesheet and script.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// The caller of a console request: the `Authorization` header when there is one,
/// else the session cookie read as a Bearer token, else whatever auth says of no
/// credentials (anonymous admin when auth is off).
pub(crate) fn caller(state: &AppState, headers: &HeaderMap) -> Result<Principal, AuthError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return state.auth.authenticate(headers);
    }
    if let Some(token) = cookie_token(headers) {
        let mut bearer = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
            bearer.insert(header::AUTHORIZATION, value);
        }
        return state.auth.authenticate(&bearer);
    }
    state.auth.authenticate(headers)
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| crate::rest::percent_decode(value))
        })
        .filter(|token| !token.is_empty())
}

/// The header frame's idea of who is signed in.
pub(crate) fn viewer(state: &AppState, principal: &Principal) -> html::Viewer {
    html::Viewer {
        name: principal.name.clone(),
        auth_enabled: state.auth.enabled(),
    }
}

/// An error as a page: the token form when credentials are missing or unknown,
/// else the error's message under its HTTP status.
pub(crate) fn error_page(error: ApiError, next: &str) -> Response {
    if error.code == 16 {
        return login_page(StatusCode::UNAUTHORIZED, next, None);
    }
    let status = error.status();
    let title = match error.code {
        5 => "Not found",
        7 => "Not allowed",
        3 | 9 => "Request refused",
        _ => "Something went wrong",
    };
    let body = format!(
        "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/ui/\">Back to the dashboard</a></p>",
        html::esc(&error.message)
    );
    html(status, html::page(title, &[], None, &body))
}

fn login_page(status: StatusCode, next: &str, problem: Option<&str>) -> Response {
    let next = safe_next(next);
    let problem = problem
        .map(|text| format!("<p class=\"error\" role=\"alert\">{}</p>", html::esc(text)))
        .unwrap_or_default();
    let body = format!(
        "{problem}<p>This server requires a token. It is kept for this browser session only.</p>\
         <form method=\"post\" action=\"/ui/login\" class=\"login\" data-login>\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"token\">Token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Sign in</button></form>",
        html::esc(&next)
    );
    html(status, html::page("Sign in", &[], None, &body))
}

/// Where to go after signing in: a console path, never another site.
fn safe_next(next: &str) -> String {
    if next.starts_with("/ui/") && !next.starts_with("//") && !next.contains('\\') {
        next.to_owned()
    } else {
        "/ui/".to_owned()
    }
}

async fn login_form(Query(query): Query<HashMap<String, String>>) -> Response {
    let next = query.get("next").cloned().unwrap_or_default();
    login_page(StatusCode::OK, &next, None)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let mut headers = HeaderMap::new();
    let token = form.token.trim();
    let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return login_page(
            StatusCode::UNAUTHORIZED,
            &form.next,
            Some("that token is not valid"),
        );
    };
    headers.insert(header::AUTHORIZATION, value);
    if state.auth.authenticate(&headers).is_err() {
        return login_page(
            StatusCode::UNAUTHORIZED,
            &form.next,
            Some("that token is not valid"),
        );
    }
    let mut response = redirect(&safe_next(&form.next));
    let cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict",
        html::url_encode(token)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
    let mut response = redirect("/ui/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("crscan_console=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// Whether the script asked (it wants JSON, not a redirect).
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/json"))
}

fn json_error(error: &ApiError) -> Response {
    (
        error.status(),
        axum::Json(serde_json::json!({"code": error.code, "message": error.message})),
    )
        .into_response()
}

/// Answers an action's failure: JSON to the script, a page to a form post.
fn action_error(headers: &HeaderMap, error: ApiError, next: &str) -> Response {
    if wants_json(headers) {
        json_error(&error)
    } else {
        error_page(error, next)
    }
}

/// Starts a scan (ScannerService.Scan). The script gets the operation and the
/// scan result's id to watch; a plain form post goes back to the image.
async fn scan(
    State(state): State<AppState>,
    Path(image_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let back = format!("/ui/images/{}", html::url_encode(&image_id));
    let principal = match caller(&state, &headers) {
        Ok(principal) => principal,
        Err(error) => return action_error(&headers, error.into(), &back),
    };
    let call = Call {
        principal,
        idempotency_key: None,
    };
    match state.service.scan(&call, &image_id).await {
        Ok(operation) => {
            if wants_json(&headers) {
                let scan_result_id = match &operation.metadata {
                    OperationMetadata::Scan { scan_result_id } => scan_result_id.clone(),
                    _ => String::new(),
                };
                axum::Json(serde_json::json!({
                    "operationId": operation.id,
                    "scanResultId": scan_result_id,
                }))
                .into_response()
            } else {
                redirect(&back)
            }
        }
        Err(error) => action_error(&headers, error, &back),
    }
}

/// An operation as the REST API renders it, for the script to poll.
async fn operation(
    State(state): State<AppState>,
    Path(operation_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let answer = match caller(&state, &headers) {
        Ok(principal) => state.service.get_operation(&principal, &operation_id).await,
        Err(error) => Err(error.into()),
    };
    match answer {
        Ok(operation) => axum::Json(crate::rest::wire::operation(&operation)).into_response(),
        Err(error) => json_error(&error),
    }
}

/// Deletes an image (ImageService.Delete) and goes to its repository.
async fn delete_image(
    State(state): State<AppState>,
    Path(image_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let back = format!("/ui/images/{}", html::url_encode(&image_id));
    let principal = match caller(&state, &headers) {
        Ok(principal) => principal,
        Err(error) => return action_error(&headers, error.into(), &back),
    };
    let image = match state.service.get_image(&principal, &image_id).await {
        Ok(image) => image,
        Err(error) => return action_error(&headers, error, &back),
    };
    let call = Call {
        principal,
        idempotency_key: None,
    };
    match state.service.delete_image(&call, &image_id).await {
        Ok(_) => redirect(&format!(
            "/ui/repositories/{}",
            html::url_encode(&image.repository_id)
        )),
        Err(error) => action_error(&headers, error, &back),
    }
}

/// The scan policy form: a push rule and one scheduled rule, each with its
/// repository prefixes (one per line) and an "enabled" box.
#[derive(Deserialize, Default)]
struct PolicyForm {
    #[serde(default)]
    push_prefixes: String,
    #[serde(default)]
    push_enabled: Option<String>,
    #[serde(default)]
    schedule_prefixes: String,
    #[serde(default)]
    schedule_days: String,
    #[serde(default)]
    schedule_enabled: Option<String>,
}

fn prefixes(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

impl PolicyForm {
    fn rules(&self) -> Result<ScanRules, ApiError> {
        let push = prefixes(&self.push_prefixes);
        let push_rule = if push.is_empty() {
            None
        } else {
            Some(
                PushRule::new(push, self.push_enabled.is_none())
                    .map_err(|error| rule_error("rules.pushRule", error))?,
            )
        };
        let scheduled = prefixes(&self.schedule_prefixes);
        let schedule_rules = if scheduled.is_empty() {
            Vec::new()
        } else {
            let days = self.schedule_days.trim();
            let days: i64 = days.parse().map_err(|_| {
                ApiError::invalid(format!(
                    "rescan period {days:?} is not a whole number of days"
                ))
            })?;
            vec![
                ScheduledRule::new(
                    scheduled,
                    days.saturating_mul(86_400),
                    self.schedule_enabled.is_none(),
                )
                .map_err(|error| rule_error("rules.scheduleRules[0]", error))?,
            ]
        };
        Ok(ScanRules {
            push_rule,
            schedule_rules,
        })
    }
}

/// Saves the registry's scan rules (ScanPolicyService.Create or Update).
async fn edit_policy(
    State(state): State<AppState>,
    Path(registry_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<PolicyForm>,
) -> Response {
    let back = format!("/ui/registries/{}", html::url_encode(&registry_id));
    let principal = match caller(&state, &headers) {
        Ok(principal) => principal,
        Err(error) => return error_page(error.into(), &back),
    };
    let rules = match form.rules() {
        Ok(rules) => rules,
        Err(error) => return error_page(error, &back),
    };
    let call = Call {
        principal,
        idempotency_key: None,
    };
    match state
        .service
        .set_scan_rules(&call, &registry_id, rules)
        .await
    {
        Ok(_) => redirect(&format!("{back}?saved=1#policy")),
        Err(error) => error_page(error, &back),
    }
}

/// A scan as a report: `?format=json|csv|cyclonedx|sarif`, rendered by
/// `crscan-report` from the stored findings.
async fn download(
    State(state): State<AppState>,
    Path(scan_result_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let back = format!("/ui/scans/{}", html::url_encode(&scan_result_id));
    let principal = match caller(&state, &headers) {
        Ok(principal) => principal,
        Err(error) => return error_page(error.into(), &back),
    };
    let name = query.get("format").map(String::as_str).unwrap_or("json");
    let format = match name.parse::<ScanFormat>() {
        Ok(ScanFormat::Table) | Err(_) => {
            return error_page(
                ApiError::invalid(format!(
                    "format {name:?} is not one of json, csv, cyclonedx, sarif"
                )),
                &back,
            );
        }
        Ok(format) => format,
    };
    let built_at = database_built_at(&state).await;
    let document = match state
        .service
        .scan_document(&principal, &scan_result_id, built_at)
        .await
    {
        Ok(document) => document,
        Err(error) => return error_page(error, &back),
    };
    let text = match document.render(format) {
        Ok(text) => text,
        Err(error) => return error_page(ApiError::internal(error.to_string()), &back),
    };
    let (content_type, extension) = match format {
        ScanFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ScanFormat::Sarif => ("application/sarif+json", "sarif.json"),
        ScanFormat::CycloneDx => ("application/vnd.cyclonedx+json", "cdx.json"),
        _ => ("application/json", "json"),
    };
    let disposition = format!(
        "attachment; filename=\"{}.{extension}\"",
        scan_result_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        text,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The build time of the server's database (what a report names), read as
/// `/readyz` reads it.
async fn database_built_at(state: &AppState) -> Option<i64> {
    match database_state(state).await {
        DatabaseState::Fresh { built_at, .. } | DatabaseState::Stale { built_at, .. } => {
            Some(built_at)
        }
        _ => None,
    }
}

/// The database check `/readyz` uses (it opens a file: off the async threads).
pub(crate) async fn database_state(state: &AppState) -> DatabaseState {
    let check = state.database.clone();
    tokio::task::spawn_blocking(move || check.state())
        .await
        .unwrap_or_else(|error| DatabaseState::Unusable(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_read_back_as_the_token() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; crscan_console=s3%3Acret; last=2"),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("s3:cret"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn sign_in_returns_only_to_console_paths() {
        assert_eq!(safe_next("/ui/images/x"), "/ui/images/x");
        assert_eq!(safe_next("https://evil.example/"), "/ui/");
        assert_eq!(safe_next("//evil.example/ui/"), "/ui/");
        assert_eq!(safe_next(""), "/ui/");
    }

    #[test]
    fn policy_forms_become_validated_rules() {
        let form = PolicyForm {
            push_prefixes: "crp1/app\n\n crp1/web \n".to_owned(),
            push_enabled: Some("on".to_owned()),
            schedule_prefixes: "crp1/app".to_owned(),
            schedule_days: "7".to_owned(),
            schedule_enabled: None,
        };
        let rules = form.rules().unwrap();
        let push = rules.push_rule.unwrap();
        assert_eq!(push.repository_prefixes(), ["crp1/app", "crp1/web"]);
        assert!(!push.disabled);
        assert_eq!(rules.schedule_rules[0].rescan_period_seconds(), 7 * 86_400);
        assert!(rules.schedule_rules[0].disabled);
        let bad = PolicyForm {
            schedule_prefixes: "crp1/app".to_owned(),
            schedule_days: "soon".to_owned(),
            ..PolicyForm::default()
        };
        assert!(bad.rules().is_err());
    }
}
