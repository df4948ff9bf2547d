//! Where a scan reads blobs from: the registry's content-addressed store in the
//! server, or an OCI image layout directory
//! (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>) in
//! tools and tests. Both keep a blob under its digest, verified on write, so the
//! scanner reads them without checking the digest again.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crscan_model::Digest;

/// A store of blobs addressed by digest, read synchronously.
pub trait BlobSource: Send + Sync {
    /// Opens the blob for reading front to back. A missing blob is
    /// `io::ErrorKind::NotFound`.
    fn open_blob(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>>;

    /// Reads a small blob (a manifest or a configuration) whole, refusing one longer
    /// than `limit` bytes with `io::ErrorKind::InvalidData`.
    fn read_small(&self, digest: &Digest, limit: u64) -> io::Result<Vec<u8>> {
        let reader = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {digest} is larger than {limit} bytes"),
            ));
        }
        Ok(bytes)
    }
}

fn open_file(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    Ok(Box::new(File::open(path)?))
}

impl BlobSource for crscan_blob::BlobStore {
    fn open_blob(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        open_file(&self.blob_path(digest))
    }
}

/// The blobs of an OCI image layout: `<root>/blobs/<algorithm>/<hex>`.
#[derive(Debug, Clone)]
pub struct OciLayoutBlobs {
    root: PathBuf,
}

impl OciLayoutBlobs {
    pub fn new(root: impl Into<PathBuf>) -> OciLayoutBlobs {
        OciLayoutBlobs { root: root.into() }
    }

    /// Where the blob with `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }
}

impl BlobSource for OciLayoutBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        open_file(&self.blob_path(digest))
    }
}
