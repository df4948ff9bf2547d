//! The access-binding and IP-permission methods over REST:
//! `registries/{id}:listAccessBindings|setAccessBindings|updateAccessBindings`, the same
//! three on `repositories/{id}`, and `registries/{id}:listIpPermission|setIpPermission|
//! updateIpPermission`, in the protobuf JSON mapping of the `yandex.cloud.access` and
//! `IpPermission` messages.

use axum::http::Method;
use crscan_store::{AccessBinding, IpAction, IpPermission};
use serde::{Deserialize, Serialize};

use super::{ApiResult, Incoming, json, wire};
use crate::errors::ApiError;
use crate::service::{AccessResource, Delta, DeltaAction, Service};

/// The verbs this module answers.
pub(super) const VERBS: [&str; 6] = [
    "listAccessBindings",
    "setAccessBindings",
    "updateAccessBindings",
    "listIpPermission",
    "setIpPermission",
    "updateIpPermission",
];

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct SubjectJson {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct BindingJson {
    role_id: String,
    subject: SubjectJson,
}

impl BindingJson {
    fn of(binding: &AccessBinding) -> BindingJson {
        BindingJson {
            role_id: binding.role_id.clone(),
            subject: SubjectJson {
                id: binding.subject_id.clone(),
                kind: binding.subject_type.clone(),
            },
        }
    }

    fn into_binding(self) -> AccessBinding {
        AccessBinding {
            role_id: self.role_id,
            subject_type: self.subject.kind,
            subject_id: self.subject.id,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBindingsBody {
    #[serde(default)]
    access_bindings: Vec<BindingJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingDeltaJson {
    #[serde(default)]
    action: String,
    #[serde(default)]
    access_binding: BindingJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBindingsBody {
    #[serde(default)]
    access_binding_deltas: Vec<BindingDeltaJson>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct IpPermissionJson {
    action: String,
    ip: String,
}

impl IpPermissionJson {
    fn of(permission: &IpPermission) -> IpPermissionJson {
        IpPermissionJson {
            action: permission.action.name().to_owned(),
            ip: permission.ip.clone(),
        }
    }

    /// The action by name; `ACTION_UNSPECIFIED` or a missing one is `None` (refused by
    /// the service), an unknown name is refused here, naming it.
    fn into_value(self, field: &str) -> Result<(Option<IpAction>, String), ApiError> {
        let action = match self.action.as_str() {
            "" | "ACTION_UNSPECIFIED" => None,
            name => Some(IpAction::parse(name).ok_or_else(|| {
                ApiError::invalid(format!("{field}.action {name:?} is not PULL or PUSH"))
            })?),
        };
        Ok((action, self.ip))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetIpBody {
    #[serde(default)]
    ip_permission: Vec<IpPermissionJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IpDeltaJson {
    #[serde(default)]
    action: String,
    #[serde(default)]
    ip_permission: IpPermissionJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateIpBody {
    #[serde(default)]
    ip_permission_deltas: Vec<IpDeltaJson>,
}

/// A delta's `action` by name: `ADD`, `REMOVE`, or unspecified (`None`, refused by the
/// service); any other name is refused here.
fn delta_action(field: &str, name: &str) -> Result<Option<DeltaAction>, ApiError> {
    match name {
        "" | "ACCESS_BINDING_ACTION_UNSPECIFIED" | "IP_PERMISSION_ACTION_UNSPECIFIED" => Ok(None),
        name => DeltaAction::parse(name).map(Some).ok_or_else(|| {
            ApiError::invalid(format!("{field}.action {name:?} is not ADD or REMOVE"))
        }),
    }
}

/// Answers `verb` (one of [`VERBS`]) on `collection`/`item`.
pub(super) async fn route(
    service: &Service,
    collection: &str,
    item: &str,
    verb: &str,
    incoming: Incoming,
) -> ApiResult {
    let kind = match collection {
        "registries" => AccessResource::Registry,
        _ => AccessResource::Repository,
    };
    let method = incoming.method.clone();
    let wrong_method = || {
        ApiError::unimplemented(format!(
            "{method} /container-registry/v1/{collection}/{item}:{verb} is not a method of this API"
        ))
    };
    match verb {
        "listAccessBindings" if method == Method::GET => {
            let list = incoming.list()?;
            let page = service
                .list_access_bindings(&incoming.principal, kind, item, &list)
                .await?;
            Ok(json(wire::page("accessBindings", &page, |binding| {
                wire::value(BindingJson::of(binding))
            })))
        }
        "setAccessBindings" if method == Method::POST => {
            let call = incoming.call()?;
            let body: SetBindingsBody = incoming.body().await?;
            let bindings: Vec<AccessBinding> = body
                .access_bindings
                .into_iter()
                .map(BindingJson::into_binding)
                .collect();
            let operation = service
                .set_access_bindings(&call, kind, item, &bindings)
                .await?;
            Ok(json(wire::operation(&operation)))
        }
        "updateAccessBindings" if method == Method::POST => {
            let call = incoming.call()?;
            let body: UpdateBindingsBody = incoming.body().await?;
            let deltas = body
                .access_binding_deltas
                .into_iter()
                .enumerate()
                .map(|(index, delta)| {
                    Ok(Delta {
                        action: delta_action(
                            &format!("accessBindingDeltas[{index}]"),
                            &delta.action,
                        )?,
                        value: delta.access_binding.into_binding(),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let operation = service
                .update_access_bindings(&call, kind, item, &deltas)
                .await?;
            Ok(json(wire::operation(&operation)))
        }
        "listIpPermission" if method == Method::GET && kind == AccessResource::Registry => {
            let permissions = service
                .list_ip_permissions(&incoming.principal, item)
                .await?;
            let permissions: Vec<IpPermissionJson> =
                permissions.iter().map(IpPermissionJson::of).collect();
            Ok(json(serde_json::json!({ "permissions": permissions })))
        }
        "setIpPermission" if method == Method::POST && kind == AccessResource::Registry => {
            let call = incoming.call()?;
            let body: SetIpBody = incoming.body().await?;
            let permissions = body
                .ip_permission
                .into_iter()
                .enumerate()
                .map(|(index, permission)| permission.into_value(&format!("ipPermission[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let operation = service
                .set_ip_permissions(&call, item, &permissions)
                .await?;
            Ok(json(wire::operation(&operation)))
        }
        "updateIpPermission" if method == Method::POST && kind == AccessResource::Registry => {
            let call = incoming.call()?;
            let body: UpdateIpBody = incoming.body().await?;
            let deltas = body
                .ip_permission_deltas
                .into_iter()
                .enumerate()
                .map(|(index, delta)| {
                    let field = format!("ipPermissionDeltas[{index}]");
                    Ok(Delta {
                        action: delta_action(&field, &delta.action)?,
                        value: delta
                            .ip_permission
                            .into_value(&format!("{field}.ipPermission"))?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let operation = service.update_ip_permissions(&call, item, &deltas).await?;
            Ok(json(wire::operation(&operation)))
        }
        _ => Err(wrong_method()),
    }
}
