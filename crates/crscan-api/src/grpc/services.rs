//! The tonic service implementations: each method reads its request message into
//! the service's plain request values, calls the same [`crate::service::Service`]
//! operation as REST, and renders the answer with [`super::convert`].

use std::collections::BTreeMap;

use tonic::{Request, Response, Status};

use super::proto::yandex::cloud::access;
use super::proto::yandex::cloud::containerregistry::v1 as cr;
use super::proto::yandex::cloud::endpoint;
use super::proto::yandex::cloud::iam::v1 as iam;
use super::proto::yandex::cloud::operation as op;
use super::{Dialled, GrpcApi, convert, status};
use crate::errors::ApiError;
use crate::service::{
    ListRequest, NewScanPolicy, Page, RegistryUpdate, RepositoryKey, ScanPolicyUpdate,
};

type Answer<T> = Result<Response<T>, Status>;

/// How often clients should poll an operation, in seconds (`x-operation-poll-interval`,
/// read by the Go SDK).
const OPERATION_POLL_INTERVAL_SECONDS: &str = "1";

pub(super) fn operation_answer(operation: &crscan_store::Operation) -> Answer<op::Operation> {
    let mut response = Response::new(convert::operation(operation));
    response.metadata_mut().insert(
        "x-operation-poll-interval",
        tonic::metadata::MetadataValue::from_static(OPERATION_POLL_INTERVAL_SECONDS),
    );
    Ok(response)
}

pub(super) fn list(
    page_size: i64,
    page_token: String,
    filter: String,
    order_by: String,
) -> ListRequest {
    ListRequest {
        page_size,
        page_token,
        filter,
        order_by,
    }
}

pub(super) fn mask(mask: Option<prost_types::FieldMask>) -> Option<Vec<String>> {
    mask.map(|mask| mask.paths)
        .filter(|paths| !paths.is_empty())
}

/// Maps a page's items into messages.
pub(super) fn items<T, M>(page: &Page<T>, render: impl Fn(&T) -> M) -> (Vec<M>, String) {
    (
        page.items.iter().map(render).collect(),
        page.next_page_token.clone(),
    )
}

/// A method crscan does not have.
fn unimplemented(method: &str) -> Status {
    status(ApiError::unimplemented(format!(
        "{method} is not implemented by crscan"
    )))
}

#[tonic::async_trait]
impl cr::scanner_service_server::ScannerService for GrpcApi {
    async fn scan(&self, request: Request<cr::ScanRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let operation = self
            .state
            .service
            .scan(&call, &body.image_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn get(&self, request: Request<cr::GetScanResultRequest>) -> Answer<cr::ScanResult> {
        let principal = self.principal(&request)?;
        let result = self
            .state
            .service
            .get_scan_result(&principal, &request.get_ref().scan_result_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::scan_result(&result)))
    }

    async fn get_last(
        &self,
        request: Request<cr::GetLastScanResultRequest>,
    ) -> Answer<cr::ScanResult> {
        let principal = self.principal(&request)?;
        let result = self
            .state
            .service
            .get_last_scan_result(&principal, &request.get_ref().image_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::scan_result(&result)))
    }

    async fn list(
        &self,
        request: Request<cr::ListScanResultsRequest>,
    ) -> Answer<cr::ListScanResultsResponse> {
        use cr::list_scan_results_request::Id;
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let (image_id, repository_id) = match body.id {
            Some(Id::ImageId(id)) => (id, String::new()),
            Some(Id::RepositoryId(id)) => (String::new(), id),
            None => (String::new(), String::new()),
        };
        let page = self
            .state
            .service
            .list_scan_results(
                &principal,
                &image_id,
                &repository_id,
                &list(body.page_size, body.page_token, body.filter, body.order_by),
            )
            .await
            .map_err(status)?;
        let (scan_results, next_page_token) = items(&page, convert::scan_result);
        Ok(Response::new(cr::ListScanResultsResponse {
            scan_results,
            next_page_token,
        }))
    }

    async fn list_vulnerabilities(
        &self,
        request: Request<cr::ListVulnerabilitiesRequest>,
    ) -> Answer<cr::ListVulnerabilitiesResponse> {
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let page = self
            .state
            .service
            .list_vulnerabilities(
                &principal,
                &body.scan_result_id,
                &list(body.page_size, body.page_token, body.filter, body.order_by),
            )
            .await
            .map_err(status)?;
        let (vulnerabilities, next_page_token) = items(&page, convert::vulnerability);
        Ok(Response::new(cr::ListVulnerabilitiesResponse {
            vulnerabilities,
            next_page_token,
        }))
    }
}

