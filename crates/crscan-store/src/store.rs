//! The [`Store`]: one connection pool and the queries behind the domain API.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crscan_model::Digest;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use crate::Backend;
use crate::model::*;
pub(crate) use crate::now_millis;
use crate::{IdKind, StoreError, new_id};

pub(crate) mod access;
mod cluster;
mod handback;
pub(crate) mod lifecycle;
mod operation_rows;
pub(crate) mod published;
pub(crate) mod scans;
pub(crate) mod uploads;

/// The metadata store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer; writers queue here instead of failing with `SQLITE_BUSY`
    /// when two transactions try to upgrade to a write lock at once.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    schema: Option<String>,
}

fn parse_digest(text: &str) -> Result<Digest, StoreError> {
    Digest::from_str(text).map_err(|_| StoreError::Corrupt(text.to_owned()))
}

/// An image's config, layers and child manifests.
type ImageBlobs = (Option<BlobRef>, Vec<BlobRef>, Vec<BlobRef>);

const IMAGE_COLUMNS: &str = "i.id, i.repository_id, r.name AS repository_name, i.digest, i.media_type, \
     i.manifest_size, i.artifact_type, i.subject_digest, i.compressed_size, i.created_at";

/// How long an `Idempotency-Key` answers with its first operation (24 hours).
pub(crate) const IDEMPOTENCY_KEY_LIFETIME_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// Opens the SQLite database file at `path` (created when missing) and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Store::connect(&url).await
    }

    /// Connects to `sqlite://…` or `postgres://…` and migrates the database.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_in_schema(url, None).await
    }

    /// Connects to PostgreSQL with every connection's `search_path` set to `schema`,
    /// which is created when missing (used by tests to isolate runs).
    pub async fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(url.to_owned()));
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        match backend {
            Backend::Sqlite => {
                // Every query is a round trip to the connection's own thread, so the
                // pool does not ping a connection before lending it (a SQLite file does
                // not drop connections), and pages are read through a memory map
                // instead of one `pread` each.
                options = options
                    .max_connections(4)
                    .test_before_acquire(false)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            sqlx::raw_sql(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA mmap_size = 268435456; PRAGMA temp_store = MEMORY;",
                            )
                            .execute(connection)
                            .await?;
                            Ok(())
                        })
                    });
            }
            Backend::Postgres => {
                // While PostgreSQL cannot be reached a request waits this long for a
                // connection, then fails UNAVAILABLE (503) for the client to retry,
                // instead of hanging for the default 30 s.
                options = options
                    .max_connections(10)
                    .acquire_timeout(Duration::from_secs(3));
                if let Some(schema) = schema {
                    let bootstrap = AnyPoolOptions::new()
                        .max_connections(1)
                        .connect(url)
                        .await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
                    )))
                    .execute(&bootstrap)
                    .await?;
                    bootstrap.close().await;
                    let set_path = format!("SET search_path TO \"{schema}\"");
                    options = options.after_connect(move |connection, _| {
                        let set_path = set_path.clone();
                        Box::pin(async move {
                            sqlx::raw_sql(sqlx::AssertSqlSafe(set_path))
                                .execute(connection)
                                .await?;
                            Ok(())
                        })
                    });
                }
            }
        }
        // Migrations run on a connection of their own, closed before the pool opens:
        // a pooled connection that had read the schema before a migration altered a
        // table would prepare `SELECT *` with the old columns.
        let migrator = options.clone().max_connections(1).connect(url).await?;
        crate::migrate::migrate(&migrator, backend).await?;
        migrator.close().await;
        let pool = options.connect(url).await?;
        Ok(Store {
            pool,
            backend,
            write_gate: (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(()))),
            schema: schema.map(str::to_owned),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Drops the PostgreSQL schema this store was opened in (tests clean up with this).
    pub async fn drop_schema(self) -> Result<(), StoreError> {
        if let Some(schema) = &self.schema {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(&self.pool)
            .await?;
        }
        self.pool.close().await;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn write_lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    /// The row `sql` finds with `key` as its only parameter, or `NotFound` naming `kind`.
    pub(crate) async fn fetch_by_key(
        &self,
        sql: impl sqlx::SqlSafeStr,
        kind: &'static str,
        key: &str,
    ) -> Result<AnyRow, StoreError> {
        sqlx::query(sql)
            .bind(key.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind,
                key: key.to_owned(),
            })
    }

    // ---- registries -------------------------------------------------------------

    fn registry_from_row(row: &AnyRow) -> Result<Registry, StoreError> {
        let labels: String = row.try_get("labels")?;
        let labels: BTreeMap<String, String> =
            serde_json::from_str(&labels).map_err(|_| StoreError::Corrupt(labels.clone()))?;
        Ok(Registry {
            id: row.try_get("id")?,
            folder_id: row.try_get("folder_id")?,
            name: row.try_get("name")?,
            status: RegistryStatus::from_number(row.try_get("status")?),
            labels,
            created_at: row.try_get("created_at")?,
            secure: row.try_get::<i64, _>("secure")? != 0,
        })
    }

    /// Creates a registry. Names are unique, and so is a registry per folder.
    pub async fn create_registry(
        &self,
        folder_id: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Registry, StoreError> {
        self.create_registry_with(folder_id, name, labels, false)
            .await
    }

    /// [`Store::create_registry`], marked `secure` when asked (the caller adds the
    /// pre-set scan policy).
    pub async fn create_registry_with(
        &self,
        folder_id: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        secure: bool,
    ) -> Result<Registry, StoreError> {
        match self
            .create_registry_once(folder_id, name, labels, secure)
            .await
        {
            // A concurrent create won the race: say which rule it broke, as a second
            // call would.
            Err(error) if error.is_unique_violation() => {
                Err(self.registry_clash(folder_id, name).await?.unwrap_or(error))
            }
            result => result,
        }
    }

    /// Why a registry named `name` cannot be created in `folder_id`, if it cannot: the
    /// hosted service allows one registry per folder, and names are unique.
    async fn registry_clash(
        &self,
        folder_id: &str,
        name: &str,
    ) -> Result<Option<StoreError>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, name, folder_id FROM registries WHERE folder_id = $1 OR name = $2 \
             ORDER BY folder_id = $1 DESC",
        )
        .bind(folder_id.to_owned())
        .bind(name.to_owned())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().next().map(|(id, existing, folder)| {
            if folder == folder_id {
                StoreError::OneRegistryPerFolder {
                    folder_id: folder,
                    name: existing,
                    id,
                }
            } else {
                StoreError::AlreadyExists {
                    kind: "registry named",
                    key: existing,
                }
            }
        }))
    }

    async fn create_registry_once(
        &self,
        folder_id: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        secure: bool,
    ) -> Result<Registry, StoreError> {
        let _gate = self.write_lock().await;
        if let Some(clash) = self.registry_clash(folder_id, name).await? {
            return Err(clash);
        }
        let mut tx = self.pool.begin().await?;
        let registry = Registry {
            id: new_id(IdKind::Registry),
            folder_id: folder_id.to_owned(),
            name: name.to_owned(),
            status: RegistryStatus::Active,
            labels: labels.clone(),
            created_at: now_millis(),
            secure,
        };
        sqlx::query(
            "INSERT INTO registries (id, folder_id, name, status, labels, created_at, secure) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(registry.id.clone())
        .bind(registry.folder_id.clone())
        .bind(registry.name.clone())
        .bind(registry.status.number())
        .bind(labels_json(labels))
        .bind(registry.created_at)
        .bind(i64::from(secure))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(registry)
    }

    pub async fn get_registry(&self, id: &str) -> Result<Registry, StoreError> {
        let row = self
            .fetch_by_key("SELECT * FROM registries WHERE id = $1", "registry", id)
            .await?;
        Store::registry_from_row(&row)
    }

    /// Finds a registry by its ID or, failing that, by its name.
    pub async fn find_registry(&self, id_or_name: &str) -> Result<Registry, StoreError> {
        let row = self
            .fetch_by_key(
                "SELECT * FROM registries WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC",
                "registry",
                id_or_name,
            )
            .await?;
        Store::registry_from_row(&row)
    }

    /// Lists registries, optionally of one folder and with one name, by name.
    pub async fn list_registries(
        &self,
        folder_id: Option<&str>,
        name: Option<&str>,
        start: &PageStart,
        limit: i64,
    ) -> Result<Vec<Registry>, StoreError> {
        let keyset = Keyset::new(vec![("g.name", false), ("g.id", false)]);
        let anchor = self.page_anchor("registries", start).await?;
        let (join, after) = match anchor {
            Some(_) => (
                keyset.anchor_join("registries g", "g.id", "$5"),
                keyset.after_anchor(),
            ),
            None => (String::new(), "AND $5 = $5".to_owned()),
        };
        let sql = format!(
            "SELECT g.* FROM registries g {join} WHERE ($1 = '' OR g.folder_id = $1) \
             AND ($2 = '' OR g.name = $2) {after} ORDER BY {} LIMIT $3 OFFSET $4",
            keyset.order_by()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(folder_id.unwrap_or_default().to_owned())
            .bind(name.unwrap_or_default().to_owned())
            .bind(limit)
            .bind(if anchor.is_some() { 0 } else { start.offset })
            .bind(anchor.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Store::registry_from_row).collect()
    }

    /// Updates a registry's name and/or labels.
    pub async fn update_registry(
        &self,
        id: &str,
        name: Option<&str>,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Result<Registry, StoreError> {
        let _gate = self.write_lock().await;
        let mut registry = self.get_registry(id).await?;
        if let Some(name) = name {
            if name != registry.name {
                let clash: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM registries WHERE name = $1")
                        .bind(name.to_owned())
                        .fetch_optional(&self.pool)
                        .await?;
                if clash.is_some() {
                    return Err(StoreError::AlreadyExists {
                        kind: "registry",
                        key: name.to_owned(),
                    });
                }
            }
            registry.name = name.to_owned();
        }
        if let Some(labels) = labels {
            registry.labels = labels.clone();
        }
        sqlx::query("UPDATE registries SET name = $1, labels = $2 WHERE id = $3")
            .bind(registry.name.clone())
            .bind(labels_json(&registry.labels))
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(registry)
    }

    /// Deletes an empty registry.
    pub async fn delete_registry(&self, id: &str) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        self.get_registry(id).await?;
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM repositories WHERE registry_id = $1")
                .bind(id.to_owned())
                .fetch_one(&self.pool)
                .await?;
        if count > 0 {
            return Err(StoreError::FailedPrecondition(format!(
                "registry {id} still holds {count} repositories"
            )));
        }
        for sql in [
            "DELETE FROM access_bindings WHERE resource_id = $1",
            "DELETE FROM ip_permissions WHERE registry_id = $1",
            "DELETE FROM registries WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_owned())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Returns the registry named `default`, creating it (folder `default`) when absent.
    pub async fn ensure_default_registry(&self) -> Result<(Registry, bool), StoreError> {
        match self.find_registry("default").await {
            Ok(registry) => Ok((registry, false)),
            Err(StoreError::NotFound { .. }) => {
                match self
                    .create_registry("default", "default", &BTreeMap::new())
                    .await
                {
                    Ok(registry) => Ok((registry, true)),
                    Err(StoreError::AlreadyExists { .. }) => {
                        Ok((self.find_registry("default").await?, false))
                    }
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    // ---- repositories -----------------------------------------------------------

    fn repository_from_row(row: &AnyRow) -> Result<Repository, StoreError> {
        Ok(Repository {
            id: row.try_get("id")?,
            registry_id: row.try_get("registry_id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
        })
    }

    pub async fn get_repository(&self, id: &str) -> Result<Repository, StoreError> {
        let row = self
            .fetch_by_key("SELECT * FROM repositories WHERE id = $1", "repository", id)
            .await?;
        Store::repository_from_row(&row)
    }

    /// The repository of an image, in one query (`NotFound` names the image). The scan
    /// call needs only this, not the image's blobs and tags.
    pub async fn repository_of_image(&self, image_id: &str) -> Result<Repository, StoreError> {
        let row = self
            .fetch_by_key(
                "SELECT r.* FROM images i JOIN repositories r ON r.id = i.repository_id \
                 WHERE i.id = $1",
                "image",
                image_id,
            )
            .await?;
        Store::repository_from_row(&row)
    }

    /// Finds a repository by its full name `<registryId>/<name>`.
    pub async fn get_repository_by_name(&self, name: &str) -> Result<Repository, StoreError> {
        let row = self
            .fetch_by_key(
                "SELECT * FROM repositories WHERE name = $1",
                "repository",
                name,
            )
            .await?;
        Store::repository_from_row(&row)
    }

    /// Returns the repository `name` in `registry_id`, creating it when absent.
    pub async fn upsert_repository(
        &self,
        registry_id: &str,
        name: &str,
    ) -> Result<Repository, StoreError> {
        if let Ok(repository) = self.get_repository_by_name(name).await {
            return Ok(repository);
        }
        let _gate = self.write_lock().await;
        self.get_registry(registry_id).await?;
        let repository = Repository {
            id: new_id(IdKind::Repository),
            registry_id: registry_id.to_owned(),
            name: name.to_owned(),
            created_at: now_millis(),
        };
        let inserted = sqlx::query(
            "INSERT INTO repositories (id, registry_id, name, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(repository.id.clone())
        .bind(repository.registry_id.clone())
        .bind(repository.name.clone())
        .bind(repository.created_at)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return self.get_repository_by_name(name).await;
        }
        Ok(repository)
    }

    /// Lists repositories by name.
    pub async fn list_repositories(
        &self,
        query: &RepositoryQuery,
    ) -> Result<Vec<Repository>, StoreError> {
        let keyset = Keyset::new(vec![
            ("p.name", query.descending),
            ("p.id", query.descending),
        ]);
        let anchor = self.page_anchor("repositories", &query.start).await?;
        let (join, after) = match anchor {
            Some(_) => (
                keyset.anchor_join("repositories p", "p.id", "$6"),
                keyset.after_anchor(),
            ),
            None => (String::new(), "AND $6 = $6".to_owned()),
        };
        let sql = format!(
            "SELECT p.* FROM repositories p JOIN registries g ON g.id = p.registry_id {join} \
             WHERE ($1 = '' OR p.registry_id = $1) AND ($2 = '' OR g.folder_id = $2) \
             AND ($3 = '' OR p.name = $3) {after} ORDER BY {} LIMIT $4 OFFSET $5",
            keyset.order_by()
        );
        let (registry_id, folder_id) = match (&query.registry_id, &query.folder_id) {
            (Some(registry_id), _) => (registry_id.clone(), String::new()),
            (None, Some(folder_id)) => (String::new(), folder_id.clone()),
            (None, None) => (String::new(), String::new()),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(registry_id)
            .bind(folder_id)
            .bind(query.name.clone().unwrap_or_default())
            .bind(query.limit)
            .bind(if anchor.is_some() {
                0
            } else {
                query.start.offset
            })
            .bind(anchor.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Store::repository_from_row).collect()
    }

    /// Deletes a repository with its images, tags, blob links and lifecycle policies.
    pub async fn delete_repository(&self, id: &str) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        self.get_repository(id).await?;
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM tags WHERE repository_id = $1",
            "DELETE FROM image_blobs WHERE image_id IN (SELECT id FROM images WHERE repository_id = $1)",
            "DELETE FROM images WHERE repository_id = $1",
            "DELETE FROM repository_blobs WHERE repository_id = $1",
            "DELETE FROM lifecycle_dry_runs WHERE policy_id IN \
             (SELECT id FROM lifecycle_policies WHERE repository_id = $1)",
            "DELETE FROM lifecycle_policies WHERE repository_id = $1",
            "DELETE FROM access_bindings WHERE resource_id = $1",
            "DELETE FROM repositories WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Repository names after `last`, at most `limit` (the `/v2/_catalog` listing).
    pub async fn catalog(&self, last: Option<&str>, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(last.unwrap_or_default().to_owned())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    // ---- blob links -------------------------------------------------------------

    /// Records that `digest` was uploaded to (or mounted into) a repository.
    pub async fn link_blob(&self, repository_id: &str, digest: &Digest) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind(repository_id.to_owned())
        .bind(digest.to_string())
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether a repository may serve `digest`: it was uploaded there or an image of the
    /// repository references it.
    pub async fn blob_linked(
        &self,
        repository_id: &str,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2 \
             UNION ALL SELECT 1 FROM images WHERE repository_id = $1 AND digest = $2 LIMIT 1",
        )
        .bind(repository_id.to_owned())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Removes a blob link; `false` when there was none.
    pub async fn unlink_blob(
        &self,
        repository_id: &str,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let _gate = self.write_lock().await;
        let result =
            sqlx::query("DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
                .bind(repository_id.to_owned())
                .bind(digest.to_string())
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Every digest that something still needs: each image's manifest and the blobs and
    /// children it references, and the published vulnerability databases. Garbage
    /// collection keeps these.
    pub async fn referenced_digests(&self) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT digest FROM images UNION SELECT digest FROM image_blobs \
                 UNION SELECT digest FROM database_publications",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(digest,)| digest).collect())
    }

    /// Drops blob links to digests in `digests` (after GC deleted them).
    pub async fn forget_blobs(&self, digests: &[Digest]) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        for digest in digests {
            sqlx::query("DELETE FROM repository_blobs WHERE digest = $1")
                .bind(digest.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    // ---- images and tags --------------------------------------------------------

    async fn image_from_row(&self, row: &AnyRow) -> Result<Image, StoreError> {
        self.images_from_rows(std::slice::from_ref(row))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("image row".to_owned()))
    }

    /// Images with their blobs and tags: two queries per 500 images (not two per
    /// image), so that a page of a thousand images costs a handful of round trips.
    async fn images_from_rows(&self, rows: &[AnyRow]) -> Result<Vec<Image>, StoreError> {
        const CHUNK: usize = 500;
        let ids = rows
            .iter()
            .map(|row| row.try_get::<String, _>("id"))
            .collect::<Result<Vec<String>, _>>()?;
        let mut blobs: HashMap<String, ImageBlobs> = HashMap::new();
        let mut tags: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let placeholders = (1..=chunk.len())
                .map(|index| format!("${index}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT image_id, id, role, digest, size, media_type FROM image_blobs \
                 WHERE image_id IN ({placeholders}) ORDER BY image_id, position"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.clone());
            }
            for blob_row in query.fetch_all(&self.pool).await? {
                let image_id: String = blob_row.try_get("image_id")?;
                let role: String = blob_row.try_get("role")?;
                let blob_digest: String = blob_row.try_get("digest")?;
                let blob = BlobRef {
                    id: blob_row.try_get("id")?,
                    digest: parse_digest(&blob_digest)?,
                    size: blob_row.try_get("size")?,
                    media_type: blob_row.try_get("media_type")?,
                };
                let entry = blobs.entry(image_id).or_default();
                match BlobRole::parse(&role) {
                    Some(BlobRole::Config) => entry.0 = Some(blob),
                    Some(BlobRole::Layer) => entry.1.push(blob),
                    Some(BlobRole::Child) => entry.2.push(blob),
                    None => return Err(StoreError::Corrupt(role)),
                }
            }
            let sql = format!(
                "SELECT image_id, name FROM tags WHERE image_id IN ({placeholders}) \
                 ORDER BY image_id, name"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.clone());
            }
            for tag_row in query.fetch_all(&self.pool).await? {
                let image_id: String = tag_row.try_get("image_id")?;
                tags.entry(image_id)
                    .or_default()
                    .push(tag_row.try_get("name")?);
            }
        }
        let mut images = Vec::with_capacity(rows.len());
        for (row, id) in rows.iter().zip(ids) {
            let digest: String = row.try_get("digest")?;
            let subject: Option<String> = row.try_get("subject_digest")?;
            let (config, layers, children) = blobs.remove(&id).unwrap_or_default();
            images.push(Image {
                tags: tags.remove(&id).unwrap_or_default(),
                id,
                repository_id: row.try_get("repository_id")?,
                name: row.try_get("repository_name")?,
                digest: parse_digest(&digest)?,
                media_type: row.try_get("media_type")?,
                manifest_size: row.try_get("manifest_size")?,
                artifact_type: row.try_get("artifact_type")?,
                subject: subject.as_deref().map(parse_digest).transpose()?,
                config,
                layers,
                children,
                compressed_size: row.try_get("compressed_size")?,
                created_at: row.try_get("created_at")?,
            });
        }
        Ok(images)
    }

    /// Records a manifest as an image of its repository, or returns the existing image
    /// with that digest. When `tag` is given the tag is moved to this image in the same
    /// transaction.
    pub async fn put_image(&self, new: &NewImage, tag: Option<&str>) -> Result<Image, StoreError> {
        match self.put_image_once(new, tag).await {
            // The same manifest pushed at once by two clients: the other insert won,
            // and the second try finds its row.
            Err(error) if error.is_unique_violation() => self.put_image_once(new, tag).await,
            other => other,
        }
    }

    async fn put_image_once(&self, new: &NewImage, tag: Option<&str>) -> Result<Image, StoreError> {
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        let existing: Option<(String,)> =
            sqlx::query_as("SELECT id FROM images WHERE repository_id = $1 AND digest = $2")
                .bind(new.repository_id.clone())
                .bind(new.digest.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let now = now_millis();
        let image_id = match existing {
            Some((id,)) => id,
            None => {
                let id = new_id(IdKind::Image);
                let compressed_size: i64 = new
                    .blobs
                    .iter()
                    .filter(|(role, ..)| *role != BlobRole::Child)
                    .map(|(_, _, size, _)| *size)
                    .sum();
                sqlx::query(
                    "INSERT INTO images (id, repository_id, digest, media_type, manifest_size, \
                     artifact_type, subject_digest, compressed_size, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(id.clone())
                .bind(new.repository_id.clone())
                .bind(new.digest.to_string())
                .bind(new.media_type.clone())
                .bind(new.manifest_size)
                .bind(new.artifact_type.clone())
                .bind(new.subject.as_ref().map(ToString::to_string))
                .bind(compressed_size)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                for (position, (role, digest, size, media_type)) in new.blobs.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO image_blobs (id, image_id, position, role, digest, size, media_type) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(new_id(IdKind::Blob))
                    .bind(id.clone())
                    .bind(i64::try_from(position).unwrap_or(i64::MAX))
                    .bind(role.as_text())
                    .bind(digest.to_string())
                    .bind(*size)
                    .bind(media_type.clone())
                    .execute(&mut *tx)
                    .await?;
                }
                id
            }
        };
        if let Some(tag) = tag {
            sqlx::query(
                "INSERT INTO tags (repository_id, name, image_id, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (repository_id, name) DO UPDATE SET image_id = $3, updated_at = $4",
            )
            .bind(new.repository_id.clone())
            .bind(tag.to_owned())
            .bind(image_id.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        drop(_gate);
        self.get_image(&image_id).await
    }

    pub async fn get_image(&self, id: &str) -> Result<Image, StoreError> {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM images i JOIN repositories r ON r.id = i.repository_id WHERE i.id = $1"
        );
        let row = self
            .fetch_by_key(sqlx::AssertSqlSafe(sql), "image", id)
            .await?;
        self.image_from_row(&row).await
    }

    /// The image with `digest` in a repository, if any.
    pub async fn find_image_by_digest(
        &self,
        repository_id: &str,
        digest: &Digest,
    ) -> Result<Option<Image>, StoreError> {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM images i JOIN repositories r ON r.id = i.repository_id \
             WHERE i.repository_id = $1 AND i.digest = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repository_id.to_owned())
            .bind(digest.to_string())
            .fetch_optional(&self.pool)
            .await?;
        self.images_from_rows(row.as_slice())
            .await
            .map(|images| images.into_iter().next())
    }

    /// The image a tag points at, if any.
    pub async fn find_image_by_tag(
        &self,
        repository_id: &str,
        tag: &str,
    ) -> Result<Option<Image>, StoreError> {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM tags t JOIN images i ON i.id = t.image_id \
             JOIN repositories r ON r.id = i.repository_id WHERE t.repository_id = $1 AND t.name = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repository_id.to_owned())
            .bind(tag.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        self.images_from_rows(row.as_slice())
            .await
            .map(|images| images.into_iter().next())
    }

    /// Tags of a repository after `last`, at most `limit`, in lexical order.
    pub async fn list_tags(
        &self,
        repository_id: &str,
        last: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM tags WHERE repository_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repository_id.to_owned())
        .bind(last.unwrap_or_default().to_owned())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    /// Deletes a tag; `false` when there was none.
    pub async fn delete_tag(&self, repository_id: &str, tag: &str) -> Result<bool, StoreError> {
        let _gate = self.write_lock().await;
        let result = sqlx::query("DELETE FROM tags WHERE repository_id = $1 AND name = $2")
            .bind(repository_id.to_owned())
            .bind(tag.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Deletes an image with its tags.
    pub async fn delete_image(&self, id: &str) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM tags WHERE image_id = $1",
            "DELETE FROM image_blobs WHERE image_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        let result = sqlx::query("DELETE FROM images WHERE id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "image",
                key: id.to_owned(),
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Images of a repository whose `subject` is `digest` (the referrers API), optionally
    /// only those with one artifact type.
    pub async fn referrers(
        &self,
        repository_id: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Image>, StoreError> {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM images i JOIN repositories r ON r.id = i.repository_id \
             WHERE i.repository_id = $1 AND i.subject_digest = $2 \
             AND ($3 = '' OR i.artifact_type = $3) ORDER BY i.digest"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repository_id.to_owned())
            .bind(subject.to_string())
            .bind(artifact_type.unwrap_or_default().to_owned())
            .fetch_all(&self.pool)
            .await?;
        self.images_from_rows(&rows).await
    }

    /// Lists images per the contract's `ListImages` rules.
    pub async fn list_images(&self, query: &ImageQuery) -> Result<Vec<Image>, StoreError> {
        let (repository_name, registry_id, folder_id) =
            match (&query.repository_name, &query.registry_id, &query.folder_id) {
                (Some(name), _, _) => (name.clone(), String::new(), String::new()),
                (None, Some(registry_id), _) => (String::new(), registry_id.clone(), String::new()),
                (None, None, Some(folder_id)) => (String::new(), String::new(), folder_id.clone()),
                (None, None, None) => (String::new(), String::new(), String::new()),
            };
        let mut keys: Vec<(&str, bool)> = query
            .order_by
            .iter()
            .map(|(field, descending)| {
                let column = match field {
                    ImageOrder::Name => "r.name",
                    ImageOrder::Digest => "i.digest",
                    ImageOrder::CreatedAt => "i.created_at",
                };
                (column, *descending)
            })
            .collect();
        keys.push(("i.id", false));
        let keyset = Keyset::new(keys);
        let anchor = self.page_anchor("images", &query.start).await?;
        let (join, after) = match anchor {
            Some(_) => (
                keyset.anchor_join(
                    "images i JOIN repositories r ON r.id = i.repository_id",
                    "i.id",
                    "$7",
                ),
                keyset.after_anchor(),
            ),
            None => (String::new(), "AND $7 = $7".to_owned()),
        };
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM images i JOIN repositories r ON r.id = i.repository_id \
             JOIN registries g ON g.id = r.registry_id {join} \
             WHERE ($1 = '' OR r.name = $1) AND ($2 = '' OR r.registry_id = $2) \
             AND ($3 = '' OR g.folder_id = $3) AND ($4 = '' OR r.name = $4) {after} \
             ORDER BY {} LIMIT $5 OFFSET $6",
            keyset.order_by()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repository_name)
            .bind(registry_id)
            .bind(folder_id)
            .bind(query.name.clone().unwrap_or_default())
            .bind(query.limit)
            .bind(if anchor.is_some() {
                0
            } else {
                query.start.offset
            })
            .bind(anchor.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        self.images_from_rows(&rows).await
    }

    // ---- operations -------------------------------------------------------------

    fn operation_from_row(row: &AnyRow) -> Result<Operation, StoreError> {
        let done: i64 = row.try_get("done")?;
        let metadata: Option<String> = row.try_get("metadata")?;
        let response: Option<String> = row.try_get("response")?;
        let error: Option<String> = row.try_get("error")?;
        Ok(Operation {
            id: row.try_get("id")?,
            description: row.try_get("description")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            modified_at: row.try_get("modified_at")?,
            done: done != 0,
            metadata: operation_rows::read_metadata(metadata.as_deref().unwrap_or_default())?,
            result: operation_rows::read_result(response.as_deref(), error.as_deref())?,
        })
    }

    /// Records an operation. With an idempotency key that was used in the last 24 hours,
    /// returns the earlier operation instead and `false`.
    pub async fn insert_operation(
        &self,
        operation: &Operation,
        idempotency_key: Option<&str>,
    ) -> Result<(Operation, bool), StoreError> {
        let inserted = self.insert_operation_once(operation, idempotency_key).await;
        self.earlier_on_key_race(inserted, idempotency_key).await
    }

    /// A call with an idempotency key that lost a race to a concurrent call with the
    /// same key (its insert hit the key's unique index) answers with the winner's
    /// operation, as a repeated call would.
    pub(crate) async fn earlier_on_key_race(
        &self,
        inserted: Result<(Operation, bool), StoreError>,
        idempotency_key: Option<&str>,
    ) -> Result<(Operation, bool), StoreError> {
        match (inserted, idempotency_key) {
            (Err(error), Some(key)) if error.is_unique_violation() => {
                match self.find_operation_by_key(key).await? {
                    Some(earlier) => Ok((earlier, false)),
                    None => Err(error),
                }
            }
            (inserted, _) => inserted,
        }
    }

    async fn insert_operation_once(
        &self,
        operation: &Operation,
        idempotency_key: Option<&str>,
    ) -> Result<(Operation, bool), StoreError> {
        if let Some(key) = idempotency_key
            && let Some(earlier) = self.find_operation_by_key(key).await?
        {
            return Ok((earlier, false));
        }
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        record_operation(&mut tx, operation, idempotency_key).await?;
        tx.commit().await?;
        Ok((operation.clone(), true))
    }

    /// The operation recorded in the last 24 hours under an idempotency key.
    pub async fn find_operation_by_key(&self, key: &str) -> Result<Option<Operation>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM operations WHERE idempotency_key = $1 AND created_at > $2")
                .bind(key.to_owned())
                .bind(now_millis() - IDEMPOTENCY_KEY_LIFETIME_MS)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(Store::operation_from_row).transpose()
    }

    pub async fn get_operation(&self, id: &str) -> Result<Operation, StoreError> {
        let row = self
            .fetch_by_key("SELECT * FROM operations WHERE id = $1", "operation", id)
            .await?;
        Store::operation_from_row(&row)
    }
}

/// Inserts an operation under an idempotency key, first freeing the key from the
/// earlier operation that held it (a key older than 24 hours is free again).
/// A keyset page: `ORDER BY` keys as (SQL expression, descending), the last one
/// unique (the row's id). With an anchor, the page holds the rows that sort after
/// the anchor row, whose keys a derived table `a` gives as `a.k0`, `a.k1`, ….
pub(crate) struct Keyset<'k> {
    keys: Vec<(&'k str, bool)>,
}

impl<'k> Keyset<'k> {
    pub(crate) fn new(keys: Vec<(&'k str, bool)>) -> Self {
        Keyset { keys }
    }

    /// `e0 ASC, e1 DESC, …`.
    pub(crate) fn order_by(&self) -> String {
        self.keys
            .iter()
            .map(|(expression, descending)| {
                format!("{expression} {}", if *descending { "DESC" } else { "ASC" })
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `CROSS JOIN (SELECT e0 AS k0, … FROM {from} WHERE {id} = {parameter}) a`: the
    /// anchor row's keys, computed by the same expressions over the same tables.
    pub(crate) fn anchor_join(&self, from: &str, id: &str, parameter: &str) -> String {
        let columns = self
            .keys
            .iter()
            .enumerate()
            .map(|(index, (expression, _))| format!("{expression} AS k{index}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("CROSS JOIN (SELECT {columns} FROM {from} WHERE {id} = {parameter}) a")
    }

    /// `AND ((e0 > a.k0) OR (e0 = a.k0 AND e1 < a.k1) OR …)`: the row sorts after the
    /// anchor.
    pub(crate) fn after_anchor(&self) -> String {
        let terms = (0..self.keys.len())
            .map(|index| {
                let mut parts: Vec<String> = self.keys[..index]
                    .iter()
                    .enumerate()
                    .map(|(earlier, (expression, _))| format!("{expression} = a.k{earlier}"))
                    .collect();
                let (expression, descending) = self.keys[index];
                let after = if descending { "<" } else { ">" };
                parts.push(format!("{expression} {after} a.k{index}"));
                format!("({})", parts.join(" AND "))
            })
            .collect::<Vec<_>>();
        format!("AND ({})", terms.join(" OR "))
    }
}

impl Store {
    /// The anchor a page starts after, if it still exists in `table`; a deleted anchor
    /// leaves the page to its offset.
    pub(crate) async fn page_anchor(
        &self,
        table: &str,
        start: &PageStart,
    ) -> Result<Option<String>, StoreError> {
        let Some(after) = &start.after else {
            return Ok(None);
        };
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE id = $1");
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(after.clone())
            .fetch_one(&self.pool)
            .await?;
        Ok((count > 0).then(|| after.clone()))
    }
}

pub(crate) async fn record_operation(
    connection: &mut sqlx::AnyConnection,
    operation: &Operation,
    idempotency_key: Option<&str>,
) -> Result<(), StoreError> {
    if let Some(key) = idempotency_key {
        // Only an expired holder gives the key up; a live one makes the insert below
        // hit the unique index, and the caller answers with that holder.
        sqlx::query(
            "UPDATE operations SET idempotency_key = NULL WHERE idempotency_key = $1 AND created_at <= $2",
        )
        .bind(key.to_owned())
        .bind(operation.created_at - IDEMPOTENCY_KEY_LIFETIME_MS)
        .execute(&mut *connection)
        .await?;
    }
    bind_operation(
        sqlx::query(
            "INSERT INTO operations (id, description, created_by, created_at, modified_at, done, \
             metadata, error, response, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ),
        operation,
        idempotency_key,
    )
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Binds an operation's ten columns as `$1`-`$10`, in the order of `INSERT INTO
/// operations (id, description, created_by, created_at, modified_at, done, metadata,
/// error, response, idempotency_key)`.
pub(crate) fn bind_operation<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    operation: &Operation,
    idempotency_key: Option<&str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let (response, error) = operation_rows::result_texts(operation.result.as_ref());
    query
        .bind(operation.id.clone())
        .bind(operation.description.clone())
        .bind(operation.created_by.clone())
        .bind(operation.created_at)
        .bind(operation.modified_at)
        .bind(i64::from(operation.done))
        .bind(operation_rows::metadata_text(&operation.metadata))
        .bind(error)
        .bind(response)
        .bind(idempotency_key.map(str::to_owned))
}

pub(crate) use operation_rows::result_texts;

fn labels_json(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".to_owned())
}
