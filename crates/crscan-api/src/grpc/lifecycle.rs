//! `LifecyclePolicyService` over gRPC: each method reads its request into the
//! service's plain request values, calls the same [`crate::service::Service`]
//! operation as REST, and renders the answer as the protobuf messages below.

use crscan_store::{DryRunResult, LifecyclePolicy, LifecycleRule};
use tonic::{Request, Response};

use super::convert::{image, timestamp};
use super::proto::yandex::cloud::containerregistry::v1 as cr;
use super::proto::yandex::cloud::operation as op;
use super::services::{items, list, mask, operation_answer};
use super::{GrpcApi, status};
use crate::service::{LifecyclePolicyUpdate, LifecycleRuleRequest, NewLifecyclePolicy};

type Answer<T> = Result<Response<T>, tonic::Status>;

fn rule(rule: &LifecycleRule) -> cr::LifecycleRule {
    let seconds = rule.expire_period_seconds();
    cr::LifecycleRule {
        description: rule.description().to_owned(),
        expire_period: (seconds > 0).then_some(prost_types::Duration { seconds, nanos: 0 }),
        tag_regexp: rule.tag_regexp().to_owned(),
        untagged: rule.untagged(),
        retained_top: rule.retained_top(),
    }
}

pub(crate) fn policy(policy: &LifecyclePolicy) -> cr::LifecyclePolicy {
    cr::LifecyclePolicy {
        id: policy.id.clone(),
        name: policy.name.clone(),
        repository_id: policy.repository_id.clone(),
        description: policy.description.clone(),
        status: cr::lifecycle_policy::Status::from_str_name(policy.status.name())
            .unwrap_or_default() as i32,
        created_at: Some(timestamp(policy.created_at)),
        rules: policy.rules.iter().map(rule).collect(),
    }
}

pub(crate) fn dry_run(result: &DryRunResult) -> cr::DryRunLifecyclePolicyResult {
    cr::DryRunLifecyclePolicyResult {
        dry_run_lifecycle_policy_result_id: result.id.clone(),
        lifecycle_policy_id: result.policy_id.clone(),
        run_at: Some(timestamp(result.run_at)),
        affected_images_count: result.affected_count,
    }
}

fn rules_from(rules: Vec<cr::LifecycleRule>) -> Vec<LifecycleRuleRequest> {
    rules
        .into_iter()
        .map(|rule| LifecycleRuleRequest {
            description: rule.description,
            expire_period: rule
                .expire_period
                .map(|period| (period.seconds, period.nanos)),
            tag_regexp: rule.tag_regexp,
            untagged: rule.untagged,
            retained_top: rule.retained_top,
        })
        .collect()
}

/// A status enum number by its name; an unknown number reads as its number, which
/// the service refuses naming it.
fn status_name(number: i32) -> String {
    cr::lifecycle_policy::Status::try_from(number)
        .map(|status| status.as_str_name().to_owned())
        .unwrap_or_else(|_| number.to_string())
}

#[tonic::async_trait]
impl cr::lifecycle_policy_service_server::LifecyclePolicyService for GrpcApi {
    async fn get(
        &self,
        request: Request<cr::GetLifecyclePolicyRequest>,
    ) -> Answer<cr::LifecyclePolicy> {
        let principal = self.principal(&request)?;
        let found = self
            .state
            .service
            .get_lifecycle_policy(&principal, &request.get_ref().lifecycle_policy_id)
            .await
            .map_err(status)?;
        Ok(Response::new(policy(&found)))
    }

    async fn list(
        &self,
        request: Request<cr::ListLifecyclePoliciesRequest>,
    ) -> Answer<cr::ListLifecyclePoliciesResponse> {
        use cr::list_lifecycle_policies_request::Id;
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let (registry_id, repository_id) = match body.id {
            Some(Id::RegistryId(id)) => (id, String::new()),
            Some(Id::RepositoryId(id)) => (String::new(), id),
            None => (String::new(), String::new()),
        };
        let page = self
            .state
            .service
            .list_lifecycle_policies(
                &principal,
                &registry_id,
                &repository_id,
                &list(body.page_size, body.page_token, body.filter, body.order_by),
            )
            .await
            .map_err(status)?;
        let (lifecycle_policies, next_page_token) = items(&page, policy);
        Ok(Response::new(cr::ListLifecyclePoliciesResponse {
            lifecycle_policies,
            next_page_token,
        }))
    }

