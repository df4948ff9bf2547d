//! The vulnerability database of a cluster: `crscan db update --publish` and `crscan
//! db build --publish` put the database file into the blob store (the nodes' own:
//! `file://` or `s3://`) under its SHA-256 (the upload checks it, as a pushed layer's
//! is checked) and record it in the store
//! ([`crscan_store::DatabasePublication`]); every node polls the store, and when a
//! newer database than its own was published it fetches the blob into a file beside
//! its database, checks the digest and that the file opens as a database with the
//! published content digest, and renames it over its own. Workers reopen the file
//! when it changes and the scheduler rescans after the change, as after a local
//! `crscan db update`; requests are never interrupted, since a scan that holds the old
//! file keeps reading it.

use std::path::{Path, PathBuf};

use crscan_blob::{BlobError, BlobStore};
use crscan_model::Digest;
use crscan_store::{DatabasePublication, Store, StoreError};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Why publishing or fetching a database failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot open the vulnerability database {path}: {source}")]
    Database {
        path: PathBuf,
        source: crscan_vulndb::DbError,
    },
    #[error("the vulnerability database {0} holds no advisories; refusing to publish it")]
    Empty(PathBuf),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the published database {expected} fetched from the blob store has digest {actual}; it was not swapped in"
    )]
    DigestMismatch { expected: String, actual: String },
    #[error(
        "the published database {digest} opens with content digest {actual}, not the published {expected}; it was not swapped in"
    )]
    ContentMismatch {
        digest: String,
        expected: String,
        actual: String,
    },
    #[error("published digest {0:?} is not a digest")]
    BadDigest(String),
}

/// The database file's build time, advisory count and content digest (blocking).
fn database_info(path: &Path) -> Result<crscan_vulndb::DatabaseInfo, PublishError> {
    crscan_vulndb::Database::open(path)
        .map(|database| database.info().clone())
        .map_err(|source| PublishError::Database {
            path: path.to_owned(),
            source,
        })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.to_owned(),
        source,
    }
}

