//! `LifecyclePolicyService` over REST: its paths (`lifecyclePolicies`,
//! `dryRunLifecyclePolicy/{id}`, `dryRunLifecyclePolicyResults…`), its request bodies
//! and its JSON, calling the same [`Service`] operations as gRPC.

use axum::http::Method;
use crscan_store::{DryRunResult, LifecyclePolicy, LifecycleRule};
use serde::{Deserialize, Serialize};

use super::{ApiResult, Incoming, json, wire};
#[cfg(debug_assertions)]
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::service::{LifecyclePolicyUpdate, LifecycleRuleRequest, NewLifecyclePolicy, Service};

/// The collections this module answers.
pub(crate) const COLLECTIONS: [&str; 3] = [
    "lifecyclePolicies",
    "dryRunLifecyclePolicy",
    "dryRunLifecyclePolicyResults",
];

fn timestamp(millis: i64) -> String {
    crscan_model::time::rfc3339_millis(millis)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LifecycleRuleJson {
    #[serde(default)]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expire_period: Option<String>,
    #[serde(default)]
    tag_regexp: String,
    #[serde(default)]
    untagged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retained_top: Option<Int64>,
}

/// An int64 as protobuf JSON writes it (a decimal string) and reads it (a string or
/// a number).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Int64 {
    Text(String),
    Number(i64),
}

impl Int64 {
    fn value(&self, field: &str) -> Result<i64, ApiError> {
        match self {
            Int64::Text(text) => text
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid(format!("{field} {text:?} is not an integer"))),
            Int64::Number(number) => Ok(*number),
        }
    }
}

/// `"172800s"` or `"172800.5s"` as (seconds, nanoseconds).
fn parse_duration(text: &str) -> Option<(i64, i32)> {
    let seconds = text.strip_suffix('s')?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 9
    {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    Some((whole.parse().ok()?, nanos))
}

fn rules_from(rules: Vec<LifecycleRuleJson>) -> Result<Vec<LifecycleRuleRequest>, ApiError> {
    rules
        .into_iter()
        .enumerate()
        .map(|(index, rule)| {
            let field = format!("rules[{index}]");
            let expire_period = match rule.expire_period.as_deref() {
                None | Some("") => None,
                Some(text) => Some(parse_duration(text).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{field}.expirePeriod {text:?} is not a duration such as \"172800s\""
                    ))
                })?),
            };
            Ok(LifecycleRuleRequest {
                description: rule.description,
                expire_period,
                tag_regexp: rule.tag_regexp,
                untagged: rule.untagged,
                retained_top: match &rule.retained_top {
                    Some(value) => value.value(&format!("{field}.retainedTop"))?,
                    None => 0,
                },
            })
        })
        .collect()
}

