//! Access bindings and IP permissions as domain operations (`listAccessBindings`,
//! `setAccessBindings`, `updateAccessBindings` on registries and repositories;
//! `listIpPermission`, `setIpPermission`, `updateIpPermission` on registries), and
//! the one authorization decision every surface asks ([`Service::authorize`]): a
//! caller may do something on a repository when its token's global roles allow it,
//! or a role bound on the repository or on its registry to one of the caller's
//! subjects does. `allUsers` bindings give an anonymous caller only `Pull`.

use std::net::IpAddr;

use crscan_store::{
    AccessBinding, IpAction, IpPermission, Operation, OperationMetadata, OperationResponse,
    PageStart,
};

use super::{Call, ListRequest, Page, Service, check_id, page, paging};
use crate::access::{
    ALL_AUTHENTICATED_USERS, ALL_USERS, Permission, SERVICE_ACCOUNT, SYSTEM, check_binding,
    check_ip, global_permissions, role_permissions,
};
use crate::auth::Principal;
use crate::errors::ApiError;

/// Which kind of resource an access-binding call names by `resource_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessResource {
    Registry,
    Repository,
}

impl AccessResource {
    fn service(self) -> &'static str {
        match self {
            AccessResource::Registry => "RegistryService",
            AccessResource::Repository => "RepositoryService",
        }
    }
}

/// ADD or REMOVE in a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaAction {
    Add,
    Remove,
}

impl DeltaAction {
    /// The enum value by name, as REST sends it; `None` for anything else.
    pub fn parse(text: &str) -> Option<DeltaAction> {
        match text {
            "ADD" => Some(DeltaAction::Add),
            "REMOVE" => Some(DeltaAction::Remove),
            _ => None,
        }
    }
}

/// One entry of `accessBindingDeltas` or `ipPermissionDeltas`; `action` is `None`
/// when the request left it unspecified (refused).
#[derive(Debug, Clone)]
pub struct Delta<T> {
    pub action: Option<DeltaAction>,
    pub value: T,
}

/// The resource a permission is asked on: `registry` is an ID or a name, as `/v2/`
/// paths give it; `repository` the name within it.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every resource (`/v2/_catalog`).
    Global,
    Registry(&'a str),
    Repository {
        registry: &'a str,
        name: &'a str,
    },
}

