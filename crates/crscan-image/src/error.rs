//! The one error type of the image reader, so that callers can tell a limit that an
//! untrusted image crossed (a client error) from a broken environment.

use std::path::PathBuf;

use crscan_model::Digest;

/// Why an image or a layer could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The manifest lists more layers than allowed.
    #[error("image has {count} layers, more than {limit} (limit max_layers)")]
    TooManyLayers { count: usize, limit: usize },
    /// The compressed size of the image is over the limit.
    #[error("image is larger than {limit} compressed bytes (limit max_image_bytes)")]
    ImageTooLarge { limit: u64 },
    /// A layer (or a directory source) has too many entries.
    #[error("{place} has more than {limit} entries (limit max_entries_per_layer)")]
    TooManyEntries { place: String, limit: u64 },
    /// Decompressed bytes over the total limit.
    #[error("{place} expands to more than {limit} bytes (limit max_total_bytes)")]
    TooManyBytes { place: String, limit: u64 },
    /// A layer expands more than the allowed ratio over its compressed size.
    #[error(
        "layer {digest} expands to {expanded} bytes from {compressed} compressed bytes, more than {ratio} times (limit max_compression_ratio)"
    )]
    CompressionRatio {
        digest: Digest,
        expanded: u64,
        compressed: u64,
        ratio: u64,
    },
    /// A path is longer than allowed.
    #[error("path {path:?} in {place} is longer than {limit} bytes (limit max_path_len)")]
    PathTooLong {
        place: String,
        path: String,
        limit: usize,
    },
    /// A path has more components than allowed.
    #[error("path {path:?} in {place} has more than {limit} components (limit max_path_depth)")]
    PathTooDeep {
        place: String,
        path: String,
        limit: usize,
    },
    /// Keeping a file would take the scan past its memory budget.
    #[error(
        "file {path} in {place} needs {bytes} bytes of memory, more than the scan's memory budget of {limit} bytes allows ({used} bytes already held by other files; limit memory_budget_bytes)"
    )]
    OverMemoryBudget {
        path: String,
        place: String,
        bytes: u64,
        used: u64,
        limit: u64,
    },
    /// A manifest, index or configuration blob is larger than the reader accepts.
    #[error("{what} is larger than {limit} bytes (limit on metadata blobs)")]
    MetadataTooLarge { what: String, limit: u64 },
    /// Reading a file of the source failed.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A manifest, index, configuration or docker `manifest.json` is malformed.
    #[error("bad {what}: {detail}")]
    BadManifest { what: String, detail: String },
    /// A blob the manifest refers to is not in the image.
    #[error("blob {name} is missing from {container}")]
    MissingBlob { name: String, container: String },
    /// A blob's content does not match its digest.
    #[error("blob {name} does not match its digest {expected}: its content hashes to {actual}")]
    DigestMismatch {
        name: String,
        expected: Digest,
        actual: Digest,
    },
    /// An `oci:` path that holds no OCI image layout.
    #[error("no image layout at {path}: {reason}")]
    NoImageLayout { path: PathBuf, reason: String },
    /// The text does not name a source this reader knows.
    #[error("unknown image source {0:?}")]
    UnknownSource(String),
    /// No manifest in the index carries the requested tag.
    #[error("no manifest tagged {tag:?} in {source_name} (tags: {available})")]
    TagNotFound {
        source_name: String,
        tag: String,
        available: String,
    },
    /// No manifest in an index matches the requested platform.
    #[error("the index has no {platform} image (available: {available})")]
    PlatformNotFound { platform: String, available: String },
    /// A layer stream ended early.
    #[error("layer {digest} is truncated: {detail}")]
    TruncatedLayer { digest: Digest, detail: String },
    /// A layer's gzip or zstd stream is corrupt.
    #[error("layer {digest} cannot be decompressed: {detail}")]
    Decompress { digest: Digest, detail: String },
    /// A layer's uncompressed content does not hash to the diff ID its image
    /// configuration lists for it.
    #[error(
        "layer {index} ({digest}) does not match the image configuration: its diff ID is {expected} but its uncompressed content hashes to {actual}"
    )]
    DiffIdMismatch {
        index: usize,
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    /// Reading was stopped by the caller ([`crate::Progress::cancelled`]).
    #[error("reading the image was cancelled")]
    Cancelled,
    /// A layer's tar stream is corrupt.
    #[error("layer {digest} is not a valid tar archive: {detail}")]
    BadLayer { digest: Digest, detail: String },
}

impl ImageError {
    /// True when the image crossed one of the configured [`crate::Limits`], which a
    /// server reports as "resource exhausted" rather than as its own failure.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            ImageError::TooManyLayers { .. }
                | ImageError::ImageTooLarge { .. }
                | ImageError::TooManyEntries { .. }
                | ImageError::TooManyBytes { .. }
                | ImageError::CompressionRatio { .. }
                | ImageError::PathTooLong { .. }
                | ImageError::PathTooDeep { .. }
                | ImageError::MetadataTooLarge { .. }
                | ImageError::OverMemoryBudget { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ImageError {
        ImageError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad(what: impl Into<String>, detail: impl std::fmt::Display) -> ImageError {
        ImageError::BadManifest {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}
