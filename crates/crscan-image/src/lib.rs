//! Reads container images (OCI layouts and archives, docker archives, root
//! filesystems) into the flattened [`FileView`] that detectors read.
//!
//! Each layer is streamed once, front to back, and only the files a detector asked
//! for are kept, each under a size cap; nothing is unpacked to disk. Every input is
//! untrusted: [`Limits`] bound sizes, counts, paths and decompression ratios.
//!
//! Architecture invariant: this crate opens no sockets and trusts no size written in
//! a header or a manifest; the server reads blobs from its own store and calls
//! [`read_layer`] directly.

mod cache;
mod container;
mod error;
mod layer;
mod limits;
mod manifest;
mod rootfs;
mod source;

use crscan_model::{Digest, FileInterest, FileView};

pub use error::ImageError;
pub use layer::{LayerContents, PathSet, read_layer, read_layer_within};
pub use limits::{Limits, MemoryBudget, layer_bytes, view_bytes};
pub use manifest::Platform;
pub use source::ImageSource;

use container::Container;
use layer::{LayerRules, Verify, read_layer_metered};
use limits::ImageTotals;

/// How to read an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// `os/architecture[/variant]` to pick from an image index; `linux/amd64` when
    /// absent.
    pub platform: Option<String>,
    pub limits: Limits,
}

/// One layer of an image as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The blob digest (for a docker archive's `layer.tar`, the diff ID).
    pub digest: Digest,
    /// The digest of the uncompressed tar, from the configuration.
    pub diff_id: Option<Digest>,
    pub media_type: String,
    /// The blob size in bytes, as declared.
    pub size: u64,
}

/// What was read about an image besides its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// The source as text (`oci:/path:tag`).
    pub source: String,
    pub manifest_digest: Option<Digest>,
    pub config_digest: Option<Digest>,
    pub media_type: Option<String>,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub layers: Vec<LayerInfo>,
    pub created: Option<String>,
    pub repo_tags: Vec<String>,
}

/// Hears how reading goes, for a progress bar. Layers may be read out of order
/// (a compressed archive is read in archive order).
pub trait Progress: Sync {
    fn image_opened(&self, _info: &ImageInfo) {}
    fn layer_started(&self, _index: usize, _layer: &LayerInfo) {}
    /// Compressed bytes read since the last call.
    fn bytes_read(&self, _compressed: u64) {}
    fn layer_finished(&self, _index: usize) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Says what is wrong when `path` is not an OCI image layout (a directory with
/// `index.json`), naming what is missing rather than the first file read.
fn check_layout(path: &std::path::Path) -> Result<(), ImageError> {
    let no_layout = |reason: &str| ImageError::NoImageLayout {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(no_layout("nothing exists there"))
        }
        Err(error) => Err(ImageError::io(path, error)),
        Ok(metadata) if !metadata.is_dir() => Err(no_layout(
            "it is a file, not a directory (a tar of a layout is read as oci-archive:PATH)",
        )),
        Ok(_) if !path.join("index.json").is_file() => {
            Err(no_layout(if path.join("oci-layout").is_file() {
                "the directory has an oci-layout file but no index.json"
            } else {
                "the directory has no index.json and no oci-layout file (a root filesystem is read as dir:PATH)"
            }))
        }
        Ok(_) => Ok(()),
    }
}

/// Reads a whole image into a flattened view of the files `interest` wants, layers
/// applied in order.
pub fn read_image(
    source: &ImageSource,
    options: &ReadOptions,
    interest: &dyn FileInterest,
    progress: &dyn Progress,
) -> Result<(ImageInfo, FileView), ImageError> {
    let limits = &options.limits;
    let budget = MemoryBudget::from_limits(limits);
    let name = source.to_string();
    let platform = options.platform.as_deref();
    let (container, resolved) = match source {
        ImageSource::Dir(path) => {
            let info = ImageInfo {
                source: name,
                ..ImageInfo::default()
            };
            progress.image_opened(&info);
            let view = rootfs::read_root(path, interest, limits, &budget)?;
            return Ok((info, view));
        }
        ImageSource::OciLayout { path, tag } => {
            check_layout(path)?;
            let container = Container::Directory(path.clone());
            let resolved =
                manifest::resolve_oci(&container, &name, tag.as_deref(), platform, limits)?;
            (container, resolved)
        }
        ImageSource::OciArchive(path) => {
            let container = Container::open_archive(path)?;
            let resolved = manifest::resolve_oci(&container, &name, None, platform, limits)?;
            (container, resolved)
        }
        ImageSource::DockerArchive(path) => {
            let container = Container::open_archive(path)?;
            let resolved = manifest::resolve_docker(&container, &name, limits)?;
            (container, resolved)
        }
    };
    let info = resolved.info;
    progress.image_opened(&info);
    let declared: u64 = info.layers.iter().map(|layer| layer.size).sum();
    if declared > limits.max_image_bytes {
        return Err(ImageError::ImageTooLarge {
            limit: limits.max_image_bytes,
        });
    }

    // The same blob may serve several layers (empty layers, legacy archive links):
    // read it once.
    let mut members: Vec<String> = Vec::new();
    let mut owners: Vec<Vec<usize>> = Vec::new();
    for (index, plan) in resolved.layers.iter().enumerate() {
        let member = container
            .resolve(&plan.member)
            .ok_or_else(|| ImageError::MissingBlob {
                name: plan.member.clone(),
                container: container.describe(),
            })?;
        match members.iter().position(|known| *known == member) {
            Some(position) => owners[position].push(index),
            None => {
                members.push(member);
                owners.push(vec![index]);
            }
        }
    }

    let totals = ImageTotals::default();
    let mut pending: Vec<Option<LayerContents>> = vec![None; info.layers.len()];
    let mut next = 0;
    let mut view = FileView::new();
    container.read_members(&members, &mut |position, reader| {
        let first = owners[position][0];
        let layer = &info.layers[first];
        progress.layer_started(first, layer);
        let verify = match (resolved.layers[first].plain_only, layer.digest.algorithm()) {
            (_, crscan_model::DigestAlgorithm::Sha512) => Verify::None,
            (true, _) => Verify::PlainBlob(layer.digest.clone()),
            (false, _) => Verify::Blob(layer.digest.clone()),
        };
        let contents = read_layer_metered(
            reader,
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
        progress.layer_finished(first);
        for &other in &owners[position][1..] {
            progress.layer_started(other, &info.layers[other]);
            pending[other] = Some(contents.clone());
            progress.layer_finished(other);
        }
        pending[first] = Some(contents);
        let mut applied = false;
        while let Some(ready) = pending.get_mut(next).and_then(Option::take) {
            ready.apply_to(&mut view, interest);
            next += 1;
            applied = true;
        }
        if applied {
            // Files later layers replaced are gone: charge only what is still held.
            let waiting: u64 = pending.iter().flatten().map(layer_bytes).sum();
            budget.settle(view_bytes(&view) + waiting);
        }
        Ok(())
    })?;
    Ok((info, view))
}
