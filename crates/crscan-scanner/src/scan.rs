//! The scan itself: layers through the cache into a flattened view, the catalog's
//! inventory, then matching. Cancellation is checked between layers; limits are
//! checked on the manifest (layer count, declared size) and again on the bytes
//! actually read.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crscan_catalog::Catalog;
use crscan_image::{
    ImageError, LayerContents, Limits, MemoryBudget, read_layer_within, view_bytes,
};
use crscan_model::{Digest, FileView, Inventory};
use crscan_vulndb::{Database, MatchReport, match_inventory};

use crate::manifest::resolve_image;
use crate::{BlobSource, LayerCache, ScanError};

/// What one scan needs.
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Layers in the manifest.
    pub layers: usize,
    /// Layers whose blob was read and analysed.
    pub layers_read: usize,
    /// Layers taken from the cache.
    pub layers_from_cache: usize,
    /// Foreign layers absent from the registry, passed over.
    pub layers_skipped: usize,
    /// Compressed bytes read.
    pub bytes_read: u64,
    /// Cache entries that could not be written (the scan goes on without them).
    pub cache_write_failures: usize,
}

/// The result of a scan (or of re-matching a stored inventory).
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

/// Scans one image end to end.
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
    let mut outcome = match_inventory_outcome(&manifest_digest, inventory, Some(database))?;
    outcome.stats = stats;
    Ok(outcome)
}

/// Matches an inventory (a fresh one, or one stored by an earlier scan after the
/// database changed) and shapes the result.
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
    let mut report =
        match_inventory(database, &inventory).map_err(|error| ScanError::Internal {
            image: manifest_digest.to_string(),
            detail: error.to_string(),
        })?;
    report.findings.sort_by(|left, right| left.api_order(right));
    Ok(ScanOutcome {
        manifest_digest: manifest_digest.clone(),
        inventory,
        report,
        stats: ScanStats::default(),
    })
}

/// Counts the compressed bytes of every layer of one image.
struct CountingReader<'a> {
    inner: Box<dyn Read + Send>,
    total: &'a Cell<u64>,
    limit: u64,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        let total = self.total.get().saturating_add(count as u64);
        self.total.set(total);
        if total > self.limit {
            return Err(io::Error::other(format!(
                "image is larger than {} compressed bytes",
                self.limit
            )));
        }
        Ok(count)
    }
}

/// Reads the image's layers (through the cache) into an inventory, without
/// matching. Returns the platform manifest's digest with it.
pub fn inventory_image(
    request: &ScanRequest<'_>,
) -> Result<(Digest, Inventory, ScanStats), ScanError> {
    let image = request.image.to_string();
    let resolved = resolve_image(
        request.blobs,
        request.image,
        request.manifest,
        request.limits,
    )?;
    let catalog = Catalog::default();
    let mut stats = ScanStats {
        layers: resolved.layers.len(),
        ..ScanStats::default()
    };
    let total = Cell::new(0u64);
    // A layer listed more than once is read once; only such layers are kept for
    // their later uses, since applying a layer consumes it.
    let mut uses: HashMap<&Digest, usize> = HashMap::new();
    for layer in &resolved.layers {
        *uses.entry(&layer.digest).or_default() += 1;
    }
    let mut seen: HashMap<Digest, LayerContents> = HashMap::new();
    // One budget for the whole image: layers read and layers taken from the cache
    // hold their kept files in memory until the catalog has run.
    let budget = MemoryBudget::from_limits(request.limits);
    let mut view = FileView::new();
    for layer in &resolved.layers {
        if request.cancel.load(Ordering::SeqCst) {
            return Err(ScanError::Cancelled { image });
        }
        let contents = if let Some(contents) = seen.get(&layer.digest) {
            contents.clone()
        } else if let Some(contents) = request.cache.and_then(|cache| cache.layer(&layer.digest)) {
            stats.layers_from_cache += 1;
            charge_cached(&budget, &contents)
                .map_err(|error| classify(&image, error, total.get(), request.limits))?;
            contents
        } else {
            let reader = match request.blobs.open_blob(&layer.digest) {
                Ok(reader) => reader,
                Err(error) if error.kind() == io::ErrorKind::NotFound && layer.foreign => {
                    stats.layers_skipped += 1;
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(ScanError::UnreadableImage {
                        image,
                        detail: format!("layer {} is not in the registry", layer.digest),
                    });
                }
                Err(error) => {
                    return Err(ScanError::Internal {
                        image,
                        detail: format!("cannot open layer {}: {error}", layer.digest),
                    });
                }
            };
            let counting = CountingReader {
                inner: reader,
                total: &total,
                limit: request.limits.max_image_bytes,
            };
            let contents =
                read_layer_within(counting, &layer.digest, &catalog, request.limits, &budget)
                    .map_err(|error| classify(&image, error, total.get(), request.limits))?;
            stats.layers_read += 1;
            if let Some(cache) = request.cache
                && cache.put_layer(&contents).is_err()
            {
                stats.cache_write_failures += 1;
            }
            contents
        };
        if uses.get(&layer.digest).is_some_and(|count| *count > 1) {
            seen.insert(layer.digest.clone(), contents.clone());
        }
        contents.apply_to(&mut view, &catalog);
        // Files this layer replaced or whited out are no longer held.
        budget.settle(view_bytes(&view));
    }
    stats.bytes_read = total.get();
    if request.cancel.load(Ordering::SeqCst) {
        return Err(ScanError::Cancelled { image });
    }
    let inventory = catalog.inventory(&view);
    if let Some(cache) = request.cache
        && cache
            .put_inventory(&resolved.manifest_digest, &inventory)
            .is_err()
    {
        stats.cache_write_failures += 1;
    }
    Ok((resolved.manifest_digest, inventory, stats))
}

/// Charges the kept files of a layer taken from the cache to the scan's budget, as
/// reading the layer would have.
fn charge_cached(budget: &MemoryBudget, contents: &LayerContents) -> Result<(), ImageError> {
    let place = format!("layer {}", contents.digest);
    for file in &contents.files {
        budget.charge(file.contents.len() as u64, &file.path, &place)?;
    }
    Ok(())
}

fn classify(image: &str, error: ImageError, read: u64, limits: &Limits) -> ScanError {
    if matches!(error, ImageError::OverMemoryBudget { .. }) {
        return ScanError::OverMemoryBudget {
            image: image.to_owned(),
            detail: error.to_string(),
        };
    }
    if read > limits.max_image_bytes {
        return ScanError::OverLimit {
            image: image.to_owned(),
            detail: format!(
                "more than {} compressed bytes (limit max_image_bytes)",
                limits.max_image_bytes
            ),
        };
    }
    if error.is_limit() {
        return ScanError::OverLimit {
            image: image.to_owned(),
            detail: error.to_string(),
        };
    }
    ScanError::UnreadableImage {
        image: image.to_owned(),
        detail: error.to_string(),
    }
}
