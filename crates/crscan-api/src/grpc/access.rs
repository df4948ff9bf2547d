//! The access-binding and IP-permission methods of `RegistryService` and
//! `RepositoryService`: `yandex.cloud.access` messages read into the service's plain
//! values, the same [`crate::service::Service`] calls as REST, answers rendered as
//! protobuf.

use crscan_store::{AccessBinding, IpAction, IpPermission};
use tonic::{Request, Response, Status};

use super::proto::yandex::cloud::access;
use super::proto::yandex::cloud::containerregistry::v1 as cr;
use super::proto::yandex::cloud::operation as op;
use super::{GrpcApi, status};
use crate::service::{AccessResource, Delta, DeltaAction, ListRequest};

type Answer<T> = Result<Response<T>, Status>;

fn binding(message: Option<access::AccessBinding>) -> AccessBinding {
    let message = message.unwrap_or_default();
    let subject = message.subject.unwrap_or_default();
    AccessBinding {
        role_id: message.role_id,
        subject_type: subject.r#type,
        subject_id: subject.id,
    }
}

fn binding_message(binding: &AccessBinding) -> access::AccessBinding {
    access::AccessBinding {
        role_id: binding.role_id.clone(),
        subject: Some(access::Subject {
            id: binding.subject_id.clone(),
            r#type: binding.subject_type.clone(),
        }),
    }
}

fn binding_action(number: i32) -> Option<DeltaAction> {
    match access::AccessBindingAction::try_from(number) {
        Ok(access::AccessBindingAction::Add) => Some(DeltaAction::Add),
        Ok(access::AccessBindingAction::Remove) => Some(DeltaAction::Remove),
        _ => None,
    }
}

fn ip_action(number: i32) -> Option<IpAction> {
    match cr::ip_permission::Action::try_from(number) {
        Ok(cr::ip_permission::Action::Pull) => Some(IpAction::Pull),
        Ok(cr::ip_permission::Action::Push) => Some(IpAction::Push),
        _ => None,
    }
}

fn ip_message(permission: &IpPermission) -> cr::IpPermission {
    let action = match permission.action {
        IpAction::Pull => cr::ip_permission::Action::Pull,
        IpAction::Push => cr::ip_permission::Action::Push,
    };
    cr::IpPermission {
        action: action as i32,
        ip: permission.ip.clone(),
    }
}

fn operation(operation: &crscan_store::Operation) -> Answer<op::Operation> {
    super::services::operation_answer(operation)
}

impl GrpcApi {
    pub(super) async fn list_bindings(
        &self,
        kind: AccessResource,
        request: Request<access::ListAccessBindingsRequest>,
    ) -> Answer<access::ListAccessBindingsResponse> {
        let principal = self.principal(&request)?;
        let body = request.into_inner();
        let list = ListRequest {
            page_size: body.page_size,
            page_token: body.page_token,
            ..ListRequest::default()
        };
        let page = self
            .state
            .service
            .list_access_bindings(&principal, kind, &body.resource_id, &list)
            .await
            .map_err(status)?;
        Ok(Response::new(access::ListAccessBindingsResponse {
            access_bindings: page.items.iter().map(binding_message).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    pub(super) async fn set_bindings(
        &self,
        kind: AccessResource,
        request: Request<access::SetAccessBindingsRequest>,
    ) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let bindings: Vec<AccessBinding> = body
            .access_bindings
            .into_iter()
            .map(|message| binding(Some(message)))
            .collect();
        let answer = self
            .state
            .service
            .set_access_bindings(&call, kind, &body.resource_id, &bindings)
            .await
            .map_err(status)?;
        operation(&answer)
    }

    pub(super) async fn update_bindings(
        &self,
        kind: AccessResource,
        request: Request<access::UpdateAccessBindingsRequest>,
    ) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let deltas: Vec<Delta<AccessBinding>> = body
            .access_binding_deltas
            .into_iter()
            .map(|delta| Delta {
                action: binding_action(delta.action),
                value: binding(delta.access_binding),
            })
            .collect();
        let answer = self
            .state
            .service
            .update_access_bindings(&call, kind, &body.resource_id, &deltas)
            .await
            .map_err(status)?;
        operation(&answer)
    }

    pub(super) async fn list_ip(
        &self,
        request: Request<cr::ListIpPermissionRequest>,
    ) -> Answer<cr::ListIpPermissionsResponse> {
        let principal = self.principal(&request)?;
        let permissions = self
            .state
            .service
            .list_ip_permissions(&principal, &request.get_ref().registry_id)
            .await
            .map_err(status)?;
        Ok(Response::new(cr::ListIpPermissionsResponse {
            permissions: permissions.iter().map(ip_message).collect(),
        }))
    }

    pub(super) async fn set_ip(
        &self,
        request: Request<cr::SetIpPermissionRequest>,
    ) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let permissions: Vec<(Option<IpAction>, String)> = body
            .ip_permission
            .into_iter()
            .map(|permission| (ip_action(permission.action), permission.ip))
            .collect();
        let answer = self
            .state
            .service
            .set_ip_permissions(&call, &body.registry_id, &permissions)
            .await
            .map_err(status)?;
        operation(&answer)
    }

    pub(super) async fn update_ip(
        &self,
        request: Request<cr::UpdateIpPermissionRequest>,
    ) -> Answer<op::Operation> {
        let call = self.call(&request)?;
        let body = request.into_inner();
        let deltas: Vec<Delta<(Option<IpAction>, String)>> = body
            .ip_permission_deltas
            .into_iter()
            .map(|delta| {
                let action = match cr::IpPermissionAction::try_from(delta.action) {
                    Ok(cr::IpPermissionAction::Add) => Some(DeltaAction::Add),
                    Ok(cr::IpPermissionAction::Remove) => Some(DeltaAction::Remove),
                    _ => None,
                };
                let permission = delta.ip_permission.unwrap_or_default();
                Delta {
                    action,
                    value: (ip_action(permission.action), permission.ip),
                }
            })
            .collect();
        let answer = self
            .state
            .service
            .update_ip_permissions(&call, &body.registry_id, &deltas)
            .await
            .map_err(status)?;
        operation(&answer)
    }
}
