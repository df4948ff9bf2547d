//! Access bindings and IP permissions: which subject holds which role on a registry
//! or a repository (by the resource's ID), and which addresses may pull from or push
//! to a registry. The store keeps them as the API names them (role IDs, subject types
//! and IDs, addresses and CIDR ranges as text); `crscan-api` validates them before
//! they are written and decides what they allow.

use sqlx::Row;

use crate::StoreError;
use crate::store::Store;

/// A role bound to a subject on one resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccessBinding {
    pub role_id: String,
    pub subject_type: String,
    pub subject_id: String,
}

/// What an IP permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpAction {
    Pull,
    Push,
}

impl IpAction {
    /// The enum value's name in the API (and in the store).
    pub fn name(self) -> &'static str {
        match self {
            IpAction::Pull => "PULL",
            IpAction::Push => "PUSH",
        }
    }

    pub fn parse(text: &str) -> Option<IpAction> {
        match text {
            "PULL" => Some(IpAction::Pull),
            "PUSH" => Some(IpAction::Push),
            _ => None,
        }
    }
}

/// One entry of a registry's allow-list: `action` is allowed from `ip`, an address or
/// a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpPermission {
    pub action: IpAction,
    pub ip: String,
}

impl Store {
    /// The bindings on `resource_id`, by role, subject type and subject ID.
    pub async fn list_access_bindings(
        &self,
        resource_id: &str,
    ) -> Result<Vec<AccessBinding>, StoreError> {
        let rows = sqlx::query(
            "SELECT role_id, subject_type, subject_id FROM access_bindings \
             WHERE resource_id = $1 ORDER BY role_id, subject_type, subject_id",
        )
        .bind(resource_id.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AccessBinding {
                    role_id: row.try_get("role_id")?,
                    subject_type: row.try_get("subject_type")?,
                    subject_id: row.try_get("subject_id")?,
                })
            })
            .collect()
    }

    /// Replaces the bindings on `resource_id` with `bindings`, in one transaction.
    pub async fn set_access_bindings(
        &self,
        resource_id: &str,
        bindings: &[AccessBinding],
    ) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM access_bindings WHERE resource_id = $1")
            .bind(resource_id.to_owned())
            .execute(&mut *tx)
            .await?;
        for binding in bindings {
            insert_binding(&mut tx, resource_id, binding).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds the `added` bindings to `resource_id` and removes the `removed` ones, in one
    /// transaction; adding a binding that exists or removing one that does not changes
    /// nothing.
    pub async fn update_access_bindings(
        &self,
        resource_id: &str,
        added: &[AccessBinding],
        removed: &[AccessBinding],
    ) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        for binding in removed {
            sqlx::query(
                "DELETE FROM access_bindings WHERE resource_id = $1 AND role_id = $2 \
                 AND subject_type = $3 AND subject_id = $4",
            )
            .bind(resource_id.to_owned())
            .bind(binding.role_id.clone())
            .bind(binding.subject_type.clone())
            .bind(binding.subject_id.clone())
            .execute(&mut *tx)
            .await?;
        }
        for binding in added {
            insert_binding(&mut tx, resource_id, binding).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The allow-list of `registry_id`, by action and address.
    pub async fn list_ip_permissions(
        &self,
        registry_id: &str,
    ) -> Result<Vec<IpPermission>, StoreError> {
        let rows = sqlx::query(
            "SELECT action, ip FROM ip_permissions WHERE registry_id = $1 ORDER BY action, ip",
        )
        .bind(registry_id.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(permission_from_row).collect()
    }

    /// The allow-list of the registry `reference` names by ID or, failing that, by
    /// name (as `/v2/` paths name it), in one query; empty for an unknown registry.
    pub async fn registry_ip_permissions(
        &self,
        reference: &str,
    ) -> Result<Vec<IpPermission>, StoreError> {
        let rows = sqlx::query(
            "SELECT action, ip FROM ip_permissions WHERE registry_id = \
             (SELECT id FROM registries WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1) \
             ORDER BY action, ip",
        )
        .bind(reference.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(permission_from_row).collect()
    }

    /// Replaces the allow-list of `registry_id` with `permissions`.
    pub async fn set_ip_permissions(
        &self,
        registry_id: &str,
        permissions: &[IpPermission],
    ) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM ip_permissions WHERE registry_id = $1")
            .bind(registry_id.to_owned())
            .execute(&mut *tx)
            .await?;
        for permission in permissions {
            insert_permission(&mut tx, registry_id, permission).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds `added` to the allow-list of `registry_id` and removes `removed`.
    pub async fn update_ip_permissions(
        &self,
        registry_id: &str,
        added: &[IpPermission],
        removed: &[IpPermission],
    ) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        for permission in removed {
            sqlx::query(
                "DELETE FROM ip_permissions WHERE registry_id = $1 AND action = $2 AND ip = $3",
            )
            .bind(registry_id.to_owned())
            .bind(permission.action.name())
            .bind(permission.ip.clone())
            .execute(&mut *tx)
            .await?;
        }
        for permission in added {
            insert_permission(&mut tx, registry_id, permission).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn permission_from_row(row: &sqlx::any::AnyRow) -> Result<IpPermission, StoreError> {
    let action: String = row.try_get("action")?;
    Ok(IpPermission {
        action: IpAction::parse(&action).ok_or(StoreError::Corrupt(action))?,
        ip: row.try_get("ip")?,
    })
}

async fn insert_binding(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    resource_id: &str,
    binding: &AccessBinding,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO access_bindings (resource_id, role_id, subject_type, subject_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(resource_id.to_owned())
    .bind(binding.role_id.clone())
    .bind(binding.subject_type.clone())
    .bind(binding.subject_id.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_permission(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    registry_id: &str,
    permission: &IpPermission,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ip_permissions (registry_id, action, ip) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(registry_id.to_owned())
    .bind(permission.action.name())
    .bind(permission.ip.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bindings_and_permissions_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open_sqlite(&dir.path().join("store.db")).await?;
        let binding = |role: &str, id: &str| AccessBinding {
            role_id: role.to_owned(),
            subject_type: "serviceAccount".to_owned(),
            subject_id: id.to_owned(),
        };
        store
            .set_access_bindings("crp1", &[binding("viewer", "a"), binding("viewer", "a")])
            .await?;
        store
            .update_access_bindings("crp1", &[binding("admin", "b")], &[binding("viewer", "a")])
            .await?;
        assert_eq!(
            store.list_access_bindings("crp1").await?,
            vec![binding("admin", "b")]
        );
        assert!(store.list_access_bindings("crp2").await?.is_empty());
        let pull = |ip: &str| IpPermission {
            action: IpAction::Pull,
            ip: ip.to_owned(),
        };
        store
            .set_ip_permissions("crp1", &[pull("10.0.0.0/8"), pull("::1")])
            .await?;
        store
            .update_ip_permissions("crp1", &[pull("127.0.0.1")], &[pull("::1")])
            .await?;
        assert_eq!(
            store.list_ip_permissions("crp1").await?,
            vec![pull("10.0.0.0/8"), pull("127.0.0.1")]
        );
        // By ID or name, as `/v2/` names a registry.
        let registry = store
            .create_registry("folder", "named", &Default::default())
            .await?;
        store
            .set_ip_permissions(&registry.id, &[pull("::1")])
            .await?;
        assert_eq!(
            store.registry_ip_permissions("named").await?,
            vec![pull("::1")]
        );
        assert_eq!(
            store.registry_ip_permissions(&registry.id).await?,
            vec![pull("::1")]
        );
        assert!(store.registry_ip_permissions("unknown").await?.is_empty());
        Ok(())
    }
}