fn rule_json(rule: &LifecycleRule) -> LifecycleRuleJson {
    let seconds = rule.expire_period_seconds();
    LifecycleRuleJson {
        description: rule.description().to_owned(),
        expire_period: (seconds > 0).then(|| format!("{seconds}s")),
        tag_regexp: rule.tag_regexp().to_owned(),
        untagged: rule.untagged(),
        retained_top: Some(Int64::Text(rule.retained_top().to_string())),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LifecyclePolicyJson<'a> {
    id: &'a str,
    name: &'a str,
    repository_id: &'a str,
    description: &'a str,
    status: &'static str,
    created_at: String,
    rules: Vec<LifecycleRuleJson>,
}

pub(crate) fn policy(policy: &LifecyclePolicy) -> LifecyclePolicyJson<'_> {
    LifecyclePolicyJson {
        id: &policy.id,
        name: &policy.name,
        repository_id: &policy.repository_id,
        description: &policy.description,
        status: policy.status.name(),
        created_at: timestamp(policy.created_at),
        rules: policy.rules.iter().map(rule_json).collect(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DryRunResultJson<'a> {
    dry_run_lifecycle_policy_result_id: &'a str,
    lifecycle_policy_id: &'a str,
    run_at: String,
    affected_images_count: String,
}

pub(crate) fn dry_run(result: &DryRunResult) -> DryRunResultJson<'_> {
    DryRunResultJson {
        dry_run_lifecycle_policy_result_id: &result.id,
        lifecycle_policy_id: &result.policy_id,
        run_at: timestamp(result.run_at),
        affected_images_count: result.affected_count.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(default)]
    repository_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    rules: Vec<LifecycleRuleJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    #[serde(default)]
    update_mask: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    rules: Option<Vec<LifecycleRuleJson>>,
}

/// Answers a path of one of [`COLLECTIONS`].
pub(crate) async fn route(
    service: &Service,
    path: &str,
    (collection, item, verb): (&str, &str, &str),
    incoming: Incoming,
) -> ApiResult {
    let method = incoming.method.clone();
    let principal = &incoming.principal;
    match (collection, item.is_empty(), verb) {
        ("lifecyclePolicies", true, "") if method == Method::GET => {
            let page = service
                .list_lifecycle_policies(
                    principal,
                    &incoming.query("registryId"),
                    &incoming.query("repositoryId"),
                    &incoming.list()?,
                )
                .await?;
            Ok(json(wire::page("lifecyclePolicies", &page, |item| {
                wire::value(policy(item))
            })))
        }
        ("lifecyclePolicies", true, "") if method == Method::POST => {
            let call = incoming.call()?;
            let body: CreateBody = incoming.body().await?;
            let new = NewLifecyclePolicy {
                repository_id: body.repository_id,
                name: body.name,
                description: body.description,
                status: body.status,
                rules: rules_from(body.rules)?,
            };
            let operation = service.create_lifecycle_policy(&call, new).await?;
            Ok(json(wire::operation(&operation)))
        }
        #[cfg(debug_assertions)]
        ("lifecyclePolicies", true, "runAt") if method == Method::POST => {
            debug_run(service, principal, &incoming.query("nowMillis")).await
        }
        ("lifecyclePolicies", false, "") if method == Method::GET => Ok(json(policy(
            &service.get_lifecycle_policy(principal, item).await?,
        ))),
        ("lifecyclePolicies", false, "") if method == Method::PATCH => {
            let call = incoming.call()?;
            let body: UpdateBody = incoming.body().await?;
            let update = LifecyclePolicyUpdate {
                update_mask: wire::update_mask(body.update_mask.as_deref()),
                name: body.name,
                description: body.description,
                status: body.status,
                rules: body.rules.map(rules_from).transpose()?,
            };
            let operation = service.update_lifecycle_policy(&call, item, update).await?;
            Ok(json(wire::operation(&operation)))
        }
        ("lifecyclePolicies", false, "") if method == Method::DELETE => {
            let operation = service
                .delete_lifecycle_policy(&incoming.call()?, item)
                .await?;
            Ok(json(wire::operation(&operation)))
        }
        ("dryRunLifecyclePolicy", false, "") if method == Method::POST => {
            let operation = service
                .dry_run_lifecycle_policy(&incoming.call()?, item)
                .await?;
            Ok(json(wire::operation(&operation)))
        }
        ("dryRunLifecyclePolicyResults", true, "") if method == Method::GET => {
            let page = service
                .list_dry_run_results(
                    principal,
                    &incoming.query("lifecyclePolicyId"),
                    &incoming.list()?,
                )
                .await?;
            Ok(json(wire::page(
                "dryRunLifecyclePolicyResults",
                &page,
                |item| wire::value(dry_run(item)),
            )))
        }
        ("dryRunLifecyclePolicyResults", false, "") if method == Method::GET => Ok(json(dry_run(
            &service.get_dry_run_result(principal, item).await?,
        ))),
        ("dryRunLifecyclePolicyResults", false, "affectedImages") if method == Method::GET => {
            let page = service
                .list_dry_run_affected_images(principal, item, &incoming.list()?)
                .await?;
            Ok(json(wire::page("affectedImages", &page, |item| {
                wire::value(wire::image(item))
            })))
        }
        _ if verb.is_empty() => Err(ApiError::unimplemented(format!(
            "{method} {path} is not a method of this API"
        ))),
        _ => Err(ApiError::unimplemented(format!(
            "method :{verb} of {collection} is not implemented by crscan"
        ))),
    }
}

/// Debug builds only (tests): `POST lifecyclePolicies:runAt?nowMillis=…` applies every
/// ACTIVE policy as the scheduler does, at the given time. Release builds do not have
/// this path.
#[cfg(debug_assertions)]
async fn debug_run(service: &Service, principal: &Principal, text: &str) -> ApiResult {
    principal.require(&[])?;
    let now = text
        .parse::<i64>()
        .map_err(|_| ApiError::invalid(format!("nowMillis {text:?} is not an integer")))?;
    let deleted = service.run_lifecycle_policies(now).await?;
    let deleted: Vec<serde_json::Value> = deleted
        .iter()
        .map(|deletion| {
            serde_json::json!({
                "lifecyclePolicyId": deletion.policy_id,
                "imageId": deletion.image_id,
                "digest": deletion.digest,
                "tags": deletion.tags,
            })
        })
        .collect();
    Ok(json(serde_json::json!({ "deleted": deleted })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_their_fraction() {
        assert_eq!(parse_duration("172800s"), Some((172_800, 0)));
        assert_eq!(parse_duration("1.5s"), Some((1, 500_000_000)));
        assert_eq!(parse_duration("2d"), None);
        assert_eq!(parse_duration("s"), None);
    }
}
