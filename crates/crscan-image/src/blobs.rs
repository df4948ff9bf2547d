//! Where an image's blobs are read from, behind one small interface: a
//! [`BlobSource`] opens a blob by digest as a reader, with its size. The manifest
//! resolver ([`crate::resolve_manifest`]) and the layer reader
//! ([`crate::read_layers`]) read every image through it, whatever holds the blobs: an
//! OCI image layout (a directory or an archive), a docker archive ([`LocalBlobs`]),
//! the registry's own blob store (crscan-scanner), a remote registry.
//!
//! The trait is object-safe and synchronous; a source that needs async I/O bridges
//! it inside `open_blob`.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;

use crscan_model::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256, Sha512};

use crate::ImageError;
use crate::container::Container;

/// How the bytes of an opened blob are checked against the digest they were asked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCheck {
    /// The source checks the digest itself: it hashed the blob on write (a
    /// content-addressed store), or it hashes while it serves and fails before
    /// handing on the last byte of a blob that does not match (a registry client).
    /// The reader does not hash it again.
    Stored,
    /// The bytes are hashed while they are read and must match the digest.
    Digest,
    /// The digest names the uncompressed tar, not the stored bytes (a docker
    /// archive's legacy `<id>/layer.tar`, known by its diff ID): checked only when the
    /// bytes are an uncompressed tar. The diff ID check covers the other case.
    UncompressedDigest,
}

/// An opened blob.
pub struct Blob {
    pub reader: Box<dyn Read + Send>,
    /// The size in bytes as the source stores it.
    pub size: u64,
    pub check: BlobCheck,
}

/// A store of blobs addressed by digest.
pub trait BlobSource: Send + Sync {
    /// Opens the blob `digest` for reading front to back. A blob the source does not
    /// hold is `io::ErrorKind::NotFound`.
    fn open_blob(&self, digest: &Digest) -> io::Result<Blob>;

    /// Names the source in error messages (`OCI layout /tmp/image`, `the registry`).
    fn describe(&self) -> String;
}

/// Reads a small blob (a manifest, an index, a configuration) whole, refusing one
/// longer than `limit` bytes, and checks its digest unless the source did on write.
pub(crate) fn read_metadata(
    blobs: &dyn BlobSource,
    digest: &Digest,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, ImageError> {
    let blob = open(blobs, digest)?;
    let too_large = || ImageError::MetadataTooLarge {
        what: format!("{what} {digest} in {}", blobs.describe()),
        limit,
    };
    if blob.size > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    blob.reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| {
            ImageError::io(format!("{what} {digest} in {}", blobs.describe()), error)
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    if blob.check != BlobCheck::Stored {
        let actual = match digest.algorithm() {
            DigestAlgorithm::Sha256 => {
                Digest::from_bytes(DigestAlgorithm::Sha256, &Sha256::digest(&bytes))
            }
            DigestAlgorithm::Sha512 => {
                Digest::from_bytes(DigestAlgorithm::Sha512, &Sha512::digest(&bytes))
            }
        };
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                name: format!("{what} {digest}"),
                expected: digest.clone(),
                actual,
            });
        }
    }
    Ok(bytes)
}

/// Opens a blob, naming the source when it is missing or unreadable.
pub(crate) fn open(blobs: &dyn BlobSource, digest: &Digest) -> Result<Blob, ImageError> {
    blobs.open_blob(digest).map_err(|error| {
        if error.kind() == io::ErrorKind::NotFound {
            ImageError::MissingBlob {
                name: digest.to_string(),
                container: blobs.describe(),
            }
        } else {
            ImageError::io(format!("blob {digest} in {}", blobs.describe()), error)
        }
    })
}

/// The blobs of an image on the local disk: an OCI image layout (a directory, or a
/// tar file holding one, gzip-compressed or not) keeps them under
/// `blobs/<algorithm>/<hex>`; a docker archive names its layers in `manifest.json`.
pub struct LocalBlobs {
    container: Container,
    /// Members not stored under `blobs/<algorithm>/<hex>` (docker archives).
    named: HashMap<Digest, (String, BlobCheck)>,
}

impl LocalBlobs {
    /// The blobs of the OCI image layout directory `root`.
    pub fn oci_layout(root: impl Into<PathBuf>) -> LocalBlobs {
        LocalBlobs::new(Container::Directory(root.into()))
    }

    pub(crate) fn new(container: Container) -> LocalBlobs {
        LocalBlobs {
            container,
            named: HashMap::new(),
        }
    }

    pub(crate) fn container(&self) -> &Container {
        &self.container
    }

    /// Serves the member `name` as the blob `digest`.
    pub(crate) fn name(&mut self, digest: Digest, name: String, check: BlobCheck) {
        self.named.entry(digest).or_insert((name, check));
    }
}

/// The member name of a blob in an OCI image layout.
pub(crate) fn blob_member(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

impl BlobSource for LocalBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<Blob> {
        let (name, check) = match self.named.get(digest) {
            Some((name, check)) => (name.clone(), *check),
            None => (blob_member(digest), BlobCheck::Digest),
        };
        let Some(member) = self.container.resolve(&name) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} is missing"),
            ));
        };
        let (reader, size) = self.container.open_member(&member)?;
        Ok(Blob {
            reader,
            size,
            check,
        })
    }

    fn describe(&self) -> String {
        self.container.describe()
    }
}
