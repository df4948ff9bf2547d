//! `LifecyclePolicyService` as transport-neutral operations, and the scheduler's run
//! of every `ACTIVE` policy. Dry runs and runs ask the one rule evaluation
//! ([`crscan_store::lifecycle_victims`]) which images go; a run deletes them through
//! the same path as `ImageService.Delete` ([`Service::remove_image`]), and GC then
//! reclaims the blobs no image references.
//!
//! Reads take the read roles; Create, Update, Delete and DryRun take admin, as the
//! scan policy calls do.

use crscan_store::{
    DryRunResult, IdKind, Image, ImageQuery, LifecyclePolicy, LifecyclePolicyOrder,
    LifecyclePolicyQuery, LifecycleRule, LifecycleStatus, Operation, OperationMetadata,
    OperationResponse, lifecycle_victims, new_id, now,
};

use super::{
    ADMIN, Call, ListRequest, Page, READ, check_description, check_id, check_optional_id,
    check_resource_name, mask_paths, page, paging, parse_filter, parse_order,
};
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::service::Service;

/// A lifecycle rule as a request gives it, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct LifecycleRuleRequest {
    pub description: String,
    /// `expire_period` as (seconds, nanoseconds); `None` when not given.
    pub expire_period: Option<(i64, i32)>,
    pub tag_regexp: String,
    pub untagged: bool,
    pub retained_top: i64,
}

/// A new lifecycle policy.
#[derive(Debug, Clone, Default)]
pub struct NewLifecyclePolicy {
    pub repository_id: String,
    pub name: String,
    pub description: String,
    /// `ACTIVE`, `DISABLED`, or empty / `STATUS_UNSPECIFIED` (then `DISABLED`).
    pub status: String,
    pub rules: Vec<LifecycleRuleRequest>,
}

/// An update of a lifecycle policy: the fields named by the mask, or without one the
/// fields given.
#[derive(Debug, Clone, Default)]
pub struct LifecyclePolicyUpdate {
    pub update_mask: Option<Vec<String>>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub rules: Option<Vec<LifecycleRuleRequest>>,
}

/// One image a lifecycle run deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleDeletion {
    pub policy_id: String,
    pub image_id: String,
    pub digest: String,
    pub tags: Vec<String>,
}

/// Checks a request's rules, each error naming the rule (`rules[1].expirePeriod …`).
pub fn lifecycle_rules(rules: Vec<LifecycleRuleRequest>) -> Result<Vec<LifecycleRule>, ApiError> {
    let mut checked = Vec::with_capacity(rules.len());
    for (index, rule) in rules.into_iter().enumerate() {
        let field = format!("rules[{index}]");
        let seconds = match rule.expire_period {
            None => 0,
            Some((seconds, 0)) => seconds,
            Some((seconds, nanos)) => {
                return Err(ApiError::invalid(format!(
                    "{field}.expirePeriod {seconds}.{nanos:09}s is not a multiple of 24 hours (86400s)"
                )));
            }
        };
        checked.push(
            LifecycleRule::new(
                rule.description,
                seconds,
                rule.tag_regexp,
                rule.untagged,
                rule.retained_top,
            )
            .map_err(|error| ApiError::invalid(format!("{field}.{error}")))?,
        );
    }
    Ok(checked)
}

/// A status by name; empty and `STATUS_UNSPECIFIED` give `None`.
fn status(text: &str) -> Result<Option<LifecycleStatus>, ApiError> {
    match text {
        "" | "STATUS_UNSPECIFIED" => Ok(None),
        name => LifecycleStatus::parse(name)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("status {name:?} is not ACTIVE or DISABLED"))),
    }
}

/// The dry-run lists take no filter and no ordering (results come newest first,
/// affected images as the run found them); asking for one is refused rather than
/// ignored.
fn plain_list(list: &ListRequest) -> Result<(), ApiError> {
    parse_filter(&list.filter, &[])?;
    parse_order(&list.order_by, &[], false)?;
    Ok(())
}

impl Service {
    /// Deletes an image: its tags and its manifest; GC then reclaims the blobs no
    /// image references. `ImageService.Delete` and the lifecycle runs both call it.
    pub(crate) async fn remove_image(&self, image_id: &str) -> Result<(), ApiError> {
        Ok(self.store().delete_image(image_id).await?)
    }