impl Service {
    /// The one authorization decision: whether `principal` holds `permission` on
    /// `scope`, from its global roles, else from the roles bound on the repository and
    /// on its registry to its subjects (its token's subject ID as `serviceAccount`,
    /// `allAuthenticatedUsers` when it has credentials, `allUsers` always, though for
    /// an anonymous caller only `Pull` counts). The global roles are asked first,
    /// so a caller they admit costs no query. Refusals are UNAUTHENTICATED for an
    /// anonymous caller and PERMISSION_DENIED otherwise, naming the subject and the
    /// resource.
    pub async fn authorize(
        &self,
        principal: &Principal,
        permission: Permission,
        scope: Scope<'_>,
    ) -> Result<(), ApiError> {
        if has_global(principal, permission) {
            return Ok(());
        }
        let (registry_ref, name) = match scope {
            Scope::Global => (None, None),
            Scope::Registry(registry) => (Some(registry), None),
            Scope::Repository { registry, name } => (Some(registry), Some(name)),
        };
        let registry = match registry_ref {
            Some(reference) => match self.store().find_registry(reference).await {
                Ok(registry) => Some(registry),
                Err(crscan_store::StoreError::NotFound { .. }) => None,
                Err(error) => return Err(error.into()),
            },
            None => None,
        };
        if let Some(registry) = &registry {
            let mut resources = vec![registry.id.clone()];
            if let Some(name) = name {
                let full = format!("{}/{name}", registry.id);
                match self.store().get_repository_by_name(&full).await {
                    Ok(repository) => resources.push(repository.id),
                    Err(crscan_store::StoreError::NotFound { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            for resource in &resources {
                for binding in self.store().list_access_bindings(resource).await? {
                    if binding_applies(principal, &binding, permission) {
                        return Ok(());
                    }
                }
            }
        }
        if !principal.is_authenticated() {
            return Err(ApiError::unauthenticated());
        }
        let target = match (registry_ref, name) {
            (None, _) => "every registry".to_owned(),
            (Some(registry), None) => format!("registry {registry}"),
            (Some(registry), Some(name)) => format!("repository {registry}/{name}"),
        };
        Err(ApiError::new(
            7,
            format!(
                "subject {} has no role allowing {permission:?} on {target}",
                principal.name
            ),
        ))
    }

    /// [`Service::authorize`] on a registry named by ID or name; the global roles are
    /// asked first, so a caller they admit costs no query.
    pub(super) async fn allow_registry(
        &self,
        principal: &Principal,
        permission: Permission,
        registry: &str,
    ) -> Result<(), ApiError> {
        if has_global(principal, permission) {
            return Ok(());
        }
        self.authorize(principal, permission, Scope::Registry(registry))
            .await
    }

    /// [`Service::authorize`] on a repository by its full name (`<registry>/<name>`).
    pub(super) async fn allow_repository_name(
        &self,
        principal: &Principal,
        permission: Permission,
        full_name: &str,
    ) -> Result<(), ApiError> {
        if has_global(principal, permission) {
            return Ok(());
        }
        let scope = match full_name.split_once('/') {
            Some((registry, name)) => Scope::Repository { registry, name },
            None => Scope::Global,
        };
        self.authorize(principal, permission, scope).await
    }

    /// [`Service::authorize`] on the repository of an image; an image that does not
    /// exist is refused as the global check refuses it, so that existence is not told
    /// to a caller who may not read it.
    pub(super) async fn allow_image(
        &self,
        principal: &Principal,
        permission: Permission,
        image_id: &str,
    ) -> Result<(), ApiError> {
        if has_global(principal, permission) {
            return Ok(());
        }
        let found = self
            .store()
            .repository_of_image(image_id)
            .await
            .map(|repository| repository.name);
        self.allow_found(principal, permission, found).await
    }

    /// [`Service::authorize`] on a repository named by its ID (refused like
    /// [`Service::allow_image`] when it does not exist).
    pub(super) async fn allow_repository_id(
        &self,
        principal: &Principal,
        permission: Permission,
        repository_id: &str,
    ) -> Result<(), ApiError> {
        if has_global(principal, permission) {
            return Ok(());
        }
        let found = self
            .store()
            .get_repository(repository_id)
            .await
            .map(|repository| repository.name);
        self.allow_found(principal, permission, found).await
    }

    /// [`Service::authorize`] on the repository a scan result belongs to.
    pub(super) async fn allow_scan_result(
        &self,
        principal: &Principal,
        permission: Permission,
        scan_result_id: &str,
    ) -> Result<(), ApiError> {
        if has_global(principal, permission) {
            return Ok(());
        }
        let store = self.store();
        let found = match store.get_scan_result(scan_result_id).await {
            Ok(result) => store
                .get_repository(&result.repository_id)
                .await
                .map(|repository| repository.name),
            Err(error) => Err(error),
        };
        self.allow_found(principal, permission, found).await
    }

    /// Authorizes on the repository a lookup found by its full name; a lookup that
    /// found nothing is refused as the global check refuses it, so that existence is
    /// not told to a caller who may not read it.
    async fn allow_found(
        &self,
        principal: &Principal,
        permission: Permission,
        found: Result<String, crscan_store::StoreError>,
    ) -> Result<(), ApiError> {
        match found {
            Ok(name) => {
                self.allow_repository_name(principal, permission, &name)
                    .await
            }
            Err(crscan_store::StoreError::NotFound { .. }) => {
                self.authorize(principal, permission, Scope::Global).await
            }
            Err(error) => Err(error.into()),
        }
    }

    /// [`Service::authorize`] on a registry or repository named by its ID. A missing
    /// resource is NOT_FOUND for a caller whose global roles allow the call, and
    /// refused as the global check refuses it for any other, so that existence is not
    /// told to a caller who may not see it.
    async fn authorize_resource(
        &self,
        principal: &Principal,
        permission: Permission,
        kind: AccessResource,
        resource_id: &str,
    ) -> Result<(), ApiError> {
        check_id("resourceId", resource_id)?;
        let found = match kind {
            AccessResource::Registry => self
                .store()
                .get_registry(resource_id)
                .await
                .map(|registry| (registry.id, None)),
            AccessResource::Repository => {
                self.store()
                    .get_repository(resource_id)
                    .await
                    .map(|repository| {
                        let name = repository
                            .name
                            .strip_prefix(&format!("{}/", repository.registry_id))
                            .unwrap_or(&repository.name)
                            .to_owned();
                        (repository.registry_id, Some(name))
                    })
            }
        };
        let (registry, name) = match found {
            Ok(found) => found,
            Err(crscan_store::StoreError::NotFound { .. })
                if !has_global(principal, permission) =>
            {
                return self.authorize(principal, permission, Scope::Global).await;
            }
            Err(error) => return Err(error.into()),
        };
        let scope = match &name {
            Some(name) => Scope::Repository {
                registry: &registry,
                name,
            },
            None => Scope::Registry(&registry),
        };
        self.authorize(principal, permission, scope).await
    }

    /// Refuses a `/v2/` request for `action` from `client` when the registry (by ID
    /// or name) has an allow-list for that action and no entry holds the address:
    /// PERMISSION_DENIED naming the rule.
    pub async fn check_ip_permission(
        &self,
        registry_id: &str,
        action: IpAction,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        let entries: Vec<IpPermission> = self
            .store()
            .registry_ip_permissions(registry_id)
            .await?
            .into_iter()
            .filter(|entry| entry.action == action)
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let allowed = entries.iter().any(|entry| {
            crate::access::IpRange::parse(&entry.ip).is_some_and(|range| range.contains(client))
        });
        if allowed {
            return Ok(());
        }
        let list: Vec<&str> = entries.iter().map(|entry| entry.ip.as_str()).collect();
        Err(ApiError::new(
            7,
            format!(
                "address {client} is not allowed to {} registry {registry_id}: its IP permission allows {} only from {}",
                action.name().to_lowercase(),
                action.name(),
                list.join(", ")
            ),
        ))
    }

    // ---- access bindings ----------------------------------------------------------

    pub async fn list_access_bindings(
        &self,
        principal: &Principal,
        kind: AccessResource,
        resource_id: &str,
        list: &ListRequest,
    ) -> Result<Page<AccessBinding>, ApiError> {
        self.authorize_resource(principal, Permission::Read, kind, resource_id)
            .await?;
        let (start, limit) = paging(list)?;
        let offset = usize::try_from(start.offset).unwrap_or(0);
        let rows: Vec<AccessBinding> = self
            .store()
            .list_access_bindings(resource_id)
            .await?
            .into_iter()
            .skip(offset)
            .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
            .collect();
        let start = PageStart {
            after: None,
            offset: start.offset,
        };
        Ok(page(rows, &start, limit, |_| None))
    }

    pub async fn set_access_bindings(
        &self,
        call: &Call,
        kind: AccessResource,
        resource_id: &str,
        bindings: &[AccessBinding],
    ) -> Result<Operation, ApiError> {
        let method = format!("{}.SetAccessBindings", kind.service());
        self.authorize_resource(&call.principal, Permission::Admin, kind, resource_id)
            .await?;
        if let Some(earlier) = self.replay(call, &method).await? {
            return Ok(earlier);
        }
        for (index, binding) in bindings.iter().enumerate() {
            check_binding(
                &format!("accessBindings[{index}]"),
                &binding.role_id,
                &binding.subject_type,
                &binding.subject_id,
            )?;
        }
        self.store()
            .set_access_bindings(resource_id, bindings)
            .await?;
        self.record(
            call,
            &method,
            OperationMetadata::SetAccessBindings {
                resource_id: resource_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }

    pub async fn update_access_bindings(
        &self,
        call: &Call,
        kind: AccessResource,
        resource_id: &str,
        deltas: &[Delta<AccessBinding>],
    ) -> Result<Operation, ApiError> {
        let method = format!("{}.UpdateAccessBindings", kind.service());
        self.authorize_resource(&call.principal, Permission::Admin, kind, resource_id)
            .await?;
        if let Some(earlier) = self.replay(call, &method).await? {
            return Ok(earlier);
        }
        if deltas.is_empty() {
            return Err(ApiError::invalid("accessBindingDeltas is required"));
        }
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        for (index, delta) in deltas.iter().enumerate() {
            let field = format!("accessBindingDeltas[{index}]");
            let binding = &delta.value;
            check_binding(
                &format!("{field}.accessBinding"),
                &binding.role_id,
                &binding.subject_type,
                &binding.subject_id,
            )?;
            match delta.action {
                Some(DeltaAction::Add) => added.push(binding.clone()),
                Some(DeltaAction::Remove) => removed.push(binding.clone()),
                None => {
                    return Err(ApiError::invalid(format!(
                        "{field}.action is required: ADD or REMOVE"
                    )));
                }
            }
        }
        self.store()
            .update_access_bindings(resource_id, &added, &removed)
            .await?;
        self.record(
            call,
            &method,
            OperationMetadata::UpdateAccessBindings {
                resource_id: resource_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }

    // ---- IP permissions -----------------------------------------------------------

    pub async fn list_ip_permissions(
        &self,
        principal: &Principal,
        registry_id: &str,
    ) -> Result<Vec<IpPermission>, ApiError> {
        self.authorize_resource(
            principal,
            Permission::Read,
            AccessResource::Registry,
            registry_id,
        )
        .await?;
        Ok(self.store().list_ip_permissions(registry_id).await?)
    }

    pub async fn set_ip_permissions(
        &self,
        call: &Call,
        registry_id: &str,
        permissions: &[(Option<IpAction>, String)],
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "RegistryService.SetIpPermission";
        self.authorize_resource(
            &call.principal,
            Permission::Admin,
            AccessResource::Registry,
            registry_id,
        )
        .await?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        let permissions = permissions
            .iter()
            .enumerate()
            .map(|(index, (action, ip))| {
                ip_permission(&format!("ipPermission[{index}]"), *action, ip)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.store()
            .set_ip_permissions(registry_id, &permissions)
            .await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::SetIpPermission {
                registry_id: registry_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }

    pub async fn update_ip_permissions(
        &self,
        call: &Call,
        registry_id: &str,
        deltas: &[Delta<(Option<IpAction>, String)>],
    ) -> Result<Operation, ApiError> {
        const METHOD: &str = "RegistryService.UpdateIpPermission";
        self.authorize_resource(
            &call.principal,
            Permission::Admin,
            AccessResource::Registry,
            registry_id,
        )
        .await?;
        if let Some(earlier) = self.replay(call, METHOD).await? {
            return Ok(earlier);
        }
        if deltas.is_empty() {
            return Err(ApiError::invalid("ipPermissionDeltas is required"));
        }
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        for (index, delta) in deltas.iter().enumerate() {
            let field = format!("ipPermissionDeltas[{index}]");
            let (action, ip) = &delta.value;
            let permission = ip_permission(&format!("{field}.ipPermission"), *action, ip)?;
            match delta.action {
                Some(DeltaAction::Add) => added.push(permission),
                Some(DeltaAction::Remove) => removed.push(permission),
                None => {
                    return Err(ApiError::invalid(format!(
                        "{field}.action is required: ADD or REMOVE"
                    )));
                }
            }
        }
        self.store()
            .update_ip_permissions(registry_id, &added, &removed)
            .await?;
        self.record(
            call,
            METHOD,
            OperationMetadata::UpdateIpPermission {
                registry_id: registry_id.to_owned(),
            },
            OperationResponse::Empty,
        )
        .await
    }
}

/// Whether `principal`'s global roles allow `permission` everywhere.
fn has_global(principal: &Principal, permission: Permission) -> bool {
    principal
        .roles()
        .iter()
        .any(|role| global_permissions(*role).contains(&permission))
}

/// Whether `binding` is one of `principal`'s and its role allows `permission`.
fn binding_applies(principal: &Principal, binding: &AccessBinding, permission: Permission) -> bool {
    let subject = match (binding.subject_type.as_str(), binding.subject_id.as_str()) {
        (SYSTEM, ALL_USERS) => principal.is_authenticated() || permission == Permission::Pull,
        (SYSTEM, ALL_AUTHENTICATED_USERS) => principal.is_authenticated(),
        (SERVICE_ACCOUNT, id) => principal.is_authenticated() && id == principal.name,
        _ => false,
    };
    subject && role_permissions(&binding.role_id).contains(&permission)
}

/// An IP permission of a request, checked: an action and an address or CIDR range,
/// kept as written (trimmed).
fn ip_permission(
    field: &str,
    action: Option<IpAction>,
    ip: &str,
) -> Result<IpPermission, ApiError> {
    let action = action
        .ok_or_else(|| ApiError::invalid(format!("{field}.action is required: PULL or PUSH")))?;
    let ip = ip.trim();
    check_ip(field, ip)?;
    Ok(IpPermission {
        action,
        ip: ip.to_owned(),
    })
}
