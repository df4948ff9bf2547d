//! The console's view of a repository's lifecycle policies: each policy's status and
//! rules, its newest dry run with the images it would delete, and for admins a
//! "Dry run" button. Everything comes from the same `LifecyclePolicyService`
//! operations as REST and gRPC.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::header::HeaderMap;
use axum::response::Response;
use crscan_store::{LifecyclePolicy, LifecycleRule};

use super::html::{esc, short_digest, time, url_encode};
use super::{action_error, caller, redirect};
use crate::AppState;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::service::{Call, ListRequest, Service};

/// How many affected images the page lists per dry run.
const SHOWN_IMAGES: i64 = 50;

/// One rule in words: "tags matching v.* or untagged; keeps the 2 newest; older than
/// 2 days".
fn rule_text(rule: &LifecycleRule) -> String {
    let mut filter = Vec::new();
    if !rule.tag_regexp().is_empty() {
        filter.push(format!(
            "tags matching <code>{}</code>",
            esc(rule.tag_regexp())
        ));
    }
    if rule.untagged() {
        filter.push("untagged".to_owned());
    }
    let mut text = filter.join(" or ");
    if rule.retained_top() > 0 {
        let _ = write!(text, "; keeps the {} newest", rule.retained_top());
    }
    let days = rule.expire_period_seconds() / 86_400;
    if days > 0 {
        let _ = write!(text, "; older than {days} days");
    }
    if !rule.description().is_empty() {
        let _ = write!(text, " ({})", esc(rule.description()));
    }
    text
}

async fn policy_html(
    service: &Service,
    principal: &Principal,
    policy: &LifecyclePolicy,
    admin: bool,
) -> Result<String, ApiError> {
    let mut html = format!(
        "<article class=\"lifecycle\" data-policy=\"{}\"><h3>{} <span class=\"tag\">{}</span></h3><ul>",
        esc(&policy.id),
        esc(if policy.name.is_empty() {
            &policy.id
        } else {
            &policy.name
        }),
        policy.status.name()
    );
    for rule in &policy.rules {
        let _ = write!(html, "<li>{}</li>", rule_text(rule));
    }
    html.push_str("</ul>");
    let newest = service
        .list_dry_run_results(
            principal,
            &policy.id,
            &ListRequest {
                page_size: 1,
                ..ListRequest::default()
            },
        )
        .await?;
    match newest.items.first() {
        None => html.push_str("<p>No dry run yet.</p>"),
        Some(result) => {
            let _ = write!(
                html,
                "<p>Dry run at {}: <span class=\"dry-run-count\">{}</span> images would be deleted.</p>",
                time(result.run_at),
                result.affected_count
            );
            let images = service
                .list_dry_run_affected_images(
                    principal,
                    &result.id,
                    &ListRequest {
                        page_size: SHOWN_IMAGES,
                        ..ListRequest::default()
                    },
                )
                .await?;
            if !images.items.is_empty() {
                html.push_str("<ul class=\"affected\">");
                for image in &images.items {
                    let tags = if image.tags.is_empty() {
                        "untagged".to_owned()
                    } else {
                        image
                            .tags
                            .iter()
                            .map(|tag| format!("<span class=\"tag\">{}</span>", esc(tag)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    let _ = write!(
                        html,
                        "<li><code>{}</code> {tags}</li>",
                        short_digest(&image.digest.to_string())
                    );
                }
                html.push_str("</ul>");
            }
        }
    }
    if admin {
        let _ = write!(
            html,
            "<form method=\"post\" action=\"/ui/lifecycle/{}/dry-run\"><button type=\"submit\">Dry run</button></form>",
            url_encode(&policy.id)
        );
    }
    html.push_str("</article>");
    Ok(html)
}

/// The repository page's "Lifecycle policies" section.
pub(super) async fn section(
    service: &Service,
    principal: &Principal,
    repository_id: &str,
) -> Result<String, ApiError> {
    let policies = service
        .list_lifecycle_policies(
            principal,
            "",
            repository_id,
            &ListRequest {
                page_size: 1000,
                ..ListRequest::default()
            },
        )
        .await?;
    let admin = service.capabilities(principal).admin;
    let mut html = String::from(
        "<section id=\"lifecycle\" aria-labelledby=\"lifecycle-title\"><h2 id=\"lifecycle-title\">Lifecycle policies</h2>",
    );
    if policies.items.is_empty() {
        html.push_str(
            "<p>No lifecycle policy: images stay until someone deletes them. Create one with \
             <code>POST /container-registry/v1/lifecyclePolicies</code> or the SDKs.</p>",
        );
    }
    for policy in &policies.items {
        html.push_str(&policy_html(service, principal, policy, admin).await?);
    }
    html.push_str("</section>");
    Ok(html)
}

/// Dry-runs a policy (`LifecyclePolicyService.DryRun`) and goes back to its
/// repository's page.
pub(super) async fn dry_run(
    State(state): State<AppState>,
    Path(policy_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let back = "/ui/registries";
    let principal = match caller(&state, &headers) {
        Ok(principal) => principal,
        Err(error) => return action_error(&headers, error.into(), back),
    };
    let policy = match state
        .service
        .get_lifecycle_policy(&principal, &policy_id)
        .await
    {
        Ok(policy) => policy,
        Err(error) => return action_error(&headers, error, back),
    };
    let repository_page = format!(
        "/ui/repositories/{}#lifecycle",
        url_encode(&policy.repository_id)
    );
    let call = Call {
        principal,
        idempotency_key: None,
    };
    match state
        .service
        .dry_run_lifecycle_policy(&call, &policy_id)
        .await
    {
        Ok(_) => redirect(&repository_page),
        Err(error) => action_error(&headers, error, &repository_page),
    }
}
