//! The layer step of every scan: each layer of a resolved image is taken from the
//! caller's [`LayerStore`] or streamed once from the [`BlobSource`], its diff ID
//! checked against the configuration, and applied in order to one flattened view.

use std::collections::HashMap;

use crscan_model::{Digest, DigestAlgorithm, FileInterest, FileView};

use crate::blobs::{BlobCheck, BlobSource, open};
use crate::layer::{LayerContents, LayerRules, Verify, read_layer_metered};
use crate::limits::{ImageTotals, MemoryBudget, layer_bytes, view_bytes};
use crate::{ImageError, ImageInfo, LayerInfo, Limits, Progress};

/// Keeps what layers contribute, by layer digest, across images (the server's layer
/// cache). Whoever implements it keys entries by the reader's version too, so that a
/// change in what a layer analysis keeps is never served from an old entry.
pub trait LayerStore: Sync {
    /// What the layer `digest` contributes, if stored.
    fn get(&self, digest: &Digest) -> Option<LayerContents>;
    /// Stores a layer just read; a failure is counted, never fatal.
    fn put(&self, contents: &LayerContents) -> std::io::Result<()>;
}

/// How the layers of one image were read, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Layers in the manifest.
    pub layers: usize,
    /// Layers whose blob was read and analysed.
    pub layers_read: usize,
    /// Layers taken from the store.
    pub layers_from_cache: usize,
    /// Foreign layers the source does not hold, passed over.
    pub layers_skipped: usize,
    /// Compressed bytes read.
    pub bytes_read: u64,
    /// Store entries that could not be written (reading goes on without them).
    pub cache_write_failures: usize,
}

/// Reads the layers of `info` from `blobs` into one view of the files `interest`
/// wants, front to back, each layer once: from `cache` when it holds the layer, else
/// streamed from its blob (and then stored in `cache`). A layer whose uncompressed
/// content does not hash to the configuration's diff ID fails the read with
/// [`ImageError::DiffIdMismatch`], naming the layer; the hash is taken while the
/// layer streams, not in a second pass.
pub fn read_layers(
    blobs: &dyn BlobSource,
    info: &ImageInfo,
    interest: &dyn FileInterest,
    cache: Option<&dyn LayerStore>,
    limits: &Limits,
    progress: &dyn Progress,
) -> Result<(FileView, LayerStats), ImageError> {
    progress.image_opened(info);
    crate::manifest::check_declared(info.layers.iter().map(|layer| layer.size), limits)?;
    let mut stats = LayerStats {
        layers: info.layers.len(),
        ..LayerStats::default()
    };
    let totals = ImageTotals::default();
    // One memory budget for the kept files of every layer of the image.
    let budget = MemoryBudget::from_limits(limits);
    // A layer listed more than once is read once; only such layers are kept for
    // their later uses, since applying a layer consumes it.
    let mut uses: HashMap<&Digest, usize> = HashMap::new();
    for layer in &info.layers {
        *uses.entry(&layer.digest).or_default() += 1;
    }
    let mut seen: HashMap<Digest, LayerContents> = HashMap::new();
    let mut view = FileView::new();
    for (index, layer) in info.layers.iter().enumerate() {
        if progress.cancelled() {
            return Err(ImageError::Cancelled);
        }
        progress.layer_started(index, layer);
        let contents = if let Some(contents) = seen.get(&layer.digest) {
            contents.clone()
        } else if let Some(contents) = cache.and_then(|cache| cache.get(&layer.digest)) {
            stats.layers_from_cache += 1;
            // Charged to the budget as reading the layer would have.
            let place = format!("layer {}", contents.digest);
            for file in &contents.files {
                budget.charge(file.contents.len() as u64, &file.path, &place)?;
            }
            contents
        } else {
            let blob = match open(blobs, &layer.digest) {
                Ok(blob) => blob,
                Err(ImageError::MissingBlob { .. }) if layer.foreign => {
                    stats.layers_skipped += 1;
                    progress.layer_finished(index);
                    continue;
                }
                Err(error) => return Err(error),
            };
            // A layer whose diff ID the (digest-checked) configuration lists is
            // verified by that diff ID, taken anyway: hashing the compressed bytes
            // too would only cost a second SHA-256 pass.
            let verify = match (blob.check, layer.digest.algorithm()) {
                _ if checks_diff_id(layer) => Verify::None,
                (BlobCheck::Stored, _) | (_, DigestAlgorithm::Sha512) => Verify::None,
                (BlobCheck::Digest, _) => Verify::Blob(layer.digest.clone()),
                (BlobCheck::UncompressedDigest, _) => Verify::PlainBlob(layer.digest.clone()),
            };
            let contents = read_layer_metered(
                blob.reader,
                &layer.digest,
                &verify,
                interest,
                &LayerRules {
                    limits,
                    budget: &budget,
                },
                &totals,
                progress,
            )?;
            stats.layers_read += 1;
            check_diff_id(index, layer, &contents)?;
            if let Some(cache) = cache
                && cache.put(&contents).is_err()
            {
                stats.cache_write_failures += 1;
            }
            contents
        };
        check_diff_id(index, layer, &contents)?;
        progress.layer_finished(index);
        if uses.get(&layer.digest).is_some_and(|count| *count > 1) {
            seen.insert(layer.digest.clone(), contents.clone());
        }
        contents.apply_to(&mut view, interest);
        // Files later layers replaced are gone: charge only what is still held.
        let kept: u64 = seen.values().map(layer_bytes).sum();
        budget.settle(view_bytes(&view) + kept);
    }
    stats.bytes_read = totals.compressed.get();
    Ok((view, stats))
}

/// Whether the configuration lists a diff ID this reader checks (SHA-256) for `layer`.
fn checks_diff_id(layer: &LayerInfo) -> bool {
    layer
        .diff_id
        .as_ref()
        .is_some_and(|diff_id| diff_id.algorithm() == DigestAlgorithm::Sha256)
}

/// Fails when the layer's uncompressed content does not hash to the configuration's
/// diff ID; only a layer that matched is ever stored in a cache.
fn check_diff_id(
    index: usize,
    layer: &LayerInfo,
    contents: &LayerContents,
) -> Result<(), ImageError> {
    match &layer.diff_id {
        Some(expected) if checks_diff_id(layer) && *expected != contents.diff_id => {
            Err(ImageError::DiffIdMismatch {
                index,
                digest: layer.digest.clone(),
                expected: expected.clone(),
                actual: contents.diff_id.clone(),
            })
        }
        _ => Ok(()),
    }
}
