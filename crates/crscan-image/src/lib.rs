//! Reads container images (OCI layouts and archives, docker archives, root
//! filesystems) into the flattened [`FileView`] that detectors read.
//!
//! Each layer is streamed once, front to back, and only the files a detector asked
//! for are kept, each under a size cap; nothing is unpacked to disk. Every input is
//! untrusted: [`Limits`] bound sizes, counts, paths and decompression ratios.
//!
//! Every image, wherever its blobs are, is read the same way: a [`BlobSource`] opens
//! blobs by digest, [`resolve_manifest`] turns a manifest or an index into an
//! [`ImageInfo`], and [`read_layers`] streams its layers (through an optional
//! [`LayerStore`], the server's per-layer cache) into the flattened view.
//!
//! Architecture invariant: this crate opens no sockets and trusts no size written in
//! a header or a manifest; a source that reads over the network implements
//! [`BlobSource`] elsewhere.

mod blobs;
mod cache;
mod container;
mod error;
mod layer;
mod layers;
mod limits;
mod manifest;
mod rootfs;
mod source;

use std::path::PathBuf;

use crscan_model::{Digest, FileInterest, FileView};

pub use blobs::{Blob, BlobCheck, BlobSource, LocalBlobs};
pub use error::ImageError;
pub use layer::{LayerContents, PathSet, read_layer, read_layer_within};
pub use layers::{LayerStats, LayerStore, read_layers};
pub use limits::{Limits, MemoryBudget, layer_bytes, view_bytes};
pub use manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, EntryPlatform, Manifest, ManifestContent, OCI_INDEX,
    OCI_MANIFEST, Platform, Reference, parse_manifest, resolve_manifest,
};
pub use source::ImageSource;

use container::Container;

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
    /// A foreign (non-distributable) layer with `urls`: a source may not hold it, and
    /// it is then passed over.
    pub foreign: bool,
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
    /// Asked before each layer: `true` stops reading with [`ImageError::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
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

/// An image opened for reading: its blobs and what its manifest says, or a root
/// filesystem on disk, which has no layers.
pub enum OpenedImage {
    Layers { blobs: LocalBlobs, info: ImageInfo },
    RootFs { path: PathBuf, info: ImageInfo },
}

impl OpenedImage {
    pub fn info(&self) -> &ImageInfo {
        match self {
            OpenedImage::Layers { info, .. } | OpenedImage::RootFs { info, .. } => info,
        }
    }
}

/// Opens `source` and resolves its manifest (for `oci:` and `oci-archive:`, through
/// `index.json` and [`resolve_manifest`]; for `docker-archive:`, through its
/// `manifest.json`).
pub fn open_image(source: &ImageSource, options: &ReadOptions) -> Result<OpenedImage, ImageError> {
    let limits = &options.limits;
    let name = source.to_string();
    let platform = options.platform.as_deref();
    match source {
        ImageSource::Dir(path) => Ok(OpenedImage::RootFs {
            path: path.clone(),
            info: ImageInfo {
                source: name,
                ..ImageInfo::default()
            },
        }),
        ImageSource::OciLayout { path, tag } => {
            check_layout(path)?;
            let blobs = LocalBlobs::new(Container::Directory(path.clone()));
            let info = manifest::resolve_oci(&blobs, &name, tag.as_deref(), platform, limits)?;
            Ok(OpenedImage::Layers { blobs, info })
        }
        ImageSource::OciArchive(path) => {
            let blobs = LocalBlobs::new(Container::open_archive(path)?);
            let info = manifest::resolve_oci(&blobs, &name, None, platform, limits)?;
            Ok(OpenedImage::Layers { blobs, info })
        }
        ImageSource::DockerArchive(path) => {
            let mut blobs = LocalBlobs::new(Container::open_archive(path)?);
            let info = manifest::resolve_docker(&mut blobs, &name, limits)?;
            Ok(OpenedImage::Layers { blobs, info })
        }
    }
}

/// Reads a root filesystem on disk (`dir:PATH`) into the view of the files
/// `interest` wants, under the memory budget of `limits`.
pub fn read_root(
    path: &std::path::Path,
    interest: &dyn FileInterest,
    limits: &Limits,
) -> Result<FileView, ImageError> {
    let budget = MemoryBudget::from_limits(limits);
    rootfs::read_root(path, interest, limits, &budget)
}

/// Reads a whole image into a flattened view of the files `interest` wants, layers
/// applied in order: [`open_image`], then [`read_layers`] without a cache.
pub fn read_image(
    source: &ImageSource,
    options: &ReadOptions,
    interest: &dyn FileInterest,
    progress: &dyn Progress,
) -> Result<(ImageInfo, FileView), ImageError> {
    match open_image(source, options)? {
        OpenedImage::RootFs { path, info } => {
            progress.image_opened(&info);
            let view = read_root(&path, interest, &options.limits)?;
            Ok((info, view))
        }
        OpenedImage::Layers { blobs, info } => {
            let (view, _) = read_layers(&blobs, &info, interest, None, &options.limits, progress)?;
            Ok((info, view))
        }
    }
}
