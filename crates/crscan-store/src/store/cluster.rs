//! Work that runs once per cluster: several nodes share one store, each runs the same
//! scheduler, and a periodic task (a lifecycle run, a GC pass) must still happen once
//! per period. A node claims the task's slot; the first claim wins.

use crate::StoreError;
use crate::store::{Store, now_millis};

/// How long claimed slots are kept before they are pruned (7 days).
const CLAIM_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

impl Store {
    /// Claims slot `slot` of the periodic task `name` for `node`: true when this call
    /// made the claim (the caller runs the task), false when another node (or an
    /// earlier call) already holds it. `slot` is the caller's period number, for
    /// example `now / interval`, so every node computes the same one.
    pub async fn claim_task(&self, name: &str, slot: i64, node: &str) -> Result<bool, StoreError> {
        let _gate = self.write_lock().await;
        let now = now_millis();
        sqlx::query("DELETE FROM cluster_tasks WHERE claimed_at < $1")
            .bind(now - CLAIM_LIFETIME_MS)
            .execute(&self.pool)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO cluster_tasks (name, slot, node, claimed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name, slot) DO NOTHING",
        )
        .bind(name.to_owned())
        .bind(slot)
        .bind(node.to_owned())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[tokio::test]
    async fn a_slot_is_claimed_once() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open_sqlite(&dir.path().join("store.db")).await?;
        assert!(store.claim_task("gc", 7, "node-a").await?);
        assert!(!store.claim_task("gc", 7, "node-b").await?);
        assert!(store.claim_task("gc", 8, "node-b").await?);
        assert!(store.claim_task("lifecycle", 7, "node-b").await?);
        Ok(())
    }
}
