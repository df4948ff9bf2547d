//! Summaries across many images for a reader who browses (the console): each
//! image's newest finished scan, the images with a scan queued or running, and each
//! repository's image count and last push, each one query, so that a page of a
//! thousand images costs a few queries rather than a thousand.

use sqlx::Row;

use super::{SCAN_COLUMNS, ScanResult, ScanStatus, scan_from_row};
use crate::StoreError;
use crate::model::Repository;
use crate::store::Store;

/// Which images a summary covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanScope {
    All,
    Registry(String),
    Repository(String),
}

impl ScanScope {
    /// (registry id, repository id) to bind, empty where the scope does not narrow.
    fn keys(&self) -> (String, String) {
        match self {
            ScanScope::All => (String::new(), String::new()),
            ScanScope::Registry(id) => (id.clone(), String::new()),
            ScanScope::Repository(id) => (String::new(), id.clone()),
        }
    }
}

/// A repository with how many images it holds and when the newest was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySummary {
    pub repository: Repository,
    pub image_count: i64,
    /// Unix milliseconds of the newest image's push; `None` for an empty repository.
    pub last_push: Option<i64>,
}

impl Store {
    /// The newest finished (READY or ERROR) scan of each image in `scope`: the
    /// result `last_scan_result` answers with for each image, in one query.
    pub async fn latest_scan_results(
        &self,
        scope: &ScanScope,
    ) -> Result<Vec<ScanResult>, StoreError> {
        let (registry_id, repository_id) = scope.keys();
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM scan_results s WHERE s.status <> $1 \
             AND ($2 = '' OR s.registry_id = $2) AND ($3 = '' OR s.repository_id = $3) \
             AND NOT EXISTS (SELECT 1 FROM scan_results t WHERE t.image_id = s.image_id \
               AND t.status <> $1 AND (t.scanned_at > s.scanned_at \
               OR (t.scanned_at = s.scanned_at AND t.id > s.id)))"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ScanStatus::Running.number())
            .bind(registry_id)
            .bind(repository_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scan_from_row).collect()
    }

    /// The scans queued or running in `scope`, oldest first.
    pub async fn running_scan_results(
        &self,
        scope: &ScanScope,
    ) -> Result<Vec<ScanResult>, StoreError> {
        let (registry_id, repository_id) = scope.keys();
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM scan_results s WHERE s.status = $1 \
             AND ($2 = '' OR s.registry_id = $2) AND ($3 = '' OR s.repository_id = $3) \
             ORDER BY s.created_at, s.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ScanStatus::Running.number())
            .bind(registry_id)
            .bind(repository_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scan_from_row).collect()
    }

    /// A registry's repositories by name, each with its image count and last push.
    pub async fn repository_summaries(
        &self,
        registry_id: &str,
    ) -> Result<Vec<RepositorySummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.id, p.registry_id, p.name, p.created_at, COUNT(i.id) AS image_count, \
             MAX(i.created_at) AS last_push FROM repositories p \
             LEFT JOIN images i ON i.repository_id = p.id WHERE p.registry_id = $1 \
             GROUP BY p.id, p.registry_id, p.name, p.created_at ORDER BY p.name, p.id",
        )
        .bind(registry_id.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RepositorySummary {
                    repository: Repository {
                        id: row.try_get("id")?,
                        registry_id: row.try_get("registry_id")?,
                        name: row.try_get("name")?,
                        created_at: row.try_get("created_at")?,
                    },
                    image_count: row.try_get("image_count")?,
                    last_push: row.try_get("last_push")?,
                })
            })
            .collect()
    }
}
