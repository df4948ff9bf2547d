//! Handing a running job back to the queue: a node that shuts down while a scan still
//! runs releases the job's lease, so another node claims it at once instead of after
//! the lease runs out. The attempt is not counted: the scan did not fail.

use crate::StoreError;
use crate::store::{Store, now_millis};

impl Store {
    /// Puts job `job_id`, held by `owner`, back in the queue to run now, undoing the
    /// attempt its claim counted. False when `owner` no longer holds it (its lease
    /// expired and another worker took it, or it finished).
    pub async fn release_job(&self, job_id: &str, owner: &str) -> Result<bool, StoreError> {
        let now = now_millis();
        let _gate = self.write_lock().await;
        let result = sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
             run_after = $1, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
             updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
        )
        .bind(now)
        .bind(job_id.to_owned())
        .bind(owner.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}