    /// Every image of a repository.
    async fn all_repository_images(&self, repository_name: &str) -> Result<Vec<Image>, ApiError> {
        Ok(self
            .store()
            .list_images(&ImageQuery {
                repository_name: Some(repository_name.to_owned()),
                limit: i64::from(i32::MAX),
                ..ImageQuery::default()
            })
            .await?)
    }

    /// The images `policy` picks at `now`, out of the repository's images.
    async fn lifecycle_picks(
        &self,
        policy: &LifecyclePolicy,
        now: i64,
    ) -> Result<Vec<Image>, ApiError> {
        let repository = self.store().get_repository(&policy.repository_id).await?;
        let images = self.all_repository_images(&repository.name).await?;
        let victims = lifecycle_victims(&policy.rules, &images, now);
        Ok(images
            .into_iter()
            .filter(|image| victims.contains(&image.id))
            .collect())
    }

    /// Refuses a second `ACTIVE` policy in a repository: the hosted service allows one.
    async fn check_one_active(&self, policy: &LifecyclePolicy) -> Result<(), ApiError> {
        if policy.status != LifecycleStatus::Active {
            return Ok(());
        }
        let others = self
            .store()
            .list_lifecycle_policies(&policy.repository_id, "", 0, i64::from(i32::MAX))
            .await?;
        if let Some(active) = others
            .iter()
            .find(|other| other.id != policy.id && other.status == LifecycleStatus::Active)
        {
            return Err(ApiError::new(
                9,
                format!(
                    "repository {} already has the ACTIVE lifecycle policy {}; a repository has at most one",
                    policy.repository_id, active.id
                ),
            ));
        }
        Ok(())
    }

    pub async fn get_lifecycle_policy(
        &self,
        principal: &Principal,
        lifecycle_policy_id: &str,
    ) -> Result<LifecyclePolicy, ApiError> {
        principal.require(READ)?;
        check_id("lifecyclePolicyId", lifecycle_policy_id)?;
        Ok(self
            .store()
            .get_lifecycle_policy(lifecycle_policy_id)
            .await?)
    }

    /// Policies of a repository or of a registry (one of the two is required).
    pub async fn list_lifecycle_policies(
        &self,
        principal: &Principal,
        registry_id: &str,
        repository_id: &str,
        list: &ListRequest,
    ) -> Result<Page<LifecyclePolicy>, ApiError> {
        principal.require(READ)?;
        let registry_id = check_optional_id("registryId", registry_id)?;
        let repository_id = check_optional_id("repositoryId", repository_id)?;
        if registry_id.is_none() && repository_id.is_none() {
            return Err(ApiError::invalid("registryId or repositoryId is required"));
        }
        let (start, limit) = paging(list)?;
        // As the hosted service: filter by name, order by name, createdAt or status.
        let name = parse_filter(&list.filter, &["name"])?
            .pop()
            .map(|(_, value)| value);
        let (order, descending) = match parse_order(
            &list.order_by,
            &["name", "createdAt", "created_at", "status"],
            false,
        )?
        .pop()
        {
            None => (LifecyclePolicyOrder::CreatedAt, false),
            Some((field, direction)) => (
                match field.as_str() {
                    "name" => LifecyclePolicyOrder::Name,
                    "status" => LifecyclePolicyOrder::Status,
                    _ => LifecyclePolicyOrder::CreatedAt,
                },
                direction.unwrap_or(false),
            ),
        };
        let rows = self
            .store()
            .query_lifecycle_policies(&LifecyclePolicyQuery {
                repository_id: repository_id.unwrap_or_default(),
                registry_id: registry_id.unwrap_or_default(),
                name,
                order,
                descending,
                offset: start.offset,
                limit: limit + 1,
            })
            .await?;
        Ok(page(rows, &start, limit, |_| None))
    }

