//! Registry errors, each carrying an error code of the distribution specification
//! (<https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes>).

use crscan_blob::BlobError;
use crscan_store::StoreError;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error("blob upload unknown to registry: {0}")]
    BlobUploadUnknown(String),
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("manifest references a manifest or blob unknown to registry: {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest unknown to registry: {0}")]
    ManifestUnknown(String),
    #[error("manifest of {size} bytes is over the limit of {limit} bytes")]
    ManifestTooLarge { size: usize, limit: usize },
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    #[error(
        "invalid tag {0:?}: a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    )]
    TagInvalid(String),
    #[error("chunk out of order: the upload has {expected} bytes, the chunk starts at {given}")]
    RangeInvalid { expected: u64, given: u64 },
    #[error(
        "upload {0} is receiving another chunk; send the next one after it (GET the upload for its offset)"
    )]
    UploadBusy(String),
    #[error("Content-Range {0:?} is not <start>-<end> with start <= end")]
    ContentRangeInvalid(String),
    #[error(
        "chunk body has {received} bytes where its Content-Range declares {declared}; nothing of it was kept and the upload stays at {offset} bytes"
    )]
    ChunkLengthMismatch {
        declared: u64,
        received: u64,
        offset: u64,
    },
    #[error("requested range is not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    /// The blob backend (object storage) is unreachable; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl RegistryError {
    /// The specification's error code.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::BlobUnknown(_) => "BLOB_UNKNOWN",
            RegistryError::BlobUploadInvalid(_)
            | RegistryError::RangeInvalid { .. }
            | RegistryError::UploadBusy(_)
            | RegistryError::ContentRangeInvalid(_)
            | RegistryError::ChunkLengthMismatch { .. } => "BLOB_UPLOAD_INVALID",
            RegistryError::BlobUploadUnknown(_) => "BLOB_UPLOAD_UNKNOWN",
            RegistryError::DigestInvalid(_) => "DIGEST_INVALID",
            RegistryError::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            RegistryError::ManifestInvalid(_) => "MANIFEST_INVALID",
            RegistryError::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            RegistryError::ManifestTooLarge { .. } => "SIZE_INVALID",
            RegistryError::NameInvalid(_) => "NAME_INVALID",
            RegistryError::NameUnknown(_) => "NAME_UNKNOWN",
            RegistryError::TagInvalid(_) => "TAG_INVALID",
            // Not in the spec's list, which has no code for a read range; the reference
            // registry's code for a bad range, so the error never claims the blob is
            // unknown.
            RegistryError::RangeNotSatisfiable { .. } => "RANGE_INVALID",
            RegistryError::Unsupported(_) => "UNSUPPORTED",
            RegistryError::Store(StoreError::NotFound { .. }) => "NAME_UNKNOWN",
            RegistryError::Store(_) | RegistryError::Internal(_) => "UNKNOWN",
            // The reference registry's code for 503.
            RegistryError::Unavailable(_) => "UNAVAILABLE",
        }
    }
}

impl From<BlobError> for RegistryError {
    fn from(error: BlobError) -> RegistryError {
        match error {
            BlobError::NotFound(digest) => RegistryError::BlobUnknown(digest.to_string()),
            BlobError::UploadNotFound(id) => RegistryError::BlobUploadUnknown(id),
            BlobError::DigestMismatch { expected, actual } => {
                RegistryError::DigestInvalid(format!("content has digest {actual}, not {expected}"))
            }
            BlobError::BadOffset { expected, given } => {
                RegistryError::RangeInvalid { expected, given }
            }
            BlobError::BadRange { size, .. } => RegistryError::RangeNotSatisfiable { size },
            BlobError::ChunkLength {
                declared,
                received,
                offset,
            } => RegistryError::ChunkLengthMismatch {
                declared,
                received,
                offset,
            },
            error @ BlobError::Unavailable { .. } => RegistryError::Unavailable(error.to_string()),
            error @ (BlobError::Io { .. }
            | BlobError::BadLocation(_)
            | BlobError::BadObjectName(_)
            | BlobError::S3Config { .. }) => RegistryError::Internal(error.to_string()),
        }
    }
}
