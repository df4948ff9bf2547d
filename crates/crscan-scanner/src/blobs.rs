//! The registry's content-addressed blob store as a [`BlobSource`], so that the
//! server's scans read images through the same resolver and layer reader as
//! `crscan scan`. The store verified each blob's digest when it was written, so the
//! reader does not hash it again.

use std::fs::File;
use std::io;
use std::sync::Arc;

use crscan_blob::BlobStore;
use crscan_image::{Blob, BlobCheck, BlobSource};
use crscan_model::Digest;

/// The blobs the registry holds.
#[derive(Clone)]
pub struct RegistryBlobs(pub Arc<BlobStore>);

impl BlobSource for RegistryBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<Blob> {
        let file = File::open(self.0.blob_path(digest))?;
        let size = file.metadata()?.len();
        Ok(Blob {
            reader: Box::new(io::BufReader::with_capacity(256 << 10, file)),
            size,
            check: BlobCheck::Stored,
        })
    }

    fn describe(&self) -> String {
        "the registry".to_owned()
    }
}
