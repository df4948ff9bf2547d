//! The scan itself, one path for every surface: [`inventory_of`] reads an image's
//! layers through the layer cache into a flattened view and catalogues it;
//! [`match_findings`] is the one matcher call. [`scan_image`] is what a server worker
//! (and a rescan) runs on an image in the registry; [`inventory_source`] is what
//! `crscan scan` and `crscan sbom` run on an image on disk. Cancellation is checked
//! between layers; limits are checked on the manifest (layer count, declared size)
//! and again on the bytes actually read.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crscan_catalog::Catalog;
use crscan_image::{
    BlobSource, ImageError, ImageInfo, ImageSource, LayerStats, LayerStore, Limits, OpenedImage,
    Progress, ReadOptions, read_layers, resolve_manifest,
};
use crscan_model::{Digest, Inventory};
use crscan_vulndb::{Database, MatchReport, match_inventory};

use crate::{LayerCache, ScanError};

/// What one scan of an image in a blob store needs.
pub struct ScanRequest<'a> {
    /// Where the manifest and layer blobs are.
    pub blobs: &'a dyn BlobSource,
    /// The image: a manifest or an index digest.
    pub image: &'a Digest,
    /// The bytes of `image` when the caller already has them.
    pub manifest: Option<&'a [u8]>,
    /// The vulnerability database; `None` fails the scan with
    /// [`ScanError::NoDatabase`] before any layer is read.
    pub database: Option<&'a Database>,
    /// The shared layer cache; `None` reads every layer.
    pub cache: Option<&'a LayerCache>,
    /// Set by another thread to stop the scan at its next layer.
    pub cancel: &'a AtomicBool,
    pub limits: &'a Limits,
}

/// How a scan went, for logs and tests.
pub type ScanStats = LayerStats;

/// The result of a scan.
#[derive(Debug, Clone)]
pub struct ScanOutcome {
    /// The platform manifest that was scanned.
    pub manifest_digest: Digest,
    pub inventory: Inventory,
    /// The matcher's report; its findings are sorted in the API's list order
    /// (severity, then name, then package, then version).
    pub report: MatchReport,
    pub stats: ScanStats,
}

/// Opens the vulnerability database at `path`; any failure (missing file, old
/// schema, corrupt file) is [`ScanError::NoDatabase`] with the fix in its message.
pub fn open_database(path: &Path) -> Result<Database, ScanError> {
    let database = Database::open(path).map_err(|error| ScanError::NoDatabase {
        detail: error.to_string(),
    })?;
    if database.info().advisory_count == 0 {
        return Err(ScanError::NoDatabase {
            detail: format!(
                "the database {} holds no advisories, so every image would look clean",
                path.display()
            ),
        });
    }
    Ok(database)
}

/// Stops reading at the next layer once the flag is set.
struct Cancel<'a>(&'a AtomicBool);

impl Progress for Cancel<'_> {
    fn cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Scans one image of a blob store end to end: the server's workers and rescans.
pub fn scan_image(request: &ScanRequest<'_>) -> Result<ScanOutcome, ScanError> {
    let Some(database) = request.database else {
        return Err(ScanError::NoDatabase {
            detail: "none is installed".to_owned(),
        });
    };
    let (manifest_digest, inventory, stats) = inventory_image(request)?;
    if request.cancel.load(Ordering::SeqCst) {
        return Err(ScanError::Cancelled {
            image: request.image.to_string(),
        });
    }
    let report = match_findings(database, &inventory).map_err(|error| ScanError::Internal {
        image: manifest_digest.to_string(),
        detail: error.to_string(),
    })?;
    Ok(ScanOutcome {
        manifest_digest,
        inventory,
        report,
        stats,
    })
}

/// Matches a stored inventory again (after the database changed) and shapes the
/// result as a scan does.
pub fn match_inventory_outcome(
    manifest_digest: &Digest,
    inventory: Inventory,
    database: Option<&Database>,
) -> Result<ScanOutcome, ScanError> {
    let Some(database) = database else {
        return Err(ScanError::NoDatabase {
            detail: "none is installed".to_owned(),
        });
    };
    let report = match_findings(database, &inventory).map_err(|error| ScanError::Internal {
        image: manifest_digest.to_string(),
        detail: error.to_string(),
    })?;
    Ok(ScanOutcome {
        manifest_digest: manifest_digest.clone(),
        inventory,
        report,
        stats: ScanStats::default(),
    })
}