    pub async fn create_lifecycle_policy(
        &self,
        call: &Call,
        new: NewLifecyclePolicy,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "LifecyclePolicyService.Create";
        call.principal.require(ADMIN)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        check_id("repositoryId", &new.repository_id)?;
        check_resource_name("name", &new.name, true)?;
        check_description(&new.description)?;
        let status = status(&new.status)?.unwrap_or(LifecycleStatus::Disabled);
        let rules = lifecycle_rules(new.rules)?;
        let store = self.store();
        let repository = store.get_repository(&new.repository_id).await?;
        let policy = LifecyclePolicy {
            id: new_id(IdKind::LifecyclePolicy),
            repository_id: repository.id,
            registry_id: repository.registry_id,
            name: new.name,
            description: new.description,
            status,
            rules,
            created_at: now(),
        };
        self.check_one_active(&policy).await?;
        let policy = store.create_lifecycle_policy(&policy).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::CreateLifecyclePolicy {
                lifecycle_policy_id: policy.id.clone(),
            },
            OperationResponse::LifecyclePolicy(policy),
        )
        .await
    }

    pub async fn update_lifecycle_policy(
        &self,
        call: &Call,
        lifecycle_policy_id: &str,
        update: LifecyclePolicyUpdate,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "LifecyclePolicyService.Update";
        const FIELDS: [&str; 4] = ["name", "description", "status", "rules"];
        call.principal.require(ADMIN)?;
        check_id("lifecyclePolicyId", lifecycle_policy_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        let store = self.store();
        let mut policy = store.get_lifecycle_policy(lifecycle_policy_id).await?;
        // Without a mask, the fields given change; a masked field without a value
        // goes back to its default.
        let given: Vec<String> = [
            update.name.is_some(),
            update.description.is_some(),
            update.status.is_some(),
            update.rules.is_some(),
        ]
        .iter()
        .zip(FIELDS)
        .filter(|(given, _)| **given)
        .map(|(_, field)| field.to_owned())
        .collect();
        for path in mask_paths(update.update_mask.as_ref(), &FIELDS, given)? {
            match path.split('.').next().unwrap_or_default() {
                "name" => {
                    let name = update.name.clone().unwrap_or_default();
                    check_resource_name("name", &name, true)?;
                    policy.name = name;
                }
                "description" => {
                    let description = update.description.clone().unwrap_or_default();
                    check_description(&description)?;
                    policy.description = description;
                }
                "status" => {
                    policy.status = status(update.status.as_deref().unwrap_or_default())?
                        .ok_or_else(|| {
                            ApiError::invalid("status is required: ACTIVE or DISABLED")
                        })?;
                }
                _ => policy.rules = lifecycle_rules(update.rules.clone().unwrap_or_default())?,
            }
        }
        self.check_one_active(&policy).await?;
        let policy = store.update_lifecycle_policy(&policy).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::UpdateLifecyclePolicy {
                lifecycle_policy_id: policy.id.clone(),
            },
            OperationResponse::LifecyclePolicy(policy),
        )
        .await
    }

    pub async fn delete_lifecycle_policy(
        &self,
        call: &Call,
        lifecycle_policy_id: &str,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "LifecyclePolicyService.Delete";
        call.principal.require(ADMIN)?;
        check_id("lifecyclePolicyId", lifecycle_policy_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        self.store()
            .delete_lifecycle_policy(lifecycle_policy_id)
            .await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::DeleteLifecyclePolicy {
                lifecycle_policy_id: lifecycle_policy_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }

    /// Computes what the policy would delete now, whatever its status, and stores the
    /// result with those images; deletes nothing.
    pub async fn dry_run_lifecycle_policy(
        &self,
        call: &Call,
        lifecycle_policy_id: &str,
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "LifecyclePolicyService.DryRun";
        call.principal.require(ADMIN)?;
        check_id("lifecyclePolicyId", lifecycle_policy_id)?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        let store = self.store();
        let policy = store.get_lifecycle_policy(lifecycle_policy_id).await?;
        let run_at = now();
        let affected = self.lifecycle_picks(&policy, run_at).await?;
        let result = DryRunResult {
            id: new_id(IdKind::DryRunResult),
            policy_id: policy.id.clone(),
            run_at,
            affected_count: i64::try_from(affected.len()).unwrap_or(i64::MAX),
        };
        let result = store.insert_dry_run(&result, &affected).await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::DryRunLifecyclePolicy {
                dry_run_lifecycle_policy_result_id: result.id.clone(),
                lifecycle_policy_id: policy.id,
            },
            OperationResponse::DryRunResult(result),
        )
        .await
    }

    pub async fn get_dry_run_result(
        &self,
        principal: &Principal,
        result_id: &str,
    ) -> Result<DryRunResult, ApiError> {
        principal.require(READ)?;
        check_id("dryRunLifecyclePolicyResultId", result_id)?;
        Ok(self.store().get_dry_run(result_id).await?)
    }

    /// The dry-run results of a policy, newest first.
    pub async fn list_dry_run_results(
        &self,
        principal: &Principal,
        lifecycle_policy_id: &str,
        list: &ListRequest,
    ) -> Result<Page<DryRunResult>, ApiError> {
        principal.require(READ)?;
        check_id("lifecyclePolicyId", lifecycle_policy_id)?;
        plain_list(list)?;
        let (start, limit) = paging(list)?;
        let store = self.store();
        store.get_lifecycle_policy(lifecycle_policy_id).await?;
        let rows = store
            .list_dry_runs(lifecycle_policy_id, start.offset, limit + 1)
            .await?;
        Ok(page(rows, &start, limit, |_| None))
    }

    /// The images a dry run would have deleted, as they were at the run.
    pub async fn list_dry_run_affected_images(
        &self,
        principal: &Principal,
        result_id: &str,
        list: &ListRequest,
    ) -> Result<Page<Image>, ApiError> {
        principal.require(READ)?;
        check_id("dryRunLifecyclePolicyResultId", result_id)?;
        plain_list(list)?;
        let (start, limit) = paging(list)?;
        let images = self.store().dry_run_images(result_id).await?;
        let rows: Vec<Image> = images
            .into_iter()
            .skip(usize::try_from(start.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
            .collect();
        Ok(page(rows, &start, limit, |_| None))
    }

    /// Applies every `ACTIVE` policy at `now`: deletes the images each one picks, as
    /// Image Delete does, and logs each deletion. The scheduler calls it with the
    /// clock once per interval on the node that claimed the interval; tests may pass
    /// another `now`. A policy whose repository is gone is skipped with a warning.
    pub async fn run_lifecycle_policies(
        &self,
        now: i64,
    ) -> Result<Vec<LifecycleDeletion>, ApiError> {
        let mut deleted = Vec::new();
        for policy in self.store().active_lifecycle_policies().await? {
            let picks = match self.lifecycle_picks(&policy, now).await {
                Ok(picks) => picks,
                Err(error) => {
                    tracing::warn!(lifecycle_policy.id = %policy.id, repository.id = %policy.repository_id, error = %error.message, "lifecycle policy skipped");
                    continue;
                }
            };
            for image in picks {
                match self.remove_image(&image.id).await {
                    Ok(()) => {}
                    // Deleted meanwhile (by a user, or another run): nothing to do.
                    Err(error) if error.code == 5 => continue,
                    Err(error) => return Err(error),
                }
                tracing::info!(
                    lifecycle_policy.id = %policy.id,
                    repository = %image.name,
                    image.id = %image.id,
                    image.digest = %image.digest,
                    image.tags = ?image.tags,
                    "lifecycle policy deleted an image"
                );
                deleted.push(LifecycleDeletion {
                    policy_id: policy.id.clone(),
                    image_id: image.id,
                    digest: image.digest.to_string(),
                    tags: image.tags,
                });
            }
        }
        Ok(deleted)
    }
}

/// The number of the scheduler slot `now` falls in: every node computes the same one,
/// so `Store::claim_task("lifecycle", slot, node)` lets exactly one of them run it.
pub fn lifecycle_slot(now: i64, interval_ms: i64) -> i64 {
    now.div_euclid(interval_ms.max(1))
}

/// Starts the scheduler's lifecycle runs: at the start of every interval (counted
/// from the Unix epoch, so that all nodes agree), the node that claims the slot in
/// the store applies every `ACTIVE` policy; the others skip it.
pub fn spawn_lifecycle_runs(service: Service, interval: std::time::Duration, node: String) {
    let interval_ms = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    tokio::spawn(async move {
        loop {
            let now = now();
            let next = (lifecycle_slot(now, interval_ms) + 1).saturating_mul(interval_ms);
            let wait = u64::try_from(next.saturating_sub(now)).unwrap_or(0);
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            let now = crscan_store::now();
            let slot = lifecycle_slot(now, interval_ms);
            match service.store().claim_task("lifecycle", slot, &node).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(%error, "cannot claim the lifecycle run; skipping this interval");
                    continue;
                }
            }
            match service.run_lifecycle_policies(now).await {
                Ok(deleted) => tracing::info!(
                    lifecycle.slot = slot,
                    deleted = deleted.len(),
                    "lifecycle run finished"
                ),
                Err(error) => {
                    tracing::warn!(error = %error.message, "lifecycle run failed")
                }
            }
        }
    });
}