#[tonic::async_trait]
impl cr::image_service_server::ImageService for GrpcApi {
    async fn list(
        &self,
        request: Request<cr::ListImagesRequest>,
    ) -> Answer<cr::ListImagesResponse> {
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let page = self
            .state
            .service
            .list_images(
                &principal,
                &body.registry_id,
                &body.repository_name,
                &body.folder_id,
                &list(body.page_size, body.page_token, body.filter, body.order_by),
            )
            .await
            .map_err(status)?;
        let (images, next_page_token) = items(&page, convert::image);
        Ok(Response::new(cr::ListImagesResponse {
            images,
            next_page_token,
        }))
    }

    async fn get(&self, request: Request<cr::GetImageRequest>) -> Answer<cr::Image> {
        let principal = self.principal(&request)?;
        let image = self
            .state
            .service
            .get_image(&principal, &request.get_ref().image_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::image(&image)))
    }

    async fn delete(&self, request: Request<cr::DeleteImageRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let operation = self
            .state
            .service
            .delete_image(&call, &request.get_ref().image_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }
}

#[tonic::async_trait]
impl cr::repository_service_server::RepositoryService for GrpcApi {
    async fn get(&self, request: Request<cr::GetRepositoryRequest>) -> Answer<cr::Repository> {
        let principal = self.principal(&request)?;
        let key = RepositoryKey::Id(request.into_inner().repository_id);
        let repository = self
            .state
            .service
            .get_repository(&principal, &key)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::repository(&repository)))
    }

    async fn get_by_name(
        &self,
        request: Request<cr::GetRepositoryByNameRequest>,
    ) -> Answer<cr::Repository> {
        let principal = self.principal(&request)?;
        let key = RepositoryKey::Name(request.into_inner().repository_name);
        let repository = self
            .state
            .service
            .get_repository(&principal, &key)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::repository(&repository)))
    }

    async fn list(
        &self,
        request: Request<cr::ListRepositoriesRequest>,
    ) -> Answer<cr::ListRepositoriesResponse> {
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let page = self
            .state
            .service
            .list_repositories(
                &principal,
                &body.registry_id,
                &body.folder_id,
                &list(body.page_size, body.page_token, body.filter, body.order_by),
            )
            .await
            .map_err(status)?;
        let (repositories, next_page_token) = items(&page, convert::repository);
        Ok(Response::new(cr::ListRepositoriesResponse {
            repositories,
            next_page_token,
        }))
    }

    async fn list_access_bindings(
        &self,
        _request: Request<access::ListAccessBindingsRequest>,
    ) -> Answer<access::ListAccessBindingsResponse> {
        Err(unimplemented("RepositoryService/ListAccessBindings"))
    }

    async fn upsert(&self, request: Request<cr::UpsertRepositoryRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let operation = self
            .state
            .service
            .upsert_repository(&call, &request.get_ref().name)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn delete(&self, request: Request<cr::DeleteRepositoryRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let operation = self
            .state
            .service
            .delete_repository(&call, &request.get_ref().repository_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn set_access_bindings(
        &self,
        _request: Request<access::SetAccessBindingsRequest>,
    ) -> Answer<op::Operation> {
        Err(unimplemented("RepositoryService/SetAccessBindings"))
    }

    async fn update_access_bindings(
        &self,
        _request: Request<access::UpdateAccessBindingsRequest>,
    ) -> Answer<op::Operation> {
        Err(unimplemented("RepositoryService/UpdateAccessBindings"))
    }
}

#[tonic::async_trait]
impl cr::registry_service_server::RegistryService for GrpcApi {
    async fn get(&self, request: Request<cr::GetRegistryRequest>) -> Answer<cr::Registry> {
        let principal = self.principal(&request)?;
        let registry = self
            .state
            .service
            .get_registry(&principal, &request.get_ref().registry_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::registry(&registry)))
    }

    async fn list(
        &self,
        request: Request<cr::ListRegistriesRequest>,
    ) -> Answer<cr::ListRegistriesResponse> {
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let page = self
            .state
            .service
            .list_registries(
                &principal,
                &body.folder_id,
                &list(body.page_size, body.page_token, body.filter, String::new()),
            )
            .await
            .map_err(status)?;
        let (registries, next_page_token) = items(&page, convert::registry);
        Ok(Response::new(cr::ListRegistriesResponse {
            registries,
            next_page_token,
        }))
    }

    async fn create(&self, request: Request<cr::CreateRegistryRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let labels: BTreeMap<String, String> = body.labels.into_iter().collect();
        let operation = self
            .state
            .service
            .create_registry(&call, &body.folder_id, &body.name, &labels)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn update(&self, request: Request<cr::UpdateRegistryRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let update = RegistryUpdate {
            update_mask: mask(body.update_mask),
            name: (!body.name.is_empty()).then_some(body.name),
            labels: (!body.labels.is_empty()).then(|| body.labels.into_iter().collect()),
        };
        let operation = self
            .state
            .service
            .update_registry(&call, &body.registry_id, &update)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn delete(&self, request: Request<cr::DeleteRegistryRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let operation = self
            .state
            .service
            .delete_registry(&call, &request.get_ref().registry_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn force_delete(
        &self,
        _request: Request<cr::DeleteRegistryRequest>,
    ) -> Answer<op::Operation> {
        Err(unimplemented("RegistryService/ForceDelete"))
    }

    async fn list_access_bindings(
        &self,
        _request: Request<access::ListAccessBindingsRequest>,
    ) -> Answer<access::ListAccessBindingsResponse> {
        Err(unimplemented("RegistryService/ListAccessBindings"))
    }

    async fn set_access_bindings(
        &self,
        _request: Request<access::SetAccessBindingsRequest>,
    ) -> Answer<op::Operation> {
        Err(unimplemented("RegistryService/SetAccessBindings"))
    }

    async fn update_access_bindings(
        &self,
        _request: Request<access::UpdateAccessBindingsRequest>,
    ) -> Answer<op::Operation> {
        Err(unimplemented("RegistryService/UpdateAccessBindings"))
    }

    async fn list_ip_permission(
        &self,
        _request: Request<cr::ListIpPermissionRequest>,
    ) -> Answer<cr::ListIpPermissionsResponse> {
        Err(unimplemented("RegistryService/ListIpPermission"))
    }

    async fn set_ip_permission(
        &self,
        _request: Request<cr::SetIpPermissionRequest>,
    ) -> Answer<op::Operation> {
        Err(unimplemented("RegistryService/SetIpPermission"))
    }

    async fn update_ip_permission(
        &self,
        _request: Request<cr::UpdateIpPermissionRequest>,
    ) -> Answer<op::Operation> {
        Err(unimplemented("RegistryService/UpdateIpPermission"))
    }
}

#[tonic::async_trait]
impl cr::scan_policy_service_server::ScanPolicyService for GrpcApi {
    async fn get(&self, request: Request<cr::GetScanPolicyRequest>) -> Answer<cr::ScanPolicy> {
        let principal = self.principal(&request)?;
        let policy = self
            .state
            .service
            .get_scan_policy(&principal, &request.get_ref().scan_policy_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::scan_policy(&policy)))
    }

    async fn get_by_registry(
        &self,
        request: Request<cr::GetScanPolicyByRegistryRequest>,
    ) -> Answer<cr::ScanPolicy> {
        let principal = self.principal(&request)?;
        let policy = self
            .state
            .service
            .get_scan_policy_by_registry(&principal, &request.get_ref().registry_id)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::scan_policy(&policy)))
    }

    async fn create(&self, request: Request<cr::CreateScanPolicyRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let new = NewScanPolicy {
            registry_id: body.registry_id,
            name: body.name,
            description: body.description,
            rules: body
                .rules
                .map(convert::rules_from)
                .transpose()
                .map_err(status)?,
        };
        let operation = self
            .state
            .service
            .create_scan_policy(&call, new)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn update(&self, request: Request<cr::UpdateScanPolicyRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let update = ScanPolicyUpdate {
            update_mask: mask(body.update_mask),
            name: Some(body.name),
            description: Some(body.description),
            rules: body
                .rules
                .map(convert::rules_from)
                .transpose()
                .map_err(status)?,
            disabled: None,
        };
        let operation = self
            .state
            .service
            .update_scan_policy(&call, &body.scan_policy_id, update)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn delete(&self, request: Request<cr::DeleteScanPolicyRequest>) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let operation = self
            .state
            .service
            .delete_scan_policy(&call, &request.get_ref().scan_policy_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }
}

#[tonic::async_trait]
impl op::operation_service_server::OperationService for GrpcApi {
    async fn get(&self, request: Request<op::GetOperationRequest>) -> Answer<op::Operation> {
        let principal = self.principal(&request)?;
        let operation = self
            .state
            .service
            .get_operation(&principal, &request.get_ref().operation_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }

    async fn cancel(&self, request: Request<op::CancelOperationRequest>) -> Answer<op::Operation> {
        let principal = self.principal(&request)?;
        let operation = self
            .state
            .service
            .cancel_operation(&principal, &request.get_ref().operation_id)
            .await
            .map_err(status)?;
        operation_answer(&operation)
    }
}

/// The endpoint ids the official clients look up at start (contract §12): every one
/// points at this server.
pub(crate) const ENDPOINT_IDS: &[&str] = &[
    "container-registry",
    "operation",
    "iam",
    "resource-manager",
    "endpoint",
];

impl GrpcApi {
    /// The address clients should use: the configured public address, else the one
    /// this request dialled.
    fn own_address<T>(&self, request: &Request<T>) -> Result<String, Status> {
        if let Some(address) = &self.state.public_address {
            return Ok(address.clone());
        }
        request
            .extensions()
            .get::<Dialled>()
            .map(|dialled| dialled.0.clone())
            .ok_or_else(|| {
                status(ApiError::new(
                    9,
                    "the request names no :authority; set public_address so endpoints can be answered",
                ))
            })
    }
}

#[tonic::async_trait]
impl endpoint::api_endpoint_service_server::ApiEndpointService for GrpcApi {
    async fn get(
        &self,
        request: Request<endpoint::GetApiEndpointRequest>,
    ) -> Answer<endpoint::ApiEndpoint> {
        let address = self.own_address(&request)?;
        let id = request.into_inner().api_endpoint_id;
        if !ENDPOINT_IDS.contains(&id.as_str()) {
            return Err(status(ApiError::not_found(format!(
                "endpoint {id:?} is not served by crscan (served: {})",
                ENDPOINT_IDS.join(", ")
            ))));
        }
        Ok(Response::new(endpoint::ApiEndpoint { id, address }))
    }

    async fn list(
        &self,
        request: Request<endpoint::ListApiEndpointsRequest>,
    ) -> Answer<endpoint::ListApiEndpointsResponse> {
        let address = self.own_address(&request)?;
        let endpoints = ENDPOINT_IDS
            .iter()
            .map(|id| endpoint::ApiEndpoint {
                id: (*id).to_owned(),
                address: address.clone(),
            })
            .collect();
        Ok(Response::new(endpoint::ListApiEndpointsResponse {
            endpoints,
            next_page_token: String::new(),
        }))
    }
}

#[tonic::async_trait]
impl iam::iam_token_service_server::IamTokenService for GrpcApi {
    async fn create(
        &self,
        request: Request<iam::CreateIamTokenRequest>,
    ) -> Answer<iam::CreateIamTokenResponse> {
        use iam::create_iam_token_request::Identity;
        let now = crscan_store::now() / 1000;
        match request.into_inner().identity {
            Some(Identity::YandexPassportOauthToken(token)) => {
                let issued = self.state.auth.issue(&token, now).ok_or_else(|| {
                    status(ApiError::new(
                        16,
                        "yandex_passport_oauth_token is not a token configured in crscan",
                    ))
                })?;
                Ok(Response::new(iam::CreateIamTokenResponse {
                    iam_token: issued.token,
                    expires_at: Some(prost_types::Timestamp {
                        seconds: issued.expires_at,
                        nanos: 0,
                    }),
                }))
            }
            Some(Identity::Jwt(_)) => Err(status(ApiError::unimplemented(
                "service-account keys (jwt) are not supported by crscan; exchange a configured token as yandex_passport_oauth_token, or use it as the IAM token",
            ))),
            None => Err(status(ApiError::invalid(
                "one of yandex_passport_oauth_token and jwt is required",
            ))),
        }
    }

    async fn create_for_service_account(
        &self,
        _request: Request<iam::CreateIamTokenForServiceAccountRequest>,
    ) -> Answer<iam::CreateIamTokenResponse> {
        Err(unimplemented("IamTokenService/CreateForServiceAccount"))
    }

    async fn revoke(
        &self,
        _request: Request<iam::RevokeIamTokenRequest>,
    ) -> Answer<iam::RevokeIamTokenResponse> {
        Err(unimplemented("IamTokenService/Revoke"))
    }
}