    async fn create(
        &self,
        request: Request<cr::CreateLifecyclePolicyRequest>,
    ) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let new = NewLifecyclePolicy {
            repository_id: body.repository_id,
            name: body.name,
            description: body.description,
            status: status_name(body.status),
            rules: rules_from(body.rules),
        };
        let operation = self
            .state
            .service
            .create_lifecycle_policy(&call, new)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn update(
        &self,
        request: Request<cr::UpdateLifecyclePolicyRequest>,
    ) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let update_mask = mask(body.update_mask);
        // Protobuf cannot say whether a scalar was given: with a mask every field is
        // passed (the mask picks), without one the fields that are not their default.
        let masked = update_mask.is_some();
        let given = |present: bool| masked || present;
        let update = LifecyclePolicyUpdate {
            name: given(!body.name.is_empty()).then_some(body.name),
            description: given(!body.description.is_empty()).then_some(body.description),
            status: given(body.status != 0).then(|| status_name(body.status)),
            rules: given(!body.rules.is_empty()).then(|| rules_from(body.rules)),
            update_mask,
        };
        let operation = self
            .state
            .service
            .update_lifecycle_policy(&call, &body.lifecycle_policy_id, update)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn delete(
        &self,
        request: Request<cr::DeleteLifecyclePolicyRequest>,
    ) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let operation = self
            .state
            .service
            .delete_lifecycle_policy(&call, &request.get_ref().lifecycle_policy_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn dry_run(
        &self,
        request: Request<cr::DryRunLifecyclePolicyRequest>,
    ) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let operation = self
            .state
            .service
            .dry_run_lifecycle_policy(&call, &request.get_ref().lifecycle_policy_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn get_dry_run_result(
        &self,
        request: Request<cr::GetDryRunLifecyclePolicyResultRequest>,
    ) -> Answer<cr::DryRunLifecyclePolicyResult> {
        let principal = self.principal(&request)?;
        let result = self
            .state
            .service
            .get_dry_run_result(
                &principal,
                &request.get_ref().dry_run_lifecycle_policy_result_id,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(dry_run(&result)))
    }

    async fn list_dry_run_results(
        &self,
        request: Request<cr::ListDryRunLifecyclePolicyResultsRequest>,
    ) -> Answer<cr::ListDryRunLifecyclePolicyResultsResponse> {
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let page = self
            .state
            .service
            .list_dry_run_results(
                &principal,
                &body.lifecycle_policy_id,
                &list(body.page_size, body.page_token, body.filter, body.order_by),
            )
            .await
            .map_err(status)?;
        let (dry_run_lifecycle_policy_results, next_page_token) = items(&page, dry_run);
        Ok(Response::new(
            cr::ListDryRunLifecyclePolicyResultsResponse {
                dry_run_lifecycle_policy_results,
                next_page_token,
            },
        ))
    }

    async fn list_dry_run_result_affected_images(
        &self,
        request: Request<cr::ListDryRunLifecyclePolicyResultAffectedImagesRequest>,
    ) -> Answer<cr::ListDryRunLifecyclePolicyResultAffectedImagesResponse> {
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let page = self
            .state
            .service
            .list_dry_run_affected_images(
                &principal,
                &body.dry_run_lifecycle_policy_result_id,
                &list(body.page_size, body.page_token, body.filter, body.order_by),
            )
            .await
            .map_err(status)?;
        let (affected_images, next_page_token) = items(&page, image);
        Ok(Response::new(
            cr::ListDryRunLifecyclePolicyResultAffectedImagesResponse {
                affected_images,
                next_page_token,
            },
        ))
    }
}