/// The one matcher call: the findings of an inventory, sorted in the API's list
/// order (severity, then name, then package, then version).
pub fn match_findings(
    database: &Database,
    inventory: &Inventory,
) -> Result<MatchReport, crscan_vulndb::MatchError> {
    let mut report = match_inventory(database, inventory)?;
    report.findings.sort_by(|left, right| left.api_order(right));
    Ok(report)
}

/// Resolves the image of a blob store and reads it (through the cache) into an
/// inventory, without matching. Returns the platform manifest's digest with it.
pub fn inventory_image(
    request: &ScanRequest<'_>,
) -> Result<(Digest, Inventory, ScanStats), ScanError> {
    let image = request.image.to_string();
    let classify = |error| classify(&image, error);
    let info = resolve_manifest(
        request.blobs,
        request.image,
        request.manifest,
        None,
        None,
        request.limits,
    )
    .map_err(classify)?;
    let manifest_digest = info
        .manifest_digest
        .clone()
        .unwrap_or_else(|| request.image.clone());
    let (inventory, mut stats) = inventory_of(
        request.blobs,
        &info,
        request.cache,
        request.limits,
        &Cancel(request.cancel),
    )
    .map_err(classify)?;
    // The console shows an image's packages from its last scan on this node.
    if let Some(cache) = request.cache
        && cache.put_inventory(&manifest_digest, &inventory).is_err()
    {
        stats.cache_write_failures += 1;
    }
    Ok((manifest_digest, inventory, stats))
}

/// The one path from a resolved image to its inventory: every layer from `cache`
/// or streamed once from `blobs` (a caller without a cache passes none), applied in
/// order to one view, catalogued.
pub fn inventory_of(
    blobs: &dyn BlobSource,
    info: &ImageInfo,
    cache: Option<&LayerCache>,
    limits: &Limits,
    progress: &dyn Progress,
) -> Result<(Inventory, ScanStats), ImageError> {
    let catalog = Catalog::default();
    let cache = cache.map(|cache| cache as &dyn LayerStore);
    let (view, stats) = read_layers(blobs, info, &catalog, cache, limits, progress)?;
    if progress.cancelled() {
        return Err(ImageError::Cancelled);
    }
    Ok((catalog.inventory(&view), stats))
}

/// Opens an image on disk (`oci:`, `oci-archive:`, `docker-archive:`, `dir:`) and
/// reads it into an inventory: [`inventory_of`] without a cache, or for a root
/// filesystem, which has no layers, the same catalogue over its files.
pub fn inventory_source(
    source: &ImageSource,
    options: &ReadOptions,
    progress: &dyn Progress,
) -> Result<(ImageInfo, Inventory, ScanStats), ImageError> {
    match crscan_image::open_image(source, options)? {
        OpenedImage::Layers { blobs, info } => {
            let (inventory, stats) = inventory_of(&blobs, &info, None, &options.limits, progress)?;
            Ok((info, inventory, stats))
        }
        OpenedImage::RootFs { path, info } => {
            progress.image_opened(&info);
            let catalog = Catalog::default();
            let view = crscan_image::read_root(&path, &catalog, &options.limits)?;
            Ok((info, catalog.inventory(&view), ScanStats::default()))
        }
    }
}

/// The API's classification of an image reader's error.
fn classify(image: &str, error: ImageError) -> ScanError {
    let image = image.to_owned();
    match error {
        ImageError::Cancelled => ScanError::Cancelled { image },
        error @ ImageError::OverMemoryBudget { .. } => ScanError::OverMemoryBudget {
            image,
            detail: error.to_string(),
        },
        error if error.is_limit() => ScanError::OverLimit {
            image,
            detail: error.to_string(),
        },
        error @ ImageError::Io { .. } => ScanError::Internal {
            image,
            detail: error.to_string(),
        },
        error => ScanError::UnreadableImage {
            image,
            detail: error.to_string(),
        },
    }
}
