//! Blob upload sessions. The registry records each session here when it starts, so
//! that every node sharing the store finds it, checks its owner, and takes the
//! session's write lease before it appends a chunk: two chunks of one upload are never
//! written at once, whichever nodes they reach. The bytes are staged in the blob
//! backend, which any node can continue.

use sqlx::Row as _;

use crate::StoreError;
use crate::store::{Store, now_millis};

/// One upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    pub id: String,
    /// The repository's full name, `<registryId>/<name>`.
    pub owner: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
}

impl Store {
    /// Records a new upload session.
    pub async fn create_upload_session(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        sqlx::query("INSERT INTO upload_sessions (id, owner, started_at) VALUES ($1, $2, $3)")
            .bind(id.to_owned())
            .bind(owner.to_owned())
            .bind(now_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The session `id`, if it exists.
    pub async fn upload_session(&self, id: &str) -> Result<Option<UploadSession>, StoreError> {
        let row = sqlx::query("SELECT id, owner, started_at FROM upload_sessions WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| session(&row)).transpose()
    }

    /// Every session, oldest first (garbage collection expires the stale ones).
    pub async fn upload_sessions(&self) -> Result<Vec<UploadSession>, StoreError> {
        let rows =
            sqlx::query("SELECT id, owner, started_at FROM upload_sessions ORDER BY started_at")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(session).collect()
    }

    /// Takes (or, for the holder, renews) the write lease of session `id` for
    /// `writer`, valid for `lease_ms`: false while another writer holds an unexpired
    /// lease, or when the session is gone.
    pub async fn lease_upload(
        &self,
        id: &str,
        writer: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let _gate = self.write_lock().await;
        let now = now_millis();
        let updated = sqlx::query(
            "UPDATE upload_sessions SET writer = $2, writer_until = $3 \
             WHERE id = $1 AND (writer IS NULL OR writer = $2 OR writer_until < $4)",
        )
        .bind(id.to_owned())
        .bind(writer.to_owned())
        .bind(now + lease_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Gives the write lease of session `id` back, if `writer` still holds it.
    pub async fn release_upload(&self, id: &str, writer: &str) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        sqlx::query(
            "UPDATE upload_sessions SET writer = NULL, writer_until = NULL \
             WHERE id = $1 AND writer = $2",
        )
        .bind(id.to_owned())
        .bind(writer.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets session `id` (finished or cancelled); true when it existed.
    pub async fn delete_upload_session(&self, id: &str) -> Result<bool, StoreError> {
        let _gate = self.write_lock().await;
        let deleted = sqlx::query("DELETE FROM upload_sessions WHERE id = $1")
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}

fn session(row: &sqlx::any::AnyRow) -> Result<UploadSession, StoreError> {
    Ok(UploadSession {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        started_at: row.try_get("started_at")?,
    })
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[tokio::test]
    async fn one_writer_holds_the_lease_until_it_gives_it_back_or_it_runs_out()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open_sqlite(&dir.path().join("store.db")).await?;
        store.create_upload_session("u1", "reg/app").await?;
        let session = store.upload_session("u1").await?.ok_or("no session")?;
        assert_eq!(session.owner, "reg/app");
        assert!(store.lease_upload("u1", "a", 60_000).await?);
        assert!(store.lease_upload("u1", "a", 60_000).await?, "renewal");
        assert!(!store.lease_upload("u1", "b", 60_000).await?);
        store.release_upload("u1", "b").await?;
        assert!(
            !store.lease_upload("u1", "b", 60_000).await?,
            "b never held it"
        );
        store.release_upload("u1", "a").await?;
        assert!(store.lease_upload("u1", "b", -1).await?);
        // b's lease has run out (it was taken already expired): a may take it.
        assert!(store.lease_upload("u1", "a", 60_000).await?);
        assert!(!store.lease_upload("missing", "a", 60_000).await?);
        assert_eq!(store.upload_sessions().await?.len(), 1);
        assert!(store.delete_upload_session("u1").await?);
        assert!(!store.delete_upload_session("u1").await?);
        assert_eq!(store.upload_session("u1").await?, None);
        Ok(())
    }
}
