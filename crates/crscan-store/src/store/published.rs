//! The vulnerability databases published for a cluster: `crscan db update --publish`
//! stores the database file as a blob and records it here; every node polls
//! [`Store::latest_database_publication`] and swaps in a newer one. The newest
//! [`KEEP`] publications are kept (their blobs are referenced, so GC keeps them);
//! older rows are dropped when a new one is published, and GC then reclaims their
//! blobs.

use sqlx::Row as _;

use crate::StoreError;
use crate::store::{Store, now_millis};

/// Publications kept, newest first.
const KEEP: i64 = 3;

/// One published database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabasePublication {
    /// `sha256:` of the database file: its key in the blob store.
    pub digest: String,
    /// The database's own content digest (over its advisories).
    pub content_digest: String,
    /// Build time, seconds since the Unix epoch.
    pub built_at: i64,
    pub advisories: i64,
    /// Bytes of the file.
    pub size: i64,
    /// Milliseconds since the Unix epoch.
    pub published_at: i64,
}

impl Store {
    /// Records a published database (its blob is already stored); publishing the same
    /// file again makes it the newest once more.
    pub async fn publish_database(
        &self,
        publication: &DatabasePublication,
    ) -> Result<DatabasePublication, StoreError> {
        let _gate = self.write_lock().await;
        let published_at = now_millis();
        sqlx::query(
            "INSERT INTO database_publications \
             (digest, content_digest, built_at, advisories, size, published_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (digest) DO UPDATE SET published_at = excluded.published_at",
        )
        .bind(publication.digest.clone())
        .bind(publication.content_digest.clone())
        .bind(publication.built_at)
        .bind(publication.advisories)
        .bind(publication.size)
        .bind(published_at)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM database_publications WHERE digest NOT IN \
             (SELECT digest FROM database_publications ORDER BY published_at DESC LIMIT $1)",
        )
        .bind(KEEP)
        .execute(&self.pool)
        .await?;
        Ok(DatabasePublication {
            published_at,
            ..publication.clone()
        })
    }

    /// The newest published database, if any was published.
    pub async fn latest_database_publication(
        &self,
    ) -> Result<Option<DatabasePublication>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, content_digest, built_at, advisories, size, published_at \
             FROM database_publications ORDER BY published_at DESC, digest LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(DatabasePublication {
                digest: row.try_get("digest")?,
                content_digest: row.try_get("content_digest")?,
                built_at: row.try_get("built_at")?,
                advisories: row.try_get("advisories")?,
                size: row.try_get("size")?,
                published_at: row.try_get("published_at")?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::DatabasePublication;
    use crate::Store;

    #[tokio::test]
    async fn the_newest_publication_wins_and_old_ones_go() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let store = Store::open_sqlite(&dir.path().join("store.db")).await?;
        assert_eq!(store.latest_database_publication().await?, None);
        for index in 0..5 {
            let publication = DatabasePublication {
                digest: format!("sha256:{index:064}"),
                content_digest: format!("sha256:c{index}"),
                built_at: index,
                advisories: 10,
                size: 100,
                published_at: 0,
            };
            store.publish_database(&publication).await?;
            // Distinct publication times.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let latest = store.latest_database_publication().await?.ok_or("none")?;
        assert_eq!(latest.built_at, 4);
        let referenced = store.referenced_digests().await?;
        assert!(referenced.contains(&format!("sha256:{:064}", 4)));
        assert!(referenced.contains(&format!("sha256:{:064}", 2)));
        assert!(!referenced.contains(&format!("sha256:{:064}", 1)));
        Ok(())
    }
}