fn hex_digest(hasher: Sha256) -> String {
    let bytes = hasher.finalize();
    let mut text = String::with_capacity(7 + bytes.len() * 2);
    text.push_str("sha256:");
    for byte in bytes.iter() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Puts the database file at `path` into `blobs` and records it as the cluster's
/// newest database.
pub async fn publish(
    store: &Store,
    blobs: &BlobStore,
    path: &Path,
) -> Result<DatabasePublication, PublishError> {
    let owned = path.to_owned();
    let info = tokio::task::spawn_blocking(move || database_info(&owned))
        .await
        .map_err(|error| io_error(path)(std::io::Error::other(error)))??;
    if info.advisory_count == 0 {
        return Err(PublishError::Empty(path.to_owned()));
    }
    let mut file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
    let upload = blobs.create_upload("crscan-db-publish").await?;
    let mut append = blobs.append(&upload, Some(0)).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    let mut size: u64 = 0;
    loop {
        let read = file.read(&mut buffer).await.map_err(io_error(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        append.write(&buffer[..read]).await?;
        size += read as u64;
    }
    append.finish().await?;
    let digest_text = hex_digest(hasher);
    let digest: Digest = digest_text
        .parse()
        .map_err(|_| PublishError::BadDigest(digest_text.clone()))?;
    if let Err(error) = blobs.finish_upload(&upload, &digest).await {
        let _ = blobs.cancel_upload(&upload).await;
        return Err(error.into());
    }
    let publication = store
        .publish_database(&DatabasePublication {
            digest: digest_text,
            content_digest: info.content_digest.clone(),
            built_at: info.built_at,
            advisories: i64::try_from(info.advisory_count).unwrap_or(i64::MAX),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            published_at: 0,
        })
        .await?;
    Ok(publication)
}

/// Whether `published` should replace the local database of `local` (content digest
/// and build time): a different database, built later. A node whose own database is
/// newer (a local `crscan db update`) keeps it.
pub fn is_newer(published: &DatabasePublication, local: Option<(&str, i64)>) -> bool {
    match local {
        None => true,
        Some((content_digest, built_at)) => {
            published.content_digest != content_digest && published.built_at > built_at
        }
    }
}

/// Fetches the newest published database into `path` when it is newer than the
/// database there (see [`is_newer`]); returns what was swapped in.
pub async fn fetch_newer(
    store: &Store,
    blobs: &BlobStore,
    path: &Path,
) -> Result<Option<DatabasePublication>, PublishError> {
    let Some(latest) = store.latest_database_publication().await? else {
        return Ok(None);
    };
    let owned = path.to_owned();
    let local = tokio::task::spawn_blocking(move || database_info(&owned).ok())
        .await
        .ok()
        .flatten();
    if !is_newer(
        &latest,
        local
            .as_ref()
            .map(|info| (info.content_digest.as_str(), info.built_at)),
    ) {
        return Ok(None);
    }
    let digest: Digest = latest
        .digest
        .parse()
        .map_err(|_| PublishError::BadDigest(latest.digest.clone()))?;
    let directory = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(directory)
        .await
        .map_err(io_error(directory))?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "crscan.db".to_owned());
    let temporary = directory.join(format!(
        ".{file_name}.fetch-{}",
        crscan_store::new_id(crscan_store::IdKind::Operation)
    ));
    let fetched = fetch_into(blobs, &digest, &temporary, &latest).await;
    if let Err(error) = fetched {
        let _ = tokio::fs::remove_file(&temporary).await;
        return Err(error);
    }
    tokio::fs::rename(&temporary, path)
        .await
        .map_err(io_error(path))?;
    Ok(Some(latest))
}

async fn fetch_into(
    blobs: &BlobStore,
    digest: &Digest,
    temporary: &Path,
    latest: &DatabasePublication,
) -> Result<(), PublishError> {
    let mut read = blobs.open_read(digest, None).await?;
    let mut file = tokio::fs::File::create(temporary)
        .await
        .map_err(io_error(temporary))?;
    let mut hasher = Sha256::new();
    loop {
        let chunk = read.next_chunk().await.map_err(io_error(temporary))?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io_error(temporary))?;
    }
    file.sync_all().await.map_err(io_error(temporary))?;
    drop(file);
    let actual = hex_digest(hasher);
    if actual != latest.digest {
        return Err(PublishError::DigestMismatch {
            expected: latest.digest.clone(),
            actual,
        });
    }
    let owned = temporary.to_owned();
    let info = tokio::task::spawn_blocking(move || database_info(&owned))
        .await
        .map_err(|error| io_error(temporary)(std::io::Error::other(error)))??;
    if info.content_digest != latest.content_digest {
        return Err(PublishError::ContentMismatch {
            digest: latest.digest.clone(),
            expected: latest.content_digest.clone(),
            actual: info.content_digest,
        });
    }
    Ok(())
}

/// Looks for a newer published database every `every` and swaps it in; runs until
/// the process ends.
pub fn spawn_watch(
    store: Store,
    blobs: std::sync::Arc<BlobStore>,
    path: PathBuf,
    every: std::time::Duration,
) {
    tokio::spawn(async move {
        loop {
            match fetch_newer(&store, &blobs, &path).await {
                Ok(Some(publication)) => tracing::info!(
                    database.digest = %publication.digest,
                    database.content_digest = %publication.content_digest,
                    database.built_at = publication.built_at,
                    advisories = publication.advisories,
                    db = %path.display(),
                    "swapped in the vulnerability database published for the cluster"
                ),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "cannot fetch the published vulnerability database")
                }
            }
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(content: &str, built_at: i64) -> DatabasePublication {
        DatabasePublication {
            digest: "sha256:00".to_owned(),
            content_digest: content.to_owned(),
            built_at,
            advisories: 1,
            size: 1,
            published_at: 1,
        }
    }

    #[test]
    fn only_a_newer_different_database_replaces_the_local_one() {
        assert!(is_newer(&publication("a", 5), None));
        assert!(is_newer(&publication("a", 5), Some(("b", 4))));
        assert!(!is_newer(&publication("a", 5), Some(("a", 4))));
        assert!(!is_newer(&publication("a", 5), Some(("b", 6))));
    }
}
