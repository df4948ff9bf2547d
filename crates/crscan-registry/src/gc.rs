//! Garbage collection: deletes blobs (layers, configs and manifests alike) that no
//! image references, and upload sessions abandoned long ago.
//!
//! Safety against a push in progress: a blob younger than the grace period is never
//! collected (a client uploads layers before the manifest that references them), the
//! referenced set is read after the blob listing, a manifest push touches every blob it
//! references (resetting its age), and each candidate's age is checked again right
//! before it is deleted.

use std::time::{Duration, SystemTime};

use crscan_model::Digest;

use crate::{Registry, RegistryError};

/// How garbage collection runs.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Only report what would be deleted.
    pub dry_run: bool,
    /// Blobs modified more recently than this are kept.
    pub grace: Duration,
    /// Upload sessions older than this are removed.
    pub upload_expiry: Duration,
}

impl Default for GcOptions {
    fn default() -> GcOptions {
        GcOptions {
            dry_run: true,
            grace: Duration::from_secs(3600),
            upload_expiry: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What garbage collection found or did.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Unreferenced blobs older than the grace period, with sizes.
    pub unreferenced: Vec<(Digest, u64)>,
    /// Unreferenced blobs kept because they are recent.
    pub kept_recent: usize,
    /// Blobs actually deleted (zero on a dry run).
    pub deleted: usize,
    /// The blobs actually deleted, with sizes (a blob a push started to use again
    /// between the listing and the delete is kept, so this can be shorter than
    /// `unreferenced`).
    pub deleted_blobs: Vec<(Digest, u64)>,
    pub freed_bytes: u64,
    /// Expired upload sessions (removed unless dry run).
    pub expired_uploads: Vec<String>,
    /// Temporary files of interrupted writes that were removed.
    pub removed_temporaries: usize,
}

fn older_than(modified: SystemTime, age: Duration) -> bool {
    SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|elapsed| elapsed >= age)
}

pub(crate) async fn run(
    registry: &Registry,
    options: &GcOptions,
) -> Result<GcReport, RegistryError> {
    let mut report = GcReport::default();
    let listed = registry.blobs.list().await?;
    let referenced = registry.store.referenced_digests().await?;
    for blob in listed {
        if referenced.contains(&blob.digest.to_string()) {
            continue;
        }
        if !older_than(blob.modified, options.grace) {
            report.kept_recent += 1;
            continue;
        }
        report.unreferenced.push((blob.digest, blob.size));
    }
    // Sessions in the store, and staged bytes in the backend that no session holds
    // any more (a node died between the two writes, or a database publish was cut).
    for session in registry.store.upload_sessions().await? {
        let started =
            SystemTime::UNIX_EPOCH + Duration::from_millis(session.started_at.unsigned_abs());
        if older_than(started, options.upload_expiry) {
            report.expired_uploads.push(session.id);
        }
    }
    for upload in registry.blobs.list_uploads().await? {
        if older_than(upload.started, options.upload_expiry)
            && !report.expired_uploads.contains(&upload.id)
        {
            report.expired_uploads.push(upload.id);
        }
    }
    if options.dry_run {
        return Ok(report);
    }
    let mut deleted = Vec::new();
    for (digest, size) in &report.unreferenced {
        // Re-check: a push may have started to use the blob since the listing.
        let still_old = registry
            .blobs
            .modified(digest)
            .await?
            .is_some_and(|modified| older_than(modified, options.grace));
        if !still_old {
            continue;
        }
        if registry.blobs.delete(digest).await? {
            report.deleted += 1;
            report.freed_bytes += size;
            deleted.push(digest.clone());
            report.deleted_blobs.push((digest.clone(), *size));
            tracing::info!(blob.digest = %digest, blob.size = size, "gc deleted blob");
        }
    }
    registry.store.forget_blobs(&deleted).await?;
    report.removed_temporaries = registry
        .blobs
        .remove_stale_temporaries(options.grace)
        .await?;
    for id in &report.expired_uploads {
        registry.store.delete_upload_session(id).await?;
        let _ = registry.blobs.cancel_upload(id).await;
    }
    Ok(report)
}
